"""Routes of the notifications domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core import i18n
from linli.core.pagination import Page, PageParams, page_params
from linli.notifications import service, templates
from linli.notifications.models import Channel, DeliveryStatus
from linli.notifications.schemas import (
    DeliveryRead,
    Inbox,
    InboxItemRead,
    PreferencesRead,
    PreferencesUpdate,
    TemplateRead,
)
from linli.notifications.settings import get_notification_settings

router = APIRouter(
    prefix="/api/v1/notifications", route_class=DeclaredRoute, tags=["notifications"]
)

Reader = Annotated[Actor, Depends(Authorizer(Permission.NOTIFICATIONS_READ))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/deliveries", response_model=Page[DeliveryRead], summary="The delivery log")
async def list_deliveries(
    actor: Reader,
    session: DbSession,
    page: Paging,
    status: DeliveryStatus | None = None,
    channel: Channel | None = None,
    template: Annotated[str | None, Query(max_length=60)] = None,
    community_id: uuid.UUID | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Page[DeliveryRead]:
    rows, cursor = await service.list_deliveries(
        session,
        actor,
        filters=service.DeliveryFilter(
            status=status.value if status else None,
            channel=channel.value if channel else None,
            template=template,
            community_id=community_id,
            since=since,
            until=until,
        ),
        page=page,
    )
    return Page[DeliveryRead].of(rows, cursor)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryRead)
async def get_delivery(actor: Reader, session: DbSession, delivery_id: uuid.UUID) -> DeliveryRead:
    return DeliveryRead.model_validate(
        await service.get_delivery(session, actor, delivery_id=delivery_id)
    )


@router.get("/templates", response_model=list[TemplateRead])
async def list_templates(actor: Reader) -> list[TemplateRead]:
    wechat_ids = get_notification_settings().wechat_templates
    return [
        TemplateRead(
            key=t.key,
            channels=[c.value for c in t.channels],
            rate_limit=t.rate_limit,
            sms_template=t.sms_template,
            wechat_template_id=wechat_ids.get(t.key),
            title=dict(t.title),
            body=dict(t.body),
        )
        for t in templates.all_templates()
    ]


# --- the resident's own messages and choices -------------------------------------------------


@router.get("/inbox", response_model=Inbox, summary="My messages, newest first")
async def my_inbox(
    actor: Resident,
    session: DbSession,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Inbox:
    locale = i18n.current_locale.get()
    items = await service.inbox(session, actor, locale=locale, limit=limit, unread_only=unread_only)
    unread = await service.unread_count(session, actor)
    return Inbox(items=[InboxItemRead.model_validate(i) for i in items], unread=unread)


@router.post("/inbox/{notification_id}/read", response_model=InboxItemRead)
async def read_message(
    actor: Resident, session: DbSession, notification_id: uuid.UUID, company_id: uuid.UUID
) -> InboxItemRead:
    item = await service.open_message(
        session,
        actor,
        company_id=company_id,
        notification_id=notification_id,
        locale=i18n.current_locale.get(),
    )
    return InboxItemRead.model_validate(item)


@router.get("/preferences", response_model=PreferencesRead)
async def my_preferences(actor: Resident, session: DbSession) -> PreferencesRead:
    prefs = await service.get_preferences(session, actor)
    return PreferencesRead(locale=prefs.locale, opt_outs=sorted(prefs.opt_outs))


@router.put("/preferences", response_model=PreferencesRead)
async def set_my_preferences(
    actor: Resident, session: DbSession, body: PreferencesUpdate
) -> PreferencesRead:
    prefs = await service.set_preferences(
        session, actor, locale=body.locale, opt_outs=body.opt_outs
    )
    return PreferencesRead(locale=prefs.locale, opt_outs=sorted(prefs.opt_outs))
