"""A local Alipay open-platform gateway (支付宝沙箱) for tests and ``make demo``.

It speaks the wire protocol of ``openapi.alipay.com/gateway.do`` with its own keys, so
the real client (:mod:`linli.payments.alipay`) runs end to end:

- one endpoint, ``/gateway.do`` (GET or form POST), dispatching on ``method``:
  ``alipay.trade.precreate``, ``alipay.trade.wap.pay`` (the payer's browser: it answers
  with a redirect to the sandbox cashier page), ``alipay.trade.query``,
  ``alipay.trade.close``, ``alipay.trade.refund``, ``alipay.trade.fastpay.refund.query``,
  ``alipay.data.dataservice.bill.downloadurl.query``;
- it checks every request's RSA2 ``sign`` (sorted ``k=v`` of all non-empty parameters but
  ``sign``) with the app public key it holds: a wrong key answers ``40002
  isv.invalid-signature``; an unknown ``app_id`` ``isv.invalid-app-id`` (unsigned);
- it answers ``{"<method>_response": {...}, "sign": "…"}``, signing the exact text of
  the response node with its own Alipay key; business errors are ``40004`` with the
  ``ACQ.*`` sub codes Alipay uses;
- when a trade is paid (the cashier page, :meth:`AlipaySandbox.pay`) or refunded it
  posts a signed ``trade_status_sync`` notification form to the trade's ``notify_url`` and
  retries until the answer is exactly ``success`` (after ``retry_delays``; Alipay's own
  schedule is 4m, 10m, 10m, 1h, 2h, 6h, 15h);
- the bill download URL serves a zip holding the GBK ``…_业务明细.csv`` and
  ``…_业务明细(汇总).csv`` in Alipay's layout.

Simplifications, on purpose: a precreated trade exists at once (real Alipay shows it to
``alipay.trade.query`` only once the QR code is scanned), and today's bill can be
downloaded (real Alipay serves a day's bill from the next morning).

Switches in :class:`SandboxFaults` simulate a slow creation (the trade exists, the
answer comes too late), 5xx answers, ``20000`` system errors, lost notification
deliveries and forged or missing answer signatures.

Sandbox-only routes (no signature): ``GET /sandbox/cashier/{token}`` is the cashier page
with "支付 / Pay" and "取消 / Cancel" (a precreate ``qr_code`` points there too),
``POST /sandbox/trades/{app_id}/{out_trade_no}/pay`` pays from a test,
``POST /sandbox/faults`` sets fault switches, ``GET /sandbox/healthz``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import html
import io
import json
import os
import secrets
import string
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import structlog
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from linli.payments.alipay import DEFAULT_GATEWAY_URL, AlipayConfig
from linli.payments.gateway import Prepay
from linli.payments.sandbox import page, serving

log = structlog.get_logger("linli.payments.sandbox.alipay")

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1, 2, 5, 15, 30, 60, 120, 300, 600)
CLOCK_WINDOW = 600  # seconds either side for the request ``timestamp``
BILL_URL_LIFETIME = 30.0  # Alipay's bill_download_url is valid for 30 seconds

# The wire protocol is written out here again, apart from the client's helpers, on purpose:
# a slip on either side then fails the tests instead of agreeing with itself.
CHINA = dt.timezone(dt.timedelta(hours=8))
_METHODS = (
    "alipay.trade.precreate",
    "alipay.trade.wap.pay",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
)
_BILL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)
_BILL_RULE = "-" * 41
_STATUS_TEXT = {
    "WAIT_BUYER_PAY": "等待付款 · Waiting for payment",
    "TRADE_SUCCESS": "支付成功 · Paid",
    "TRADE_FINISHED": "交易结束 · Finished",
    "TRADE_CLOSED": "交易关闭 · Closed",
}


@functools.lru_cache(maxsize=64)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@functools.lru_cache(maxsize=64)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _content(params: Mapping[str, str], *skip: str) -> bytes:
    pairs = sorted((k, v) for k, v in params.items() if k not in skip and v)
    return "&".join(f"{k}={v}" for k, v in pairs).encode()


def _rsa2(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def _time(moment: dt.datetime | None, *, millis: bool = False) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(CHINA)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{local.microsecond // 1000:03d}" if millis else text


def _yuan(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _cents(text: Any) -> int:
    """A yuan string with at most two decimals, strictly (``SandboxError`` otherwise)."""
    value = str(text).strip()
    whole, _, part = value.partition(".")
    if not whole.isdigit() or len(part) > 2 or (part and not part.isdigit()):
        raise SandboxError("40004", "ACQ.INVALID_PARAMETER", f"金额格式不正确: {value}")
    return int(whole) * 100 + int((part + "00")[:2])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxApp:
    """What Alipay knows of one app: its id, the app public key it verifies, the seller."""

    app_id: str
    app_public_key_pem: str
    seller_id: str  # the merchant's 2088… PID


@dataclass
class SandboxConfig:
    """The sandbox's own Alipay key pair and the apps it serves."""

    alipay_private_key_pem: str
    alipay_public_key_pem: str
    apps: list[SandboxApp] = field(default_factory=list)

    def app(self, app_id: str) -> SandboxApp | None:
        return next((app for app in self.apps if app.app_id == app_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "alipay_private_key_pem": self.alipay_private_key_pem,
            "alipay_public_key_pem": self.alipay_public_key_pem,
            "apps": [asdict(app) for app in self.apps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxConfig:
        return cls(
            alipay_private_key_pem=data["alipay_private_key_pem"],
            alipay_public_key_pem=data["alipay_public_key_pem"],
            apps=[SandboxApp(**app) for app in data["apps"]],
        )


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def generate_app(
    config: SandboxConfig,
    *,
    gateway_url: str = DEFAULT_GATEWAY_URL,
    app_id: str = "",
    seller_id: str = "",
) -> tuple[SandboxApp, AlipayConfig]:
    """A fresh app key pair: what the sandbox holds, and the :class:`AlipayConfig` we hold."""
    private_pem, public_pem = _rsa_pair()
    app_id = app_id or "2021" + "".join(secrets.choice(string.digits) for _ in range(12))
    seller_id = seller_id or "2088" + "".join(secrets.choice(string.digits) for _ in range(12))
    app = SandboxApp(app_id=app_id, app_public_key_pem=public_pem, seller_id=seller_id)
    ours = AlipayConfig(
        app_id=app_id,
        app_private_key=SecretStr(private_pem),
        alipay_public_key=config.alipay_public_key_pem,
        gateway_url=gateway_url,
        seller_id=seller_id,
    )
    return app, ours


def generate_keys(
    *, gateway_url: str = DEFAULT_GATEWAY_URL, app_id: str = "", seller_id: str = ""
) -> tuple[SandboxConfig, AlipayConfig]:
    """A consistent key set: the sandbox's configuration and our matching app config.

    ``gateway_url`` is where the sandbox will listen (``…/gateway.do``); it can be changed
    afterwards with ``ours.model_copy(update={"gateway_url": url})``.
    """
    private_pem, public_pem = _rsa_pair()
    config = SandboxConfig(alipay_private_key_pem=private_pem, alipay_public_key_pem=public_pem)
    app, ours = generate_app(config, gateway_url=gateway_url, app_id=app_id, seller_id=seller_id)
    config.apps.append(app)
    return config, ours


def load_or_generate(path: Path, *, gateway_url: str) -> tuple[SandboxConfig, AlipayConfig]:
    """The demo's key set, kept in ``path`` (mode 0600) so the app and the sandbox agree."""
    if path.exists():
        data = json.loads(path.read_text())
        config = SandboxConfig.from_json(data["sandbox"])
        ours = AlipayConfig.model_validate({**data["app"], "gateway_url": gateway_url})
        return config, ours
    config, ours = generate_keys(gateway_url=gateway_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"sandbox": config.to_json(), "app": ours.to_storage()}, out)
    return config, ours


# --- state ------------------------------------------------------------------------------------


@dataclass
class SandboxFaults:
    """Switches for fault drills; change them on :attr:`AlipaySandbox.faults` at any time."""

    create_delay: float = 0.0  # seconds before answering a precreate (the trade exists)
    fail_requests: int = 0  # answer the next N gateway calls with HTTP fail_status
    fail_status: int = 502
    system_error_requests: int = 0  # answer the next N calls with 20000 isp.unknow-error
    drop_notifications: int = 0  # the next N delivery attempts are lost on the way
    forge_response_signature: bool = False  # sign answers with a key that is not Alipay's
    unsigned_answers: bool = False  # leave ``sign`` off every answer (a man in the middle)


@dataclass
class SandboxTrade:
    app_id: str
    seller_id: str
    out_trade_no: str
    subject: str
    total: int  # cents
    notify_url: str
    time_expire: dt.datetime
    product_code: str
    token: str
    return_url: str = ""
    quit_url: str = ""
    trade_status: str = "WAIT_BUYER_PAY"
    trade_no: str = ""
    gmt_create: dt.datetime = field(default_factory=lambda: _now().replace(microsecond=0))
    gmt_payment: dt.datetime | None = None
    gmt_close: dt.datetime | None = None
    buyer_id: str = ""
    buyer_logon_id: str = ""
    refunded: int = 0


@dataclass
class SandboxRefund:
    trade: SandboxTrade
    out_request_no: str
    amount: int
    reason: str
    gmt_refund_pay: dt.datetime


@dataclass(frozen=True)
class Delivery:
    """One attempt at posting a notification (``status`` None: not delivered)."""

    notify_id: str
    out_trade_no: str
    url: str
    attempt: int
    status: int | None
    answer: str = ""


class SandboxError(Exception):
    """A business error the gateway answers with (``code``, ``sub_code``, ``sub_msg``)."""

    def __init__(self, code: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(sub_msg)
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg

    @property
    def msg(self) -> str:
        return {
            "20000": "Service Currently Unavailable",
            "40001": "Missing Required Arguments",
            "40002": "Invalid Arguments",
            "40004": "Business Failed",
        }.get(self.code, "Business Failed")


# --- the server -------------------------------------------------------------------------------


class AlipaySandbox:
    """The fake service; :attr:`app` is its ASGI application."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        notify_timeout: float = 5.0,
        public_url: str = "",
    ) -> None:
        self.config = config
        self.retry_delays = retry_delays
        self.notify_timeout = notify_timeout
        self.public_url = public_url.rstrip("/")
        self.faults = SandboxFaults()
        self.deliveries: list[Delivery] = []
        self.trades: dict[tuple[str, str], SandboxTrade] = {}
        self.refunds: dict[tuple[str, str, str], SandboxRefund] = {}
        self._tokens: dict[str, SandboxTrade] = {}
        self._bills: dict[str, tuple[bytes, str, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app = self._build_app()

    # --- apps -------------------------------------------------------------------------------

    def add_app(self, *, gateway_url: str = DEFAULT_GATEWAY_URL, app_id: str = "") -> AlipayConfig:
        """Another app on this sandbox; returns the config our side uses for it."""
        app, ours = generate_app(self.config, gateway_url=gateway_url, app_id=app_id)
        self.config.apps.append(app)
        return ours

    # --- test and page API ------------------------------------------------------------------

    def trade(self, out_trade_no: str, *, app_id: str = "") -> SandboxTrade:
        found = [
            t
            for (a, no), t in self.trades.items()
            if no == out_trade_no and (not app_id or a == app_id)
        ]
        if len(found) != 1:
            raise KeyError(out_trade_no)
        return found[0]

    async def pay(
        self, out_trade_no: str = "", *, app_id: str = "", token: str = ""
    ) -> SandboxTrade:
        """The buyer pays: the trade becomes TRADE_SUCCESS and its notification is on its way."""
        trade = self._tokens[token] if token else self.trade(out_trade_no, app_id=app_id)
        if trade.trade_status != "WAIT_BUYER_PAY":
            raise SandboxError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if _now() > trade.time_expire:
            trade.trade_status = "TRADE_CLOSED"
            trade.gmt_close = _now().replace(microsecond=0)
            raise SandboxError("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        trade.trade_status = "TRADE_SUCCESS"
        trade.gmt_payment = _now().replace(microsecond=0)
        day = trade.gmt_payment.astimezone(CHINA).strftime("%Y%m%d")
        trade.trade_no = day + "22001" + "".join(secrets.choice(string.digits) for _ in range(15))
        trade.buyer_id = "2088" + "".join(secrets.choice(string.digits) for _ in range(12))
        trade.buyer_logon_id = "sbx***@sandbox.com"
        self._notify(trade, self._trade_params(trade))
        return trade

    async def drain(self, within: float = 10.0) -> None:
        """Wait (at most ``within`` seconds) until every notification is delivered or given up."""
        deadline = time.monotonic() + within
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def notification(self, trade: SandboxTrade, **changes: str) -> dict[str, str]:
        """The signed payment notification form of ``trade`` (with ``changes``), not sent."""
        return self.sign_notification({**self._trade_params(trade), **changes})

    def sign_notification(self, params: Mapping[str, str]) -> dict[str, str]:
        """``params`` with Alipay's ``sign`` over them (sorted, without sign and sign_type)."""
        signed = {key: value for key, value in params.items() if key != "sign"}
        signed["sign_type"] = "RSA2"
        key = _private_key(self.config.alipay_private_key_pem)
        signed["sign"] = _rsa2(key, _content(signed, "sign", "sign_type"))
        return signed

    # --- app --------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        routes = [
            Route("/gateway.do", self._gateway, methods=["GET", "POST"]),
            Route("/sandbox/healthz", self._healthz, methods=["GET"]),
            Route("/sandbox/cashier/{token}", self._cashier, methods=["GET"]),
            Route("/sandbox/cashier/{token}/{action}", self._cashier_action, methods=["POST"]),
            Route("/sandbox/bill/{token}", self._bill_file, methods=["GET"]),
            Route("/sandbox/trades/{app_id}/{no}/pay", self._pay_api, methods=["POST"]),
            Route("/sandbox/faults", self._set_faults, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    def _base(self, request: Request) -> str:
        if self.public_url:
            return self.public_url
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}{root}"

    async def _gateway(self, request: Request) -> Response:
        if self.faults.fail_requests > 0:
            self.faults.fail_requests -= 1
            return HTMLResponse(
                "<html><body>502 Bad Gateway</body></html>", self.faults.fail_status
            )
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", errors="replace")
            params.update(parse_qsl(body, keep_blank_values=True))
        method = params.get("method", "")
        if method not in _METHODS:
            return self._answer(
                "error_response",
                {
                    "code": "40002",
                    "msg": "Invalid Arguments",
                    "sub_code": "isv.invalid-method",
                    "sub_msg": "不存在的方法名",
                },
                sign=False,
            )
        node = method.replace(".", "_") + "_response"
        app = self.config.app(params.get("app_id", ""))
        if app is None:
            error = SandboxError("40002", "isv.invalid-app-id", "无效的AppID参数")
            return self._error(node, error, sign=False, page=method == "alipay.trade.wap.pay")
        try:
            self._authenticate(app, params)
            if self.faults.system_error_requests > 0:
                self.faults.system_error_requests -= 1
                raise SandboxError("20000", "isp.unknow-error", "系统繁忙")
            biz = _biz(params)
            if method == "alipay.trade.wap.pay":
                trade = self._open(app, params, biz, "QUICK_WAP_WAY")
                return RedirectResponse(f"{self._base(request)}/sandbox/cashier/{trade.token}", 302)
            answer = await self._dispatch(request, app, method, params, biz)
        except SandboxError as exc:
            return self._error(node, exc, sign=True, page=method == "alipay.trade.wap.pay")
        return self._answer(node, {"code": "10000", "msg": "Success", **answer})

    def _authenticate(self, app: SandboxApp, params: Mapping[str, str]) -> None:
        for name in ("charset", "sign_type", "sign", "timestamp", "version"):
            if not params.get(name):
                raise SandboxError(
                    "40001", f"isv.missing-{name.replace('_', '-')}", f"缺少{name}参数"
                )
        if params["sign_type"] != "RSA2":
            raise SandboxError("40002", "isv.invalid-signature-type", "无效的签名类型")
        if params["charset"].lower() != "utf-8":
            raise SandboxError("40002", "isv.invalid-charset", "字符集错误")
        try:
            moment = dt.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise SandboxError("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
        if abs((moment.replace(tzinfo=CHINA) - _now()).total_seconds()) > CLOCK_WINDOW:
            raise SandboxError("40002", "isv.invalid-timestamp", "非法的时间戳参数")
        try:
            _public_key(app.app_public_key_pem).verify(
                base64.b64decode(params["sign"], validate=True),
                _content(params, "sign"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            raise SandboxError(
                "40002",
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
            ) from None

    def _answer(self, node: str, payload: Mapping[str, Any], *, sign: bool = True) -> Response:
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        # Alipay's answers put the node first and the sign after it, as here; the client must
        # not depend on it (it scans the members), so the order is left to the JSON text.
        if not sign or self.faults.unsigned_answers:
            text = f'{{"{node}":{raw}}}'
        else:
            key = (
                self._forger
                if self.faults.forge_response_signature
                else _private_key(self.config.alipay_private_key_pem)
            )
            text = f'{{"{node}":{raw},"sign":"{_rsa2(key, raw.encode())}"}}'
        return Response(text.encode(), media_type="text/html;charset=utf-8")

    def _error(self, node: str, exc: SandboxError, *, sign: bool, page: bool) -> Response:
        payload = {
            "code": exc.code,
            "msg": exc.msg,
            "sub_code": exc.sub_code,
            "sub_msg": exc.sub_msg,
        }
        if page:  # the payer's browser: Alipay shows an error page
            body = (
                '<h1>支付宝 <span class="badge">沙箱 Sandbox</span></h1>'
                f'<p class="notice" data-testid="sandbox-error">{html.escape(exc.sub_code)}: '
                f"{html.escape(exc.sub_msg)}</p>"
            )
            return HTMLResponse(_page("支付宝 · 错误", body), 400)
        return self._answer(node, payload, sign=sign)

    async def _dispatch(
        self,
        request: Request,
        app: SandboxApp,
        method: str,
        params: Mapping[str, str],
        biz: Mapping[str, Any],
    ) -> dict[str, Any]:
        if method == "alipay.trade.precreate":
            trade = self._open(app, params, biz, "FACE_TO_FACE_PAYMENT")
            if self.faults.create_delay:
                await asyncio.sleep(self.faults.create_delay)
            qr = f"{self._base(request)}/sandbox/cashier/{trade.token}"
            return {"out_trade_no": trade.out_trade_no, "qr_code": qr}
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            return self._bill_url(request, app, biz)
        trade = self._find(app, biz)
        if method == "alipay.trade.query":
            return self._trade_json(trade)
        if method == "alipay.trade.close":
            if trade.trade_status != "WAIT_BUYER_PAY":
                raise SandboxError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.trade_status = "TRADE_CLOSED"
            trade.gmt_close = _now().replace(microsecond=0)
            return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
        if method == "alipay.trade.refund":
            return self._refund(trade, biz)
        return self._refund_query(trade, biz)

    # --- trades -----------------------------------------------------------------------------

    def _open(
        self, app: SandboxApp, params: Mapping[str, str], biz: Mapping[str, Any], product: str
    ) -> SandboxTrade:
        """Create the trade, or find the same one again (same out_trade_no and amount)."""
        out_trade_no = _required(biz, "out_trade_no")
        subject = _required(biz, "subject")
        total = _cents(_required(biz, "total_amount"))
        if not 0 < total <= 100_000_000_00:
            raise SandboxError("40004", "ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        seller = str(biz.get("seller_id") or app.seller_id)
        if seller != app.seller_id:
            raise SandboxError("40004", "ACQ.SELLER_NOT_EXIST", "卖家不存在")
        existing = self.trades.get((app.app_id, out_trade_no))
        if existing is not None:
            if existing.trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise SandboxError("40004", "ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.trade_status == "TRADE_CLOSED":
                raise SandboxError("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.total != total or existing.subject != subject:
                raise SandboxError("40004", "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return existing
        expire = _expiry(biz)
        token = "bax" + secrets.token_hex(12)
        trade = SandboxTrade(
            app_id=app.app_id,
            seller_id=app.seller_id,
            out_trade_no=out_trade_no,
            subject=subject,
            total=total,
            notify_url=params.get("notify_url", ""),
            time_expire=expire,
            product_code=product,
            token=token,
            return_url=params.get("return_url", ""),
            quit_url=str(biz.get("quit_url", "")),
        )
        trade.trade_no = ""  # Alipay numbers the trade when it is paid (查询 shows it then)
        self.trades[(app.app_id, out_trade_no)] = trade
        self._tokens[token] = trade
        return trade

    def _find(self, app: SandboxApp, biz: Mapping[str, Any]) -> SandboxTrade:
        out_trade_no = str(biz.get("out_trade_no", ""))
        trade = self.trades.get((app.app_id, out_trade_no))
        if trade is None and biz.get("trade_no"):
            trade = next(
                (
                    t
                    for t in self.trades.values()
                    if t.app_id == app.app_id and t.trade_no == biz["trade_no"]
                ),
                None,
            )
        if trade is None:
            raise SandboxError("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.trade_status == "WAIT_BUYER_PAY" and _now() > trade.time_expire:
            trade.trade_status = "TRADE_CLOSED"
            trade.gmt_close = _now().replace(microsecond=0)
        return trade

    def _trade_json(self, trade: SandboxTrade) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.trade_status,
            "total_amount": _yuan(trade.total),
        }
        if trade.gmt_payment is not None:
            answer.update(
                buyer_logon_id=trade.buyer_logon_id,
                buyer_user_id=trade.buyer_id,
                buyer_pay_amount=_yuan(trade.total),
                receipt_amount=_yuan(trade.total),
                invoice_amount=_yuan(trade.total),
                point_amount="0.00",
                send_pay_date=_time(trade.gmt_payment),
            )
        else:
            answer["buyer_pay_amount"] = "0.00"
        if not answer["trade_no"]:
            del answer["trade_no"]
        return answer

    def _refund(self, trade: SandboxTrade, biz: Mapping[str, Any]) -> dict[str, Any]:
        amount = _cents(_required(biz, "refund_amount"))
        out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        key = (trade.app_id, trade.out_trade_no, out_request_no)
        done = self.refunds.get(key)
        if done is not None:  # the same request again: nothing moves
            return self._refund_answer(trade, done, fund_change="N")
        if trade.trade_status not in ("TRADE_SUCCESS",):
            raise SandboxError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if amount <= 0 or trade.refunded + amount > trade.total:
            raise SandboxError("40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
        refund = SandboxRefund(
            trade=trade,
            out_request_no=out_request_no,
            amount=amount,
            reason=str(biz.get("refund_reason", "")),
            gmt_refund_pay=_now(),
        )
        self.refunds[key] = refund
        trade.refunded += amount
        if trade.refunded == trade.total:
            trade.trade_status = "TRADE_CLOSED"
            trade.gmt_close = refund.gmt_refund_pay.replace(microsecond=0)
        params = self._trade_params(trade)
        params.update(
            out_biz_no=out_request_no,
            refund_fee=_yuan(trade.refunded),
            gmt_refund=_time(refund.gmt_refund_pay, millis=True),
        )
        if trade.gmt_close is not None:
            params["gmt_close"] = _time(trade.gmt_close)
        self._notify(trade, params)
        return self._refund_answer(trade, refund, fund_change="Y")

    def _refund_answer(
        self, trade: SandboxTrade, refund: SandboxRefund, *, fund_change: str
    ) -> dict[str, Any]:
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "fund_change": fund_change,
            "refund_fee": _yuan(trade.refunded),
            "gmt_refund_pay": _time(refund.gmt_refund_pay),
            "buyer_user_id": trade.buyer_id,
        }

    def _refund_query(self, trade: SandboxTrade, biz: Mapping[str, Any]) -> dict[str, Any]:
        out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        refund = self.refunds.get((trade.app_id, trade.out_trade_no, out_request_no))
        if refund is None:  # Alipay answers 10000 without refund fields
            return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
        answer = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": out_request_no,
            "total_amount": _yuan(trade.total),
            "refund_amount": _yuan(refund.amount),
            "refund_status": "REFUND_SUCCESS",
        }
        options = biz.get("query_options") or []
        if isinstance(options, list) and "gmt_refund_pay" in options:
            answer["gmt_refund_pay"] = _time(refund.gmt_refund_pay, millis=True)
        return answer

    # --- notifications ----------------------------------------------------------------------

    def _trade_params(self, trade: SandboxTrade) -> dict[str, str]:
        total = _yuan(trade.total)
        params = {
            "notify_time": _time(_now()),
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex + secrets.token_hex(8),
            "charset": "utf-8",
            "version": "1.0",
            "app_id": trade.app_id,
            "auth_app_id": trade.app_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": trade.buyer_id,
            "buyer_logon_id": trade.buyer_logon_id,
            "seller_id": trade.seller_id,
            "seller_email": "sandbox-seller@alipay.com",
            "trade_status": trade.trade_status,
            "total_amount": total,
            "receipt_amount": total,
            "invoice_amount": total,
            "buyer_pay_amount": total,
            "point_amount": "0.00",
            "subject": trade.subject,
            "gmt_create": _time(trade.gmt_create),
            "gmt_payment": _time(trade.gmt_payment),
            "fund_bill_list": json.dumps(
                [{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
            ),
        }
        return {key: value for key, value in params.items() if value}

    def _notify(self, trade: SandboxTrade, params: dict[str, str]) -> None:
        if trade.notify_url:
            self._spawn(self._deliver(trade.notify_url, params))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, params: dict[str, str]) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False)
        notify_id = params["notify_id"]
        attempt = 0
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            if self.faults.drop_notifications > 0:
                self.faults.drop_notifications -= 1
                self.deliveries.append(
                    Delivery(notify_id, params["out_trade_no"], url, attempt, None, "dropped")
                )
                continue
            # each attempt carries a fresh notify_time, signed anew; notify_id stays
            form = self.sign_notification({**params, "notify_time": _time(_now())})
            try:
                response = await self._http.post(
                    url,
                    content=urlencode(form).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                    timeout=self.notify_timeout,
                )
            except httpx.HTTPError as exc:
                self.deliveries.append(
                    Delivery(
                        notify_id, params["out_trade_no"], url, attempt, None, type(exc).__name__
                    )
                )
                continue
            answer = response.text.strip()
            self.deliveries.append(
                Delivery(
                    notify_id,
                    params["out_trade_no"],
                    url,
                    attempt,
                    response.status_code,
                    answer[:40],
                )
            )
            if answer == "success":
                return
        log.info("alipay_sandbox.notify_gave_up", attempts=attempt)

    # --- bills ------------------------------------------------------------------------------

    def _bill_url(
        self, request: Request, app: SandboxApp, biz: Mapping[str, Any]
    ) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            raise SandboxError("40004", "isp.bill_type_not_support", "不支持的账单类型")
        try:
            day = dt.date.fromisoformat(str(biz.get("bill_date", "")))
        except ValueError:
            raise SandboxError("40004", "isv.invalid-bill-date", "账单日期格式不正确") from None
        if day > _now().astimezone(CHINA).date():
            raise SandboxError("40004", "isp.bill_not_exist", "账单不存在")
        name = f"{app.seller_id}_{day:%Y%m%d}"
        token = secrets.token_urlsafe(24)
        self._bills[token] = (self.bill_zip(app, day), f"{name}.csv.zip", time.monotonic())
        query = urlencode(
            {
                "bizType": "trade",
                "userId": app.seller_id,
                "fileType": "csv.zip",
                "bizDates": f"{day:%Y%m%d}",
            }
        )
        return {"bill_download_url": f"{self._base(request)}/sandbox/bill/{token}?{query}"}

    async def _bill_file(self, request: Request) -> Response:
        entry = self._bills.get(request.path_params["token"])
        if entry is None or time.monotonic() - entry[2] > BILL_URL_LIFETIME:
            return HTMLResponse(
                _page("链接已失效", "<p>下载链接已失效 · The link has expired.</p>"), 404
            )
        content, name, _ = entry
        return Response(
            content,
            media_type="application/zip",
            headers={"Content-Disposition": f"attachment; filename={name}"},
        )

    def bill_zip(self, app: SandboxApp, day: dt.date) -> bytes:
        """The zip Alipay serves for ``day``: 业务明细 and 业务明细(汇总), GBK CSV."""

        def on_day(moment: dt.datetime | None) -> bool:
            return moment is not None and moment.astimezone(CHINA).date() == day

        rows: list[list[str]] = []
        received = 0
        for trade in self.trades.values():
            if trade.app_id == app.app_id and on_day(trade.gmt_payment):
                rows.append(_bill_row(trade, "交易", trade.total, trade.gmt_payment, ""))
                received += trade.total
        for refund in self.refunds.values():
            if refund.trade.app_id == app.app_id and on_day(refund.gmt_refund_pay):
                moment, batch = refund.gmt_refund_pay, refund.out_request_no
                rows.append(_bill_row(refund.trade, "退款", -refund.amount, moment, batch))
                received -= refund.amount
        payments = sum(1 for row in rows if row[2].strip() == "交易")
        start = f"{day:%Y年%m月%d日} 00:00:00"
        end = f"{day + dt.timedelta(days=1):%Y年%m月%d日} 00:00:00"
        detail = [
            "#支付宝业务明细查询",
            f"#账号：[{app.seller_id}0156]",
            f"#起始日期：[{start}]   终止日期：[{end}]",
            f"#{_BILL_RULE}业务明细列表{_BILL_RULE}",
            _BILL_HEADER,
            *(",".join(row) for row in rows),
            f"#{_BILL_RULE}业务明细列表结束{_BILL_RULE[:-4]}",
            f"#交易合计：{payments}笔，退款合计：{len(rows) - payments}笔，"
            f"商家实收共{_yuan(received)}元",
            f"#导出时间：[{_now().astimezone(CHINA):%Y年%m月%d日 %H:%M:%S}]",
        ]
        summary = [
            "#支付宝业务汇总查询",
            f"#账号：[{app.seller_id}0156]",
            f"#起始日期：[{start}]   终止日期：[{end}]",
            "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）",
            f"合计,,{payments},{len(rows) - payments},{_yuan(received)},{_yuan(received)}",
            f"#导出时间：[{_now().astimezone(CHINA):%Y年%m月%d日 %H:%M:%S}]",
        ]
        name = f"{app.seller_id}_{day:%Y%m%d}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}_业务明细.csv", "\r\n".join(detail).encode("gbk"))
            archive.writestr(f"{name}_业务明细(汇总).csv", "\r\n".join(summary).encode("gbk"))
        return buffer.getvalue()

    # --- sandbox pages ----------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "apps": [app.app_id for app in self.config.apps]})

    async def _cashier(self, request: Request) -> Response:
        trade = self._tokens.get(request.path_params["token"])
        if trade is None:
            return HTMLResponse(_page("订单不存在 · Unknown trade", "<p>订单不存在。</p>"), 404)
        back = _safe_url(request.query_params.get("return", ""))
        return HTMLResponse(_cashier_html(trade, _cashier_path(request), back, notice=""))

    async def _cashier_action(self, request: Request) -> Response:
        token = request.path_params["token"]
        trade = self._tokens.get(token)
        if trade is None:
            return HTMLResponse(_page("订单不存在 · Unknown trade", "<p>订单不存在。</p>"), 404)
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        back = _safe_url(form.get("return", ""))
        action = request.path_params["action"]
        if action == "pay":
            try:
                await self.pay(token=token)
            except SandboxError as exc:
                notice = f"无法支付 · Cannot pay: {exc.sub_msg}"
                return HTMLResponse(
                    _cashier_html(trade, _cashier_path(request), back, notice=notice)
                )
            if trade.return_url:  # 手机网站支付: back to the merchant, signed, like Alipay
                return RedirectResponse(self._return_url(trade), 303)
            notice = "支付成功 · Paid"
        elif action == "cancel":
            if trade.quit_url:
                return RedirectResponse(_safe_url(trade.quit_url) or "/", 303)
            notice = "已取消支付 · Payment cancelled"
        else:
            return HTMLResponse(_page("Not found", ""), 404)
        return HTMLResponse(_cashier_html(trade, _cashier_path(request), back, notice=notice))

    def _return_url(self, trade: SandboxTrade) -> str:
        params = self.sign_notification(
            {
                "charset": "utf-8",
                "out_trade_no": trade.out_trade_no,
                "method": "alipay.trade.wap.pay.return",
                "total_amount": _yuan(trade.total),
                "trade_no": trade.trade_no,
                "auth_app_id": trade.app_id,
                "version": "1.0",
                "app_id": trade.app_id,
                "seller_id": trade.seller_id,
                "timestamp": _time(_now()),
            }
        )
        separator = "&" if "?" in trade.return_url else "?"
        return trade.return_url + separator + urlencode(params)

    async def _pay_api(self, request: Request) -> Response:
        try:
            trade = await self.pay(request.path_params["no"], app_id=request.path_params["app_id"])
        except KeyError:
            return JSONResponse({"sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}, 404)
        except SandboxError as exc:
            return JSONResponse({"sub_code": exc.sub_code, "sub_msg": exc.sub_msg}, 400)
        return JSONResponse({"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no})

    async def _set_faults(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            for name, value in changes.items():
                if not hasattr(self.faults, name):
                    raise KeyError(name)
                setattr(self.faults, name, value)
        except (ValueError, KeyError, AttributeError) as exc:
            return JSONResponse(
                {"sub_code": "isv.invalid-parameter", "sub_msg": f"bad fault switch: {exc}"}, 400
            )
        return JSONResponse(asdict(self.faults))


def _biz(params: Mapping[str, str]) -> dict[str, Any]:
    raw = params.get("biz_content", "")
    if not raw:
        raise SandboxError("40001", "isv.missing-biz-content", "缺少biz_content参数")
    try:
        biz = json.loads(raw)
    except ValueError:
        raise SandboxError(
            "40002", "isv.invalid-biz-content", "biz_content不是合法的JSON"
        ) from None
    if not isinstance(biz, dict):
        raise SandboxError("40002", "isv.invalid-biz-content", "biz_content不是JSON对象")
    return biz


def _required(biz: Mapping[str, Any], name: str) -> str:
    value = biz.get(name)
    if not isinstance(value, str) or not value:
        raise SandboxError("40002", "isv.missing-parameter", f"缺少必选参数{name}")
    return value


def _expiry(biz: Mapping[str, Any]) -> dt.datetime:
    """``time_expire`` (absolute, China time) wins over ``timeout_express`` (``90m``…)."""
    if biz.get("time_expire"):
        try:
            moment = dt.datetime.strptime(str(biz["time_expire"]), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise SandboxError("40002", "isv.invalid-parameter", "time_expire格式不正确") from None
        return moment.replace(tzinfo=CHINA).astimezone(dt.UTC)
    express = str(biz.get("timeout_express") or "90m")
    units = {"m": 60, "h": 3600, "d": 86400}
    if express[:-1].isdigit() and express[-1] in units:
        return _now() + dt.timedelta(seconds=int(express[:-1]) * units[express[-1]])
    if express == "1c":
        tomorrow = _now().astimezone(CHINA).date() + dt.timedelta(days=1)
        return dt.datetime.combine(tomorrow, dt.time(), CHINA).astimezone(dt.UTC)
    raise SandboxError("40002", "isv.invalid-parameter", "timeout_express格式不正确")


def _bill_row(
    trade: SandboxTrade, kind: str, amount: int, moment: dt.datetime | None, batch: str
) -> list[str]:
    """One 业务明细 row, cells tab-padded as Alipay's files are."""
    money = _yuan(amount)
    cells = [
        trade.trade_no,
        trade.out_trade_no,
        kind,
        trade.subject.replace(",", "，"),
        _time(trade.gmt_create),
        _time(moment),
        "",
        "",
        "",
        "",
        trade.buyer_logon_id,
        money,
        money,
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "",
        "0.00",
        "0.00",
        batch,
        "0.00",
        "0.00",
        "",
    ]
    return [f"{cell}\t" if cell else cell for cell in cells]


def _safe_url(url: str) -> str:
    return (
        url
        if url.startswith(("http://", "https://")) and not any(c in url for c in " \"'<>")
        else ""
    )


def _page(title: str, content: str) -> str:
    return page(title, content, background="#f5f5f5", accent="#1677ff", notice="#eef5ff")


def _cashier_path(request: Request) -> str:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}/sandbox/cashier/{request.path_params['token']}"


def _cashier_html(trade: SandboxTrade, path: str, back: str, *, notice: str) -> str:
    esc = html.escape
    state = _STATUS_TEXT.get(trade.trade_status, trade.trade_status)
    parts = [
        '<h1>支付宝 <span class="badge">沙箱 Sandbox</span></h1>',
        f'<div class="amount" data-testid="sandbox-amount">¥{_yuan(trade.total)}</div>',
        "<dl>",
        f"<dt>商品 · Item</dt><dd>{esc(trade.subject)}</dd>",
        f"<dt>收款方 · Payee</dt><dd>{esc(trade.seller_id)}</dd>",
        f"<dt>商户订单号 · Order</dt><dd>{esc(trade.out_trade_no)}</dd>",
        f'<dt>状态 · Status</dt><dd data-testid="sandbox-state">{esc(state)}</dd>',
        "</dl>",
    ]
    if notice:
        parts.append(f'<p class="notice" data-testid="sandbox-notice">{esc(notice)}</p>')
    hidden = f'<input type="hidden" name="return" value="{esc(back)}">'
    if trade.trade_status == "WAIT_BUYER_PAY" and not notice.startswith("已取消"):
        parts.append(
            f'<form method="post" action="{esc(path)}/pay">{hidden}'
            '<button class="pay" type="submit" data-testid="sandbox-pay">'
            "确认付款 · Pay</button></form>"
            f'<form method="post" action="{esc(path)}/cancel">{hidden}'
            '<button class="cancel" type="submit" data-testid="sandbox-cancel">'
            "取消 · Cancel</button></form>"
        )
    if back:
        parts.append(
            f'<p><a href="{esc(back)}" data-testid="sandbox-return">'
            "返回商户 · Back to merchant</a></p>"
        )
    return _page("支付宝沙箱 · Alipay sandbox", "".join(parts))


def sandbox_pay_url(prepay: Prepay, *, return_url: str = "") -> str:
    """Where the demo sends the payer: the cashier a precreate QR points to, or the wap URL."""
    if prepay.redirect_url:
        return prepay.redirect_url
    if "/sandbox/cashier/" not in prepay.qr_content:
        raise ValueError("not an Alipay sandbox prepay")
    url = prepay.qr_content
    return f"{url}?{urlencode({'return': return_url})}" if return_url else url


def create_app(config: SandboxConfig, **options: Any) -> Starlette:
    """The sandbox as an ASGI app; the :class:`AlipaySandbox` is ``app.state.sandbox``."""
    sandbox = AlipaySandbox(config, **options)
    sandbox.app.state.sandbox = sandbox
    return sandbox.app


# --- running it -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(
    sandbox: AlipaySandbox, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``sandbox`` in this event loop (e.g. in pytest); yields its gateway URL
    (``http://127.0.0.1:PORT/gateway.do``)."""
    async with serving(sandbox.app, host=host, port=port) as url:
        yield f"{url}/gateway.do"


async def serve(
    host: str = "127.0.0.1", port: int = 8091, *, keys_path: Path, public_url: str = ""
) -> None:
    """Run the sandbox until cancelled (``linli sandbox-pay``); keys come from ``keys_path``.

    The app config our side needs is ``load_or_generate(keys_path, gateway_url=…)[1]``
    with the same file (``gateway_url`` = ``{public_url}/gateway.do``), so seeding the demo
    and this server agree on every key.
    """
    base_url = (public_url or f"http://{host}:{port}").rstrip("/")
    config, _ = load_or_generate(keys_path, gateway_url=f"{base_url}/gateway.do")
    sandbox = AlipaySandbox(config, public_url=base_url)
    server = uvicorn.Server(
        uvicorn.Config(sandbox.app, host=host, port=port, log_level="info", lifespan="on")
    )
    log.info("alipay_sandbox.serving", url=base_url, apps=[app.app_id for app in config.apps])
    await server.serve()
