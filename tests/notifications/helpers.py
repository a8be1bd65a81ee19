"""Notification test helpers: residents reachable by SMS and WeChat, fakes wired into settings."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import select

from linli.auth.models import ResidentAccount, ResidentWechatIdentity
from linli.config import get_settings
from linli.core import crypto
from linli.db.engine import unit_of_work
from linli.notifications import channels
from linli.notifications.models import NotificationDelivery
from linli.notifications.service import DELIVERY_TASK
from linli.notifications.settings import get_notification_settings
from tests.estate.factories import make_resident
from tests.factories import Company
from tests.fakes.wechat_template import FakeTemplateSmsGateway, FakeWechatApi

TEMPLATE_IDS = {
    "announcement.published": "TPL-NOTICE",
    "workorder.assigned": "TPL-ORDER",
    "billing.reminder": "TPL-ORDER",
}


def a_phone() -> str:
    return "136" + f"{secrets.randbelow(10**8):08d}"


@dataclass
class Fakes:
    sms: FakeTemplateSmsGateway
    wechat: FakeWechatApi


@contextmanager
def fakes_wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    """Both fakes running, and the settings pointing at them for this test."""
    with FakeTemplateSmsGateway() as sms, FakeWechatApi() as wechat:
        settings = get_settings()
        monkeypatch.setattr(settings, "sms_provider", "http")
        monkeypatch.setattr(settings, "sms_http_url", sms.url)
        monkeypatch.setattr(settings, "sms_http_key_id", sms.key_id)
        monkeypatch.setattr(settings, "sms_http_secret", _secret(sms.secret))
        monkeypatch.setattr(settings, "wechat_api_base", wechat.base_url)
        monkeypatch.setattr(settings, "wechat_appid", wechat.appid)
        monkeypatch.setattr(settings, "wechat_secret", _secret(wechat.secret))
        monkeypatch.setattr(get_notification_settings(), "wechat_templates", dict(TEMPLATE_IDS))
        channels.forget_tokens()
        try:
            yield Fakes(sms, wechat)
        finally:
            channels.forget_tokens()


def _secret(value: str):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    return SecretStr(value)


async def wechat_resident(
    company: Company, house_id: uuid.UUID | None, fakes: Fakes | None, *, name: str = "李四"
) -> tuple[uuid.UUID, str, str]:
    """A resident with a phone and a portal account following the public account on WeChat.

    Returns (resident id, phone, openid).
    """
    phone = a_phone()
    resident_id = await make_resident(company, house_id=house_id, name=name, phone=phone)
    openid = "o" + secrets.token_hex(12)
    async with unit_of_work() as session:
        account = await session.scalar(
            select(ResidentAccount).where(ResidentAccount.phone_hash == crypto.blind_index(phone))
        )
        if account is None:
            account = ResidentAccount(
                phone_enc=crypto.encrypt(phone),
                phone_hash=crypto.blind_index(phone),
                display_name=name,
            )
            session.add(account)
            await session.flush()
        session.add(
            ResidentWechatIdentity(
                account_id=account.id, appid=get_settings().wechat_appid, openid=openid
            )
        )
    if fakes is not None:
        fakes.wechat.followers.add(openid)
    return resident_id, phone, openid


async def deliveries_of(company: Company) -> list[NotificationDelivery]:
    async with unit_of_work(company.id) as session:
        rows = await session.scalars(
            select(NotificationDelivery).order_by(
                NotificationDelivery.created_at, NotificationDelivery.channel
            )
        )
        return list(rows.all())


def delivery_jobs(owner_dsn: str, delivery_ids: list[uuid.UUID]) -> list[tuple[str, str]]:
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT queue_name, status::text FROM procrastinate_jobs"
            " WHERE task_name = %s AND args->'delivery_ids' ?| %s",
            (DELIVERY_TASK, [str(d) for d in delivery_ids]),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def drop_other_delivery_jobs(owner_dsn: str, keep: list[uuid.UUID]) -> None:
    """Leave only this test's delivery jobs waiting, so a worker run here is about them."""
    with psycopg.connect(owner_dsn) as conn:
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'"
            " AND NOT (args->'delivery_ids' ?| %s)",
            (DELIVERY_TASK, [str(d) for d in keep]),
        )
