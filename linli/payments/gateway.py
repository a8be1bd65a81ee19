"""What linli asks of a payment provider, whoever it is (微信支付 v3, 支付宝).

The payments service speaks only this interface; ``wechatpay.py`` and ``alipay.py``
implement it over each provider's HTTP API, and the sandbox servers under
``linli/payments/sandbox/`` speak the same wire protocol so the real clients run in
tests and in ``make demo``.

Amounts are integer cents (分) everywhere; a provider that speaks yuan strings
(Alipay's ``"12.34"``) converts at its edge. Times are aware UTC datetimes.

A provider is configured per merchant account: each tenant keeps its own merchant
accounts (the money is the property company's), so a gateway instance is built from
one merchant's configuration by the factory its module registers::

    register_provider(Provider("wechatpay", WeChatPayConfig, build_wechatpay_gateway))
    gateway = provider("wechatpay").build(config_dict)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel


class Channel(StrEnum):
    """How the payer pays."""

    JSAPI = "jsapi"  # inside WeChat: the portal opens the WeChat Pay sheet (needs the openid)
    NATIVE = "native"  # a QR code the payer scans (WeChat Native, Alipay precreate)
    WAP = "wap"  # a mobile browser is redirected to the provider's H5 cashier (Alipay wap)


class TradeStatus(StrEnum):
    """A trade as the provider sees it, in one vocabulary for both providers."""

    NOT_PAID = "not_paid"  # WeChat NOTPAY, Alipay WAIT_BUYER_PAY
    PAYING = "paying"  # WeChat USERPAYING
    PAID = "paid"  # WeChat SUCCESS, Alipay TRADE_SUCCESS / TRADE_FINISHED
    CLOSED = "closed"  # WeChat CLOSED/REVOKED, Alipay TRADE_CLOSED (unpaid, or fully refunded)
    REFUNDED = "refunded"  # WeChat REFUND: paid, then (partly) refunded
    FAILED = "failed"  # WeChat PAYERROR
    UNKNOWN = "unknown"  # the provider does not know the trade (never created there)


class RefundStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    CLOSED = "closed"
    ABNORMAL = "abnormal"  # WeChat ABNORMAL: the money could not reach the payer


@dataclass(frozen=True)
class Prepay:
    """What the payer needs to pay a newly created trade."""

    provider_reference: str = ""  # WeChat prepay_id; Alipay leaves it empty
    qr_content: str = ""  # NATIVE: text of the QR code (WeChat code_url, Alipay qr_code)
    jsapi_params: Mapping[str, str] = field(default_factory=dict)  # JSAPI: for WeixinJSBridge
    redirect_url: str = ""  # WAP: where to send the payer's browser


@dataclass(frozen=True)
class Trade:
    """A trade as queried or notified."""

    out_trade_no: str
    status: TradeStatus
    merchant_id: str  # WeChat mchid (sub_mchid in service-provider mode), Alipay app_id
    amount_cents: int = 0  # the order total
    paid_cents: int = 0  # what the payer actually paid (0 unless PAID/REFUNDED)
    provider_trade_no: str = ""  # WeChat transaction_id, Alipay trade_no
    paid_at: dt.datetime | None = None
    payer: str = ""  # openid / buyer id, kept only to show on the order, never logged


@dataclass(frozen=True)
class Refund:
    out_trade_no: str
    out_refund_no: str
    status: RefundStatus
    amount_cents: int
    provider_refund_no: str = ""
    refunded_at: dt.datetime | None = None


@dataclass(frozen=True)
class BillLine:
    """One line of the provider's daily trade bill (对账单), for reconciliation."""

    out_trade_no: str
    provider_trade_no: str
    merchant_id: str
    kind: str  # "payment" or "refund"
    amount_cents: int  # paid amount for a payment, refunded amount for a refund
    occurred_at: dt.datetime
    out_refund_no: str = ""


@dataclass(frozen=True)
class Notification:
    """A verified, decrypted asynchronous notification; exactly one of the two is set."""

    event_id: str  # the provider's id of this notification (WeChat id, Alipay notify_id)
    trade: Trade | None = None
    refund: Refund | None = None


@dataclass(frozen=True)
class NotificationAnswer:
    """What the provider expects back: anything else and it retries."""

    status_code: int
    body: bytes
    media_type: str


class GatewayErrorCode(StrEnum):
    BAD_SIGNATURE = "bad_signature"  # a notification or response not signed by the provider
    UNKNOWN_SERIAL = "unknown_serial"  # signed with a certificate/key id we do not hold
    STALE_TIMESTAMP = "stale_timestamp"  # a replay: outside the accepted clock window
    BAD_CIPHERTEXT = "bad_ciphertext"  # AEAD tag mismatch: tampered or wrong APIv3 key
    MALFORMED = "malformed"  # not the shape the provider documents
    REJECTED = "rejected"  # the provider answered with a business error (code + message kept)
    UNAVAILABLE = "unavailable"  # timeout, connection refused, 5xx: the outcome is unknown


class GatewayError(Exception):
    """A provider call or notification failed; ``code`` says how, callers branch on it.

    ``UNAVAILABLE`` on ``create`` means the trade may or may not exist at the provider:
    the caller queries it before trying again, it never creates a second one.
    """

    def __init__(self, code: GatewayErrorCode, message: str, *, provider_code: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.provider_code = provider_code


class PaymentGateway(Protocol):
    """One merchant account at one provider."""

    @property
    def provider(self) -> str: ...

    @property
    def merchant_id(self) -> str: ...

    async def create(
        self,
        *,
        channel: Channel,
        out_trade_no: str,
        description: str,
        amount_cents: int,
        notify_url: str,
        expires_at: dt.datetime,
        payer_id: str = "",  # JSAPI: the payer's openid
        return_url: str = "",  # WAP: where the provider sends the browser back
    ) -> Prepay: ...

    async def query(self, out_trade_no: str) -> Trade:
        """The trade's status; ``TradeStatus.UNKNOWN`` when the provider never saw it."""

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid trade; closing a closed or unknown trade is not an error."""

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
        """Idempotent per ``out_refund_no`` at the provider: asking twice refunds once."""

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> Refund: ...

    async def download_bill(self, day: dt.date) -> list[BillLine]:
        """Every payment and refund of the merchant on that day (China time)."""

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and decode a notification; raise ``GatewayError`` if it is not genuine."""

    def answer(self, *, accepted: bool) -> NotificationAnswer:
        """The reply that stops (accepted) or keeps (not accepted) the provider's retries."""


@dataclass(frozen=True)
class Provider:
    """A provider module's entry: its merchant configuration and how to build a gateway."""

    name: str
    config_model: type[BaseModel]
    build: Callable[[Mapping[str, Any]], PaymentGateway]


_providers: dict[str, Provider] = {}


def register_provider(entry: Provider) -> None:
    _providers[entry.name] = entry


def provider(name: str) -> Provider:
    try:
        return _providers[name]
    except KeyError:
        raise LookupError(f"no payment provider {name!r}") from None


def providers() -> list[Provider]:
    return sorted(_providers.values(), key=lambda entry: entry.name)
