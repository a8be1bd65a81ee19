"""API shapes of online payments. Merchant configurations go in, never come back out."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import Field

from linli.core.schemas import ReadSchema, Schema
from linli.payments.gateway import Channel


class MerchantAccountCreate(Schema):
    community_id: uuid.UUID
    provider: str = Field(pattern=r"^[a-z]{2,20}$", description="wechatpay or alipay")
    name: str = Field("", max_length=100)
    config: dict[str, Any] = Field(
        description="The provider's merchant configuration (keys are stored encrypted)"
    )


class MerchantAccountRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    provider: str
    merchant_id: str
    name: str
    active: bool
    created_at: dt.datetime


class OrderLineRead(ReadSchema):
    bill_id: uuid.UUID | None
    kind: str
    amount_cents: int


class OrderRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    house_id: uuid.UUID
    merchant_account_id: uuid.UUID
    receipt_id: uuid.UUID
    provider: str
    channel: str
    purpose: str
    out_trade_no: str
    amount_cents: int
    status: str
    posting: str
    expires_at: dt.datetime
    provider_trade_no: str
    paid_cents: int
    refunded_cents: int
    paid_at: dt.datetime | None
    created_at: dt.datetime


class PrepayRead(Schema):
    qr_content: str = ""
    redirect_url: str = ""
    jsapi_params: dict[str, str] = Field(default_factory=dict)
    sandbox_pay_url: str = Field("", description="Demo only: the sandbox pay page")


class OrderDetail(OrderRead):
    lines: list[OrderLineRead] = Field(default_factory=list)
    prepay: PrepayRead | None = None


class ResidentOrderCreate(Schema):
    company_id: uuid.UUID
    house_id: uuid.UUID
    provider: str = Field(pattern=r"^[a-z]{2,20}$")
    channel: Channel
    bill_ids: list[uuid.UUID] = Field(default_factory=list, max_length=60)
    top_up_cents: int = Field(0, ge=0, le=10_000_000)
    payer_id: str = Field("", max_length=128, description="JSAPI: the payer's openid")
    return_url: str = Field("", max_length=500, pattern=r"^(https?://[^\s]+)?$")


class CounterOrderCreate(Schema):
    receipt_id: uuid.UUID
    provider: str = Field("wechatpay", pattern=r"^[a-z]{2,20}$")


class RefundCreate(Schema):
    amount_cents: int = Field(gt=0, le=10_000_000_000)
    reason: str = Field(min_length=2, max_length=200)


class RefundRead(ReadSchema):
    id: uuid.UUID
    order_id: uuid.UUID
    out_refund_no: str
    amount_cents: int
    reason: str
    status: str
    requested_by: uuid.UUID
    decided_by: uuid.UUID | None
    decided_at: dt.datetime | None
    refunded_at: dt.datetime | None
    failure: str
    created_at: dt.datetime


class ExceptionRead(ReadSchema):
    id: uuid.UUID
    merchant_account_id: uuid.UUID
    kind: str
    out_trade_no: str
    out_refund_no: str
    order_id: uuid.UUID | None
    run_id: uuid.UUID | None
    expected_cents: int | None
    actual_cents: int | None
    detail: str
    status: str
    resolution: str
    created_at: dt.datetime


class ExceptionResolve(Schema):
    resolution: str = Field(min_length=2, max_length=400)


class ReconcileRequest(Schema):
    merchant_account_id: uuid.UUID
    day: dt.date


class RunRead(ReadSchema):
    id: uuid.UUID
    merchant_account_id: uuid.UUID
    day: dt.date
    status: str
    provider_count: int
    provider_cents: int
    provider_refund_cents: int
    our_count: int
    our_cents: int
    matched_count: int
    exception_count: int
    failure: str
    finished_at: dt.datetime | None


class RunReport(RunRead):
    exceptions: list[ExceptionRead] = Field(default_factory=list)
