"""支付宝 for one Alipay app: 当面付 precreate (QR), 手机网站支付 (wap), refunds, bills.

The client speaks the v1 open-platform protocol directly over httpx (async):

- **Requests** are the common parameters (``app_id``, ``method``, ``format=JSON``,
  ``charset=utf-8``, ``sign_type=RSA2``, ``timestamp`` in China time, ``version=1.0``,
  ``notify_url``/``return_url``/``app_auth_token`` where used) plus ``biz_content`` (the
  business fields as one JSON string), POSTed form-encoded to the gateway. ``sign`` is
  SHA256withRSA (PKCS#1 v1.5) with the app private key over every non-empty parameter but
  ``sign`` itself, sorted by name and joined as ``k=v&k=v`` with raw (not URL-encoded)
  values. The wap cashier (``alipay.trade.wap.pay``) is the same signed parameter set
  put on the gateway URL's query string: the payer's browser makes that request.
- **Responses** are ``{"<method with _>_response": {...}, "sign": "..."}``; the signature
  covers the *exact* text of the ``…_response`` value as received (found by scanning the
  top-level JSON, not by re-serialising it: re-serialising changes spacing, escapes and
  key order and would both fail genuine answers and open the door to ambiguity). A
  ``code`` of ``10000`` is success and must be signed; a business error (``40004`` etc.)
  is verified when signed and becomes ``REJECTED`` with its ``sub_code``. Only a verified
  ``ACQ.TRADE_NOT_EXIST`` turns into ``TradeStatus.UNKNOWN``. ``20000`` (service
  unavailable) and ``ACQ.SYSTEM_ERROR`` mean the outcome is unknown: ``UNAVAILABLE``.
- **Notifications** (异步通知) are form-encoded POSTs signed by Alipay over the sorted
  ``k=v`` string of every non-empty parameter except ``sign`` and ``sign_type``. A
  verified notification for another ``app_id`` (or, in service-provider mode, another
  ``auth_app_id``; or another ``seller_id`` when one is configured) is ``REJECTED``: it
  is Alipay's word, but about a merchant this gateway is not, so it is refused and
  flagged, never posted. Refunds arrive as ``trade_status_sync`` notifications of the
  original trade carrying ``refund_fee`` (the trade's *cumulative* refunded amount),
  ``gmt_refund`` and ``out_biz_no`` (our ``out_refund_no``). The answer is the text
  ``success``; anything else makes Alipay retry (4m, 10m, 10m, 1h, 2h, 6h, 15h).

Amounts cross the edge as yuan strings with at most two decimals (``"12.34"``) and are
converted to integer cents through ``Decimal`` only, never ``float``.

Why not ``python-alipay-sdk``: it is synchronous (``requests``/``urlopen``), so its
client would block our event loop; its crypto is ``pycryptodome`` (a second crypto stack
beside the pinned ``cryptography``); it verifies responses by re-serialising the parsed
JSON instead of over the raw substring; it reports bad signatures as ``False`` instead of
the distinct errors the payments service branches on; and it loads keys per instance
without caching. The protocol is small: ``cryptography`` does the RSA2 work here, with
parsed keys memoised per PEM, so a notification verifies in tens of microseconds.

Secrets (the app private key, ``app_auth_token``) are ``SecretStr`` and never logged;
nor is the buyer's id.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import functools
import io
import json
import math
import re
import ssl
import time
import zipfile
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import httpx
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from linli.payments.gateway import (
    BillLine,
    Channel,
    GatewayError,
    GatewayErrorCode,
    Notification,
    NotificationAnswer,
    Prepay,
    Provider,
    Refund,
    RefundStatus,
    Trade,
    TradeStatus,
    register_provider,
)

log = structlog.get_logger("linli.payments.alipay")

PROVIDER = "alipay"
DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
USER_AGENT = "linli-payments/1 (alipay-openapi; httpx)"
SUCCESS = "10000"
MAX_CENTS = 100_000_000_00  # Alipay's ceiling for one trade: 100,000,000.00 yuan
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"
REFUND_NOT_EXIST = "REFUND_NOT_EXIST"  # provider_code when Alipay knows the trade, not the refund
_UNKNOWN_OUTCOME = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR"})

TRADE_STATES: dict[str, TradeStatus] = {
    "WAIT_BUYER_PAY": TradeStatus.NOT_PAID,
    "TRADE_SUCCESS": TradeStatus.PAID,
    "TRADE_FINISHED": TradeStatus.PAID,
    "TRADE_CLOSED": TradeStatus.CLOSED,
}

_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
_YUAN = re.compile(r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$")
_DECODER = json.JSONDecoder(parse_float=Decimal)


# --- amounts and times ------------------------------------------------------------------------


def yuan(cents: int) -> str:
    """Integer cents as Alipay's yuan string: ``1234`` → ``"12.34"``."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def to_cents(text: str, *, signed: bool = False) -> int:
    """Alipay's yuan string to integer cents, exactly: ``"12.34"`` → ``1234``.

    At most two decimals; a third decimal, an exponent, ``NaN`` or a float-looking value
    (``"1e3"``) is refused rather than rounded, and so is a sign unless ``signed``
    (bill rows show refunds negative).
    """
    value = text.strip()
    if not _YUAN.match(value) or (value.startswith("-") and not signed):
        raise ValueError(f"not a yuan amount: {text!r}")
    try:
        cents = Decimal(value) * 100
    except InvalidOperation as exc:  # pragma: no cover - the pattern already rules it out
        raise ValueError(f"not a yuan amount: {text!r}") from exc
    return int(cents)


def china_time(moment: dt.datetime) -> str:
    """``2024-05-01 08:00:00``: the time format of every Alipay field, in China time."""
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def parse_china_time(text: str) -> dt.datetime:
    """An Alipay time (``yyyy-MM-dd HH:mm:ss``, optionally ``.SSS``) as aware UTC."""
    value = text.strip()
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in value else "%Y-%m-%d %H:%M:%S"
    return dt.datetime.strptime(value, fmt).replace(tzinfo=CHINA).astimezone(dt.UTC)


# --- keys and signatures ----------------------------------------------------------------------


def _pem(text: str, kind: str) -> bytes:
    """A PEM from what the Alipay console shows: either a PEM, or the bare base64 body."""
    body = text.strip()
    if body.startswith("-----BEGIN"):
        return body.encode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "-----BEGIN " + kind + "-----\n" + "\n".join(lines) + "\n-----END " + kind + "-----\n"
    ).encode()


@functools.lru_cache(maxsize=256)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The app private key (应用私钥): PKCS#8 or PKCS#1 PEM, or the console's bare base64."""
    text = pem.strip()
    if text.startswith("-----BEGIN"):
        key: object = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        der = base64.b64decode("".join(text.split()), validate=True)
        try:
            key = serialization.load_der_private_key(der, password=None)
        except ValueError:
            key = serialization.load_pem_private_key(_pem(text, "RSA PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("the app private key must be an RSA key of at least 2048 bits (RSA2)")
    return key


@functools.lru_cache(maxsize=256)
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """The Alipay public key (支付宝公钥): a ``PUBLIC KEY`` PEM or the console's bare base64."""
    key = serialization.load_pem_public_key(_pem(pem, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the Alipay public key must be an RSA key")
    return key


def sign_content(
    params: Mapping[str, str], *, exclude: frozenset[str] = frozenset({"sign"})
) -> str:
    """``k=v&k=v`` of the non-empty parameters not in ``exclude``, sorted by name, raw values."""
    return "&".join(
        f"{key}={params[key]}" for key in sorted(params) if key not in exclude and params[key] != ""
    )


NOTIFY_EXCLUDE = frozenset({"sign", "sign_type"})


def rsa2_sign(key: rsa.RSAPrivateKey, content: str) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of the UTF-8 content, base64."""
    return base64.b64encode(
        key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def rsa2_verify(key: rsa.RSAPublicKey, content: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _skip(text: str, index: int) -> int:
    """The index of the first non-whitespace character at or after ``index``."""
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def split_envelope(text: str) -> dict[str, tuple[Any, str]]:
    """The top-level members of a JSON object: name → (value, the value's exact text).

    Alipay signs the ``…_response`` member's text as sent; this finds it without
    re-serialising. Duplicate top-level names are refused (which one was signed?).
    """
    index = _skip(text, 0)
    if text[index : index + 1] != "{":
        raise ValueError("not a JSON object")
    index = _skip(text, index + 1)
    members: dict[str, tuple[Any, str]] = {}
    if text[index : index + 1] == "}":
        index += 1
    else:
        while True:
            if text[index : index + 1] != '"':
                raise ValueError("expected a member name")
            name, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
            index = _skip(text, index)
            if text[index : index + 1] != ":":
                raise ValueError("expected ':'")
            index = _skip(text, index + 1)
            value, end = _DECODER.raw_decode(text, index)
            if name in members:
                raise ValueError(f"duplicate member {name!r}")
            members[name] = (value, text[index:end])
            index = _skip(text, end)
            separator = text[index : index + 1]
            index += 1
            if separator == "}":
                break
            if separator != ",":
                raise ValueError("expected ',' or '}'")
            index = _skip(text, index)
    if text[index:].strip():
        raise ValueError("text after the JSON object")
    return members


# --- configuration ----------------------------------------------------------------------------


class AlipayConfig(BaseModel):
    """One Alipay app (开放平台应用) of a merchant, in 公钥模式 with RSA2.

    Service-provider mode (第三方应用代调用): ``app_id`` is the service provider's app,
    ``app_auth_token`` the merchant's authorisation token, and ``auth_app_id`` the
    merchant's own app id, which notifications carry and the gateway reports as its
    ``merchant_id``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    app_id: str = Field(pattern=r"^[0-9]{1,32}$", description="应用ID (APPID)")
    app_private_key: SecretStr = Field(description="应用私钥 (RSA2048, PEM or bare base64)")
    alipay_public_key: str = Field(description="支付宝公钥 (PEM or bare base64)")
    gateway_url: str = DEFAULT_GATEWAY_URL
    seller_id: str = Field("", pattern=r"^(2088[0-9]{12})?$", description="卖家支付宝用户ID (PID)")
    sign_type: Literal["RSA2"] = "RSA2"
    timeout_seconds: float = Field(10.0, gt=0, le=120)
    app_auth_token: SecretStr = Field(SecretStr(""), description="应用授权令牌 (服务商模式)")
    auth_app_id: str = Field("", pattern=r"^[0-9]{0,32}$", description="商户应用ID (服务商模式)")

    @field_validator("app_private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        try:
            load_private_key(value.get_secret_value())
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ValueError("app_private_key is not a usable RSA2 private key") from exc
        return value

    @field_validator("alipay_public_key")
    @classmethod
    def _public_key_loads(cls, value: str) -> str:
        try:
            load_public_key(value)
        except (ValueError, TypeError) as exc:
            raise ValueError("alipay_public_key is not an RSA public key") from exc
        return value

    @field_validator("gateway_url")
    @classmethod
    def _gateway_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+/\S*$", value):
            raise ValueError("gateway_url must be an http(s) URL such as …/gateway.do")
        return value

    @property
    def merchant_id(self) -> str:
        return self.auth_app_id or self.app_id

    def to_storage(self) -> dict[str, Any]:
        """Every field with secrets revealed: only for the encrypted merchant-account store."""
        data = self.model_dump(mode="json")
        data["app_private_key"] = self.app_private_key.get_secret_value()
        data["app_auth_token"] = self.app_auth_token.get_secret_value()
        return data


# --- the gateway ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every call: building one (loading the CA bundle) costs ~10 ms."""
    return httpx.create_ssl_context()


def _node_name(method: str) -> str:
    return method.replace(".", "_") + "_response"


class AlipayGateway:
    """:class:`~linli.payments.gateway.PaymentGateway` over the Alipay open platform.

    Without ``http`` each call opens its own connection; pass a long-lived
    ``httpx.AsyncClient`` to pool connections.
    """

    def __init__(
        self,
        config: AlipayConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._key = load_private_key(config.app_private_key.get_secret_value())
        self._alipay_key = load_public_key(config.alipay_public_key)

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def merchant_id(self) -> str:
        return self.config.merchant_id

    # --- orders ---------------------------------------------------------------------------

    async def create(
        self,
        *,
        channel: Channel,
        out_trade_no: str,
        description: str,
        amount_cents: int,
        notify_url: str,
        expires_at: dt.datetime,
        payer_id: str = "",
        return_url: str = "",
    ) -> Prepay:
        """Channel.NATIVE: ``alipay.trade.precreate`` → ``qr_code``; Channel.WAP: the signed
        ``alipay.trade.wap.pay`` URL for the payer's browser (Alipay creates the trade when
        the browser opens it, so until then ``query`` says ``UNKNOWN``)."""
        _check_out_trade_no(out_trade_no)
        if not 0 < amount_cents <= MAX_CENTS:
            raise GatewayError(GatewayErrorCode.MALFORMED, "amount_cents out of Alipay's range")
        subject = description.strip()[:256]
        if not subject:
            raise GatewayError(GatewayErrorCode.MALFORMED, "an Alipay trade needs a subject")
        remaining = (expires_at - dt.datetime.fromtimestamp(self._clock(), dt.UTC)).total_seconds()
        if remaining <= 0:
            raise GatewayError(GatewayErrorCode.MALFORMED, "expires_at is in the past")
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "total_amount": yuan(amount_cents),
            "subject": subject,
            "time_expire": china_time(expires_at),
            "timeout_express": f"{max(1, math.ceil(remaining / 60))}m",
        }
        if self.config.seller_id:
            biz["seller_id"] = self.config.seller_id
        if channel is Channel.NATIVE:
            biz["product_code"] = "FACE_TO_FACE_PAYMENT"
            data = await self._call("alipay.trade.precreate", biz, notify_url=notify_url)
            if data.get("out_trade_no") != out_trade_no or not data.get("qr_code"):
                raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another trade")
            return Prepay(qr_content=str(data["qr_code"]))
        if channel is Channel.WAP:
            biz["product_code"] = "QUICK_WAP_WAY"
            if return_url:
                biz["quit_url"] = return_url
            params = self.signed_params(
                "alipay.trade.wap.pay", biz, notify_url=notify_url, return_url=return_url
            )
            return Prepay(redirect_url=self.config.gateway_url + "?" + urlencode(params))
        raise GatewayError(GatewayErrorCode.MALFORMED, f"Alipay has no {channel.value} channel")

    async def query(self, out_trade_no: str) -> Trade:
        _check_out_trade_no(out_trade_no)
        try:
            data = await self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        except _NotFound:
            return Trade(out_trade_no, TradeStatus.UNKNOWN, self.merchant_id)
        if data.get("out_trade_no") != out_trade_no:
            raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another trade")
        return self._trade_from(
            data, paid_at_field="send_pay_date", payer_fields=("buyer_user_id", "buyer_open_id")
        )

    async def close(self, out_trade_no: str) -> None:
        _check_out_trade_no(out_trade_no)
        try:
            await self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        except _NotFound:
            return  # never opened (a wap URL nobody visited): nothing to close
        except GatewayError as exc:
            if exc.provider_code != TRADE_STATUS_ERROR:
                raise
            trade = await self.query(out_trade_no)
            if trade.status not in (TradeStatus.CLOSED, TradeStatus.UNKNOWN):
                raise GatewayError(
                    GatewayErrorCode.REJECTED,
                    f"Alipay: the trade is {trade.status.value}, it cannot be closed",
                    provider_code=TRADE_STATUS_ERROR,
                ) from None

    # --- refunds --------------------------------------------------------------------------

    async def refund(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        amount_cents: int,
        total_cents: int,
        reason: str,
        notify_url: str,
    ) -> Refund:
        """``alipay.trade.refund`` with ``out_request_no = out_refund_no``.

        Alipay refunds synchronously: ``10000`` means the money went back. Asking again
        with the same ``out_request_no`` changes nothing (``fund_change = N``); the refund
        is then read back with the refund query so the amount is that refund's own.
        Refund notifications go to the trade's original ``notify_url`` (Alipay has no
        per-refund URL), so ``notify_url`` is not sent.
        """
        _check_out_trade_no(out_trade_no)
        if not 0 < amount_cents <= total_cents:
            raise GatewayError(GatewayErrorCode.MALFORMED, "refund amount must be in (0, total]")
        if not _OUT_TRADE_NO.match(out_refund_no):
            raise GatewayError(GatewayErrorCode.MALFORMED, "bad out_refund_no")
        biz: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "refund_amount": yuan(amount_cents),
            "out_request_no": out_refund_no,
        }
        if reason.strip():
            biz["refund_reason"] = reason.strip()[:256]
        try:
            data = await self._call("alipay.trade.refund", biz)
        except _NotFound as exc:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "Alipay: the trade does not exist",
                provider_code=exc.code,
            ) from None
        if data.get("out_trade_no") != out_trade_no:
            raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another trade")
        if data.get("fund_change") != "Y":
            return await self.query_refund(out_trade_no=out_trade_no, out_refund_no=out_refund_no)
        refunded_at = data.get("gmt_refund_pay")
        return Refund(
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            status=RefundStatus.SUCCEEDED,
            amount_cents=amount_cents,
            provider_refund_no=str(data.get("trade_no", "")),
            refunded_at=_time_or_none(refunded_at),
        )

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> Refund:
        """``alipay.trade.fastpay.refund.query``; a refund Alipay never received is
        ``REJECTED`` with ``provider_code`` :data:`REFUND_NOT_EXIST` (ask again with the
        same ``out_refund_no``: it is idempotent)."""
        _check_out_trade_no(out_trade_no)
        biz = {
            "out_trade_no": out_trade_no,
            "out_request_no": out_refund_no,
            "query_options": ["gmt_refund_pay"],
        }
        try:
            data = await self._call("alipay.trade.fastpay.refund.query", biz)
        except _NotFound as exc:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "Alipay: the trade does not exist",
                provider_code=exc.code,
            ) from None
        if not data.get("refund_amount"):
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "Alipay has no such refund",
                provider_code=REFUND_NOT_EXIST,
            )
        if data.get("out_request_no", out_refund_no) != out_refund_no:
            raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another refund")
        try:
            amount = to_cents(str(data["refund_amount"]))
            refunded_at = _time_or_none(data.get("gmt_refund_pay"))
        except ValueError as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "bad refund query answer") from exc
        # No refund_status: "not received or failed" (Alipay); received it was, so still going.
        succeeded = data.get("refund_status") == "REFUND_SUCCESS"
        return Refund(
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            status=RefundStatus.SUCCEEDED if succeeded else RefundStatus.PROCESSING,
            amount_cents=amount,
            provider_refund_no=str(data.get("trade_no", "")),
            refunded_at=refunded_at,
        )

    # --- bills ----------------------------------------------------------------------------

    async def download_bill(self, day: dt.date) -> list[BillLine]:
        """``alipay.data.dataservice.bill.downloadurl.query`` (bill_type ``trade``), then the
        zip it points to; the 业务明细 CSV inside (GBK) gives payments (交易) and refunds (退款).
        Alipay serves a day's bill from about 09:00 the next day (``isp.bill_not_exist``
        before: ``REJECTED``)."""
        data = await self._call(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": day.isoformat()},
        )
        url = str(data.get("bill_download_url", ""))
        if not re.match(r"^https?://", url):
            raise GatewayError(GatewayErrorCode.MALFORMED, "no bill_download_url in the answer")
        try:
            if self._http is not None:
                response = await self._http.get(url, timeout=self.config.timeout_seconds)
            else:
                async with httpx.AsyncClient(
                    timeout=self.config.timeout_seconds, verify=_tls()
                ) as client:
                    response = await client.get(url)
        except httpx.TimeoutException:
            raise GatewayError(GatewayErrorCode.UNAVAILABLE, "bill download timed out") from None
        except httpx.TransportError:
            raise GatewayError(GatewayErrorCode.UNAVAILABLE, "bill server unreachable") from None
        if response.status_code >= 500:
            raise GatewayError(
                GatewayErrorCode.UNAVAILABLE, f"bill download {response.status_code}"
            )
        if response.status_code != 200:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                f"bill download refused ({response.status_code}): the URL lives 30 seconds",
                provider_code=f"http_{response.status_code}",
            )
        return parse_trade_bill(response.content, merchant_id=self.merchant_id)

    # --- notifications --------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        params = self.verify_form(body)
        if params.get("app_id") != self.config.app_id or (
            self.config.auth_app_id and params.get("auth_app_id") != self.config.auth_app_id
        ):
            log.warning("alipay.notify_other_app", app_id=params.get("app_id", ""))
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "a notification for another Alipay app",
                provider_code="app_id",
            )
        seller = params.get("seller_id", "")
        if self.config.seller_id and seller and seller != self.config.seller_id:
            log.warning("alipay.notify_other_seller")
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "a notification for another seller",
                provider_code="seller_id",
            )
        event_id = params.get("notify_id", "")
        out_trade_no = params.get("out_trade_no", "")
        if not event_id or not out_trade_no:
            raise GatewayError(
                GatewayErrorCode.MALFORMED, "notify_id and out_trade_no are required"
            )
        try:
            if "refund_fee" in params or "gmt_refund" in params or "out_biz_no" in params:
                out_refund_no = params.get("out_biz_no", "")
                if not out_refund_no or not params.get("refund_fee"):
                    raise ValueError("a refund notification needs out_biz_no and refund_fee")
                refund = Refund(
                    out_trade_no=out_trade_no,
                    out_refund_no=out_refund_no,
                    status=RefundStatus.SUCCEEDED,
                    amount_cents=to_cents(params["refund_fee"]),  # the trade's refunded total
                    provider_refund_no=params.get("trade_no", ""),
                    refunded_at=_time_or_none(params.get("gmt_refund")),
                )
                return Notification(event_id=event_id, refund=refund)
            trade = self._trade_from(
                params, paid_at_field="gmt_payment", payer_fields=("buyer_id", "buyer_open_id")
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise GatewayError(
                GatewayErrorCode.MALFORMED, f"bad Alipay notification: {exc}"
            ) from exc
        return Notification(event_id=event_id, trade=trade)

    def answer(self, *, accepted: bool) -> NotificationAnswer:
        if accepted:
            return NotificationAnswer(status_code=200, body=b"success", media_type="text/plain")
        return NotificationAnswer(status_code=500, body=b"fail", media_type="text/plain")

    def verify_form(self, body: bytes) -> dict[str, str]:
        """Parse and verify a form Alipay signed (notification); raise ``GatewayError``."""
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict"
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "not a form-encoded body") from exc
        params = dict(pairs)
        if len(params) != len(pairs):
            raise GatewayError(GatewayErrorCode.MALFORMED, "a parameter appears twice")
        self.verify_params(params)
        return params

    def verify_params(self, params: Mapping[str, str]) -> None:
        """Check Alipay's ``sign`` over sorted params without ``sign``/``sign_type``."""
        signature = params.get("sign", "")
        if not signature:
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, "not signed by Alipay")
        if params.get("sign_type", "RSA2") != "RSA2":
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, "only RSA2 signatures are accepted")
        if not rsa2_verify(
            self._alipay_key, sign_content(params, exclude=NOTIFY_EXCLUDE), signature
        ):
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, "Alipay signature does not verify")

    def parse_return(self, query: Mapping[str, str]) -> str:
        """The browser's return from the wap cashier (同步返回): verify it, give out_trade_no.

        The return only says the payer came back; the trade's state comes from
        :meth:`query` or the notification.
        """
        self.verify_params(query)
        if query.get("app_id") != self.config.app_id or not query.get("out_trade_no"):
            raise GatewayError(GatewayErrorCode.REJECTED, "a return for another Alipay app")
        return query["out_trade_no"]

    # --- protocol -------------------------------------------------------------------------

    def signed_params(
        self,
        method: str,
        biz: Mapping[str, Any],
        *,
        notify_url: str = "",
        return_url: str = "",
    ) -> dict[str, str]:
        """The common parameters with ``biz_content`` and ``sign`` for one request."""
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": china_time(dt.datetime.fromtimestamp(self._clock(), dt.UTC)),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        token = self.config.app_auth_token.get_secret_value()
        if token:
            params["app_auth_token"] = token
        params["sign"] = rsa2_sign(self._key, sign_content(params))
        return params

    def verify_response(self, text: str, method: str) -> tuple[dict[str, Any], bool]:
        """The ``…_response`` node of an answer and whether Alipay's signature covered it."""
        try:
            members = split_envelope(text)
        except ValueError as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "Alipay answered non-JSON") from exc
        node = members.get(_node_name(method)) or members.get("error_response")
        if node is None or not isinstance(node[0], dict):
            raise GatewayError(GatewayErrorCode.MALFORMED, f"no {_node_name(method)} in the answer")
        data, raw = node
        sign = members.get("sign", (None, ""))[0]
        if sign:
            if not isinstance(sign, str) or not rsa2_verify(self._alipay_key, raw, sign):
                raise GatewayError(
                    GatewayErrorCode.BAD_SIGNATURE, "Alipay answer signature does not verify"
                )
            return data, True
        if data.get("code") == SUCCESS:
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, "an unsigned success answer")
        return data, False

    async def _call(
        self, method: str, biz: Mapping[str, Any], *, notify_url: str = ""
    ) -> dict[str, Any]:
        params = self.signed_params(method, biz, notify_url=notify_url)
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
        }
        content = urlencode(params).encode()
        try:
            if self._http is not None:
                response = await self._http.post(
                    self.config.gateway_url,
                    content=content,
                    headers=headers,
                    timeout=self.config.timeout_seconds,
                )
            else:
                async with httpx.AsyncClient(
                    timeout=self.config.timeout_seconds, verify=_tls()
                ) as client:
                    response = await client.post(
                        self.config.gateway_url, content=content, headers=headers
                    )
        except httpx.TimeoutException:
            log.warning("alipay.timeout", method=method)
            raise GatewayError(
                GatewayErrorCode.UNAVAILABLE, "Alipay did not answer in time"
            ) from None
        except httpx.TransportError as exc:
            log.warning("alipay.unreachable", method=method, error=type(exc).__name__)
            raise GatewayError(GatewayErrorCode.UNAVAILABLE, "Alipay is unreachable") from None
        if response.status_code >= 500:
            log.warning("alipay.server_error", method=method, status=response.status_code)
            raise GatewayError(
                GatewayErrorCode.UNAVAILABLE,
                f"Alipay answered {response.status_code}",
                provider_code=f"http_{response.status_code}",
            )
        if response.status_code != 200:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                f"Alipay answered HTTP {response.status_code}",
                provider_code=f"http_{response.status_code}",
            )
        try:
            text = response.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "Alipay answered non-UTF-8") from exc
        data, verified = self.verify_response(text, method)
        code = str(data.get("code", ""))
        if code == SUCCESS:
            return data
        sub_code = str(data.get("sub_code", "")) or code
        message = str(data.get("sub_msg") or data.get("msg") or "")
        if code == "20000" or sub_code in _UNKNOWN_OUTCOME:
            log.warning("alipay.system_error", method=method, code=code, sub_code=sub_code)
            raise GatewayError(
                GatewayErrorCode.UNAVAILABLE, f"Alipay: {message}", provider_code=sub_code
            )
        log.info("alipay.rejected", method=method, code=code, sub_code=sub_code, signed=verified)
        if sub_code == TRADE_NOT_EXIST and verified:
            raise _NotFound(sub_code)
        raise GatewayError(GatewayErrorCode.REJECTED, f"Alipay: {message}", provider_code=sub_code)

    def _trade_from(
        self, data: Mapping[str, Any], *, paid_at_field: str, payer_fields: tuple[str, ...]
    ) -> Trade:
        state = str(data.get("trade_status", ""))
        status = TRADE_STATES.get(state)
        if status is None:
            raise ValueError(f"unknown trade_status {state!r}")
        total = to_cents(str(data["total_amount"]))
        paid_at = _time_or_none(data.get(paid_at_field))
        paid = 0
        if status is TradeStatus.PAID or (status is TradeStatus.CLOSED and paid_at is not None):
            # 实收金额: what reaches the merchant (Alipay-funded coupons do not lower it).
            paid = to_cents(str(data.get("receipt_amount") or data["total_amount"]))
        payer = next((str(data[name]) for name in payer_fields if data.get(name)), "")
        return Trade(
            out_trade_no=str(data["out_trade_no"]),
            status=status,
            merchant_id=self.merchant_id,
            amount_cents=total,
            paid_cents=paid,
            provider_trade_no=str(data.get("trade_no", "")),
            paid_at=paid_at,
            payer=payer,
        )


class _NotFound(Exception):
    """A verified ``ACQ.TRADE_NOT_EXIST``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _check_out_trade_no(out_trade_no: str) -> None:
    if not _OUT_TRADE_NO.match(out_trade_no):
        raise GatewayError(GatewayErrorCode.MALFORMED, "bad out_trade_no (1-64 of 0-9A-Za-z_-)")


def _time_or_none(value: Any) -> dt.datetime | None:
    return parse_china_time(str(value)) if value else None


# --- trade bill -------------------------------------------------------------------------------

_BILL_BEGIN = "业务明细列表"
_BILL_END = "业务明细列表结束"


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Alipay's zips name entries in GBK without the UTF-8 flag; Python read them as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def parse_trade_bill(content: bytes, *, merchant_id: str) -> list[BillLine]:
    """The 业务明细 file of a ``trade`` bill zip as bill lines.

    Layout: ``#`` comment lines, a ``#---业务明细列表---`` marker, the header row
    (支付宝交易号, 商户订单号, 业务类型, …, 完成时间, …, 订单金额（元）, …, 退款批次号/请求号, …),
    the rows (cells padded with tabs), ``#---业务明细列表结束---`` and totals. Columns are
    found by name; 业务类型 交易 is a payment, 退款 a refund (its 订单金额 negative, its
    退款批次号 our out_refund_no); 完成时间 is China time. A file without the end marker
    (cut off) is refused.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        entries = [
            info
            for info in archive.infolist()
            if "汇总" not in _zip_name(info) and not info.is_dir()
        ]
        if len(entries) != 1:
            raise ValueError("expected one 业务明细 file in the bill zip")
        raw = archive.read(entries[0])
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise GatewayError(GatewayErrorCode.MALFORMED, f"bad bill archive: {exc}") from exc
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise GatewayError(GatewayErrorCode.MALFORMED, "the bill is not GBK") from exc
    lines = text.splitlines()
    try:
        begin = next(
            i
            for i, line in enumerate(lines)
            if line.startswith("#") and _BILL_BEGIN in line and _BILL_END not in line
        )
        end = next(i for i, line in enumerate(lines) if line.startswith("#") and _BILL_END in line)
    except StopIteration:
        raise GatewayError(
            GatewayErrorCode.MALFORMED, "the bill lacks its detail markers"
        ) from None
    rows = list(csv.reader(lines[begin + 1 : end]))
    if not rows:
        raise GatewayError(GatewayErrorCode.MALFORMED, "the bill has no header")
    header = [cell.strip() for cell in rows[0]]

    def column(prefix: str) -> int:
        for index, name in enumerate(header):
            if name.startswith(prefix):
                return index
        raise GatewayError(GatewayErrorCode.MALFORMED, f"the bill lacks the column {prefix}")

    trade_no, out_no, kind = column("支付宝交易号"), column("商户订单号"), column("业务类型")
    created, finished, amount = column("创建时间"), column("完成时间"), column("订单金额")
    batch = column("退款批次号")
    lines_out: list[BillLine] = []
    for row in rows[1:]:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        try:
            business = cells[kind]
            if business not in ("交易", "退款"):
                continue  # other business types (e.g. 分账) are not trades of ours
            moment = cells[finished] or cells[created]
            lines_out.append(
                BillLine(
                    out_trade_no=cells[out_no],
                    provider_trade_no=cells[trade_no],
                    merchant_id=merchant_id,
                    kind="payment" if business == "交易" else "refund",
                    amount_cents=abs(to_cents(cells[amount], signed=True)),
                    occurred_at=parse_china_time(moment),
                    out_refund_no=cells[batch] if business == "退款" else "",
                )
            )
        except (IndexError, ValueError) as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, f"bad bill row: {exc}") from exc
    return lines_out


def build(config: Mapping[str, Any] | AlipayConfig) -> AlipayGateway:
    """The provider factory: a gateway for one Alipay app's stored configuration."""
    if not isinstance(config, AlipayConfig):
        config = AlipayConfig.model_validate(config)
    return AlipayGateway(config)


register_provider(Provider(PROVIDER, AlipayConfig, build))
