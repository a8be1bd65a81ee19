"""微信支付 API v3 for one merchant: JSAPI and Native orders, refunds, notifications, bills.

The client speaks the v3 wire protocol directly over httpx (async):

- **Requests** carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"``; the signature is SHA256withRSA (PKCS#1 v1.5)
  with the merchant's API key over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``, where
  PATH?QUERY is the request line's target exactly as sent and BODY the exact bytes sent.
- **Responses and notifications** are signed by WeChat Pay over
  ``TIMESTAMP\\nNONCE\\nBODY\\n`` (headers ``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature``,
  ``-Serial``). The serial names the key: a WeChat Pay public key id (``PUB_KEY_ID_…``,
  公钥模式) or a platform certificate serial (平台证书模式); a serial we do not hold is
  ``UNKNOWN_SERIAL``, a timestamp outside ±``max_clock_skew_seconds`` (5 minutes) is
  ``STALE_TIMESTAMP``, a signature that does not verify (including WeChat's
  ``WECHATPAY/SIGNTEST/`` probes) is ``BAD_SIGNATURE``. Every 2xx response is verified
  before its content is used; a 4xx is verified when signed, and only a verified
  ``ORDER_NOT_EXIST`` turns into ``TradeStatus.UNKNOWN``. The bill file download is the
  one unsigned response: it is checked against the SHA1 ``hash_value`` of the signed
  ``tradebill`` answer instead.
- **Notification resources** are AEAD_AES_256_GCM with the APIv3 key, the resource's
  ``nonce`` and ``associated_data``; a tag mismatch is ``BAD_CIPHERTEXT``.

Why not the ``wechatpayv3`` package: it is synchronous (``requests``), so using its
client would put blocking HTTP on our event loop, and its signing helpers are thin
wrappers over ``cryptography`` that serialise the JSON body themselves (we must sign the
exact bytes we send), load the key on every call and report failures as booleans
rather than the distinct errors the payments service branches on. ``cryptography``
(already pinned) does the work here directly, with the parsed keys and the AES-GCM
cipher kept per merchant (and key parsing memoised per PEM), which keeps a notification's
verify + decrypt at a few tens of microseconds.

Service-provider mode (服务商, ``sub_mchid`` set) uses the ``/v3/pay/partner/…`` order
endpoints with ``sp_appid``/``sp_mchid``/``sub_appid``/``sub_mchid`` and passes
``sub_mchid`` to refunds and bills; the gateway's ``merchant_id`` is then the sub-merchant.

Secrets (merchant private key, APIv3 key) are ``SecretStr`` and never logged; nor is
the payer's openid.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import re
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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

log = structlog.get_logger("linli.payments.wechatpay")

PROVIDER = "wechatpay"
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
USER_AGENT = "linli-payments/1 (wechatpay-v3; httpx)"

_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-*]{6,32}$")
_OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
_NOT_FOUND = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})

TRADE_STATES: dict[str, TradeStatus] = {
    "SUCCESS": TradeStatus.PAID,
    "REFUND": TradeStatus.REFUNDED,
    "NOTPAY": TradeStatus.NOT_PAID,
    "CLOSED": TradeStatus.CLOSED,
    "REVOKED": TradeStatus.CLOSED,
    "USERPAYING": TradeStatus.PAYING,
    "PAYERROR": TradeStatus.FAILED,
}
REFUND_STATES: dict[str, RefundStatus] = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "CLOSED": RefundStatus.CLOSED,
    "PROCESSING": RefundStatus.PROCESSING,
    "ABNORMAL": RefundStatus.ABNORMAL,
}
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})


# --- keys -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#8 ``apiclient_key.pem`` or PKCS#1); memoised."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("the merchant private key must be an RSA key of at least 2048 bits")
    return key


@functools.lru_cache(maxsize=256)
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from a ``PUBLIC KEY`` PEM or from a certificate PEM; memoised."""
    data = pem.encode()
    if b"CERTIFICATE" in data:
        key: object = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return key


@functools.lru_cache(maxsize=256)
def certificate_serial(pem: str) -> str:
    """A certificate's serial the way WeChat Pay writes it: upper-case hex."""
    return format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "X")


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5), base64: the one signature scheme of APIv3."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def nonce_str() -> str:
    return secrets.token_hex(16).upper()


def request_message(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a merchant signs: method, path with query, timestamp, nonce, body, each + LF."""
    return f"{method}\n{target}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs on a response or a notification."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def parse_authorization(header: str) -> dict[str, str]:
    """The ``key="value"`` pairs of a ``WECHATPAY2-SHA256-RSA2048`` Authorization header."""
    scheme, _, params = header.strip().partition(" ")
    if scheme != SCHEMA:
        return {}
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def rfc3339(moment: dt.datetime) -> str:
    """``2018-06-08T10:34:56+08:00``: the only time format APIv3 takes."""
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA)
    return value.astimezone(dt.UTC)


# --- configuration ----------------------------------------------------------------------------


class WeChatPayConfig(BaseModel):
    """One WeChat Pay merchant account (直连商户, or a 服务商 acting for ``sub_mchid``).

    ``platform_public_key`` + ``platform_public_key_id`` is the WeChat Pay public key
    (公钥模式, id ``PUB_KEY_ID_…``); ``platform_certificates`` maps platform certificate
    serials to their PEM (平台证书模式). Either or both may be set: during a switch from
    certificates to the public key WeChat Pay may sign with either.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    mchid: str = Field(pattern=r"^[0-9]{1,32}$", description="商户号 (服务商模式: sp_mchid)")
    appid: str = Field(min_length=1, max_length=32, description="公众号 appid (服务商: sp_appid)")
    merchant_serial_no: str = Field(pattern=r"^[0-9A-Fa-f]{1,64}$", description="商户API证书序列号")
    merchant_private_key: SecretStr = Field(description="商户API私钥 apiclient_key.pem")
    apiv3_key: SecretStr = Field(description="APIv3 密钥, 32 characters")
    platform_public_key_id: str = Field("", max_length=64, description="微信支付公钥ID")
    platform_public_key: str = Field("", description="微信支付公钥 PEM")
    platform_certificates: dict[str, str] = Field(
        default_factory=dict, description="平台证书: serial → certificate PEM"
    )
    sub_mchid: str = Field("", pattern=r"^[0-9]{0,32}$", description="子商户号 (服务商模式)")
    sub_appid: str = Field("", max_length=32, description="子商户 appid (服务商模式, optional)")
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = Field(10.0, gt=0, le=120)
    max_clock_skew_seconds: int = Field(300, ge=1, le=3600)

    @field_validator("merchant_private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        try:
            load_private_key(value.get_secret_value())
        except (ValueError, TypeError) as exc:
            raise ValueError("merchant_private_key is not a usable RSA private key PEM") from exc
        return value

    @field_validator("apiv3_key")
    @classmethod
    def _apiv3_key_length(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.isascii() or len(raw.encode()) != 32:
            raise ValueError("apiv3_key must be 32 ASCII characters")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _platform_keys(self) -> WeChatPayConfig:
        if bool(self.platform_public_key) != bool(self.platform_public_key_id):
            raise ValueError("platform_public_key and platform_public_key_id go together")
        if not self.platform_public_key and not self.platform_certificates:
            raise ValueError("a WeChat Pay public key or platform certificate is required")
        if self.sub_appid and not self.sub_mchid:
            raise ValueError("sub_appid is only used with sub_mchid (service-provider mode)")
        try:
            if self.platform_public_key:
                load_public_key(self.platform_public_key)
            for serial, pem in self.platform_certificates.items():
                load_public_key(pem)
                if "CERTIFICATE" in pem and certificate_serial(pem) != serial.upper():
                    raise ValueError(f"platform certificate {serial} has another serial")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"platform key: {exc}") from exc
        return self

    @property
    def service_provider(self) -> bool:
        return bool(self.sub_mchid)

    def to_storage(self) -> dict[str, Any]:
        """Every field with secrets revealed: only for the encrypted merchant-account store."""
        data = self.model_dump(mode="json")
        data["merchant_private_key"] = self.merchant_private_key.get_secret_value()
        data["apiv3_key"] = self.apiv3_key.get_secret_value()
        return data


# --- the gateway ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every call: building one (loading the CA bundle) costs ~10 ms."""
    return httpx.create_ssl_context()


class WeChatPayGateway:
    """:class:`~linli.payments.gateway.PaymentGateway` over WeChat Pay API v3.

    Without ``http`` each call opens its own connection (payments are a few calls a
    minute per merchant); pass a long-lived ``httpx.AsyncClient`` to pool connections.
    """

    def __init__(
        self,
        config: WeChatPayConfig,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._key = load_private_key(config.merchant_private_key.get_secret_value())
        self._aead = AESGCM(config.apiv3_key.get_secret_value().encode())
        keys: dict[str, rsa.RSAPublicKey] = {}
        for serial, pem in config.platform_certificates.items():
            keys[serial.upper()] = load_public_key(pem)
        if config.platform_public_key_id:
            keys[config.platform_public_key_id] = load_public_key(config.platform_public_key)
        self._platform = keys

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def merchant_id(self) -> str:
        return self.config.sub_mchid or self.config.mchid

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
        _check_out_trade_no(out_trade_no)
        if amount_cents <= 0:
            raise GatewayError(GatewayErrorCode.MALFORMED, "amount_cents must be positive")
        if channel not in (Channel.JSAPI, Channel.NATIVE):
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                f"WeChat Pay orders here are JSAPI or Native, not {channel.value}",
                provider_code="UNSUPPORTED_CHANNEL",
            )
        if channel is Channel.JSAPI and not payer_id:
            raise GatewayError(GatewayErrorCode.MALFORMED, "a JSAPI order needs the payer's openid")
        cfg = self.config
        body: dict[str, Any] = {}
        if cfg.service_provider:
            body["sp_appid"] = cfg.appid
            body["sp_mchid"] = cfg.mchid
            if cfg.sub_appid:
                body["sub_appid"] = cfg.sub_appid
            body["sub_mchid"] = cfg.sub_mchid
        else:
            body["appid"] = cfg.appid
            body["mchid"] = cfg.mchid
        body["description"] = _truncate_utf8(description or out_trade_no, 127)
        body["out_trade_no"] = out_trade_no
        body["time_expire"] = rfc3339(expires_at)
        body["notify_url"] = notify_url
        body["amount"] = {"total": amount_cents, "currency": "CNY"}
        if channel is Channel.JSAPI:
            if cfg.service_provider:
                body["payer"] = {"sub_openid" if cfg.sub_appid else "sp_openid": payer_id}
            else:
                body["payer"] = {"openid": payer_id}
        kind = "jsapi" if channel is Channel.JSAPI else "native"
        path = (
            f"/v3/pay/partner/transactions/{kind}"
            if cfg.service_provider
            else (f"/v3/pay/transactions/{kind}")
        )
        data = await self._call("POST", path, body=body)
        if channel is Channel.NATIVE:
            code_url = _field(data, "code_url")
            return Prepay(qr_content=code_url)
        prepay_id = _field(data, "prepay_id")
        return Prepay(provider_reference=prepay_id, jsapi_params=self.jsapi_params(prepay_id))

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` takes, signed (paySign)."""
        cfg = self.config
        app_id = cfg.sub_appid if cfg.service_provider and cfg.sub_appid else cfg.appid
        timestamp = str(int(self._clock()))
        nonce = nonce_str()
        package = f"prepay_id={prepay_id}"
        message = f"{app_id}\n{timestamp}\n{nonce}\n{package}\n".encode()
        return {
            "appId": app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": sign(self._key, message),
        }

    async def query(self, out_trade_no: str) -> Trade:
        _check_out_trade_no(out_trade_no)
        cfg = self.config
        if cfg.service_provider:
            path = f"/v3/pay/partner/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            params = {"sp_mchid": cfg.mchid, "sub_mchid": cfg.sub_mchid}
        else:
            path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            params = {"mchid": cfg.mchid}
        try:
            data = await self._call("GET", path, query=params)
        except _NotFound:
            return Trade(
                out_trade_no=out_trade_no, status=TradeStatus.UNKNOWN, merchant_id=self.merchant_id
            )
        trade = self.trade_from(data)
        if trade.out_trade_no != out_trade_no:
            raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another trade")
        return trade

    async def close(self, out_trade_no: str) -> None:
        _check_out_trade_no(out_trade_no)
        cfg = self.config
        no = quote(out_trade_no, safe="")
        if cfg.service_provider:
            path = f"/v3/pay/partner/transactions/out-trade-no/{no}/close"
            body = {"sp_mchid": cfg.mchid, "sub_mchid": cfg.sub_mchid}
        else:
            path = f"/v3/pay/transactions/out-trade-no/{no}/close"
            body = {"mchid": cfg.mchid}
        try:
            await self._call("POST", path, body=body)
        except _NotFound:
            return
        except GatewayError as exc:
            if exc.provider_code in ("ORDER_CLOSED", "ORDERCLOSED"):
                return
            raise

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
        _check_out_trade_no(out_trade_no)
        _check_out_refund_no(out_refund_no)
        if amount_cents <= 0 or total_cents <= 0:
            raise GatewayError(GatewayErrorCode.MALFORMED, "refund amounts must be positive")
        if amount_cents > total_cents:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "the refund is larger than the order",
                provider_code="INVALID_REQUEST",
            )
        body: dict[str, Any] = {}
        if self.config.service_provider:
            body["sub_mchid"] = self.config.sub_mchid
        body["out_trade_no"] = out_trade_no
        body["out_refund_no"] = out_refund_no
        if reason:
            body["reason"] = _truncate_utf8(reason, 80)
        if notify_url:
            body["notify_url"] = notify_url
        body["amount"] = {"refund": amount_cents, "total": total_cents, "currency": "CNY"}
        try:
            data = await self._call("POST", "/v3/refund/domestic/refunds", body=body)
        except _NotFound as exc:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "WeChat Pay does not know the trade",
                provider_code=exc.code,
            ) from None
        refund = self.refund_from(data, status_field="status")
        if refund.out_refund_no != out_refund_no or refund.out_trade_no != out_trade_no:
            raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another refund")
        return refund

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> Refund:
        _check_out_refund_no(out_refund_no)
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        params = {"sub_mchid": self.config.sub_mchid} if self.config.service_provider else None
        try:
            data = await self._call("GET", path, query=params)
        except _NotFound as exc:
            raise GatewayError(
                GatewayErrorCode.REJECTED,
                "WeChat Pay does not know the refund",
                provider_code=exc.code,
            ) from None
        refund = self.refund_from(data, status_field="status")
        if refund.out_refund_no != out_refund_no or refund.out_trade_no != out_trade_no:
            raise GatewayError(GatewayErrorCode.MALFORMED, "the answer is about another refund")
        return refund

    # --- bills ----------------------------------------------------------------------------

    async def download_bill(self, day: dt.date) -> list[BillLine]:
        """The ALL trade bill (交易账单) of ``day``: payments and refunds, checked by SHA1."""
        params = {"bill_date": day.isoformat(), "bill_type": "ALL"}
        if self.config.service_provider:
            params["sub_mchid"] = self.config.sub_mchid
        try:
            data = await self._call("GET", "/v3/bill/tradebill", query=params)
        except GatewayError as exc:
            if exc.provider_code == "NO_STATEMENT_EXIST":
                return []  # no trade that day: WeChat Pay makes no bill
            if exc.provider_code == "STATEMENT_CREATING":
                raise GatewayError(
                    GatewayErrorCode.UNAVAILABLE,
                    "the bill is being made",
                    provider_code=exc.provider_code,
                ) from None
            raise
        url = _field(data, "download_url")
        hash_type = str(data.get("hash_type", "SHA1")).upper()
        hash_value = _field(data, "hash_value").lower()
        if hash_type != "SHA1" or not url.startswith(("https://", "http://")):
            raise GatewayError(GatewayErrorCode.MALFORMED, "unexpected bill download answer")
        content = await self._download(url)
        if hashlib.sha1(content, usedforsecurity=False).hexdigest() != hash_value:
            raise GatewayError(
                GatewayErrorCode.BAD_SIGNATURE, "the bill file does not match its hash"
            )
        return parse_trade_bill(content)

    # --- notifications --------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        self.verify_signed(headers, body)
        try:
            envelope = json.loads(body)
            event_id = str(envelope["id"])
            event_type = str(envelope["event_type"])
            resource = envelope["resource"]
            if not isinstance(resource, dict):
                raise TypeError("resource")
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "not a WeChat Pay notification") from exc
        if event_type != "TRANSACTION.SUCCESS" and event_type not in REFUND_EVENTS:
            raise GatewayError(GatewayErrorCode.MALFORMED, f"unsupported event_type {event_type}")
        data = self.decrypt_resource(resource)
        if event_type == "TRANSACTION.SUCCESS":
            trade = self.trade_from(data)
            if trade.status is not TradeStatus.PAID:
                raise GatewayError(
                    GatewayErrorCode.MALFORMED, "a success event for an unpaid trade"
                )
            return Notification(event_id=event_id, trade=trade)
        return Notification(
            event_id=event_id, refund=self.refund_from(data, status_field="refund_status")
        )

    def answer(self, *, accepted: bool) -> NotificationAnswer:
        if accepted:
            return NotificationAnswer(status_code=204, body=b"", media_type="application/json")
        return NotificationAnswer(
            status_code=500,
            body=json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False).encode(),
            media_type="application/json",
        )

    def verify_signed(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check a response's or notification's signature headers; raise ``GatewayError``."""
        lower = {key.lower(): value for key, value in headers.items()}
        serial = lower.get("wechatpay-serial", "")
        timestamp = lower.get("wechatpay-timestamp", "")
        nonce = lower.get("wechatpay-nonce", "")
        signature = lower.get("wechatpay-signature", "")
        if not (serial and timestamp and nonce and signature):
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, "not signed by WeChat Pay")
        kind = lower.get("wechatpay-signature-type", SCHEMA)
        if kind != SCHEMA:
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, f"unsupported signature type {kind}")
        key = self._platform.get(serial) or self._platform.get(serial.upper())
        if key is None:
            raise GatewayError(GatewayErrorCode.UNKNOWN_SERIAL, f"unknown WeChat Pay key {serial}")
        try:
            moment = int(timestamp)
        except ValueError:
            raise GatewayError(GatewayErrorCode.BAD_SIGNATURE, "bad Wechatpay-Timestamp") from None
        if abs(self._clock() - moment) > self.config.max_clock_skew_seconds:
            raise GatewayError(
                GatewayErrorCode.STALE_TIMESTAMP, "Wechatpay-Timestamp out of window"
            )
        if not verify(key, response_message(timestamp, nonce, body), signature):
            raise GatewayError(
                GatewayErrorCode.BAD_SIGNATURE, "WeChat Pay signature does not verify"
            )

    def decrypt_resource(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """Open a notification ``resource`` (AEAD_AES_256_GCM with the APIv3 key)."""
        try:
            algorithm = resource["algorithm"]
            ciphertext = base64.b64decode(resource["ciphertext"], validate=True)
            nonce = str(resource["nonce"]).encode()
            associated = str(resource.get("associated_data") or "").encode()
        except (KeyError, TypeError, binascii.Error, ValueError) as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "bad notification resource") from exc
        if algorithm != "AEAD_AES_256_GCM":
            raise GatewayError(GatewayErrorCode.MALFORMED, f"unsupported algorithm {algorithm}")
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, associated)
        except InvalidTag:
            raise GatewayError(
                GatewayErrorCode.BAD_CIPHERTEXT, "resource does not decrypt with our APIv3 key"
            ) from None
        except ValueError as exc:  # nonce of a length AES-GCM refuses
            raise GatewayError(GatewayErrorCode.MALFORMED, "bad notification resource") from exc
        try:
            data = json.loads(plaintext)
        except ValueError as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "resource is not JSON") from exc
        if not isinstance(data, dict):
            raise GatewayError(GatewayErrorCode.MALFORMED, "resource is not an object")
        return data

    # --- shapes ---------------------------------------------------------------------------

    def trade_from(self, data: Mapping[str, Any]) -> Trade:
        """A Trade from a transaction (query answer or decrypted TRANSACTION notification)."""
        try:
            status = TRADE_STATES[str(data["trade_state"])]
            amount = data.get("amount") or {}
            total = _int(amount["total"]) if "total" in amount else 0
            paid = 0
            if status in (TradeStatus.PAID, TradeStatus.REFUNDED):
                paid = _int(amount.get("payer_total", total))
            payer = data.get("payer") or {}
            success = data.get("success_time")
            return Trade(
                out_trade_no=str(data["out_trade_no"]),
                status=status,
                merchant_id=str(data.get("sub_mchid") or data.get("mchid") or data["sp_mchid"]),
                amount_cents=total,
                paid_cents=paid,
                provider_trade_no=str(data.get("transaction_id") or ""),
                paid_at=parse_time(str(success)) if success else None,
                payer=str(
                    payer.get("openid") or payer.get("sub_openid") or payer.get("sp_openid") or ""
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "not a WeChat Pay transaction") from exc

    def refund_from(self, data: Mapping[str, Any], *, status_field: str) -> Refund:
        """A Refund from a refund answer (``status``) or REFUND notification (``refund_status``)."""
        try:
            success = data.get("success_time")
            return Refund(
                out_trade_no=str(data["out_trade_no"]),
                out_refund_no=str(data["out_refund_no"]),
                status=REFUND_STATES[str(data[status_field])],
                amount_cents=_int(data["amount"]["refund"]),
                provider_refund_no=str(data.get("refund_id") or ""),
                refunded_at=parse_time(str(success)) if success else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GatewayError(GatewayErrorCode.MALFORMED, "not a WeChat Pay refund") from exc

    # --- HTTP -----------------------------------------------------------------------------

    def authorization(self, method: str, target: str, body: bytes) -> str:
        """The ``Authorization`` header for a request to ``target`` (path with query)."""
        timestamp = str(int(self._clock()))
        nonce = nonce_str()
        signature = sign(self._key, request_message(method, target, timestamp, nonce, body))
        return (
            f'{SCHEMA} mchid="{self.config.mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{self.config.merchant_serial_no}"'
        )

    async def _send(self, method: str, url: str, content: bytes) -> httpx.Response:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if content:
            headers["Content-Type"] = "application/json"
        try:
            if self._http is not None:
                return await self._exchange(self._http, method, url, content, headers)
            async with httpx.AsyncClient(
                timeout=self.config.timeout_seconds, verify=_tls()
            ) as client:
                return await self._exchange(client, method, url, content, headers)
        except httpx.TimeoutException:
            log.warning("wechatpay.timeout", method=method, path=httpx.URL(url).path)
            raise GatewayError(
                GatewayErrorCode.UNAVAILABLE, "WeChat Pay did not answer in time"
            ) from None
        except httpx.TransportError as exc:
            log.warning("wechatpay.unreachable", method=method, error=type(exc).__name__)
            raise GatewayError(GatewayErrorCode.UNAVAILABLE, "WeChat Pay is unreachable") from None

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        content: bytes,
        headers: dict[str, str],
    ) -> httpx.Response:
        request = client.build_request(
            method,
            url,
            content=content or None,
            headers=headers,
            timeout=self.config.timeout_seconds,
        )
        target = request.url.raw_path.decode("ascii")
        request.headers["Authorization"] = self.authorization(method, target, content)
        return await client.send(request)

    async def _call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = self.config.base_url + path
        if query:
            url += "?" + urlencode(query)
        content = b""
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        response = await self._send(method, url, content)
        status = response.status_code
        raw = response.content
        request_id = response.headers.get("Request-ID", "")
        if status >= 500:
            code, message = _error_of(raw)
            log.warning(
                "wechatpay.server_error", path=path, status=status, code=code, request_id=request_id
            )
            raise GatewayError(
                GatewayErrorCode.UNAVAILABLE, f"WeChat Pay {status}: {message}", provider_code=code
            )
        if status >= 400 or status == 202:
            code, message = _error_of(raw)
            signed = "wechatpay-signature" in response.headers
            if signed:  # a forged error must not pass for WeChat Pay's word either
                self.verify_signed(response.headers, raw)
            log.info(
                "wechatpay.rejected", path=path, status=status, code=code, request_id=request_id
            )
            if status == 404 and code in _NOT_FOUND and signed:
                raise _NotFound(code)
            raise GatewayError(
                GatewayErrorCode.REJECTED, f"WeChat Pay: {message}", provider_code=code
            )
        self.verify_signed(response.headers, raw)
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise GatewayError(GatewayErrorCode.MALFORMED, "WeChat Pay answered non-JSON") from None
        if not isinstance(data, dict):
            raise GatewayError(GatewayErrorCode.MALFORMED, "WeChat Pay answered a non-object")
        return data

    async def _download(self, url: str) -> bytes:
        response = await self._send("GET", url, b"")
        if response.status_code >= 500:
            raise GatewayError(GatewayErrorCode.UNAVAILABLE, "bill download failed")
        if response.status_code >= 400:
            code, message = _error_of(response.content)
            raise GatewayError(
                GatewayErrorCode.REJECTED, f"bill download: {message}", provider_code=code
            )
        return response.content


class _NotFound(Exception):
    """A verified 404 for a trade or refund WeChat Pay does not know."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- trade bill -------------------------------------------------------------------------------


def parse_trade_bill(content: bytes) -> list[BillLine]:
    """Parse an ALL 交易账单: header, `-prefixed rows, then a summary header and row.

    Columns are found by name (older merchants' bills lack some). Each value is prefixed
    with a backtick, which also makes ``,``` the only safe field separator: a product name
    may itself hold commas. Payments (交易状态 SUCCESS) carry 订单金额; refunds (REFUND)
    carry 申请退款金额 and the refund numbers; 交易时间 is China time. The summary's
    总交易单数 must equal the number of rows, so a cut-off file is refused.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GatewayError(GatewayErrorCode.MALFORMED, "the bill is not UTF-8") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise GatewayError(GatewayErrorCode.MALFORMED, "empty bill")
    header = [name.strip() for name in lines[0].split(",")]
    column = {name: index for index, name in enumerate(header)}
    needed = ("交易时间", "商户号", "微信订单号", "商户订单号", "交易状态")
    if any(name not in column for name in needed):
        raise GatewayError(GatewayErrorCode.MALFORMED, "the bill header lacks a needed column")
    out: list[BillLine] = []
    rows = 0
    summary_seen = False
    for index, line in enumerate(lines[1:], start=1):
        if not line.startswith("`"):
            summary_seen = True
            summary = lines[index + 1] if index + 1 < len(lines) else ""
            totals = _bill_fields(summary)
            try:
                declared = int(totals[0])
            except (IndexError, ValueError):
                raise GatewayError(GatewayErrorCode.MALFORMED, "bad bill summary") from None
            if declared != rows:
                raise GatewayError(
                    GatewayErrorCode.MALFORMED, f"bill declares {declared} rows, holds {rows}"
                )
            break
        rows += 1
        fields = _bill_fields(line)
        if len(fields) < len(header) - 1:  # the last column (费率备注) may be cut
            raise GatewayError(GatewayErrorCode.MALFORMED, f"bill row {index} is short")

        def value(name: str, row: list[str] = fields) -> str:
            at = column.get(name)
            return row[at].strip() if at is not None and at < len(row) else ""

        state = value("交易状态")
        if state not in ("SUCCESS", "REFUND"):
            continue  # e.g. REVOKED (付款码 only): no money stayed with the merchant
        sub = value("特约商户号")
        merchant = sub if sub and sub != "0" else value("商户号")
        try:
            occurred = dt.datetime.strptime(value("交易时间"), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise GatewayError(GatewayErrorCode.MALFORMED, f"bill row {index}: bad time") from None
        occurred_at = occurred.replace(tzinfo=CHINA).astimezone(dt.UTC)
        if state == "SUCCESS":
            amount = _first(value, "订单金额", "应结订单金额", "总金额")
            out.append(
                BillLine(
                    out_trade_no=value("商户订单号"),
                    provider_trade_no=value("微信订单号"),
                    merchant_id=merchant,
                    kind="payment",
                    amount_cents=_yuan_to_cents(amount, index),
                    occurred_at=occurred_at,
                )
            )
        else:
            amount = _first(value, "申请退款金额", "退款金额")
            out.append(
                BillLine(
                    out_trade_no=value("商户订单号"),
                    provider_trade_no=value("微信订单号"),
                    merchant_id=merchant,
                    kind="refund",
                    amount_cents=_yuan_to_cents(amount, index),
                    occurred_at=occurred_at,
                    out_refund_no=value("商户退款单号"),
                )
            )
    if not summary_seen:
        raise GatewayError(GatewayErrorCode.MALFORMED, "the bill has no summary: cut off?")
    return out


def _bill_fields(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("`"):
        line = line[1:]
    return line.split(",`")


def _first(value: Callable[[str], str], *names: str) -> str:
    for name in names:
        found = value(name)
        if found:
            return found
    return ""


def _yuan_to_cents(text: str, row: int) -> int:
    try:
        cents = Decimal(text) * 100
    except InvalidOperation:
        raise GatewayError(GatewayErrorCode.MALFORMED, f"bill row {row}: bad amount") from None
    if cents != cents.to_integral_value():
        raise GatewayError(GatewayErrorCode.MALFORMED, f"bill row {row}: amount below a cent")
    return int(cents)


# --- small helpers ----------------------------------------------------------------------------


def _check_out_trade_no(value: str) -> None:
    if not _OUT_TRADE_NO.match(value):
        raise GatewayError(
            GatewayErrorCode.MALFORMED, "out_trade_no: 6-32 characters of 0-9 A-Z a-z _ - *"
        )


def _check_out_refund_no(value: str) -> None:
    if not _OUT_REFUND_NO.match(value):
        raise GatewayError(
            GatewayErrorCode.MALFORMED, "out_refund_no: 1-64 characters of 0-9 A-Z a-z _ - | * @"
        )


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer amount is expected")
    return value


def _field(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise GatewayError(GatewayErrorCode.MALFORMED, f"WeChat Pay's answer lacks {name}")
    return value


def _error_of(raw: bytes) -> tuple[str, str]:
    try:
        data = json.loads(raw)
        return str(data.get("code", "")), str(data.get("message", ""))[:200]
    except (ValueError, AttributeError):
        return "", raw[:100].decode("utf-8", errors="replace")


# --- registration -----------------------------------------------------------------------------


def build(config: Mapping[str, Any] | WeChatPayConfig) -> WeChatPayGateway:
    """The provider factory: a gateway for one merchant's stored configuration."""
    if not isinstance(config, WeChatPayConfig):
        config = WeChatPayConfig.model_validate(config)
    return WeChatPayGateway(config)


register_provider(Provider(PROVIDER, WeChatPayConfig, build))
