"""WeChat Pay notifications, configuration and the trade bill parser, without a server.

Notifications are made by the sandbox's builder (its own platform key and the
merchant's APIv3 key) and then broken one way at a time.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import ValidationError

from linli.payments.gateway import GatewayError, GatewayErrorCode, RefundStatus, TradeStatus
from linli.payments.sandbox.wechatpay import (
    PlatformKeys,
    SandboxConfig,
    build_notification,
    encrypt_resource,
    generate_keys,
    signed_headers,
)
from linli.payments.wechatpay import (
    WeChatPayConfig,
    WeChatPayGateway,
    parse_trade_bill,
    response_message,
    sign,
)

Keys = tuple[SandboxConfig, WeChatPayConfig]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return generate_keys()


@pytest.fixture(scope="module")
def gateway(keys: Keys) -> WeChatPayGateway:
    return WeChatPayGateway(keys[1])


def transaction(config: WeChatPayConfig, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "appid": config.appid,
        "mchid": config.mchid,
        "out_trade_no": "ORDER-2026-000001",
        "transaction_id": "4200000000202611250000000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-25T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {
            "total": 12345,
            "payer_total": 12345,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    data.update(changes)
    return data


def notify(keys: Keys, resource: dict[str, Any], **kw: Any) -> tuple[dict[str, str], bytes]:
    sandbox, ours = keys
    return build_notification(
        sandbox.platform,
        kw.pop("apiv3_key", ours.apiv3_key.get_secret_value()),
        event_type=kw.pop("event_type", "TRANSACTION.SUCCESS"),
        resource=resource,
        **kw,
    )


def resign(platform: PlatformKeys, headers: dict[str, str], body: bytes) -> dict[str, str]:
    return {**headers, **signed_headers(platform, body)}


def code_of(gateway: WeChatPayGateway, headers: dict[str, str], body: bytes) -> GatewayErrorCode:
    with pytest.raises(GatewayError) as exc:
        gateway.parse_notification(headers, body)
    return exc.value.code


def test_a_genuine_payment_notification_is_read(keys: Keys, gateway: WeChatPayGateway) -> None:
    headers, body = notify(keys, transaction(keys[1]), event_id="EV-2018022511223320873")
    notification = gateway.parse_notification({k.lower(): v for k, v in headers.items()}, body)
    assert notification.event_id == "EV-2018022511223320873"
    assert notification.refund is None
    trade = notification.trade
    assert trade is not None
    assert trade.status is TradeStatus.PAID
    assert (trade.amount_cents, trade.paid_cents) == (12345, 12345)
    assert trade.merchant_id == keys[1].mchid
    assert trade.provider_trade_no == "4200000000202611250000000001"
    assert trade.paid_at == dt.datetime(2026, 11, 25, 2, 34, 56, tzinfo=dt.UTC)
    assert gateway.answer(accepted=True).status_code in (200, 204)
    refused = gateway.answer(accepted=False)
    assert refused.status_code >= 400
    assert json.loads(refused.body) == {"code": "FAIL", "message": "失败"}


def test_a_refund_notification_is_read(keys: Keys, gateway: WeChatPayGateway) -> None:
    resource = {
        "mchid": keys[1].mchid,
        "out_trade_no": "ORDER-2026-000001",
        "transaction_id": "4200000000202611250000000001",
        "out_refund_no": "REFUND-0001",
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "success_time": "2026-11-25T13:29:35+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 12345, "refund": 345, "payer_total": 12345, "payer_refund": 345},
    }
    headers, body = notify(keys, resource, event_type="REFUND.SUCCESS")
    refund = gateway.parse_notification(headers, body).refund
    assert refund is not None
    assert refund.status is RefundStatus.SUCCEEDED
    assert (refund.out_refund_no, refund.amount_cents) == ("REFUND-0001", 345)
    headers, body = notify(
        keys, {**resource, "refund_status": "ABNORMAL"}, event_type="REFUND.ABNORMAL"
    )
    abnormal = gateway.parse_notification(headers, body).refund
    assert abnormal is not None and abnormal.status is RefundStatus.ABNORMAL


def test_a_forged_signature_is_refused(keys: Keys, gateway: WeChatPayGateway) -> None:
    headers, body = notify(keys, transaction(keys[1]))
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sign(
        impostor,
        response_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body),
    )
    assert (
        code_of(gateway, {**headers, "Wechatpay-Signature": forged}, body)
        is GatewayErrorCode.BAD_SIGNATURE
    )
    probe = {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + forged}
    assert code_of(gateway, probe, body) is GatewayErrorCode.BAD_SIGNATURE
    assert (
        code_of(gateway, {**headers, "Wechatpay-Signature": "!!"}, body)
        is GatewayErrorCode.BAD_SIGNATURE
    )


def test_a_body_changed_after_signing_is_refused(keys: Keys, gateway: WeChatPayGateway) -> None:
    headers, body = notify(keys, transaction(keys[1]))
    changed = body.replace(b'"summary":"', b'"summary":"x')
    assert code_of(gateway, headers, changed) is GatewayErrorCode.BAD_SIGNATURE
    nonce = {**headers, "Wechatpay-Nonce": headers["Wechatpay-Nonce"][::-1]}
    assert code_of(gateway, nonce, body) is GatewayErrorCode.BAD_SIGNATURE


def test_an_unknown_serial_is_refused(keys: Keys, gateway: WeChatPayGateway) -> None:
    headers, body = notify(keys, transaction(keys[1]))
    wrong = {**headers, "Wechatpay-Serial": "PUB_KEY_ID_0114232134912410000000000000"}
    assert code_of(gateway, wrong, body) is GatewayErrorCode.UNKNOWN_SERIAL


def test_a_replay_with_an_old_timestamp_is_refused(keys: Keys, gateway: WeChatPayGateway) -> None:
    old = int(time.time()) - 301
    headers, body = notify(keys, transaction(keys[1]), timestamp=old)
    assert code_of(gateway, headers, body) is GatewayErrorCode.STALE_TIMESTAMP
    future = int(time.time()) + 301
    headers, body = notify(keys, transaction(keys[1]), timestamp=future)
    assert code_of(gateway, headers, body) is GatewayErrorCode.STALE_TIMESTAMP
    headers, body = notify(keys, transaction(keys[1]), timestamp=int(time.time()) - 250)
    assert gateway.parse_notification(headers, body).trade is not None  # inside the window
    lenient = WeChatPayGateway(keys[1].model_copy(update={"max_clock_skew_seconds": 600}))
    headers, body = notify(keys, transaction(keys[1]), timestamp=old)
    assert lenient.parse_notification(headers, body).trade is not None


def test_tampered_ciphertext_is_refused(keys: Keys, gateway: WeChatPayGateway) -> None:
    headers, body = notify(keys, transaction(keys[1]))
    envelope = json.loads(body)
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[10] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    tampered = json.dumps(envelope).encode()  # signed again: only the AEAD tag can tell
    assert code_of(gateway, resign(keys[0].platform, headers, tampered), tampered) is (
        GatewayErrorCode.BAD_CIPHERTEXT
    )
    envelope = json.loads(body)
    envelope["resource"]["associated_data"] = "refund"
    swapped = json.dumps(envelope).encode()
    assert code_of(gateway, resign(keys[0].platform, headers, swapped), swapped) is (
        GatewayErrorCode.BAD_CIPHERTEXT
    )


def test_a_resource_under_another_apiv3_key_is_refused(
    keys: Keys, gateway: WeChatPayGateway
) -> None:
    headers, body = notify(keys, transaction(keys[1]), apiv3_key="0123456789abcdef0123456789ABCDEF")
    assert code_of(gateway, headers, body) is GatewayErrorCode.BAD_CIPHERTEXT


def test_malformed_bodies_are_refused(keys: Keys, gateway: WeChatPayGateway) -> None:
    platform = keys[0].platform
    for body in (
        b"not json",
        b"[]",
        b'{"id":"x","event_type":"TRANSACTION.SUCCESS"}',
        b'{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":"text"}',
        b'{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM"}}',
    ):
        assert code_of(gateway, resign(platform, {}, body), body) is GatewayErrorCode.MALFORMED
    key = keys[1].apiv3_key.get_secret_value()
    odd_event = {
        "id": "x",
        "event_type": "MCHTRANSFER.BILL.FINISHED",
        "resource": encrypt_resource(key, {"a": 1}, "mch_payment"),
    }
    body = json.dumps(odd_event).encode()
    assert code_of(gateway, resign(platform, {}, body), body) is GatewayErrorCode.MALFORMED
    # decrypts, but is not a transaction
    headers, body = notify(keys, {"hello": "world"})
    assert code_of(gateway, headers, body) is GatewayErrorCode.MALFORMED
    # a "success" event for a trade that is not paid
    headers, body = notify(keys, transaction(keys[1], trade_state="NOTPAY"))
    assert code_of(gateway, headers, body) is GatewayErrorCode.MALFORMED
    # amounts must be integers of cents
    amount = {"total": "123.45", "payer_total": "123.45"}
    headers, body = notify(keys, transaction(keys[1], amount=amount))
    assert code_of(gateway, headers, body) is GatewayErrorCode.MALFORMED
    # no signature headers at all
    headers, body = notify(keys, transaction(keys[1]))
    assert code_of(gateway, {}, body) is GatewayErrorCode.BAD_SIGNATURE
    assert code_of(gateway, {**headers, "Wechatpay-Timestamp": "soon"}, body) is (
        GatewayErrorCode.BAD_SIGNATURE
    )


def test_notification_verify_and_decrypt_rate(keys: Keys, gateway: WeChatPayGateway) -> None:
    """The payment-notify benchmark needs ≥ 1,000 verified notifications/s; this is its
    gateway part alone, measured in CPU time (the machine is shared)."""
    count = 2000
    prepared = [
        notify(keys, transaction(keys[1], out_trade_no=f"ORDER-2026-{i:06d}")) for i in range(count)
    ]
    started = time.process_time()
    for headers, body in prepared:
        gateway.parse_notification(headers, body)
    spent = time.process_time() - started
    rate = count / spent
    each = spent / count * 1e6
    print(f"\nwechatpay notification verify+decrypt+parse: {rate:,.0f}/s CPU ({each:.0f} µs each)")
    assert rate >= 1000


def test_config_validation_and_secrecy(keys: Keys) -> None:
    ours: WeChatPayConfig = keys[1]
    stored = ours.to_storage()
    assert WeChatPayConfig.model_validate(stored) == ours
    private = ours.merchant_private_key.get_secret_value()
    for shown in (repr(ours), str(ours), ours.model_dump_json()):
        assert private[40:80] not in shown
        assert ours.apiv3_key.get_secret_value() not in shown

    def refused(**changes: Any) -> None:
        with pytest.raises(ValidationError):
            WeChatPayConfig.model_validate({**stored, **changes})

    refused(apiv3_key="short")
    refused(merchant_private_key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    refused(platform_public_key="", platform_public_key_id="")
    refused(platform_public_key_id="")
    refused(mchid="19abc")
    refused(base_url="ftp://example.com")
    refused(sub_appid="wx123")  # sub_appid without sub_mchid
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    refused(merchant_private_key=small_pem)
    cert_config, _ = generate_keys(mode="certificate")
    cert_pem = cert_config.platform.certificate_pem
    refused(platform_certificates={"ABCDEF": cert_pem})  # the serial must be the certificate's
    assert WeChatPayConfig.model_validate(
        {**stored, "platform_certificates": {cert_config.platform.serial: cert_pem}}
    ).platform_certificates
    assert WeChatPayConfig.model_validate(
        {**stored, "base_url": "http://127.0.0.1:9/"}
    ).base_url == ("http://127.0.0.1:9")


HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
PAYMENT = (
    "`2026-11-24 13:51:31,`wxfdc955f7104ad557,`1800023671,`0,`,`4200000612032130748613220688,"
    "`ORDER-1,`oZWaCKXip5njeEiloC4oeOV1TTsk,`JSAPI,`SUCCESS,`OTHERS,`CNY,`100.01,`0.00,`0,`0,"
    "`0.00,`0.00,`,`,`物业费,2026年11月,`,`0.60006,`0.60%,`100.01,`0.00,`"
)
REFUND = (
    "`2026-11-24 18:00:00,`wxfdc955f7104ad557,`1800023671,`0,`,`4200000612032130748613220688,"
    "`ORDER-1,`oZWaCKXip5njeEiloC4oeOV1TTsk,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
    "`50300000000000000000000000001,`REFUND-1,`20.00,`0.00,`ORIGINAL,`SUCCESS,`物业费,`,"
    "`-0.12000,`0.60%,`0.00,`20.00,`"
)
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def test_trade_bill_parsing() -> None:
    content = "\r\n".join(
        [HEADER, PAYMENT, REFUND, SUMMARY, "`2,`100.01,`20.00,`0.00,`0.48006,`100.01,`20.00", ""]
    ).encode("utf-8-sig")
    payment, refund = parse_trade_bill(content)
    assert (payment.kind, payment.out_trade_no, payment.amount_cents) == (
        "payment",
        "ORDER-1",
        10001,
    )
    assert payment.merchant_id == "1800023671"
    assert payment.occurred_at == dt.datetime(2026, 11, 24, 5, 51, 31, tzinfo=dt.UTC)
    assert (refund.kind, refund.out_refund_no, refund.amount_cents) == ("refund", "REFUND-1", 2000)
    assert refund.provider_trade_no == "4200000612032130748613220688"

    cut = "\n".join([HEADER, PAYMENT, REFUND]).encode()
    with pytest.raises(GatewayError) as no_summary:
        parse_trade_bill(cut)
    assert no_summary.value.code is GatewayErrorCode.MALFORMED
    short = "\n".join(
        [HEADER, PAYMENT, SUMMARY, "`2,`100.01,`0.00,`0.00,`0.6,`100.01,`0.00"]
    ).encode()
    with pytest.raises(GatewayError) as count:
        parse_trade_bill(short)
    assert count.value.code is GatewayErrorCode.MALFORMED
    sub_cent = PAYMENT.replace("`100.01,`0.00,`", "`100.015,`0.00,`", 1).replace(
        ",`100.01,`0.00,`", ",`100.015,`0.00,`"
    )
    with pytest.raises(GatewayError):
        parse_trade_bill("\n".join([HEADER, sub_cent, SUMMARY, "`1,`0,`0,`0,`0,`0,`0"]).encode())
    with pytest.raises(GatewayError):
        parse_trade_bill(b"\xff\xfe")


def test_request_authorization_is_exactly_the_documented_format(keys: Keys) -> None:
    """Written from the APIv3 signing rules, not from the client's helpers."""
    ours: WeChatPayConfig = keys[1]
    merchant = keys[0].merchant(ours.mchid)
    assert merchant is not None
    gateway = WeChatPayGateway(ours, clock=lambda: 1554208460.7)
    target = f"/v3/pay/transactions/out-trade-no/ORDER-1?mchid={ours.mchid}"
    body = '{"mchid":"1900009191","description":"物业费"}'.encode()
    header = gateway.authorization("POST", target, body)
    match = re.fullmatch(
        r'WECHATPAY2-SHA256-RSA2048 mchid="(\d+)",nonce_str="([0-9A-F]{32})",'
        r'signature="([A-Za-z0-9+/=]+)",timestamp="(\d+)",serial_no="([0-9A-F]+)"',
        header,
    )
    assert match is not None, header
    mchid, nonce, signature, timestamp, serial = match.groups()
    assert (mchid, timestamp, serial) == (ours.mchid, "1554208460", ours.merchant_serial_no)
    message = f"POST\n{target}\n1554208460\n{nonce}\n".encode() + body + b"\n"
    public = serialization.load_pem_public_key(merchant.merchant_public_key_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):  # the final newline is part of the message
        public.verify(
            base64.b64decode(signature), message[:-1], padding.PKCS1v15(), hashes.SHA256()
        )
