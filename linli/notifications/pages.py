"""Console and portal pages of the notifications domain: delivery log, templates; inbox, choices."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core import i18n
from linli.core.errors import DomainError, NotFound
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.notifications import service, templates
from linli.notifications.models import OUTSIDE_CHANNELS, DeliveryStatus
from linli.notifications.settings import get_notification_settings
from linli.web import nav
from linli.web.nav import N_
from linli.web.pages import (
    PlatformDb,
    ResidentActor,
    StaffDb,
    _portal_context,
    console_shell,
    staff,
)
from linli.web.session import PortalCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

Reader = Annotated[Actor, staff(Permission.NOTIFICATIONS_READ)]
LOG_PAGE_SIZE = 50

STATUS_LABELS = {
    DeliveryStatus.QUEUED.value: N_("Queued"),
    DeliveryStatus.SENT.value: N_("Sent"),
    DeliveryStatus.FAILED.value: N_("Failed"),
    DeliveryStatus.SKIPPED.value: N_("Skipped"),
    DeliveryStatus.RATE_LIMITED.value: N_("Over the limit"),
}
CHANNEL_LABELS = {"portal": N_("Inbox"), "sms": N_("Text message"), "wechat": N_("WeChat")}
STATUS_COLOURS = {
    "queued": "#94a3b8",
    "sent": "#16a34a",
    "failed": "#dc2626",
    "skipped": "#f59e0b",
    "rate_limited": "#7c3aed",
}

nav.register(
    nav.NavItem(
        "notifications",
        N_("Notifications"),
        "/console/notifications",
        Permission.NOTIFICATIONS_READ,
        "phone",
        46,
    )
)
nav.register(
    nav.NavItem(
        "my-messages",
        N_("My messages"),
        "/console/messages",
        Permission.AUTHENTICATED,
        "wechat",
        95,
    )
)
nav.register_tile(nav.PortalTile("messages", N_("Messages"), "wechat", "/portal/messages", 4))


def _bars(counts: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    """One stacked bar per channel for the log's chart (SVG drawn by the template)."""
    bars = []
    top = max(
        [sum(n for (c, _), n in counts.items() if c == ch.value) for ch in OUTSIDE_CHANNELS] + [1]
    )
    for index, channel in enumerate(OUTSIDE_CHANNELS):
        x = 0.0
        segments: list[dict[str, Any]] = []
        for status, colour in STATUS_COLOURS.items():
            n = counts.get((channel.value, status), 0)
            if n:
                width = 360 * n / top
                segments.append(
                    {
                        "x": round(x, 1),
                        "w": round(width, 1),
                        "colour": colour,
                        "status": status,
                        "n": n,
                    }
                )
                x += width
        bars.append(
            {
                "channel": channel.value,
                "y": 8 + index * 36,
                "segments": segments,
                "total": sum(int(s["n"]) for s in segments),
            }
        )
    return bars


@router.get("/console/notifications", name="console.notifications")
async def delivery_log_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    status: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=10)] = "",
    template: Annotated[str, Query(max_length=60)] = "",
    days: Annotated[int, Query(ge=1, le=365)] = 7,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    filters = service.DeliveryFilter(
        status=status if status in STATUS_LABELS else None,
        channel=channel if channel in ("sms", "wechat") else None,
        template=template or None,
        since=since,
    )
    rows, next_cursor = await service.list_deliveries(
        session, actor, filters=filters, page=PageParams(cursor=cursor, limit=LOG_PAGE_SIZE)
    )
    counts = await service.delivery_counts(session, actor, since=since)
    wanted: dict[str, str | int] = {"status": status, "channel": channel, "template": template}
    if days != 7:
        wanted["days"] = days
    query = urlencode({k: v for k, v in wanted.items() if v})
    return render(
        request,
        "notifications/log.html",
        shell
        | {
            "rows": rows,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "filters": {"status": status, "channel": channel, "template": template, "days": days},
            "filter_query": query,
            "status_labels": STATUS_LABELS,
            "channel_labels": CHANNEL_LABELS,
            "template_keys": [t.key for t in templates.all_templates()],
            "bars": _bars(counts),
            "colours": STATUS_COLOURS,
        },
    )


@router.get("/console/notifications/templates", name="console.notification_templates")
async def templates_page(request: Request, actor: Reader, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    return render(
        request,
        "notifications/templates.html",
        shell
        | {
            "templates": templates.all_templates(),
            "wechat_ids": get_notification_settings().wechat_templates,
            "channel_labels": CHANNEL_LABELS,
        },
    )


@router.get("/console/messages", name="console.messages")
async def staff_messages_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.AUTHENTICATED)],
    session: StaffDb,
) -> Response:
    """The signed-in staff member's messages; opening the page marks them read."""
    shell = await console_shell(request, session, actor)
    messages = await service.staff_inbox(session, actor, locale=i18n.current_locale.get())
    await service.mark_staff_messages_read(session, actor)
    return render(request, "notifications/staff_inbox.html", shell | {"messages": messages})


# --- portal -----------------------------------------------------------------------------------


@router.get("/portal/messages", name="portal.messages")
async def inbox_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    context = await _portal_context(request, session, actor)
    items = await service.inbox(session, actor, locale=i18n.current_locale.get())
    return render(request, "notifications/inbox.html", context | {"items": items})


@router.get("/portal/messages/preferences", name="portal.message_preferences")
async def preferences_page(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    saved: Annotated[str, Query(max_length=2)] = "",
) -> Response:
    return await _preferences(request, session, actor, saved=bool(saved))


async def _preferences(
    request: Request,
    session: Any,
    actor: Actor,
    *,
    saved: bool = False,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = await _portal_context(request, session, actor)
    prefs = await service.get_preferences(session, actor)
    optional = [
        t for t in templates.all_templates() if any(c in OUTSIDE_CHANNELS for c in t.channels)
    ]
    return render(
        request,
        "notifications/preferences.html",
        context
        | {
            "prefs": prefs,
            "templates": optional,
            "channels": [c.value for c in OUTSIDE_CHANNELS],
            "channel_labels": CHANNEL_LABELS,
            "saved": saved,
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/portal/messages/preferences", dependencies=[PortalCsrf])
async def save_preferences(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    locale: Annotated[str, Form(max_length=10)] = "zh_CN",
    receive: Annotated[list[str] | None, Form(max_length=100)] = None,
) -> Response:
    """The form lists what to receive; everything offered and not ticked is an opt-out."""
    wanted = set(receive or [])
    offered = [
        f"{t.key}:{c.value}"
        for t in templates.all_templates()
        for c in OUTSIDE_CHANNELS
        if c in t.channels
    ]
    try:
        await service.set_preferences(
            session, actor, locale=locale, opt_outs=[o for o in offered if o not in wanted]
        )
    except DomainError as exc:
        return await _preferences(
            request, session, actor, error=describe(exc), status_code=exc.status
        )
    return redirect(request, "/portal/messages/preferences?saved=1")


@router.get("/portal/messages/{notification_id}", name="portal.message")
async def message_page(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    notification_id: str,
    company: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    try:
        company_id, message_id = uuid.UUID(company), uuid.UUID(notification_id)
    except ValueError as exc:
        raise NotFound("Message not found.", code="notification_not_found") from exc
    item = await service.open_message(
        session,
        actor,
        company_id=company_id,
        notification_id=message_id,
        locale=i18n.current_locale.get(),
    )
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    return render(request, "notifications/message.html", context | {"item": item})
