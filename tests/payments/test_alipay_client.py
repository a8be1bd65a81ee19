"""The Alipay client against the local sandbox, over real HTTP on loopback.

The sandbox checks our RSA2 request signatures with the app public key, signs its
answers with its own Alipay key and posts signed notification forms back to a receiver
that uses the gateway exactly as the payments service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from linli.payments.alipay import (
    CHINA,
    REFUND_NOT_EXIST,
    AlipayConfig,
    AlipayGateway,
)
from linli.payments.gateway import (
    Channel,
    GatewayError,
    GatewayErrorCode,
    Notification,
    RefundStatus,
    TradeStatus,
    provider,
)
from linli.payments.sandbox import serving
from linli.payments.sandbox.alipay import (
    AlipaySandbox,
    SandboxError,
    SandboxFaults,
    create_app,
    generate_keys,
    load_or_generate,
    running,
    sandbox_pay_url,
    serve,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAST_RETRIES = (0.05, 0.1, 0.2, 0.4, 0.8)


class Receiver:
    """Our side of the notify_url and return_url: the gateway decides, we answer as it says."""

    def __init__(self) -> None:
        self.gateways: dict[str, AlipayGateway] = {}
        self.notifications: list[Notification] = []
        self.errors: list[GatewayErrorCode] = []
        self.returns: list[str] = []
        self.refuse_next = 0
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/notify/{name}", self._notify, methods=["POST"]),
                Route("/return/{name}", self._return, methods=["GET"]),
                Route("/quit", self._quit, methods=["GET"]),
            ]
        )

    def notify_url(self, name: str = "main") -> str:
        return f"{self.url}/notify/{name}"

    def return_url(self, name: str = "main") -> str:
        return f"{self.url}/return/{name}"

    async def _notify(self, request: Request) -> Response:
        gateway = self.gateways[request.path_params["name"]]
        body = await request.body()
        if self.refuse_next > 0:  # our app is down or its database is: Alipay retries
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

    async def _return(self, request: Request) -> Response:
        gateway = self.gateways[request.path_params["name"]]
        out_trade_no = gateway.parse_return(dict(request.query_params))
        self.returns.append(out_trade_no)
        return Response(f"returned {out_trade_no}", media_type="text/plain")

    async def _quit(self, request: Request) -> Response:
        return Response("quit", media_type="text/plain")

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
        self, sandbox: AlipaySandbox, url: str, config: AlipayConfig, receiver: Receiver
    ) -> None:
        self.sandbox = sandbox
        self.url = url  # …/gateway.do
        self.config = config
        self.receiver = receiver
        self.gateway = AlipayGateway(config)
        receiver.gateways["main"] = self.gateway
        self._n = 0

    def out_trade_no(self, prefix: str = "A") -> str:
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
            return_url=kw.pop("return_url", ""),
        )
        return no


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    sandbox_config, ours = generate_keys()
    sandbox = AlipaySandbox(sandbox_config, retry_delays=FAST_RETRIES)
    receiver = Receiver()
    async with running(sandbox) as url, serving(receiver.app) as receiver_url:
        receiver.url = receiver_url
        config = ours.model_copy(update={"gateway_url": url, "timeout_seconds": 3.0})
        yield World(sandbox, url, config, receiver)
        await sandbox.drain(2)


@pytest.fixture(autouse=True)
def clean_faults(world: World) -> None:
    world.sandbox.faults = SandboxFaults()
    world.receiver.refuse_next = 0


def trade_of(no: str) -> Callable[[Notification], bool]:
    return lambda n: n.trade is not None and n.trade.out_trade_no == no


def refund_of(no: str) -> Callable[[Notification], bool]:
    return lambda n: n.refund is not None and n.refund.out_refund_no == no


# --- orders -----------------------------------------------------------------------------------


async def test_precreate_is_queried_paid_notified_and_cannot_be_closed(world: World) -> None:
    no = world.out_trade_no()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)
    prepay = await world.gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="物业费 2026年11月",
        amount_cents=12345,
        notify_url=world.receiver.notify_url(),
        expires_at=expires,
    )
    assert "/sandbox/cashier/bax" in prepay.qr_content
    assert prepay.redirect_url == "" and prepay.provider_reference == ""

    trade = await world.gateway.query(no)
    assert trade.status is TradeStatus.NOT_PAID
    assert (trade.amount_cents, trade.paid_cents, trade.merchant_id) == (
        12345,
        0,
        world.config.app_id,
    )
    sandbox_trade = world.sandbox.trade(no)
    assert sandbox_trade.time_expire == expires.replace(microsecond=0)
    assert sandbox_trade.notify_url == world.receiver.notify_url()

    await world.sandbox.pay(no)
    notified = await world.receiver.wait_for(trade_of(no))
    assert notified.trade is not None
    assert notified.trade.status is TradeStatus.PAID
    assert (notified.trade.amount_cents, notified.trade.paid_cents) == (12345, 12345)
    assert notified.trade.merchant_id == world.config.app_id
    assert notified.trade.provider_trade_no == sandbox_trade.trade_no
    assert notified.trade.payer == sandbox_trade.buyer_id
    assert notified.trade.paid_at == sandbox_trade.gmt_payment
    assert notified.event_id

    queried = await world.gateway.query(no)
    assert queried.status is TradeStatus.PAID
    assert queried.provider_trade_no == notified.trade.provider_trade_no
    assert queried.paid_at == notified.trade.paid_at and queried.paid_cents == 12345

    with pytest.raises(GatewayError) as paid:
        await world.gateway.close(no)
    assert paid.value.code is GatewayErrorCode.REJECTED
    assert paid.value.provider_code == "ACQ.TRADE_STATUS_ERROR"


async def test_wap_redirect_then_pay_on_the_cashier_page_returns_signed(world: World) -> None:
    no = world.out_trade_no("W")
    prepay = await world.gateway.create(
        channel=Channel.WAP,
        out_trade_no=no,
        description="停车费",
        amount_cents=2500,
        notify_url=world.receiver.notify_url(),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
        return_url=world.receiver.return_url(),
    )
    assert prepay.redirect_url.startswith(world.url + "?")
    params = dict(parse_qsl(urlsplit(prepay.redirect_url).query))
    assert params["method"] == "alipay.trade.wap.pay" and params["sign_type"] == "RSA2"
    assert params["return_url"] == world.receiver.return_url()
    assert (await world.gateway.query(no)).status is TradeStatus.UNKNOWN  # not opened yet

    async with httpx.AsyncClient() as browser:
        opened = await browser.get(prepay.redirect_url)
        assert opened.status_code == 302
        cashier = opened.headers["location"]
        page = await browser.get(cashier)
        assert "¥25.00" in page.text and 'data-testid="sandbox-pay"' in page.text
        assert (await world.gateway.query(no)).status is TradeStatus.NOT_PAID
        # opening the same URL again finds the same trade
        assert (await browser.get(prepay.redirect_url)).headers["location"] == cashier

        paid = await browser.post(f"{cashier}/pay", data={"return": ""})
        assert paid.status_code == 303
        back = paid.headers["location"]
        assert back.startswith(world.receiver.return_url() + "?")
        returned = await browser.get(back)
        assert returned.text == f"returned {no}"

        # a tampered return does not verify
        query = dict(parse_qsl(urlsplit(back).query))
        query["total_amount"] = "0.01"
        with pytest.raises(GatewayError) as forged:
            world.gateway.parse_return(query)
        assert forged.value.code is GatewayErrorCode.BAD_SIGNATURE

    notified = await world.receiver.wait_for(trade_of(no))
    assert notified.trade is not None and notified.trade.paid_cents == 2500
    assert (await world.gateway.query(no)).status is TradeStatus.PAID


async def test_wap_cancel_goes_back_to_the_quit_url(world: World) -> None:
    no = world.out_trade_no("W")
    prepay = await world.gateway.create(
        channel=Channel.WAP,
        out_trade_no=no,
        description="停车费",
        amount_cents=100,
        notify_url=world.receiver.notify_url(),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
        return_url=f"{world.receiver.url}/quit",
    )
    async with httpx.AsyncClient() as browser:
        cashier = (await browser.get(prepay.redirect_url)).headers["location"]
        cancelled = await browser.post(f"{cashier}/cancel", data={})
        assert cancelled.status_code == 303
        assert cancelled.headers["location"] == f"{world.receiver.url}/quit"
    assert (await world.gateway.query(no)).status is TradeStatus.NOT_PAID


async def test_a_wap_url_with_a_tampered_amount_is_refused_by_the_gateway(world: World) -> None:
    no = world.out_trade_no("W")
    prepay = await world.gateway.create(
        channel=Channel.WAP,
        out_trade_no=no,
        description="停车费",
        amount_cents=5000,
        notify_url=world.receiver.notify_url(),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
    )
    params = dict(parse_qsl(urlsplit(prepay.redirect_url).query))
    params["biz_content"] = params["biz_content"].replace('"50.00"', '"0.01"')
    async with httpx.AsyncClient() as browser:
        page = await browser.get(f"{world.url}?{urlencode(params)}")
    assert page.status_code == 400 and "isv.invalid-signature" in page.text
    assert (await world.gateway.query(no)).status is TradeStatus.UNKNOWN


async def test_unknown_trade_is_unknown_and_close_is_idempotent(world: World) -> None:
    assert (await world.gateway.query("NEVER-CREATED-1")).status is TradeStatus.UNKNOWN
    await world.gateway.close("NEVER-CREATED-1")  # nothing to close is not an error

    no = await world.create()
    await world.gateway.close(no)
    assert (await world.gateway.query(no)).status is TradeStatus.CLOSED
    await world.gateway.close(no)  # closed twice: still fine
    with pytest.raises(SandboxError) as closed:
        await world.sandbox.pay(no)
    assert closed.value.sub_code == "ACQ.TRADE_STATUS_ERROR"


async def test_recreating_returns_the_same_qr_and_changed_amounts_are_refused(
    world: World,
) -> None:
    no = world.out_trade_no()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    first = await world.gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="物业费",
        amount_cents=800,
        notify_url=world.receiver.notify_url(),
        expires_at=expires,
    )
    again = await world.gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="物业费",
        amount_cents=800,
        notify_url=world.receiver.notify_url(),
        expires_at=expires,
    )
    assert again.qr_content == first.qr_content
    with pytest.raises(GatewayError) as changed:
        await world.create(no=no, amount=801, description="物业费")
    assert changed.value.code is GatewayErrorCode.REJECTED
    assert changed.value.provider_code == "ACQ.CONTEXT_INCONSISTENT"


async def test_an_expired_trade_cannot_be_paid_and_reads_closed(world: World) -> None:
    no = await world.create(expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    world.sandbox.trade(no).time_expire = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with pytest.raises(SandboxError) as expired:
        await world.sandbox.pay(no)
    assert expired.value.sub_code == "ACQ.TRADE_HAS_CLOSE"
    assert (await world.gateway.query(no)).status is TradeStatus.CLOSED


# --- refunds ----------------------------------------------------------------------------------


async def test_refunds_are_idempotent_notified_and_bounded(world: World) -> None:
    no = await world.create(amount=1000)
    await world.sandbox.pay(no)
    await world.receiver.wait_for(trade_of(no))

    first = await world.gateway.refund(
        out_trade_no=no,
        out_refund_no=f"{no}R1",
        amount_cents=300,
        total_cents=1000,
        reason="多缴退回",
        notify_url=world.receiver.notify_url(),
    )
    assert first.status is RefundStatus.SUCCEEDED and first.amount_cents == 300
    assert first.provider_refund_no == world.sandbox.trade(no).trade_no
    assert first.refunded_at is not None

    again = await world.gateway.refund(  # a retry: nothing moves, the same refund comes back
        out_trade_no=no,
        out_refund_no=f"{no}R1",
        amount_cents=300,
        total_cents=1000,
        reason="多缴退回",
        notify_url=world.receiver.notify_url(),
    )
    assert again.status is RefundStatus.SUCCEEDED and again.amount_cents == 300
    assert world.sandbox.trade(no).refunded == 300

    notified = await world.receiver.wait_for(refund_of(f"{no}R1"))
    assert notified.refund is not None and notified.trade is None
    assert notified.refund.out_trade_no == no
    assert notified.refund.amount_cents == 300  # refund_fee: the trade's refunded total
    assert notified.refund.refunded_at is not None

    queried = await world.gateway.query_refund(out_trade_no=no, out_refund_no=f"{no}R1")
    assert (queried.status, queried.amount_cents) == (RefundStatus.SUCCEEDED, 300)
    assert queried.refunded_at is not None

    with pytest.raises(GatewayError) as too_much:
        await world.gateway.refund(
            out_trade_no=no,
            out_refund_no=f"{no}R2",
            amount_cents=701,
            total_cents=1000,
            reason="",
            notify_url=world.receiver.notify_url(),
        )
    assert too_much.value.code is GatewayErrorCode.REJECTED
    assert too_much.value.provider_code == "ACQ.REASON_TRADE_REFUND_FEE_ERR"

    rest = await world.gateway.refund(
        out_trade_no=no,
        out_refund_no=f"{no}R3",
        amount_cents=700,
        total_cents=1000,
        reason="",
        notify_url=world.receiver.notify_url(),
    )
    assert rest.amount_cents == 700
    last = await world.receiver.wait_for(refund_of(f"{no}R3"))
    assert last.refund is not None and last.refund.amount_cents == 1000  # cumulative
    closed = await world.gateway.query(no)
    assert closed.status is TradeStatus.CLOSED and closed.paid_cents == 1000  # fully refunded

    with pytest.raises(GatewayError) as unknown:
        await world.gateway.query_refund(out_trade_no=no, out_refund_no=f"{no}R9")
    assert unknown.value.provider_code == REFUND_NOT_EXIST
    with pytest.raises(GatewayError) as no_trade:
        await world.gateway.query_refund(out_trade_no="NEVER-CREATED-2", out_refund_no="R1")
    assert no_trade.value.provider_code == "ACQ.TRADE_NOT_EXIST"


async def test_refund_of_an_unpaid_trade_and_bad_refund_input_are_refused(world: World) -> None:
    no = await world.create(amount=500)
    with pytest.raises(GatewayError) as unpaid:
        await world.gateway.refund(
            out_trade_no=no,
            out_refund_no=f"{no}R1",
            amount_cents=100,
            total_cents=500,
            reason="",
            notify_url="",
        )
    assert unpaid.value.provider_code == "ACQ.TRADE_STATUS_ERROR"
    for amount in (0, -1, 501):
        with pytest.raises(GatewayError) as bad:
            await world.gateway.refund(
                out_trade_no=no,
                out_refund_no=f"{no}R2",
                amount_cents=amount,
                total_cents=500,
                reason="",
                notify_url="",
            )
        assert bad.value.code is GatewayErrorCode.MALFORMED


# --- bills ------------------------------------------------------------------------------------


async def test_trade_bill_holds_the_days_payments_and_refunds(world: World) -> None:
    first = await world.create(amount=1234, description="物业费, 含公摊")
    second = await world.create(amount=99)
    await world.sandbox.pay(first)
    await world.sandbox.pay(second)
    await world.gateway.refund(
        out_trade_no=first,
        out_refund_no=f"{first}R1",
        amount_cents=234,
        total_cents=1234,
        reason="",
        notify_url="",
    )
    today = dt.datetime.now(CHINA).date()
    lines = await world.gateway.download_bill(today)
    mine = {(line.out_trade_no, line.kind): line for line in lines}
    assert mine[(first, "payment")].amount_cents == 1234
    assert mine[(second, "payment")].amount_cents == 99
    refund = mine[(first, "refund")]
    assert (refund.amount_cents, refund.out_refund_no) == (234, f"{first}R1")
    assert refund.provider_trade_no == world.sandbox.trade(first).trade_no
    assert mine[(first, "payment")].occurred_at == world.sandbox.trade(first).gmt_payment
    assert all(line.merchant_id == world.config.app_id for line in lines)

    yesterday = await world.gateway.download_bill(today - dt.timedelta(days=1))
    assert yesterday == []
    with pytest.raises(GatewayError) as future:
        await world.gateway.download_bill(today + dt.timedelta(days=2))
    assert future.value.provider_code == "isp.bill_not_exist"


# --- faults -----------------------------------------------------------------------------------


async def test_a_slow_create_is_unavailable_and_the_trade_is_found_not_duplicated(
    world: World,
) -> None:
    impatient = AlipayGateway(world.config.model_copy(update={"timeout_seconds": 0.3}))
    world.sandbox.faults.create_delay = 1.0
    no = world.out_trade_no()
    with pytest.raises(GatewayError) as slow:
        await impatient.create(
            channel=Channel.NATIVE,
            out_trade_no=no,
            description="物业费",
            amount_cents=700,
            notify_url=world.receiver.notify_url(),
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
    assert failed.value.provider_code == "http_502"

    world.sandbox.faults.system_error_requests = 1
    with pytest.raises(GatewayError) as busy:
        await world.gateway.query("ANY-TRADE-0001")
    assert busy.value.code is GatewayErrorCode.UNAVAILABLE
    assert busy.value.provider_code == "isp.unknow-error"
    assert (await world.gateway.query("ANY-TRADE-0001")).status is TradeStatus.UNKNOWN

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    nowhere = AlipayGateway(
        world.config.model_copy(
            update={"gateway_url": f"http://127.0.0.1:{closed_port}/gateway.do"}
        )
    )
    with pytest.raises(GatewayError) as refused:
        await nowhere.query("ANY-TRADE-0001")
    assert refused.value.code is GatewayErrorCode.UNAVAILABLE


async def test_the_sandbox_refuses_requests_not_signed_with_the_app_key(world: World) -> None:
    _, other = generate_keys()
    impostor = world.config.model_copy(update={"app_private_key": other.app_private_key})
    with pytest.raises(GatewayError) as wrong_key:
        await AlipayGateway(impostor).query("ANY-TRADE-0001")
    assert wrong_key.value.code is GatewayErrorCode.REJECTED
    assert wrong_key.value.provider_code == "isv.invalid-signature"

    stranger = world.config.model_copy(update={"app_id": "2021000000000001"})
    with pytest.raises(GatewayError) as unknown_app:
        await AlipayGateway(stranger).query("ANY-TRADE-0001")
    assert unknown_app.value.provider_code == "isv.invalid-app-id"

    # a signature does not carry over to other parameters
    params = world.gateway.signed_params("alipay.trade.query", {"out_trade_no": "X-1"})
    params["biz_content"] = '{"out_trade_no":"ANY-TRADE-0001"}'
    async with httpx.AsyncClient() as http:
        replayed = await http.post(world.url, data=params)
    assert "isv.invalid-signature" in replayed.text


async def test_answers_not_signed_by_alipay_are_refused(world: World) -> None:
    no = await world.create()
    world.sandbox.faults.forge_response_signature = True
    with pytest.raises(GatewayError) as forged:
        await world.gateway.query(no)
    assert forged.value.code is GatewayErrorCode.BAD_SIGNATURE
    with pytest.raises(GatewayError) as forged_not_found:  # a forged "no such trade" is not UNKNOWN
        await world.gateway.query("NEVER-CREATED-3")
    assert forged_not_found.value.code is GatewayErrorCode.BAD_SIGNATURE

    world.sandbox.faults = SandboxFaults(unsigned_answers=True)
    with pytest.raises(GatewayError) as unsigned:
        await world.gateway.query(no)
    assert unsigned.value.code is GatewayErrorCode.BAD_SIGNATURE
    with pytest.raises(GatewayError) as unsigned_not_found:  # unsigned: REJECTED, not UNKNOWN
        await world.gateway.query("NEVER-CREATED-3")
    assert unsigned_not_found.value.code is GatewayErrorCode.REJECTED
    assert unsigned_not_found.value.provider_code == "ACQ.TRADE_NOT_EXIST"


async def test_notifications_are_retried_until_accepted(world: World) -> None:
    world.receiver.refuse_next = 2
    world.sandbox.faults.drop_notifications = 1
    no = await world.create()
    await world.sandbox.pay(no)
    await world.receiver.wait_for(trade_of(no))
    await world.sandbox.drain()  # the last attempt is logged after its answer arrives
    attempts = [d for d in world.sandbox.deliveries if d.out_trade_no == no]
    assert [(d.status, d.answer) for d in attempts] == [
        (None, "dropped"),
        (500, "fail"),
        (500, "fail"),
        (200, "success"),
    ]
    assert len({d.notify_id for d in attempts}) == 1  # the same notification, retried


async def test_cashier_page_pays_a_precreated_trade(world: World) -> None:
    no = world.out_trade_no()
    prepay = await world.gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="物业费",
        amount_cents=4200,
        notify_url=world.receiver.notify_url(),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
    url = sandbox_pay_url(prepay, return_url="http://portal.example/paid")
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert "¥42.00" in page.text and "http://portal.example/paid" in page.text
        paid = await browser.post(f"{prepay.qr_content}/pay", data={"return": ""})
        assert paid.status_code == 200 and "支付成功" in paid.text
        assert 'data-testid="sandbox-pay"' not in paid.text
    await world.receiver.wait_for(trade_of(no))


# --- notifications ----------------------------------------------------------------------------


async def _paid_notification(world: World) -> dict[str, str]:
    no = await world.create(amount=1999)
    await world.sandbox.pay(no)
    await world.receiver.wait_for(trade_of(no))
    return world.sandbox.notification(world.sandbox.trade(no))


async def test_a_genuine_notification_parses_and_the_answer_is_success(world: World) -> None:
    form = await _paid_notification(world)
    notification = world.gateway.parse_notification({}, urlencode(form).encode())
    assert notification.event_id == form["notify_id"]
    assert notification.trade is not None and notification.trade.paid_cents == 1999
    answer = world.gateway.answer(accepted=True)
    assert (answer.status_code, answer.body, answer.media_type) == (200, b"success", "text/plain")
    assert world.gateway.answer(accepted=False).body == b"fail"


async def test_forged_and_tampered_notifications_are_bad_signatures(world: World) -> None:
    form = await _paid_notification(world)

    tampered = {**form, "total_amount": "0.01", "receipt_amount": "0.01"}
    with pytest.raises(GatewayError) as amount:
        world.gateway.parse_notification({}, urlencode(tampered).encode())
    assert amount.value.code is GatewayErrorCode.BAD_SIGNATURE

    other_sandbox, _ = generate_keys()
    forger = AlipaySandbox(other_sandbox)  # signs with an Alipay key that is not ours
    forged = forger.sign_notification(form)
    with pytest.raises(GatewayError) as wrong_key:
        world.gateway.parse_notification({}, urlencode(forged).encode())
    assert wrong_key.value.code is GatewayErrorCode.BAD_SIGNATURE

    unsigned = {k: v for k, v in form.items() if k != "sign"}
    with pytest.raises(GatewayError) as missing:
        world.gateway.parse_notification({}, urlencode(unsigned).encode())
    assert missing.value.code is GatewayErrorCode.BAD_SIGNATURE

    with pytest.raises(GatewayError) as old_type:
        world.gateway.parse_notification({}, urlencode({**form, "sign_type": "RSA"}).encode())
    assert old_type.value.code is GatewayErrorCode.BAD_SIGNATURE

    with pytest.raises(GatewayError) as garbage:
        world.gateway.parse_notification({}, urlencode({**form, "sign": "@@not-base64@@"}).encode())
    assert garbage.value.code is GatewayErrorCode.BAD_SIGNATURE


async def test_a_notification_for_another_app_is_rejected(world: World) -> None:
    other = world.sandbox.add_app(gateway_url=world.url)
    no = world.out_trade_no()
    other_gateway = AlipayGateway(other)
    await other_gateway.create(
        channel=Channel.NATIVE,
        out_trade_no=no,
        description="物业费",
        amount_cents=100,
        notify_url="",
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
    await world.sandbox.pay(no, app_id=other.app_id)
    genuine = world.sandbox.notification(world.sandbox.trade(no, app_id=other.app_id))
    assert other_gateway.parse_notification({}, urlencode(genuine).encode()).trade is not None
    with pytest.raises(GatewayError) as foreign:  # signed by Alipay, but for another merchant
        world.gateway.parse_notification({}, urlencode(genuine).encode())
    assert foreign.value.code is GatewayErrorCode.REJECTED
    assert foreign.value.provider_code == "app_id"

    ours = {"app_id": world.config.app_id, "auth_app_id": world.config.app_id}
    seller = world.sandbox.sign_notification({**genuine, **ours})  # another seller_id still
    with pytest.raises(GatewayError) as other_seller:
        world.gateway.parse_notification({}, urlencode(seller).encode())
    assert other_seller.value.provider_code == "seller_id"


async def test_malformed_notifications_are_malformed(world: World) -> None:
    form = await _paid_notification(world)
    bodies = [
        b"%zz=1&&=",
        "total_amount=１２".encode("gbk"),  # not UTF-8
        urlencode(form).encode() + b"&notify_id=again",  # a parameter twice
        b"no-equals-sign",
    ]
    for body in bodies:
        with pytest.raises(GatewayError) as bad:
            world.gateway.parse_notification({}, body)
        assert bad.value.code is GatewayErrorCode.MALFORMED, body

    signed_but_wrong = [
        {"total_amount": "19.999"},
        {"total_amount": "1e3"},
        {"total_amount": "-19.99"},
        {"trade_status": "TRADE_PENDING"},
        {"gmt_payment": "yesterday"},
        {"notify_id": ""},
        {"out_biz_no": "R-1"},  # a refund notification without refund_fee
    ]
    for change in signed_but_wrong:
        resigned = world.sandbox.sign_notification({**form, **change})
        with pytest.raises(GatewayError) as bad:
            world.gateway.parse_notification({}, urlencode(resigned).encode())
        assert bad.value.code is GatewayErrorCode.MALFORMED, change


async def test_amounts_cross_the_edge_exactly(world: World) -> None:
    form = await _paid_notification(world)
    for text, cents in (("0.01", 1), ("100000.00", 10_000_000), ("12.3", 1230), ("7", 700)):
        change = {"total_amount": text, "receipt_amount": text, "buyer_pay_amount": text}
        resigned = world.sandbox.sign_notification({**form, **change})
        trade = world.gateway.parse_notification({}, urlencode(resigned).encode()).trade
        assert trade is not None and trade.amount_cents == trade.paid_cents == cents

    for amount in (1, 10_000_000, 100_000_000_00):
        no = await world.create(amount=amount)
        assert (await world.gateway.query(no)).amount_cents == amount


# --- configuration, provider, standalone --------------------------------------------------------


async def test_create_refuses_bad_input_before_calling(world: World) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    cases: list[dict[str, Any]] = [
        {"channel": Channel.JSAPI},
        {"amount_cents": 0},
        {"amount_cents": 100_000_000_01},
        {"out_trade_no": "has space"},
        {"out_trade_no": "x" * 65},
        {"description": "  "},
        {"expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)},
    ]
    for case in cases:
        args: dict[str, Any] = {
            "channel": Channel.NATIVE,
            "out_trade_no": world.out_trade_no(),
            "description": "物业费",
            "amount_cents": 100,
            "notify_url": world.receiver.notify_url(),
            "expires_at": later,
            **case,
        }
        with pytest.raises(GatewayError) as bad:
            await world.gateway.create(**args)
        assert bad.value.code is GatewayErrorCode.MALFORMED, case


async def test_the_provider_is_registered_and_builds_from_stored_config(world: World) -> None:
    entry = provider("alipay")
    assert entry.config_model is AlipayConfig
    stored = world.config.to_storage()
    gateway = entry.build(stored)
    assert gateway.provider == "alipay" and gateway.merchant_id == world.config.app_id
    assert (await gateway.query("NEVER-CREATED-4")).status is TradeStatus.UNKNOWN
    secret = world.config.app_private_key.get_secret_value()
    assert secret.splitlines()[1] not in repr(world.config)
    assert secret.splitlines()[1] not in str(world.config.model_dump())


async def test_console_style_bare_base64_keys_are_accepted(world: World) -> None:
    def bare(pem: str) -> str:
        return "".join(line for line in pem.splitlines() if not line.startswith("-----"))

    config = world.config.model_copy(
        update={
            "app_private_key": SecretStr(bare(world.config.app_private_key.get_secret_value())),
            "alipay_public_key": bare(world.config.alipay_public_key),
        }
    )
    config = AlipayConfig.model_validate(config.to_storage())
    assert (await AlipayGateway(config).query("NEVER-CREATED-5")).status is TradeStatus.UNKNOWN
    with pytest.raises(ValueError):
        AlipayConfig.model_validate({**config.to_storage(), "app_private_key": "bm90IGEga2V5"})
    with pytest.raises(ValueError):
        AlipayConfig.model_validate({**config.to_storage(), "sign_type": "RSA"})


async def test_service_provider_mode_sends_the_app_auth_token(world: World) -> None:
    config = world.config.model_copy(
        update={"app_auth_token": SecretStr("202611BBtoken"), "auth_app_id": "2021999999999999"}
    )
    gateway = AlipayGateway(config)
    params = gateway.signed_params("alipay.trade.query", {"out_trade_no": "X-1"})
    assert params["app_auth_token"] == "202611BBtoken"
    assert gateway.merchant_id == "2021999999999999"
    form = await _paid_notification(world)
    with pytest.raises(GatewayError) as other_merchant:  # auth_app_id is the merchant's app
        gateway.parse_notification({}, urlencode(form).encode())
    assert other_merchant.value.code is GatewayErrorCode.REJECTED
    resigned = world.sandbox.sign_notification({**form, "auth_app_id": "2021999999999999"})
    trade = gateway.parse_notification({}, urlencode(resigned).encode()).trade
    assert trade is not None and trade.merchant_id == "2021999999999999"


async def test_standalone_sandbox_keeps_the_demo_keys(tmp_path: Path) -> None:
    keys_path = tmp_path / "sandbox" / "alipay.json"
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
            _, ours = load_or_generate(keys_path, gateway_url=f"{url}/gateway.do")
            again = load_or_generate(keys_path, gateway_url=f"{url}/gateway.do")[1]
            assert again == ours and ours.gateway_url == f"{url}/gateway.do"
            assert (await http.get(f"{url}/sandbox/healthz")).json()["apps"] == [ours.app_id]

            gateway = AlipayGateway(ours)
            prepay = await gateway.create(
                channel=Channel.NATIVE,
                out_trade_no="DEMO-000001",
                description="物业费",
                amount_cents=100,
                notify_url="http://127.0.0.1:9/notify",
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
            )
            assert prepay.qr_content.startswith(f"{url}/sandbox/cashier/")
            paid = await http.post(f"{url}/sandbox/trades/{ours.app_id}/DEMO-000001/pay")
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
    assert isinstance(app.state.sandbox, AlipaySandbox)
    assert app.state.sandbox.retry_delays == (0.1,)


async def test_the_sandbox_works_mounted_under_a_prefix() -> None:
    """``linli sandbox-pay`` may serve the WeChat Pay and Alipay fakes side by side."""
    sandbox_config, ours = generate_keys()
    outer = Starlette(routes=[Mount("/fake/alipay", app=create_app(sandbox_config))])
    async with serving(outer) as url:
        base = f"{url}/fake/alipay"
        gateway = AlipayGateway(ours.model_copy(update={"gateway_url": f"{base}/gateway.do"}))
        prepay = await gateway.create(
            channel=Channel.WAP,
            out_trade_no="MOUNTED-0001",
            description="物业费",
            amount_cents=100,
            notify_url="http://127.0.0.1:9/notify",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
        )
        async with httpx.AsyncClient() as browser:
            cashier = (await browser.get(prepay.redirect_url)).headers["location"]
            assert cashier.startswith(f"{base}/sandbox/cashier/")
            page = await browser.get(cashier)
            token = cashier.rsplit("/", 1)[1]
            assert f'action="/fake/alipay/sandbox/cashier/{token}/pay"' in page.text
            paid = await browser.post(f"{cashier}/pay", data={})
            assert "支付成功" in paid.text
        assert (await gateway.query("MOUNTED-0001")).status is TradeStatus.PAID
