"""Alipay's wire details in isolation: yuan strings, the signed response node, the bill zip."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linli.payments.alipay import (
    AlipayGateway,
    load_private_key,
    load_public_key,
    parse_china_time,
    parse_trade_bill,
    rsa2_sign,
    rsa2_verify,
    sign_content,
    split_envelope,
    to_cents,
    yuan,
)
from linli.payments.gateway import GatewayError, GatewayErrorCode, TradeStatus
from linli.payments.sandbox.alipay import AlipaySandbox, SandboxTrade, generate_keys

SANDBOX, OURS = generate_keys()
GATEWAY = AlipayGateway(OURS)
ALIPAY_KEY = load_private_key(SANDBOX.alipay_private_key_pem)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("0.01", 1),
        ("0.1", 10),
        ("1", 100),
        ("12.34", 1234),
        ("100000.00", 10_000_000),
        ("100000000.00", 100_000_000_00),
        (" 12.30\t", 1230),
    ],
)
def test_yuan_strings_become_exact_cents(text: str, cents: int) -> None:
    assert to_cents(text) == cents


@pytest.mark.parametrize(
    "text", ["", "1.001", "1e3", "NaN", "Infinity", "-1.00", "+1.00", "1,000.00", ".5", "1.", "¥1"]
)
def test_anything_else_is_refused_not_rounded(text: str) -> None:
    with pytest.raises(ValueError):
        to_cents(text)


def test_bill_amounts_may_be_negative() -> None:
    assert to_cents("-35.80", signed=True) == -3580
    assert yuan(-3580) == "-35.80"


@given(st.integers(min_value=0, max_value=100_000_000_00))
def test_cents_round_trip_through_yuan(cents: int) -> None:
    text = yuan(cents)
    assert to_cents(text) == cents
    assert len(text.split(".")[1]) == 2


def test_china_times_with_and_without_milliseconds() -> None:
    assert parse_china_time("2026-11-25 08:00:00") == dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    assert parse_china_time("2026-11-25 08:00:00.320") == dt.datetime(
        2026, 11, 25, 0, 0, 0, 320_000, tzinfo=dt.UTC
    )


def test_request_sign_content_is_sorted_raw_and_skips_empty_values() -> None:
    params = {"b": "2", "a": "x&y=z", "sign": "S", "empty": "", "c": "中文"}
    assert sign_content(params) == "a=x&y=z&b=2&c=中文"
    signed = GATEWAY.signed_params("alipay.trade.query", {"out_trade_no": "A-1"})
    assert signed["sign_type"] == "RSA2" and signed["charset"] == "utf-8"
    assert signed["biz_content"] == '{"out_trade_no":"A-1"}'


# --- the response node ------------------------------------------------------------------------


def _answer(raw_node: str, *, node: str = "alipay_trade_query_response", sign_first: bool) -> str:
    sign = rsa2_sign(ALIPAY_KEY, raw_node)
    if sign_first:
        return f'{{ "sign" : "{sign}" ,\n  "{node}" :  {raw_node} }}'
    return f'{{"{node}":{raw_node},"sign":"{sign}"}}'


RAW = (
    '{ "code":"10000", "msg":"Success", "out_trade_no":"A-1",'
    ' "trade_status":"WAIT_BUYER_PAY", "total_amount":"88.88",'
    ' "qr_code":"https:\\/\\/qr.alipay.com\\/bax01", "subject":"物业费\\u0021" }'
)


@pytest.mark.parametrize("sign_first", [False, True])
def test_the_signature_covers_the_node_text_as_received(sign_first: bool) -> None:
    answer = _answer(RAW, sign_first=sign_first)
    data, verified = GATEWAY.verify_response(answer, "alipay.trade.query")
    assert verified and data["qr_code"] == "https://qr.alipay.com/bax01"
    # the same content re-serialised is not what Alipay signed: verifying that would fail
    reserialised = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    signature = json.loads(answer)["sign"]
    assert not rsa2_verify(load_public_key(OURS.alipay_public_key), reserialised, signature)


def test_a_changed_node_or_a_doubled_node_is_refused() -> None:
    tampered = _answer(RAW, sign_first=False).replace("88.88", "0.01")
    with pytest.raises(GatewayError) as changed:
        GATEWAY.verify_response(tampered, "alipay.trade.query")
    assert changed.value.code is GatewayErrorCode.BAD_SIGNATURE

    genuine = _answer(RAW, sign_first=False)
    doubled = genuine[:-1] + ',"alipay_trade_query_response":{"code":"10000"}}'
    with pytest.raises(GatewayError) as twice:
        GATEWAY.verify_response(doubled, "alipay.trade.query")
    assert twice.value.code is GatewayErrorCode.MALFORMED

    for broken in ("", "[]", "{", '{"alipay_trade_query_response":{}} trailing', "{'a':1}"):
        with pytest.raises(GatewayError) as bad:
            GATEWAY.verify_response(broken, "alipay.trade.query")
        assert bad.value.code is GatewayErrorCode.MALFORMED

    unsigned_success = '{"alipay_trade_query_response":{"code":"10000","msg":"Success"}}'
    with pytest.raises(GatewayError) as unsigned:
        GATEWAY.verify_response(unsigned_success, "alipay.trade.query")
    assert unsigned.value.code is GatewayErrorCode.BAD_SIGNATURE

    unsigned_error = '{"error_response":{"code":"40002","sub_code":"isv.invalid-app-id"}}'
    data, verified = GATEWAY.verify_response(unsigned_error, "alipay.trade.query")
    assert not verified and data["sub_code"] == "isv.invalid-app-id"


def test_split_envelope_keeps_each_members_exact_text() -> None:
    text = '{"a" : {"x": [1, 2.50, "\\u4e2d"]} , "b":"c"}'
    members = split_envelope(text)
    assert members["a"][1] == '{"x": [1, 2.50, "\\u4e2d"]}'
    assert members["b"] == ("c", '"c"')
    assert split_envelope("{ }") == {}


# --- the bill ---------------------------------------------------------------------------------


def _sandbox_with_trades() -> tuple[AlipaySandbox, dt.date]:
    sandbox = AlipaySandbox(SANDBOX)
    app = SANDBOX.apps[0]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    trade = SandboxTrade(
        app_id=app.app_id,
        seller_id=app.seller_id,
        out_trade_no="BILL-1",
        subject="物业费, 2026",
        total=3580,
        notify_url="",
        time_expire=now + dt.timedelta(hours=1),
        product_code="FACE_TO_FACE_PAYMENT",
        token="bax1",
        trade_status="TRADE_SUCCESS",
        trade_no="2026112522001400000000000001",
        gmt_payment=now,
    )
    sandbox.trades[(app.app_id, "BILL-1")] = trade
    return sandbox, now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()


def _gbk_named_zip(content: bytes) -> bytes:
    """A zip as Alipay makes it: entry names in GBK bytes, without the UTF-8 flag."""
    real = "20880000000000000156_20261125_业务明细.csv".encode("gbk")
    summary = "20880000000000000156_20261125_业务明细(汇总).csv".encode("gbk")
    placeholder = b"D" * len(real)
    placeholder_summary = b"S" * len(summary)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(placeholder.decode(), content)
        archive.writestr(placeholder_summary.decode(), b"#summary")
    return buffer.getvalue().replace(placeholder, real).replace(placeholder_summary, summary)


def test_the_sandbox_bill_parses_into_payments() -> None:
    sandbox, day = _sandbox_with_trades()
    zipped = sandbox.bill_zip(SANDBOX.apps[0], day)
    lines = parse_trade_bill(zipped, merchant_id="M")
    assert [(line.out_trade_no, line.kind, line.amount_cents) for line in lines] == [
        ("BILL-1", "payment", 3580)
    ]


def test_a_gbk_named_zip_parses_and_a_cut_off_file_is_refused() -> None:
    sandbox, day = _sandbox_with_trades()
    with zipfile.ZipFile(io.BytesIO(sandbox.bill_zip(SANDBOX.apps[0], day))) as archive:
        detail = next(name for name in archive.namelist() if "汇总" not in name)
        content = archive.read(detail)
    lines = parse_trade_bill(_gbk_named_zip(content), merchant_id="M")
    assert len(lines) == 1 and lines[0].provider_trade_no == "2026112522001400000000000001"

    text = content.decode("gbk")
    cut = text[: text.index("#-----------------------------------------业务明细列表结束")]
    with pytest.raises(GatewayError) as truncated:
        parse_trade_bill(_gbk_named_zip(cut.encode("gbk")), merchant_id="M")
    assert truncated.value.code is GatewayErrorCode.MALFORMED

    with pytest.raises(GatewayError) as not_zip:
        parse_trade_bill(b"PK\x03\x04 nope", merchant_id="M")
    assert not_zip.value.code is GatewayErrorCode.MALFORMED

    bad_amount = text.replace("35.80", "35.8O")
    with pytest.raises(GatewayError) as amount:
        parse_trade_bill(_gbk_named_zip(bad_amount.encode("gbk")), merchant_id="M")
    assert amount.value.code is GatewayErrorCode.MALFORMED


def test_trade_states_map_to_the_shared_vocabulary() -> None:
    sandbox, _ = _sandbox_with_trades()
    trade = sandbox.trades[(SANDBOX.apps[0].app_id, "BILL-1")]
    for state, expected in (
        ("TRADE_SUCCESS", TradeStatus.PAID),
        ("TRADE_FINISHED", TradeStatus.PAID),
        ("TRADE_CLOSED", TradeStatus.CLOSED),
        ("WAIT_BUYER_PAY", TradeStatus.NOT_PAID),
    ):
        form = sandbox.notification(trade, trade_status=state)
        parsed = GATEWAY.parse_notification({}, urlencode(form).encode()).trade
        assert parsed is not None and parsed.status is expected
