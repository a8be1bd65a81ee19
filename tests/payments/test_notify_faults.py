"""Bad notifications posted to the app's public endpoint: each is refused (the provider
keeps retrying) or accepted and flagged for review, and none moves money."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.payments import flows, service
from linli.payments.gateway import Channel
from linli.payments.models import OrderStatus, PaymentNotification
from linli.payments.sandbox.wechatpay import build_notification, signed_headers
from tests.payments.harness import Servers, Shop, books, make_shop, open_bills, order, servers


@pytest_asyncio.fixture(scope="module")
async def srv(app: object) -> AsyncIterator[Servers]:
    async with servers(app) as running:
        yield running


async def _paying(srv: Servers) -> tuple[Shop, flows.Placed]:
    shop = await make_shop(srv)
    placed = await flows.place_order(
        Actor.system(shop.tenant),
        tenant_id=shop.tenant,
        house_id=shop.house,
        provider_name="wechatpay",
        channel=Channel.NATIVE,
        bill_ids=await open_bills(shop.tenant, shop.house),
    )
    return shop, placed


def _transaction(shop: Shop, out_trade_no: str, total: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "appid": shop.config.appid,
        "mchid": shop.config.mchid,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200" + uuid.uuid4().hex[:24],
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-25T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {
            "total": total,
            "payer_total": total,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    data.update(changes)
    return data


def _note(
    srv: Servers, shop: Shop, resource: dict[str, Any], **kw: Any
) -> tuple[dict[str, str], bytes]:
    return build_notification(
        srv.wechat.config.platform,
        kw.pop("apiv3_key", shop.config.apiv3_key.get_secret_value()),
        event_type="TRANSACTION.SUCCESS",
        resource=resource,
        **kw,
    )


async def _post(srv: Servers, shop: Shop, headers: dict[str, str], body: bytes) -> httpx.Response:
    url = f"{srv.app_url}/api/v1/payments/notify/wechatpay/{shop.account_id}"
    async with httpx.AsyncClient() as http:
        return await http.post(url, headers=headers, content=body)


async def _notifications(shop: Shop) -> int:
    from sqlalchemy import select

    async with unit_of_work(shop.tenant) as session:
        rows = await session.scalars(select(PaymentNotification.id))
        return len(rows.all())


async def _kinds(shop: Shop) -> set[str]:
    async with unit_of_work(shop.tenant) as session:
        rows = await service.list_exceptions(session, Actor.system(shop.tenant), status=None)
    return {row.kind for row in rows}


async def _unpaid(shop: Shop, placed: flows.Placed) -> None:
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.PAYING.value
    assert (await books(shop.tenant))["payment_entries"] == 0


async def test_genuine_notification_is_accepted(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    answer = await _post(srv, shop, headers, body)
    assert answer.status_code == 204
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.PAID.value


async def test_forged_signature_is_refused(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    signature = bytearray(base64.b64decode(headers["Wechatpay-Signature"]))
    signature[10] ^= 0xFF
    headers["Wechatpay-Signature"] = base64.b64encode(bytes(signature)).decode()
    answer = await _post(srv, shop, headers, body)
    assert answer.status_code >= 400
    await _unpaid(shop, placed)
    assert await _notifications(shop) == 0


async def test_body_changed_after_signing_is_refused(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    answer = await _post(srv, shop, headers, body.replace(b'"summary"', b'"Summary"'))
    assert answer.status_code >= 400
    await _unpaid(shop, placed)


async def test_wrong_serial_is_refused(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    headers["Wechatpay-Serial"] = "PUB_KEY_ID_0000000000000000000000000000"
    assert (await _post(srv, shop, headers, body)).status_code >= 400
    await _unpaid(shop, placed)


async def test_replayed_notification_with_an_old_timestamp_is_refused(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    resource = _transaction(shop, placed.order.out_trade_no, 22375)
    headers, body = _note(srv, shop, resource, timestamp=int(time.time()) - 3600)
    assert (await _post(srv, shop, headers, body)).status_code >= 400
    await _unpaid(shop, placed)


async def test_tampered_ciphertext_is_refused(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    _, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    envelope = json.loads(body)
    sealed = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    sealed[5] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    tampered = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    # Signed correctly by the platform: only the AEAD tag can catch it.
    headers = {
        "Content-Type": "application/json",
        **signed_headers(srv.wechat.config.platform, tampered),
    }
    assert (await _post(srv, shop, headers, tampered)).status_code >= 400
    await _unpaid(shop, placed)


async def test_amount_differing_from_the_order_is_flagged_never_posted(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 1))
    assert (await _post(srv, shop, headers, body)).status_code == 204  # genuine: retries stop
    await _unpaid(shop, placed)
    assert "amount_mismatch" in await _kinds(shop)


async def test_another_companys_merchant_cannot_pay_this_companys_order(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    other = await make_shop(srv)
    # B's genuine notification (B's APIv3 key) sent to A's endpoint: A cannot decrypt it.
    resource = _transaction(other, placed.order.out_trade_no, 22375)
    headers, body = _note(srv, other, resource)
    assert (await _post(srv, shop, headers, body)).status_code >= 400
    # Encrypted with A's key but naming B's merchant (a service provider's sub-merchants
    # share keys): flagged, not posted.
    resource = _transaction(shop, placed.order.out_trade_no, 22375, mchid=other.config.mchid)
    headers, body = _note(srv, shop, resource)
    assert (await _post(srv, shop, headers, body)).status_code == 204
    await _unpaid(shop, placed)
    assert "merchant_mismatch" in await _kinds(shop)
    assert "merchant_mismatch" not in await _kinds(other)


async def test_notification_for_an_unknown_order_is_flagged(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, "NEVER" + uuid.uuid4().hex[:20], 500))
    assert (await _post(srv, shop, headers, body)).status_code == 204
    await _unpaid(shop, placed)
    assert "unknown_order" in await _kinds(shop)


async def test_unknown_merchant_account_is_not_found(srv: Servers) -> None:
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{srv.app_url}/api/v1/payments/notify/wechatpay/{uuid.uuid4()}",
            headers=headers,
            content=body,
        )
        wrong_provider = await http.post(
            f"{srv.app_url}/api/v1/payments/notify/alipay/{shop.account_id}",
            headers=headers,
            content=body,
        )
    assert answer.status_code == 404
    assert wrong_provider.status_code == 404
    await _unpaid(shop, placed)


async def test_killed_before_answering_the_retry_posts_once(srv: Servers) -> None:
    """The app processed and committed, then died before its answer reached WeChat Pay:
    the provider retries the same event; it is answered without a second posting. (An app
    killed before commit leaves nothing, so the retry does the work: covered by the
    lost-delivery tests.)"""
    shop, placed = await _paying(srv)
    headers, body = _note(srv, shop, _transaction(shop, placed.order.out_trade_no, 22375))
    result = await flows.handle_notification(
        provider_name="wechatpay", account_id=shop.account_id, headers=headers, body=body
    )
    assert result.outcome == "paid"  # committed; pretend the answer never left
    answer = await _post(srv, shop, headers, body)  # the provider's retry
    assert answer.status_code == 204
    assert (await books(shop.tenant))["payment_entries"] == 1
    assert await _notifications(shop) == 1
