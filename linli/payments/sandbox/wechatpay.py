"""A local WeChat Pay API v3 server (微信支付沙箱) for tests and ``make demo``.

It speaks the wire protocol of ``api.mch.weixin.qq.com`` with its own keys, so the real
client (:mod:`linli.payments.wechatpay`) runs end to end:

- it checks every API request's ``Authorization: WECHATPAY2-SHA256-RSA2048 …`` against
  the merchant public key it holds (wrong key, serial, mchid or a timestamp outside
  ±5 minutes: ``401 SIGN_ERROR``, unsigned);
- it signs every answer with its platform key (``Wechatpay-Signature/-Timestamp/-Nonce/
  -Serial``; the serial is a ``PUB_KEY_ID_…`` or, in certificate mode, the serial of a
  self-signed platform certificate);
- direct-merchant and service-provider endpoints: JSAPI/Native orders, query by
  out_trade_no, close, refunds and refund query, the trade bill and its download;
- when a trade is paid (the sandbox pay page, or :meth:`WeChatPaySandbox.pay`) or a
  refund settles, it posts a signed notification with an AEAD_AES_256_GCM resource to the
  ``notify_url`` and retries on anything but 200/204 after ``retry_delays``, like the real
  service (whose own schedule is 15s, 15s, 30s, 3m, 10m, …);
- switches in :class:`SandboxFaults` simulate a slow order creation (the trade exists,
  the answer comes too late), 5xx answers, lost notification deliveries, forged
  answers and refunds that end ABNORMAL or CLOSED.

Everything lives in memory. The demo keeps only the key set in a JSON file
(:func:`load_or_generate`) so the app's merchant configuration and the sandbox agree.

Sandbox-only pages (no signature): ``GET /sandbox/pay/{token}`` shows a trade with
"支付 / Pay" and "取消 / Cancel" buttons (token = JSAPI prepay_id or the ``pr`` of a Native
``code_url``; see :func:`sandbox_pay_url`), ``POST /sandbox/trades/{mchid}/{out_trade_no}/pay``
pays from a test, ``POST /sandbox/faults`` sets fault switches, ``GET /sandbox/healthz``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import hashlib
import html
import json
import os
import re
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

import httpx
import structlog
import uvicorn
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from linli.payments.gateway import Prepay
from linli.payments.sandbox import page, serving
from linli.payments.wechatpay import DEFAULT_BASE_URL, WeChatPayConfig

log = structlog.get_logger("linli.payments.sandbox.wechatpay")

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1, 2, 5, 15, 30, 60, 120, 300, 600)
CLOCK_WINDOW = 300
_ALNUM = string.ascii_letters + string.digits
_TRADE_DESC = {
    "SUCCESS": "支付成功",
    "REFUND": "订单发生过退款",
    "NOTPAY": "订单未支付",
    "CLOSED": "订单已关闭",
}
_BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
_BILL_SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
_FEE_RATE = Decimal("0.006")


# The wire protocol is written out here again, apart from the client's helpers, on purpose:
# a slip on either side then fails the tests instead of agreeing with itself.
CHINA = dt.timezone(dt.timedelta(hours=8))
SCHEME = "WECHATPAY2-SHA256-RSA2048"
_AUTH_PARAM = re.compile(r'\s*(mchid|nonce_str|signature|timestamp|serial_no)="([^"]*)"\s*')


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


def _sign(key: rsa.RSAPrivateKey, lines: list[bytes]) -> str:
    message = b"".join(line + b"\n" for line in lines)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def _authorization_params(header: str) -> dict[str, str] | None:
    """``WECHATPAY2-SHA256-RSA2048 k="v",…`` with exactly the five documented keys."""
    if not header.startswith(SCHEME + " "):
        return None
    params: dict[str, str] = {}
    for part in header[len(SCHEME) + 1 :].split(","):
        match = _AUTH_PARAM.fullmatch(part)
        if match is None or match.group(1) in params:
            return None
        params[match.group(1)] = match.group(2)
    return params if len(params) == 5 else None


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M:%S+08:00")


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformKeys:
    """WeChat Pay's side: the key it signs answers and notifications with."""

    private_key_pem: str
    public_key_pem: str
    serial: str  # PUB_KEY_ID_… (公钥模式) or the certificate serial (平台证书模式)
    certificate_pem: str = ""


@dataclass(frozen=True)
class SandboxMerchant:
    """What WeChat Pay knows of one merchant: its API public key, serial, APIv3 key."""

    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_public_key_pem: str
    apiv3_key: str
    sub_mchids: tuple[str, ...] = ()  # service provider: the sub-merchants it may act for


@dataclass
class SandboxConfig:
    platform: PlatformKeys
    merchants: list[SandboxMerchant] = field(default_factory=list)

    def merchant(self, mchid: str) -> SandboxMerchant | None:
        for merchant in self.merchants:
            if merchant.mchid == mchid:
                return merchant
        return None

    def to_json(self) -> dict[str, Any]:
        return {"platform": asdict(self.platform), "merchants": [asdict(m) for m in self.merchants]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxConfig:
        merchants = [
            SandboxMerchant(**{**m, "sub_mchids": tuple(m.get("sub_mchids", ()))})
            for m in data["merchants"]
        ]
        return cls(platform=PlatformKeys(**data["platform"]), merchants=merchants)


def _rsa_pair() -> tuple[rsa.RSAPrivateKey, str, str]:
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
    return key, private_pem, public_pem


def generate_platform(mode: Literal["public_key", "certificate"] = "public_key") -> PlatformKeys:
    """A fresh platform key: with a ``PUB_KEY_ID_…`` or a self-signed platform certificate."""
    key, private_pem, public_pem = _rsa_pair()
    if mode == "public_key":
        serial = "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(30))
        return PlatformKeys(private_key_pem=private_pem, public_key_pem=public_pem, serial=serial)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "linli sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (sandbox)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )
    return PlatformKeys(
        private_key_pem=private_pem,
        public_key_pem=public_pem,
        serial=format(certificate.serial_number, "X"),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )


def generate_merchant(
    platform: PlatformKeys,
    *,
    base_url: str = DEFAULT_BASE_URL,
    mchid: str = "",
    appid: str = "",
    sub_mchid: str = "",
    sub_appid: str = "",
) -> tuple[SandboxMerchant, WeChatPayConfig]:
    """A merchant key pair and APIv3 key: what the sandbox holds and what our side holds."""
    _, private_pem, public_pem = _rsa_pair()
    mchid = mchid or "19" + "".join(secrets.choice(string.digits) for _ in range(8))
    appid = appid or "wx" + secrets.token_hex(8)
    serial = secrets.token_hex(20).upper()
    apiv3_key = "".join(secrets.choice(_ALNUM) for _ in range(32))
    merchant = SandboxMerchant(
        mchid=mchid,
        appid=appid,
        merchant_serial_no=serial,
        merchant_public_key_pem=public_pem,
        apiv3_key=apiv3_key,
        sub_mchids=(sub_mchid,) if sub_mchid else (),
    )
    ours: dict[str, Any] = {
        "mchid": mchid,
        "appid": appid,
        "merchant_serial_no": serial,
        "merchant_private_key": private_pem,
        "apiv3_key": apiv3_key,
        "sub_mchid": sub_mchid,
        "sub_appid": sub_appid,
        "base_url": base_url,
    }
    if platform.certificate_pem:
        ours["platform_certificates"] = {platform.serial: platform.certificate_pem}
    else:
        ours["platform_public_key_id"] = platform.serial
        ours["platform_public_key"] = platform.public_key_pem
    return merchant, WeChatPayConfig.model_validate(ours)


def generate_keys(
    *,
    base_url: str = DEFAULT_BASE_URL,
    mode: Literal["public_key", "certificate"] = "public_key",
    mchid: str = "",
    appid: str = "",
    sub_mchid: str = "",
    sub_appid: str = "",
) -> tuple[SandboxConfig, WeChatPayConfig]:
    """A consistent key set: the sandbox's configuration and our matching merchant config."""
    platform = generate_platform(mode)
    merchant, ours = generate_merchant(
        platform,
        base_url=base_url,
        mchid=mchid,
        appid=appid,
        sub_mchid=sub_mchid,
        sub_appid=sub_appid,
    )
    return SandboxConfig(platform=platform, merchants=[merchant]), ours


def load_or_generate(path: Path, *, base_url: str) -> tuple[SandboxConfig, WeChatPayConfig]:
    """The demo's key set, kept in ``path`` (mode 0600) so the app and the sandbox agree."""
    if path.exists():
        data = json.loads(path.read_text())
        config = SandboxConfig.from_json(data["sandbox"])
        ours = WeChatPayConfig.model_validate({**data["merchant"], "base_url": base_url})
        return config, ours
    config, ours = generate_keys(base_url=base_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"sandbox": config.to_json(), "merchant": ours.to_storage()}, out)
    return config, ours


# --- notifications ----------------------------------------------------------------------------


def encrypt_resource(
    apiv3_key: str, plaintext: Mapping[str, Any], original_type: str
) -> dict[str, str]:
    """A notification ``resource``: the JSON encrypted with AEAD_AES_256_GCM and the APIv3 key."""
    nonce = "".join(secrets.choice(_ALNUM) for _ in range(12))
    data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), data, original_type.encode())
    return {
        "original_type": original_type,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": original_type,
        "nonce": nonce,
    }


def signed_headers(
    platform: PlatformKeys, body: bytes, *, timestamp: int | None = None, serial: str = ""
) -> dict[str, str]:
    """The headers WeChat Pay puts on an answer or a notification carrying ``body``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16).upper()
    signature = _sign(
        _private_key(platform.private_key_pem), [stamp.encode(), nonce.encode(), body]
    )
    return {
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Serial": serial or platform.serial,
        "Wechatpay-Signature-Type": SCHEME,
    }


def build_notification(
    platform: PlatformKeys,
    apiv3_key: str,
    *,
    event_type: str,
    resource: Mapping[str, Any],
    event_id: str = "",
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """A complete signed + encrypted notification (headers, body), e.g. for a benchmark."""
    original_type = "transaction" if event_type.startswith("TRANSACTION.") else "refund"
    summary = {
        "TRANSACTION.SUCCESS": "支付成功",
        "REFUND.SUCCESS": "退款成功",
        "REFUND.ABNORMAL": "退款异常",
        "REFUND.CLOSED": "退款关闭",
    }.get(event_type, event_type)
    envelope = {
        "id": event_id or str(uuid.uuid4()),
        "create_time": _time(dt.datetime.now(dt.UTC)),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": encrypt_resource(apiv3_key, resource, original_type),
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        **signed_headers(platform, body, timestamp=timestamp),
    }
    return headers, body


# --- state ------------------------------------------------------------------------------------


@dataclass
class SandboxFaults:
    """Switches for fault drills; change them on :attr:`WeChatPaySandbox.faults` at any time."""

    create_delay: float = 0.0  # seconds before answering an order creation (the trade exists)
    fail_requests: int = 0  # answer the next N API calls with fail_status SYSTEM_ERROR
    fail_status: int = 500
    drop_notifications: int = 0  # the next N delivery attempts are lost on the way
    forge_response_signature: bool = False  # sign answers with a key that is not the platform's
    response_serial: str = ""  # put this serial on answers instead of the platform's
    response_clock_offset: int = 0  # seconds added to answers' Wechatpay-Timestamp
    refund_outcome: Literal["SUCCESS", "ABNORMAL", "CLOSED"] = "SUCCESS"
    corrupt_bill: bool = False  # the downloaded bill file differs from its hash_value


@dataclass
class SandboxTrade:
    mchid: str
    sub_mchid: str
    appid: str
    sub_appid: str
    out_trade_no: str
    description: str
    total: int
    notify_url: str
    time_expire: dt.datetime
    trade_type: str  # JSAPI or NATIVE
    payer_field: str  # openid, sp_openid or sub_openid
    openid: str
    token: str  # prepay_id (JSAPI) or the pr of the code_url (NATIVE)
    fingerprint: str
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: dt.datetime | None = None
    refunded: int = 0

    @property
    def partner(self) -> bool:
        return bool(self.sub_mchid)

    @property
    def merchant_id(self) -> str:
        return self.sub_mchid or self.mchid


@dataclass
class SandboxRefund:
    trade: SandboxTrade
    out_refund_no: str
    refund_id: str
    amount: int
    reason: str
    notify_url: str
    create_time: dt.datetime
    status: str = "PROCESSING"
    success_time: dt.datetime | None = None


@dataclass(frozen=True)
class Delivery:
    """One attempt at posting a notification (``status`` None: not delivered)."""

    event_id: str
    event_type: str
    url: str
    attempt: int
    status: int | None
    error: str = ""


class SandboxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _yuan(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


# --- the server -------------------------------------------------------------------------------


class WeChatPaySandbox:
    """The fake service; :attr:`app` is its ASGI application."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        refund_delay: float = 0.05,
        notify_timeout: float = 5.0,
    ) -> None:
        self.config = config
        self.retry_delays = retry_delays
        self.refund_delay = refund_delay
        self.notify_timeout = notify_timeout
        self.faults = SandboxFaults()
        self.deliveries: list[Delivery] = []
        self.trades: dict[tuple[str, str, str], SandboxTrade] = {}
        self.refunds: dict[tuple[str, str, str], SandboxRefund] = {}
        self._tokens: dict[str, SandboxTrade] = {}
        self._bills: dict[str, tuple[str, bytes, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app = self._build_app()

    # --- merchants --------------------------------------------------------------------------

    def add_merchant(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        mchid: str = "",
        sub_mchid: str = "",
        sub_appid: str = "",
    ) -> WeChatPayConfig:
        """Another merchant on this sandbox; returns the config our side uses for it."""
        merchant, ours = generate_merchant(
            self.config.platform,
            base_url=base_url,
            mchid=mchid,
            sub_mchid=sub_mchid,
            sub_appid=sub_appid,
        )
        self.config.merchants.append(merchant)
        return ours

    # --- test and page API ------------------------------------------------------------------

    def trade(self, out_trade_no: str, *, merchant_id: str = "") -> SandboxTrade:
        found = [
            t
            for t in self.trades.values()
            if t.out_trade_no == out_trade_no and (not merchant_id or t.merchant_id == merchant_id)
        ]
        if len(found) != 1:
            raise KeyError(out_trade_no)
        return found[0]

    def trade_by_token(self, token: str) -> SandboxTrade:
        return self._tokens[token]

    async def pay(
        self, out_trade_no: str = "", *, token: str = "", merchant_id: str = "", openid: str = ""
    ) -> SandboxTrade:
        """The payer pays: the trade becomes SUCCESS and its notification is on its way."""
        trade = self._tokens[token] if token else self.trade(out_trade_no, merchant_id=merchant_id)
        if trade.state in ("SUCCESS", "REFUND"):
            raise SandboxError(400, "ORDERPAID", "订单已支付")
        if trade.state != "NOTPAY":
            raise SandboxError(400, "ORDER_CLOSED", "订单已关闭")
        if _now() > trade.time_expire:
            raise SandboxError(400, "ORDER_CLOSED", "订单已过期")
        trade.state = "SUCCESS"
        trade.success_time = _now().replace(microsecond=0)
        trade.transaction_id = "42000" + "".join(secrets.choice(string.digits) for _ in range(23))
        if not trade.openid:
            trade.openid = "oSbx" + secrets.token_urlsafe(18)[:24]
        if openid:
            trade.openid = openid
        self._notify(trade, "TRANSACTION.SUCCESS", self._transaction_json(trade))
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

    def notification(
        self, trade: SandboxTrade, *, timestamp: int | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The TRANSACTION.SUCCESS notification of a paid ``trade``, built but not sent."""
        merchant = self._merchant_of(trade)
        return build_notification(
            self.config.platform,
            merchant.apiv3_key,
            event_type="TRANSACTION.SUCCESS",
            resource=self._transaction_json(trade),
            timestamp=timestamp,
        )

    # --- app --------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        api = self._api

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        routes = [
            Route("/v3/pay/transactions/jsapi", api(self._create_jsapi), methods=["POST"]),
            Route("/v3/pay/transactions/native", api(self._create_native), methods=["POST"]),
            Route("/v3/pay/partner/transactions/jsapi", api(self._create_jsapi), methods=["POST"]),
            Route(
                "/v3/pay/partner/transactions/native", api(self._create_native), methods=["POST"]
            ),
            Route("/v3/pay/transactions/out-trade-no/{no}", api(self._query), methods=["GET"]),
            Route(
                "/v3/pay/partner/transactions/out-trade-no/{no}", api(self._query), methods=["GET"]
            ),
            Route(
                "/v3/pay/transactions/out-trade-no/{no}/close", api(self._close), methods=["POST"]
            ),
            Route(
                "/v3/pay/partner/transactions/out-trade-no/{no}/close",
                api(self._close),
                methods=["POST"],
            ),
            Route("/v3/refund/domestic/refunds", api(self._refund), methods=["POST"]),
            Route("/v3/refund/domestic/refunds/{no}", api(self._query_refund), methods=["GET"]),
            Route("/v3/bill/tradebill", api(self._tradebill), methods=["GET"]),
            Route("/v3/billdownload/file", self._download, methods=["GET"]),
            Route("/sandbox/healthz", self._healthz, methods=["GET"]),
            Route("/sandbox/pay/{token}", self._pay_page, methods=["GET"]),
            Route("/sandbox/pay/{token}/{action}", self._pay_action, methods=["POST"]),
            Route("/sandbox/trades/{mchid}/{no}/pay", self._pay_api, methods=["POST"]),
            Route("/sandbox/faults", self._set_faults, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    def _api(
        self,
        handler: Callable[[Request, SandboxMerchant, dict[str, Any]], Awaitable[tuple[int, Any]]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if self.faults.fail_requests > 0:
                self.faults.fail_requests -= 1
                return _error(self.faults.fail_status, "SYSTEM_ERROR", "系统异常，请稍后重试")
            body = await request.body()
            merchant = self._authenticate(request, body)
            if isinstance(merchant, Response):
                return merchant
            try:
                payload = json.loads(body) if body else {}
                if not isinstance(payload, dict):
                    raise ValueError
            except ValueError:
                return self._signed(400, {"code": "PARAM_ERROR", "message": "请求体不是合法的JSON"})
            try:
                status, answer = await handler(request, merchant, payload)
            except SandboxError as exc:
                return self._signed(exc.status, {"code": exc.code, "message": exc.message})
            return self._signed(status, answer)

        return endpoint

    def _authenticate(self, request: Request, body: bytes) -> SandboxMerchant | Response:
        if not request.headers.get("user-agent") or not request.headers.get("accept"):
            return _error(400, "INVALID_REQUEST", "HTTP头缺少Accept或User-Agent")
        params = _authorization_params(request.headers.get("authorization", ""))
        if params is None:
            return _error(401, "SIGN_ERROR", "签名错误：Authorization 格式不正确")
        merchant = self.config.merchant(params["mchid"])
        if merchant is None or params["serial_no"].upper() != merchant.merchant_serial_no.upper():
            return _error(401, "SIGN_ERROR", "签名错误：商户号或证书序列号不正确")
        if not params["timestamp"].isdigit():
            return _error(401, "SIGN_ERROR", "签名错误：timestamp 无效")
        if abs(time.time() - int(params["timestamp"])) > CLOCK_WINDOW:
            return _error(401, "SIGN_ERROR", "签名错误：timestamp 已过期")
        # the request target exactly as it came on the request line: path and query
        target = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        if query:
            target += b"?" + query
        lines = [
            request.method.encode(),
            target,
            params["timestamp"].encode(),
            params["nonce_str"].encode(),
            body,
        ]
        message = b"".join(line + b"\n" for line in lines)
        try:
            _public_key(merchant.merchant_public_key_pem).verify(
                base64.b64decode(params["signature"], validate=True),
                message,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return _error(401, "SIGN_ERROR", "签名错误")
        return merchant

    def _signed(self, status: int, payload: Any) -> Response:
        body = (
            b""
            if status == 204
            else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        )
        faults = self.faults
        stamp = int(time.time()) + faults.response_clock_offset
        headers = signed_headers(
            self.config.platform, body, timestamp=stamp, serial=faults.response_serial
        )
        if faults.forge_response_signature:
            nonce = headers["Wechatpay-Nonce"].encode()
            forged = _sign(self._forger, [str(stamp).encode(), nonce, body])
            headers["Wechatpay-Signature"] = forged
        headers["Request-ID"] = str(uuid.uuid4()).upper()
        if status == 204:
            return Response(status_code=204, headers=headers)
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    # --- orders -----------------------------------------------------------------------------

    async def _create_jsapi(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        trade = await self._create(request, merchant, body, "JSAPI")
        return 200, {"prepay_id": trade.token}

    async def _create_native(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        trade = await self._create(request, merchant, body, "NATIVE")
        return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr={trade.token}"}

    async def _create(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any], trade_type: str
    ) -> SandboxTrade:
        partner = "/partner/" in request.url.path
        mchid = _required(body, "sp_mchid" if partner else "mchid")
        appid = _required(body, "sp_appid" if partner else "appid")
        sub_mchid = _required(body, "sub_mchid") if partner else ""
        sub_appid = str(body.get("sub_appid", "")) if partner else ""
        if mchid != merchant.mchid:
            raise SandboxError(400, "INVALID_REQUEST", "请求中的商户号与签名中的商户号不一致")
        if appid != merchant.appid:
            raise SandboxError(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        if partner and sub_mchid not in merchant.sub_mchids:
            raise SandboxError(400, "INVALID_REQUEST", "特约商户号与服务商不匹配")
        description = _required(body, "description")
        out_trade_no = _required(body, "out_trade_no")
        if not re.fullmatch(r"[0-9A-Za-z_\-*]{6,32}", out_trade_no):
            raise SandboxError(400, "PARAM_ERROR", "out_trade_no 格式错误")
        notify_url = _required(body, "notify_url")
        if not re.fullmatch(r"https?://[^\s?#]+", notify_url):
            raise SandboxError(400, "PARAM_ERROR", "notify_url 格式错误（不能携带参数）")
        try:
            expire = dt.datetime.fromisoformat(_required(body, "time_expire"))
            if expire.tzinfo is None:
                raise ValueError
        except ValueError:
            raise SandboxError(400, "PARAM_ERROR", "time_expire 格式错误") from None
        amount = body.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise SandboxError(400, "PARAM_ERROR", "amount.total 必须为正整数（单位：分）")
        if isinstance(amount, dict) and amount.get("currency", "CNY") != "CNY":
            raise SandboxError(400, "PARAM_ERROR", "currency 仅支持 CNY")
        payer_field, openid = "", ""
        if trade_type == "JSAPI":
            payer = body.get("payer")
            payer_field = (
                ("sub_openid" if "sub_openid" in (payer or {}) else "sp_openid")
                if partner
                else "openid"
            )
            openid = str((payer or {}).get(payer_field, "")) if isinstance(payer, dict) else ""
            if not openid:
                raise SandboxError(400, "PARAM_ERROR", f"缺少参数 payer.{payer_field}")
            if payer_field == "sub_openid" and not sub_appid:
                raise SandboxError(400, "PARAM_ERROR", "使用 sub_openid 时 sub_appid 必填")
        fingerprint = hashlib.sha256(
            json.dumps(
                [trade_type, description, total, notify_url, openid, expire.isoformat()]
            ).encode()
        ).hexdigest()
        key = (mchid, sub_mchid, out_trade_no)
        existing = self.trades.get(key)
        if existing is not None:
            if existing.state in ("SUCCESS", "REFUND"):
                raise SandboxError(400, "ORDERPAID", "该订单已支付")
            if existing.state == "CLOSED":
                raise SandboxError(400, "ORDER_CLOSED", "订单已关闭")
            if existing.fingerprint != fingerprint:
                raise SandboxError(400, "INVALID_REQUEST", "201 商户订单号重复")
            trade = existing
        else:
            token = (
                ("wx" + secrets.token_hex(16))
                if trade_type == "JSAPI"
                else secrets.token_urlsafe(9)
            )
            trade = SandboxTrade(
                mchid=mchid,
                sub_mchid=sub_mchid,
                appid=appid,
                sub_appid=sub_appid,
                out_trade_no=out_trade_no,
                description=description,
                total=total,
                notify_url=notify_url,
                time_expire=expire.astimezone(dt.UTC),
                trade_type=trade_type,
                payer_field=payer_field or ("sp_openid" if partner else "openid"),
                openid=openid,
                token=token,
                fingerprint=fingerprint,
            )
            self.trades[key] = trade
            self._tokens[token] = trade
        if self.faults.create_delay > 0:
            await asyncio.sleep(self.faults.create_delay)
        return trade

    def _find_trade(
        self, request: Request, merchant: SandboxMerchant, sub_mchid: str
    ) -> SandboxTrade:
        no = request.path_params["no"]
        trade = self.trades.get((merchant.mchid, sub_mchid, no))
        if trade is None:
            raise SandboxError(404, "ORDER_NOT_EXIST", "订单不存在")
        return trade

    async def _query(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        partner = "/partner/" in request.url.path
        mchid = request.query_params.get("sp_mchid" if partner else "mchid", "")
        sub_mchid = request.query_params.get("sub_mchid", "") if partner else ""
        if mchid != merchant.mchid:
            raise SandboxError(400, "INVALID_REQUEST", "请求中的商户号与签名中的商户号不一致")
        if partner and sub_mchid not in merchant.sub_mchids:
            raise SandboxError(400, "INVALID_REQUEST", "特约商户号与服务商不匹配")
        return 200, self._transaction_json(self._find_trade(request, merchant, sub_mchid))

    async def _close(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        partner = "/partner/" in request.url.path
        if _required(body, "sp_mchid" if partner else "mchid") != merchant.mchid:
            raise SandboxError(400, "INVALID_REQUEST", "请求中的商户号与签名中的商户号不一致")
        trade = self._find_trade(request, merchant, _required(body, "sub_mchid") if partner else "")
        if trade.state in ("SUCCESS", "REFUND"):
            raise SandboxError(400, "ORDERPAID", "订单已支付")
        trade.state = "CLOSED"
        return 204, None

    def _transaction_json(self, trade: SandboxTrade) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if trade.partner:
            data["sp_appid"] = trade.appid
            data["sp_mchid"] = trade.mchid
            if trade.sub_appid:
                data["sub_appid"] = trade.sub_appid
            data["sub_mchid"] = trade.sub_mchid
        else:
            data["appid"] = trade.appid
            data["mchid"] = trade.mchid
        data["out_trade_no"] = trade.out_trade_no
        data["trade_type"] = trade.trade_type
        data["trade_state"] = trade.state
        data["trade_state_desc"] = _TRADE_DESC.get(trade.state, trade.state)
        data["attach"] = ""
        amount: dict[str, Any] = {"total": trade.total, "currency": "CNY"}
        if trade.state in ("SUCCESS", "REFUND"):
            data["transaction_id"] = trade.transaction_id
            data["bank_type"] = "OTHERS"
            assert trade.success_time is not None
            data["success_time"] = _time(trade.success_time)
            data["payer"] = {trade.payer_field: trade.openid}
            amount.update(payer_total=trade.total, payer_currency="CNY")
        data["amount"] = amount
        data["promotion_detail"] = []
        return data

    # --- refunds ----------------------------------------------------------------------------

    async def _refund(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        sub_mchid = str(body.get("sub_mchid", ""))
        if sub_mchid and sub_mchid not in merchant.sub_mchids:
            raise SandboxError(400, "INVALID_REQUEST", "特约商户号与服务商不匹配")
        out_trade_no = _required(body, "out_trade_no")
        out_refund_no = _required(body, "out_refund_no")
        if not re.fullmatch(r"[0-9A-Za-z_\-|*@]{1,64}", out_refund_no):
            raise SandboxError(400, "PARAM_ERROR", "out_refund_no 格式错误")
        raw_amount = body.get("amount")
        amount: dict[str, Any] = raw_amount if isinstance(raw_amount, dict) else {}
        refund_cents, total = amount.get("refund"), amount.get("total")
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund_cents, total)
        ):
            raise SandboxError(400, "PARAM_ERROR", "amount.refund 和 amount.total 必须为正整数")
        assert isinstance(refund_cents, int) and isinstance(total, int)
        trade = self.trades.get((merchant.mchid, sub_mchid, out_trade_no))
        if trade is None:
            raise SandboxError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = self.refunds.get((merchant.mchid, sub_mchid, out_refund_no))
        if existing is not None:
            if existing.trade is not trade or existing.amount != refund_cents:
                raise SandboxError(
                    400, "INVALID_REQUEST", "退款单号已被使用，请求参数与原退款不一致"
                )
            return 200, self._refund_json(existing)  # 同一退款单号多次请求只退一笔
        if trade.state not in ("SUCCESS", "REFUND"):
            raise SandboxError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != trade.total:
            raise SandboxError(
                400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试"
            )
        if trade.refunded + refund_cents > trade.total:
            raise SandboxError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = SandboxRefund(
            trade=trade,
            out_refund_no=out_refund_no,
            refund_id="50" + "".join(secrets.choice(string.digits) for _ in range(27)),
            amount=refund_cents,
            reason=str(body.get("reason", "")),
            notify_url=str(body.get("notify_url", "")),
            create_time=_now().replace(microsecond=0),
        )
        self.refunds[(merchant.mchid, sub_mchid, out_refund_no)] = refund
        trade.refunded += refund_cents
        trade.state = "REFUND"
        self._spawn(self._settle_refund(refund))
        return 200, self._refund_json(refund)

    async def _settle_refund(self, refund: SandboxRefund) -> None:
        await asyncio.sleep(self.refund_delay)
        outcome = self.faults.refund_outcome
        refund.status = outcome
        if outcome == "SUCCESS":
            refund.success_time = _now().replace(microsecond=0)
        elif outcome == "CLOSED":
            refund.trade.refunded -= refund.amount
        if refund.notify_url:
            self._notify_refund(refund)

    async def _query_refund(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        sub_mchid = request.query_params.get("sub_mchid", "")
        refund = self.refunds.get((merchant.mchid, sub_mchid, request.path_params["no"]))
        if refund is None:
            raise SandboxError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, self._refund_json(refund)

    def _refund_json(self, refund: SandboxRefund) -> dict[str, Any]:
        trade = refund.trade
        data: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": trade.transaction_id,
            "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _time(refund.create_time),
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": self._refund_amount(refund),
            "promotion_detail": [],
        }
        if refund.success_time is not None:
            data["success_time"] = _time(refund.success_time)
        return data

    @staticmethod
    def _refund_amount(refund: SandboxRefund) -> dict[str, Any]:
        return {
            "total": refund.trade.total,
            "refund": refund.amount,
            "payer_total": refund.trade.total,
            "payer_refund": refund.amount,
            "settlement_total": refund.trade.total,
            "settlement_refund": refund.amount,
            "discount_refund": 0,
            "currency": "CNY",
            "from": [],
        }

    # --- bills ------------------------------------------------------------------------------

    async def _tradebill(
        self, request: Request, merchant: SandboxMerchant, body: dict[str, Any]
    ) -> tuple[int, Any]:
        try:
            day = dt.date.fromisoformat(request.query_params.get("bill_date", ""))
        except ValueError:
            raise SandboxError(400, "PARAM_ERROR", "bill_date 格式应为 yyyy-MM-DD") from None
        if day > _now().astimezone(CHINA).date():
            raise SandboxError(400, "INVALID_REQUEST", "不能申请未来日期的账单")
        if request.query_params.get("bill_type", "ALL") != "ALL":
            raise SandboxError(400, "PARAM_ERROR", "沙箱仅提供 ALL 类型账单")
        sub_mchid = request.query_params.get("sub_mchid", "")
        if sub_mchid and sub_mchid not in merchant.sub_mchids:
            raise SandboxError(400, "INVALID_REQUEST", "特约商户号与服务商不匹配")
        content = self._bill(merchant.mchid, sub_mchid, day)
        if content is None:
            raise SandboxError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        token = secrets.token_urlsafe(24)
        self._bills[token] = (merchant.mchid, content, time.monotonic() + 300)
        root = str(request.scope.get("root_path", "")).rstrip("/")  # mounted under a prefix?
        base = str(request.url.replace(path=root, query="")).rstrip("/")
        return 200, {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            "download_url": f"{base}/v3/billdownload/file?{urlencode({'token': token})}",
        }

    async def _download(self, request: Request) -> Response:
        merchant = self._authenticate(request, await request.body())
        if isinstance(merchant, Response):
            return merchant
        entry = self._bills.get(request.query_params.get("token", ""))
        if entry is None or entry[0] != merchant.mchid or entry[2] < time.monotonic():
            return self._signed(400, {"code": "INVALID_REQUEST", "message": "下载地址无效或已过期"})
        content = entry[1]
        if self.faults.corrupt_bill:
            content = content.replace(b"`SUCCESS", b"`REFUND", 1)
        return Response(content, media_type="application/octet-stream")  # unsigned, like WeChat

    def _bill(self, mchid: str, sub_mchid: str, day: dt.date) -> bytes | None:
        def on_day(moment: dt.datetime | None) -> bool:
            return moment is not None and moment.astimezone(CHINA).date() == day

        def mine(trade: SandboxTrade) -> bool:
            return trade.mchid == mchid and (not sub_mchid or trade.sub_mchid == sub_mchid)

        rows: list[tuple[dt.datetime, list[str]]] = []
        settled = refunded = fees = Decimal(0)
        for trade in self.trades.values():
            if (
                not mine(trade)
                or not on_day(trade.success_time)
                or trade.state not in ("SUCCESS", "REFUND")
            ):
                continue
            assert trade.success_time is not None
            fee = (Decimal(trade.total) / 100 * _FEE_RATE).quantize(Decimal("0.00001"))
            settled += Decimal(trade.total) / 100
            fees += fee
            rows.append(
                (
                    trade.success_time,
                    self._bill_row(
                        trade, trade.success_time, "SUCCESS", fee=fee, order=_yuan(trade.total)
                    ),
                )
            )
        for refund in self.refunds.values():
            trade = refund.trade
            if not mine(trade) or not on_day(refund.create_time) or refund.status == "CLOSED":
                continue
            fee = -(Decimal(refund.amount) / 100 * _FEE_RATE).quantize(Decimal("0.00001"))
            refunded += Decimal(refund.amount) / 100
            fees += fee
            rows.append(
                (
                    refund.create_time,
                    self._bill_row(
                        trade, refund.create_time, "REFUND", fee=fee, order="0.00", refund=refund
                    ),
                )
            )
        if not rows:
            return None
        rows.sort(key=lambda row: row[0])
        lines = [_BILL_HEADER]
        lines += [",".join("`" + value for value in row) for _, row in rows]
        lines.append(_BILL_SUMMARY)
        summary = [
            str(len(rows)),
            f"{settled:.2f}",
            f"{refunded:.2f}",
            "0.00",
            f"{fees:.5f}",
            f"{settled:.2f}",
            f"{refunded:.2f}",
        ]
        lines.append(",".join("`" + value for value in summary))
        return ("\r\n".join(lines) + "\r\n").encode()

    @staticmethod
    def _bill_row(
        trade: SandboxTrade,
        moment: dt.datetime,
        state: str,
        *,
        fee: Decimal,
        order: str,
        refund: SandboxRefund | None = None,
    ) -> list[str]:
        return [
            moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            trade.sub_appid or trade.appid,
            trade.mchid,
            trade.sub_mchid or "0",
            "",
            trade.transaction_id,
            trade.out_trade_no,
            trade.openid,
            trade.trade_type,
            state,
            "OTHERS",
            "CNY",
            order,
            "0.00",
            refund.refund_id if refund else "0",
            refund.out_refund_no if refund else "0",
            _yuan(refund.amount) if refund else "0.00",
            "0.00",
            "ORIGINAL" if refund else "",
            refund.status if refund else "",
            trade.description,
            "",
            f"{fee:.5f}",
            "0.60%",
            order,
            _yuan(refund.amount) if refund else "0.00",
            "",
        ]

    # --- notifications ----------------------------------------------------------------------

    def _merchant_of(self, trade: SandboxTrade) -> SandboxMerchant:
        merchant = self.config.merchant(trade.mchid)
        assert merchant is not None
        return merchant

    def _notify(self, trade: SandboxTrade, event_type: str, resource: dict[str, Any]) -> None:
        self._spawn(self._deliver(trade.notify_url, self._merchant_of(trade), event_type, resource))

    def _notify_refund(self, refund: SandboxRefund) -> None:
        trade = refund.trade
        resource: dict[str, Any] = {}
        if trade.partner:
            resource["sp_mchid"] = trade.mchid
            resource["sub_mchid"] = trade.sub_mchid
        else:
            resource["mchid"] = trade.mchid
        resource.update(
            out_trade_no=trade.out_trade_no,
            transaction_id=trade.transaction_id,
            out_refund_no=refund.out_refund_no,
            refund_id=refund.refund_id,
            refund_status=refund.status,
            user_received_account="支付用户零钱",
            amount={
                "total": trade.total,
                "refund": refund.amount,
                "payer_total": trade.total,
                "payer_refund": refund.amount,
            },
        )
        if refund.success_time is not None:
            resource["success_time"] = _time(refund.success_time)
        self._spawn(
            self._deliver(
                refund.notify_url, self._merchant_of(trade), f"REFUND.{refund.status}", resource
            )
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, url: str, merchant: SandboxMerchant, event_type: str, resource: dict[str, Any]
    ) -> None:
        headers, body = build_notification(
            self.config.platform, merchant.apiv3_key, event_type=event_type, resource=resource
        )
        event_id = json.loads(body)["id"]
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False)
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            if self.faults.drop_notifications > 0:
                self.faults.drop_notifications -= 1
                self.deliveries.append(
                    Delivery(event_id, event_type, url, attempt, None, "dropped")
                )
                continue
            fresh = {
                **headers,
                **signed_headers(self.config.platform, body),
            }  # each attempt signs anew
            fresh["User-Agent"] = "Mozilla/4.0"
            try:
                response = await self._http.post(
                    url, content=body, headers=fresh, timeout=self.notify_timeout
                )
            except httpx.HTTPError as exc:
                self.deliveries.append(
                    Delivery(event_id, event_type, url, attempt, None, type(exc).__name__)
                )
                continue
            self.deliveries.append(
                Delivery(event_id, event_type, url, attempt, response.status_code)
            )
            if response.status_code in (200, 204):
                return
        log.info("wechatpay_sandbox.notify_gave_up", event_type=event_type, attempts=attempt)

    # --- sandbox pages ----------------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "merchants": [m.mchid for m in self.config.merchants]})

    async def _pay_page(self, request: Request) -> Response:
        trade = self._tokens.get(request.path_params["token"])
        if trade is None:
            return HTMLResponse(
                _page("订单不存在 · Unknown trade", "<p>订单不存在。The trade does not exist.</p>"),
                404,
            )
        back = _safe_return(request.query_params.get("return", ""))
        return HTMLResponse(_pay_html(trade, _pay_path(request), back, notice=""))

    async def _pay_action(self, request: Request) -> Response:
        token = request.path_params["token"]
        trade = self._tokens.get(token)
        if trade is None:
            return HTMLResponse(_page("订单不存在 · Unknown trade", "<p>订单不存在。</p>"), 404)
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        back = _safe_return((form.get("return") or [""])[0])
        action = request.path_params["action"]
        if action == "pay":
            try:
                await self.pay(token=token)
                notice = "支付成功 · Paid"
            except SandboxError as exc:
                notice = f"无法支付 · Cannot pay: {exc.message}"
        elif action == "cancel":
            notice = "已取消支付 · Payment cancelled"
        else:
            return HTMLResponse(_page("Not found", ""), 404)
        return HTMLResponse(_pay_html(trade, _pay_path(request), back, notice=notice))

    async def _pay_api(self, request: Request) -> Response:
        try:
            trade = await self.pay(
                request.path_params["no"], merchant_id=request.path_params["mchid"]
            )
        except KeyError:
            return JSONResponse({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, 404)
        except SandboxError as exc:
            return JSONResponse({"code": exc.code, "message": exc.message}, exc.status)
        return JSONResponse(
            {"out_trade_no": trade.out_trade_no, "transaction_id": trade.transaction_id}
        )

    async def _set_faults(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            for name, value in changes.items():
                if not hasattr(self.faults, name):
                    raise KeyError(name)
                setattr(self.faults, name, value)
        except (ValueError, KeyError, AttributeError) as exc:
            return JSONResponse({"code": "PARAM_ERROR", "message": f"bad fault switch: {exc}"}, 400)
        return JSONResponse(asdict(self.faults))


def _required(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise SandboxError(
            400,
            "PARAM_ERROR",
            f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项",
        )
    return value


def _error(status: int, code: str, message: str) -> Response:
    """An answer WeChat Pay does not sign (the request was not authenticated)."""
    return JSONResponse({"code": code, "message": message}, status)


def _safe_return(url: str) -> str:
    return url if re.match(r"^https?://[^\s\"'<>]+$", url) else ""


def _page(title: str, content: str) -> str:
    return page(title, content, background="#ededed", accent="#07c160", notice="#f0faf4")


def _pay_path(request: Request) -> str:
    """The pay page's path, under whatever prefix the sandbox is mounted at."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}/sandbox/pay/{request.path_params['token']}"


def _pay_html(trade: SandboxTrade, path: str, back: str, *, notice: str) -> str:
    esc = html.escape
    state = _TRADE_DESC.get(trade.state, trade.state)
    parts = [
        '<h1>微信支付 <span class="badge">沙箱 Sandbox</span></h1>',
        f'<div class="amount" data-testid="sandbox-amount">¥{_yuan(trade.total)}</div>',
        "<dl>",
        f"<dt>商品 · Item</dt><dd>{esc(trade.description)}</dd>",
        f"<dt>商户号 · Merchant</dt><dd>{esc(trade.merchant_id)}</dd>",
        f"<dt>商户订单号 · Order</dt><dd>{esc(trade.out_trade_no)}</dd>",
        f'<dt>状态 · Status</dt><dd data-testid="sandbox-state">{esc(state)}</dd>',
        "</dl>",
    ]
    if notice:
        parts.append(f'<p class="notice" data-testid="sandbox-notice">{esc(notice)}</p>')
    hidden = f'<input type="hidden" name="return" value="{esc(back)}">'
    if trade.state == "NOTPAY" and not notice.startswith("已取消"):
        parts.append(
            f'<form method="post" action="{esc(path)}/pay">{hidden}'
            '<button class="pay" type="submit" data-testid="sandbox-pay">支付 · Pay</button></form>'
            f'<form method="post" action="{esc(path)}/cancel">{hidden}'
            '<button class="cancel" type="submit" data-testid="sandbox-cancel">'
            "取消 · Cancel</button></form>"
        )
    if back:
        parts.append(
            f'<p><a href="{esc(back)}" data-testid="sandbox-return">'
            "返回商户 · Back to merchant</a></p>"
        )
    return _page("微信支付沙箱 · WeChat Pay sandbox", "".join(parts))


def sandbox_pay_url(sandbox_url: str, prepay: Prepay, *, return_url: str = "") -> str:
    """Where the demo sends the payer instead of the WeChat Pay sheet or a WeChat scan."""
    token = prepay.provider_reference
    if prepay.qr_content and "pr=" in prepay.qr_content:
        token = prepay.qr_content.split("pr=", 1)[1]
    if not token:
        raise ValueError("not a WeChat Pay prepay")
    url = f"{sandbox_url.rstrip('/')}/sandbox/pay/{token}"
    return f"{url}?{urlencode({'return': return_url})}" if return_url else url


def create_app(config: SandboxConfig, **options: Any) -> Starlette:
    """The sandbox as an ASGI app; the :class:`WeChatPaySandbox` is ``app.state.sandbox``."""
    sandbox = WeChatPaySandbox(config, **options)
    sandbox.app.state.sandbox = sandbox
    return sandbox.app


# --- running it -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(
    sandbox: WeChatPaySandbox, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``sandbox`` in this event loop (e.g. in pytest); yields its base URL."""
    async with serving(sandbox.app, host=host, port=port) as url:
        yield url


async def serve(
    host: str = "127.0.0.1", port: int = 8090, *, keys_path: Path, public_url: str = ""
) -> None:
    """Run the sandbox until cancelled (``linli sandbox-pay``); keys come from ``keys_path``.

    The merchant config our app needs is ``load_or_generate(keys_path, base_url=…)[1]``
    with the same file, so seeding the demo and this server agree on every key.
    """
    base_url = public_url or f"http://{host}:{port}"
    config, _ = load_or_generate(keys_path, base_url=base_url)
    sandbox = WeChatPaySandbox(config)
    server = uvicorn.Server(
        uvicorn.Config(sandbox.app, host=host, port=port, log_level="info", lifespan="on")
    )
    log.info(
        "wechatpay_sandbox.serving", url=base_url, merchants=[m.mchid for m in config.merchants]
    )
    await server.serve()
