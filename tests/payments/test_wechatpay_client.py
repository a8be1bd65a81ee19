"""The WeChat Pay v3 client against the local sandbox, over real HTTP on loopback.

The sandbox checks our request signatures with the merchant public key, signs its
answers with its platform key and posts signed, encrypted notifications back to a
receiver that uses the gateway exactly as the payments service does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from linli.payments.gateway import (
    Channel,
    GatewayError,
    GatewayErrorCode,
    Notification,
    RefundStatus,
    TradeStatus,
    provider,
)
from linli.payments.sandbox.wechatpay import (
    SandboxError,
    SandboxFaults,
    WeChatPaySandbox,
    create_app,
    generate_keys,
    load_or_generate,
    running,
    sandbox_pay_url,
    serve,
    serving,
)
from linli.payments.wechatpay import (
    CHINA,
    WeChatPayConfig,
    WeChatPayGateway,
    load_public_key,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAST_RETRIES = (0.05, 0.1, 0.2, 0.4, 0.8)


class Receiver:
    """Our side of the notify_url: parse with the gateway, answer as it says."""

    def __init__(self) -> None:
        self.gateways: dict[str, WeChatPayGateway] = {}
        self.notifications: list[Notification] = []
        self.errors: list[GatewayErrorCode] = []
        self.refuse_next = 0
        self.url = ""
        self.app = Starlette(routes=[Route("/notify/{name}", self._notify, methods=["POST"])])

    def notify_url(self, name: str) -> str:
        return f"{self.url}/notify/{name}"

    async def _notify(self, request: Request) -> Response:
        gateway = self.gateways[request.path_params["name"]]
        body = await request.body()
        if self.refuse_next > 0:  # our app is down or its database is: WeChat Pay retries
            self.refuse_next -= 1
            answer = gateway.answer(accepted=False)
        else:
            try:
                self.notifications.append(gateway.parse_notification(request.headers, body))
                answer = gateway.answer(accepted=True)
            except GatewayError as exc:
                self.errors.append(exc.code)
                answer = gateway.answer(accepted=False)
        return Response(answer.body, answer.status_code, media_type=answer.media_type)

    async def wait_for(
        self, match: Callable[[Notification], bool], within: float = 10
    ) -> Notification:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for notification in self.notifications:
                if match(notification):
                    return notification
            await asyncio.sleep(0.02)
        raise AssertionError("no matching notification arrived")


class World:
    def __init__(
        self, sandbox: WeChatPaySandbox, url: str, config: WeChatPayConfig, receiver: Receiver
    ):
        self.sandbox = sandbox
        self.url = url
        self.config = config
        self.receiver = receiver
        self.gateway = WeChatPayGateway(config)
        receiver.gateways["main"] = self.gateway
        self._n = 0

    def out_trade_no(self, prefix: str = "T") -> str:
        self._n += 1
        return f"{prefix}{int(time.time() * 1000)}{self._n:04d}"

    async def create(
        self, channel: Channel = Channel.NATIVE, *, amount: int = 1000, no: str = "", **kw: Any
    ) -> str:
        no = no or self.out_trade_no()
        await self.gateway.create(
            channel=channel,
            out_trade_no=no,
            description=kw.pop("description", "物业费 2026-11"),
            amount_cents=amount,
            notify_url=self.receiver.notify_url(kw.pop("name", "main")),
            expires_at=kw.pop("expires_at", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)),
            payer_id=kw.pop(
                "payer_id", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" if channel is Channel.JSAPI else ""
            ),
        )
        return no


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    sandbox_config, ours = generate_keys()
    sandbox = WeChatPaySandbox(sandbox_config, retry_delays=FAST_RETRIES, refund_delay=0.05)
    receiver = Receiver()
    async with running(sandbox) as url, serving(receiver.app) as receiver_url:
        receiver.url = receiver_url
        config = ours.model_copy(update={"base_url": url, "timeout_seconds": 3.0})
        yield World(sandbox, url, config, receiver)
        await sandbox.drain(2)


@pytest.fixture(autouse=True)
def clean_faults(world: World) -> None:
    world.sandbox.faults = SandboxFaults()
    world.receiver.refuse_next = 0


def paid_trade_matching(no: str) -> Callable[[Notification], bool]:
    return lambda n: n.trade is not None and n.trade.out_trade_no == no


async def test_native_order_is_created_queried_paid_and_notified(world: World) -> None:
    no = world.out_trade_no()
    prepay = await world.gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="物业费 2026年11月",
        amount_cents=12345,
        notify_url=world.receiver.notify_url("main"),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
    )
    assert prepay.qr_content.startswith("weixin://wxpay/bizpayurl?pr=")
    assert prepay.jsapi_params == {}

    trade = await world.gateway.query(no)
    assert trade.status is TradeStatus.NOT_PAID
    assert (trade.amount_cents, trade.paid_cents, trade.merchant_id) == (
        12345,
        0,
        world.config.mchid,
    )
    sandbox_trade = world.sandbox.trade(no)
    assert sandbox_trade.time_expire > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=14)

    await world.sandbox.pay(no)
    notified = await world.receiver.wait_for(paid_trade_matching(no))
    assert notified.trade is not None
    assert notified.trade.status is TradeStatus.PAID
    assert notified.trade.paid_cents == 12345
    assert notified.trade.merchant_id == world.config.mchid
    assert notified.trade.provider_trade_no == sandbox_trade.transaction_id
    assert notified.trade.paid_at is not None and notified.trade.paid_at.tzinfo is not None
    assert notified.event_id

    queried = await world.gateway.query(no)
    assert queried.status is TradeStatus.PAID
    assert queried.provider_trade_no == notified.trade.provider_trade_no
    assert queried.paid_at == notified.trade.paid_at

    with pytest.raises(GatewayError) as paid:
        await world.gateway.close(no)
    assert paid.value.code is GatewayErrorCode.REJECTED
    assert paid.value.provider_code == "ORDERPAID"


async def test_jsapi_order_returns_signed_bridge_parameters(world: World) -> None:
    no = world.out_trade_no()
    prepay = await world.gateway.create(
        channel=Channel.JSAPI,
        out_trade_no=no,
        description="停车费",
        amount_cents=500,
        notify_url=world.receiver.notify_url("main"),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
        payer_id="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    )
    params = dict(prepay.jsapi_params)
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == world.config.appid
    assert params["package"] == f"prepay_id={prepay.provider_reference}"
    assert params["signType"] == "RSA"
    assert abs(int(params["timeStamp"]) - time.time()) < 5
    merchant = world.sandbox.config.merchant(world.config.mchid)
    assert merchant is not None
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    load_public_key(merchant.merchant_public_key_pem).verify(
        base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert world.sandbox.trade(no).openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

    with pytest.raises(GatewayError) as no_payer:
        await world.create(Channel.JSAPI, payer_id="")
    assert no_payer.value.code is GatewayErrorCode.MALFORMED


async def test_unknown_trade_is_unknown_and_close_is_idempotent(world: World) -> None:
    unknown = await world.gateway.query("NEVER-CREATED-123")
    assert unknown.status is TradeStatus.UNKNOWN
    await world.gateway.close("NEVER-CREATED-123")  # nothing to close is not an error

    no = await world.create()
    await world.gateway.close(no)
    await world.gateway.close(no)
    assert (await world.gateway.query(no)).status is TradeStatus.CLOSED
    with pytest.raises(SandboxError) as closed:  # and the payer can no longer pay it
        await world.sandbox.pay(no)
    assert closed.value.code == "ORDER_CLOSED"


async def test_recreating_an_order_returns_it_and_different_parameters_are_refused(
    world: World,
) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    no = await world.create(amount=800, expires_at=expires)
    await world.create(amount=800, no=no, expires_at=expires)  # a retry after a lost answer
    assert len([t for t in world.sandbox.trades.values() if t.out_trade_no == no]) == 1
    with pytest.raises(GatewayError) as changed:
        await world.create(amount=900, no=no, expires_at=expires)
    assert changed.value.code is GatewayErrorCode.REJECTED
    assert changed.value.provider_code == "INVALID_REQUEST"


async def test_refunds_are_idempotent_notified_and_bounded(world: World) -> None:
    no = await world.create(amount=1000)
    await world.sandbox.pay(no)
    await world.receiver.wait_for(paid_trade_matching(no))

    refund = await world.gateway.refund(
        out_trade_no=no,
        out_refund_no=f"R{no}",
        amount_cents=300,
        total_cents=1000,
        reason="多缴退回",
        notify_url=world.receiver.notify_url("main"),
    )
    assert refund.status in (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED)
    assert (refund.amount_cents, refund.out_refund_no) == (300, f"R{no}")
    again = await world.gateway.refund(
        out_trade_no=no,
        out_refund_no=f"R{no}",
        amount_cents=300,
        total_cents=1000,
        reason="多缴退回",
        notify_url=world.receiver.notify_url("main"),
    )
    assert again.provider_refund_no == refund.provider_refund_no
    assert world.sandbox.trade(no).refunded == 300  # asked twice, refunded once

    notified = await world.receiver.wait_for(
        lambda n: n.refund is not None and n.refund.out_refund_no == f"R{no}"
    )
    assert notified.refund is not None
    assert notified.refund.status is RefundStatus.SUCCEEDED
    assert notified.refund.amount_cents == 300
    assert notified.refund.out_trade_no == no
    assert notified.refund.refunded_at is not None

    queried = await world.gateway.query_refund(out_trade_no=no, out_refund_no=f"R{no}")
    assert queried.status is RefundStatus.SUCCEEDED
    assert (await world.gateway.query(no)).status is TradeStatus.REFUNDED

    with pytest.raises(GatewayError) as too_much:
        await world.gateway.refund(
            out_trade_no=no,
            out_refund_no=f"S{no}",
            amount_cents=701,
            total_cents=1000,
            reason="",
            notify_url="",
        )
    assert too_much.value.code is GatewayErrorCode.REJECTED
    assert too_much.value.provider_code == "INVALID_REQUEST"
    assert world.sandbox.trade(no).refunded == 300

    with pytest.raises(GatewayError) as larger_than_order:
        await world.gateway.refund(
            out_trade_no=no,
            out_refund_no=f"U{no}",
            amount_cents=1001,
            total_cents=1000,
            reason="",
            notify_url="",
        )
    assert larger_than_order.value.code is GatewayErrorCode.REJECTED

    with pytest.raises(GatewayError) as unknown:
        await world.gateway.query_refund(out_trade_no=no, out_refund_no="NO-SUCH-REFUND")
    assert unknown.value.provider_code == "RESOURCE_NOT_EXISTS"


async def test_abnormal_refund_is_notified_as_abnormal(world: World) -> None:
    no = await world.create(amount=200)
    await world.sandbox.pay(no)
    world.sandbox.faults.refund_outcome = "ABNORMAL"
    await world.gateway.refund(
        out_trade_no=no,
        out_refund_no=f"A{no}",
        amount_cents=200,
        total_cents=200,
        reason="",
        notify_url=world.receiver.notify_url("main"),
    )
    notified = await world.receiver.wait_for(
        lambda n: n.refund is not None and n.refund.out_refund_no == f"A{no}"
    )
    assert notified.refund is not None and notified.refund.status is RefundStatus.ABNORMAL


async def test_trade_bill_holds_the_days_payments_and_refunds(world: World) -> None:
    first = await world.create(amount=10000, description="物业费,含公摊")  # a comma in the name
    second = await world.create(Channel.JSAPI, amount=2550)
    unpaid = await world.create(amount=99)
    await world.sandbox.pay(first)
    await world.sandbox.pay(second)
    await world.gateway.refund(
        out_trade_no=first,
        out_refund_no=f"B{first}",
        amount_cents=2500,
        total_cents=10000,
        reason="",
        notify_url="",
    )
    today = dt.datetime.now(CHINA).date()
    lines = await world.gateway.download_bill(today)
    mine = {(line.kind, line.out_trade_no): line for line in lines}
    assert mine[("payment", first)].amount_cents == 10000
    assert mine[("payment", second)].amount_cents == 2550
    assert mine[("payment", first)].provider_trade_no == world.sandbox.trade(first).transaction_id
    assert mine[("payment", first)].merchant_id == world.config.mchid
    refund = mine[("refund", first)]
    assert (refund.amount_cents, refund.out_refund_no) == (2500, f"B{first}")
    assert ("payment", unpaid) not in mine
    paid_at = world.sandbox.trade(first).success_time
    assert mine[("payment", first)].occurred_at == paid_at

    assert await world.gateway.download_bill(today - dt.timedelta(days=400)) == []

    world.sandbox.faults.corrupt_bill = True
    with pytest.raises(GatewayError) as corrupt:
        await world.gateway.download_bill(today)
    assert corrupt.value.code is GatewayErrorCode.BAD_SIGNATURE


async def test_a_slow_create_is_unavailable_and_the_trade_is_found_not_duplicated(
    world: World,
) -> None:
    impatient = WeChatPayGateway(world.config.model_copy(update={"timeout_seconds": 0.3}))
    world.sandbox.faults.create_delay = 1.0
    no = world.out_trade_no()
    with pytest.raises(GatewayError) as slow:
        await impatient.create(
            channel=Channel.NATIVE,
            out_trade_no=no,
            description="物业费",
            amount_cents=700,
            notify_url=world.receiver.notify_url("main"),
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        )
    assert slow.value.code is GatewayErrorCode.UNAVAILABLE
    world.sandbox.faults.create_delay = 0
    trade = await world.gateway.query(no)  # what the service does next: ask, never create anew
    assert trade.status is TradeStatus.NOT_PAID and trade.amount_cents == 700
    assert [t.out_trade_no for t in world.sandbox.trades.values()].count(no) == 1


async def test_server_errors_and_refused_connections_are_unavailable(world: World) -> None:
    world.sandbox.faults.fail_requests = 1
    with pytest.raises(GatewayError) as failed:
        await world.gateway.query("ANY-TRADE-0001")
    assert failed.value.code is GatewayErrorCode.UNAVAILABLE
    assert failed.value.provider_code == "SYSTEM_ERROR"
    assert (await world.gateway.query("ANY-TRADE-0001")).status is TradeStatus.UNKNOWN

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    nowhere = WeChatPayGateway(
        world.config.model_copy(update={"base_url": f"http://127.0.0.1:{closed_port}"})
    )
    with pytest.raises(GatewayError) as refused:
        await nowhere.query("ANY-TRADE-0001")
    assert refused.value.code is GatewayErrorCode.UNAVAILABLE


async def test_the_sandbox_refuses_requests_not_signed_by_the_merchant_key(world: World) -> None:
    _, other = generate_keys()
    impostor = world.config.model_copy(update={"merchant_private_key": other.merchant_private_key})
    with pytest.raises(GatewayError) as wrong_key:
        await WeChatPayGateway(impostor).query("ANY-TRADE-0001")
    assert wrong_key.value.code is GatewayErrorCode.REJECTED
    assert wrong_key.value.provider_code == "SIGN_ERROR"

    wrong_serial = world.config.model_copy(update={"merchant_serial_no": "ABCDEF0123"})
    with pytest.raises(GatewayError) as serial:
        await WeChatPayGateway(wrong_serial).query("ANY-TRADE-0001")
    assert serial.value.provider_code == "SIGN_ERROR"

    async with httpx.AsyncClient() as http:
        unsigned = await http.get(
            f"{world.url}/v3/pay/transactions/out-trade-no/ANY-TRADE-0001?mchid={world.config.mchid}",
            headers={"Accept": "application/json", "User-Agent": "test"},
        )
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "SIGN_ERROR"
    assert "wechatpay-signature" not in unsigned.headers

    # a signature over another query string does not carry over
    gateway = world.gateway
    auth = gateway.authorization("GET", "/v3/pay/transactions/out-trade-no/X?mchid=1", b"")
    async with httpx.AsyncClient() as http:
        replayed = await http.get(
            f"{world.url}/v3/pay/transactions/out-trade-no/ANY-TRADE-0001?mchid={world.config.mchid}",
            headers={"Accept": "application/json", "User-Agent": "test", "Authorization": auth},
        )
    assert replayed.status_code == 401


async def test_answers_not_signed_by_the_platform_are_refused(world: World) -> None:
    no = await world.create()
    world.sandbox.faults.forge_response_signature = True
    with pytest.raises(GatewayError) as forged:
        await world.gateway.query(no)
    assert forged.value.code is GatewayErrorCode.BAD_SIGNATURE
    with pytest.raises(GatewayError) as forged_not_found:  # a forged "no such order" is not UNKNOWN
        await world.gateway.query("NEVER-CREATED-456")
    assert forged_not_found.value.code is GatewayErrorCode.BAD_SIGNATURE

    world.sandbox.faults = SandboxFaults(response_serial="PUB_KEY_ID_0000000000000000000000000000")
    with pytest.raises(GatewayError) as serial:
        await world.gateway.query(no)
    assert serial.value.code is GatewayErrorCode.UNKNOWN_SERIAL

    world.sandbox.faults = SandboxFaults(response_clock_offset=-600)
    with pytest.raises(GatewayError) as stale:
        await world.gateway.query(no)
    assert stale.value.code is GatewayErrorCode.STALE_TIMESTAMP


async def test_notifications_are_retried_until_accepted(world: World) -> None:
    world.receiver.refuse_next = 2
    world.sandbox.faults.drop_notifications = 1
    no = await world.create(amount=321)
    await world.sandbox.pay(no)
    notified = await world.receiver.wait_for(paid_trade_matching(no))
    assert notified.trade is not None and notified.trade.paid_cents == 321
    await world.sandbox.drain()  # the last attempt is logged after its answer arrives
    attempts = [d for d in world.sandbox.deliveries if d.event_id == notified.event_id]
    assert [d.status for d in attempts] == [None, 500, 500, 204]
    assert all(d.event_type == "TRANSACTION.SUCCESS" for d in attempts)


async def test_sandbox_pay_page_pays_or_cancels(world: World) -> None:
    no = world.out_trade_no()
    prepay = await world.gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="水费 <script>",
        amount_cents=4200,
        notify_url=world.receiver.notify_url("main"),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
    url = sandbox_pay_url(world.url, prepay, return_url="http://127.0.0.1:8000/portal/orders/1")
    async with httpx.AsyncClient() as http:
        page = await http.get(url)
        assert page.status_code == 200
        assert "¥42.00" in page.text and "<script>" not in page.text
        token = url.split("/sandbox/pay/")[1].split("?")[0]
        assert f'action="/sandbox/pay/{token}/pay"' in page.text
        cancelled = await http.post(f"{world.url}/sandbox/pay/{token}/cancel", data={"return": ""})
        assert "已取消" in cancelled.text
        assert world.sandbox.trade(no).state == "NOTPAY"
        paid = await http.post(
            f"{world.url}/sandbox/pay/{token}/pay",
            data={"return": "http://127.0.0.1:8000/portal/orders/1"},
        )
        assert "支付成功" in paid.text and "portal/orders/1" in paid.text
    await world.receiver.wait_for(paid_trade_matching(no))

    no2 = await world.create(amount=1)
    async with httpx.AsyncClient() as http:
        api = await http.post(f"{world.url}/sandbox/trades/{world.config.mchid}/{no2}/pay")
        assert api.status_code == 200
        again = await http.post(f"{world.url}/sandbox/trades/{world.config.mchid}/{no2}/pay")
        assert again.json()["code"] == "ORDERPAID"


async def test_service_provider_mode_end_to_end(world: World) -> None:
    sub = WeChatPayGateway(
        world.sandbox.add_merchant(
            base_url=world.url, sub_mchid="1900012345", sub_appid="wxsub0001"
        )
    )
    world.receiver.gateways["sub"] = sub
    assert sub.merchant_id == "1900012345"
    no = world.out_trade_no("SP")
    prepay = await sub.create(
        channel=Channel.JSAPI,
        out_trade_no=no,
        description="物业费",
        amount_cents=6600,
        notify_url=world.receiver.notify_url("sub"),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        payer_id="oSubOpenId0001",
    )
    assert prepay.jsapi_params["appId"] == "wxsub0001"
    assert world.sandbox.trade(no).payer_field == "sub_openid"
    await world.sandbox.pay(no)
    notified = await world.receiver.wait_for(paid_trade_matching(no))
    assert notified.trade is not None and notified.trade.merchant_id == "1900012345"
    assert notified.trade.payer == "oSubOpenId0001"
    assert (await sub.query(no)).status is TradeStatus.PAID
    refund = await sub.refund(
        out_trade_no=no,
        out_refund_no=f"R{no}",
        amount_cents=600,
        total_cents=6600,
        reason="",
        notify_url="",
    )
    assert refund.amount_cents == 600
    lines = await sub.download_bill(dt.datetime.now(CHINA).date())
    assert {(line.kind, line.merchant_id) for line in lines if line.out_trade_no == no} == {
        ("payment", "1900012345"),
        ("refund", "1900012345"),
    }
    # the main merchant's notifications cannot be read with the sub-merchant's keys
    headers, body = world.sandbox.notification(world.sandbox.trade(no))
    with pytest.raises(GatewayError) as other_key:
        world.gateway.parse_notification(headers, body)
    assert other_key.value.code is GatewayErrorCode.BAD_CIPHERTEXT


async def test_platform_certificate_mode() -> None:
    sandbox_config, ours = generate_keys(mode="certificate")
    assert sandbox_config.platform.certificate_pem and not ours.platform_public_key
    sandbox = WeChatPaySandbox(sandbox_config, retry_delays=FAST_RETRIES)
    async with running(sandbox) as url:
        gateway = WeChatPayGateway(ours.model_copy(update={"base_url": url}))
        await gateway.create(
            channel=Channel.NATIVE,
            out_trade_no="CERT-MODE-0001",
            description="x",
            amount_cents=1,
            notify_url="http://127.0.0.1:9/notify",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        )
        paid = await sandbox.pay("CERT-MODE-0001")
        headers, body = sandbox.notification(paid)
        assert headers["Wechatpay-Serial"] == sandbox_config.platform.serial
        notification = gateway.parse_notification(headers, body)
        assert notification.trade is not None and notification.trade.status is TradeStatus.PAID
        await sandbox.aclose()


async def test_the_provider_is_registered_and_builds_from_stored_config(world: World) -> None:
    entry = provider("wechatpay")
    assert entry.config_model is WeChatPayConfig
    gateway = entry.build(world.config.to_storage())
    assert gateway.provider == "wechatpay" and gateway.merchant_id == world.config.mchid
    assert (await gateway.query("NEVER-CREATED-789")).status is TradeStatus.UNKNOWN


async def test_create_refuses_bad_input_before_calling(world: World) -> None:
    for bad in ("short", "has space 123", "x" * 33):
        with pytest.raises(GatewayError) as exc:
            await world.create(no=bad)
        assert exc.value.code is GatewayErrorCode.MALFORMED
    with pytest.raises(GatewayError) as zero:
        await world.create(amount=0)
    assert zero.value.code is GatewayErrorCode.MALFORMED
    with pytest.raises(GatewayError) as wap:
        await world.create(Channel.WAP)
    assert wap.value.provider_code == "UNSUPPORTED_CHANNEL"
    with pytest.raises(ValueError):
        await world.gateway.create(
            channel=Channel.NATIVE,
            out_trade_no=world.out_trade_no(),
            description="x",
            amount_cents=1,
            notify_url=world.receiver.notify_url("main"),
            expires_at=dt.datetime.now(),  # naive: refused, WeChat Pay needs the offset
        )


async def test_standalone_sandbox_keeps_the_demo_keys(tmp_path: Path) -> None:
    keys_path = tmp_path / "sandbox" / "wechatpay.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = asyncio.create_task(serve("127.0.0.1", port, keys_path=keys_path))
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{url}/sandbox/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert keys_path.stat().st_mode & 0o777 == 0o600
            _, ours = load_or_generate(keys_path, base_url=url)
            again = load_or_generate(keys_path, base_url=url)[1]
            assert again == ours and ours.base_url == url
            assert (await http.get(f"{url}/sandbox/healthz")).json()["merchants"] == [ours.mchid]

            gateway = WeChatPayGateway(ours)
            await gateway.create(
                channel=Channel.NATIVE,
                out_trade_no="DEMO-000001",
                description="物业费",
                amount_cents=100,
                notify_url="http://127.0.0.1:9/notify",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
            )
            paid = await http.post(f"{url}/sandbox/trades/{ours.mchid}/DEMO-000001/pay")
            assert paid.status_code == 200
            assert (await gateway.query("DEMO-000001")).status is TradeStatus.PAID

            switched = await http.post(f"{url}/sandbox/faults", json={"fail_requests": 1})
            assert switched.json()["fail_requests"] == 1
            with pytest.raises(GatewayError) as down:
                await gateway.query("DEMO-000001")
            assert down.value.code is GatewayErrorCode.UNAVAILABLE
            bad = await http.post(f"{url}/sandbox/faults", json={"no_such_switch": 1})
            assert bad.status_code == 400
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def test_create_app_exposes_the_sandbox() -> None:
    sandbox_config, _ = generate_keys()
    app = create_app(sandbox_config, retry_delays=(0.1,))
    assert isinstance(app.state.sandbox, WeChatPaySandbox)
    assert app.state.sandbox.retry_delays == (0.1,)


async def test_the_sandbox_works_mounted_under_a_prefix() -> None:
    """``linli sandbox-pay`` may serve WeChat Pay and Alipay fakes side by side."""
    sandbox_config, ours = generate_keys()
    sandbox_app = create_app(sandbox_config, retry_delays=FAST_RETRIES)
    outer = Starlette(routes=[Mount("/fake/wechatpay", app=sandbox_app)])
    async with serving(outer) as url:
        base = f"{url}/fake/wechatpay"
        gateway = WeChatPayGateway(ours.model_copy(update={"base_url": base}))
        prepay = await gateway.create(
            channel=Channel.NATIVE,
            out_trade_no="MOUNTED-0001",
            description="物业费",
            amount_cents=100,
            notify_url="http://127.0.0.1:9/notify",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        )
        page_url = sandbox_pay_url(base, prepay)
        async with httpx.AsyncClient() as http:
            page = await http.get(page_url)
            token = page_url.rsplit("/", 1)[1]
            assert f'action="/fake/wechatpay/sandbox/pay/{token}/pay"' in page.text
            paid = await http.post(f"{page_url}/pay", data={})
            assert "支付成功" in paid.text
        assert (await gateway.query("MOUNTED-0001")).status is TradeStatus.PAID
        lines = await gateway.download_bill(dt.datetime.now(CHINA).date())
        assert [line.out_trade_no for line in lines] == ["MOUNTED-0001"]
        await sandbox_app.state.sandbox.aclose()
