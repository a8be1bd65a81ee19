"""Notifications (通知): one service for inbox messages, SMS and WeChat template messages.

How other domains send a message
--------------------------------
Call :func:`notify` inside your own transaction (it flushes, never commits)::

    from linli.notifications import service as notifications

    await notifications.notify(
        session, actor,
        recipients=[resident_id, ...],        # residents of actor's company
        staff_recipients=[staff_id, ...],     # and/or staff members
        template="workorder.assigned",        # a key of linli.notifications.templates
        params={"number": "WO-1024", "technician": "赵师傅", "due": "15:30"},
        channels=None,                        # None = the template's; portal is always added
        community_id=community_id,            # lets community-scoped staff see the delivery log
        link="/portal/repairs/…",             # where the inbox / WeChat message leads
        dedupe_key=f"workorder.assigned:{order_id}",  # same key again = no second message
    )

What happens: one inbox row per recipient (read in the portal, or the console for
staff), and for each outside channel the recipient has not opted out of, one
delivery row plus one procrastinate job (queue ``notifications``) in the same
transaction, so messages exist exactly when the change commits. The job sends
through SMS or WeChat, retries with exponential backoff
(``LINLI_NOTIFY_RETRY_BASE_SECONDS`` doubling, ``LINLI_NOTIFY_MAX_ATTEMPTS`` tries),
and marks the delivery ``failed`` when the provider stays down or refuses for good;
the console's delivery log shows every outcome. Rate limits are per recipient, per
template and per channel (the template's ``rate_limit``, counted in SQL over the
delivery log, so they hold across workers); a message over the limit is kept in
the inbox and logged as ``rate_limited`` instead of being sent.

Events instead of calls: a domain may also emit an outbox event whose type is a
template key (``workorder.assigned``, ``workorder.sla_warning``, …) with
``resident_ids`` / ``staff_ids`` (lists of ids) in its payload; the
``notifications`` event consumer (:mod:`linli.notifications.consumer`) turns it
into :func:`notify` with the rest of the payload as params and the event id as
dedupe key.

Large audiences use :func:`notify_selected` with a SELECT of resident ids: one
``INSERT … SELECT`` writes every inbox row, one more the deliveries and their jobs.

Phones are decrypted only inside the delivery job, handed to the provider, and
never logged or stored elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Uuid, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.models import ResidentAccount, ResidentWechatIdentity, StaffUser
from linli.config import get_settings
from linli.core import audit, crypto
from linli.core.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from linli.core.ids import new_id
from linli.core.logging import get_logger
from linli.core.pagination import PageParams, make_page
from linli.db.engine import set_tenant, unit_of_work
from linli.estate.service import community_scope
from linli.notifications import templates
from linli.notifications.channels import (
    SendError,
    TemplateSms,
    WechatTemplateClient,
    get_template_sms,
)
from linli.notifications.models import (
    OUTSIDE_CHANNELS,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationPreference,
)
from linli.notifications.settings import get_notification_settings
from linli.residents.models import Resident, ResidentCompany
from linli.tenancy.models import Tenant

log = get_logger(__name__)

QUEUE = "notifications"
DELIVERY_TASK = "linli.notifications.tasks.send_deliveries"
BATCH = 100  # deliveries per job: 100,000 messages are 1,000 jobs, not 100,000
MAX_WAIT_SECONDS = 3600


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def _outside(channels: Sequence[str] | None, template: templates.Template) -> list[str]:
    chosen = template.channels if channels is None else channels
    out: list[str] = []
    for raw in chosen:
        try:
            channel = Channel(raw)
        except ValueError as exc:
            raise ValidationFailed(
                errors=[FieldError("channels", "Unknown channel.", "unknown_channel")]
            ) from exc
        if channel in OUTSIDE_CHANNELS and channel.value not in out:
            out.append(channel.value)
    return out


def _plain(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Params as JSON-safe scalars (ids and dates become strings)."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[str(key)] = value
        else:
            out[str(key)] = str(value)
    return out


@dataclass(frozen=True)
class NotifyResult:
    notifications: int  # inbox rows written (repeats of a dedupe key add none)
    queued: int  # outside-channel deliveries queued for sending
    dedupe_key: str


async def notify(
    session: AsyncSession,
    actor: Actor,
    *,
    recipients: Sequence[uuid.UUID] = (),
    staff_recipients: Sequence[uuid.UUID] = (),
    template: str,
    params: Mapping[str, Any] | None = None,
    channels: Sequence[str] | None = None,
    community_id: uuid.UUID | None = None,
    link: str = "",
    dedupe_key: str | None = None,
    source_type: str = "",
    source_id: uuid.UUID | None = None,
) -> NotifyResult:
    """Send ``template`` to residents and/or staff of the actor's company (see module doc).

    Unknown ids (or ids of another company, hidden by RLS) are skipped, not errors:
    a resident who moved out between the event and the message is not a failure.
    """
    tenant_id = _tenant(actor)
    key = dedupe_key or f"{template}:{new_id()}"
    written = 0
    if recipients:
        written += await _insert_from(
            session,
            tenant_id,
            select(Resident.id).where(Resident.id.in_(list(dict.fromkeys(recipients)))),
            recipient_column="resident_id",
            template=template,
            params=params,
            community_id=community_id,
            link=link,
            dedupe_key=key,
            source_type=source_type,
            source_id=source_id,
        )
    if staff_recipients:
        written += await _insert_from(
            session,
            tenant_id,
            select(StaffUser.id).where(
                StaffUser.id.in_(list(dict.fromkeys(staff_recipients))), StaffUser.is_active
            ),
            recipient_column="staff_id",
            template=template,
            params=params,
            community_id=community_id,
            link=link,
            dedupe_key=key,
            source_type=source_type,
            source_id=source_id,
        )
    queued = await queue_deliveries(
        session, tenant_id, dedupe_key=key, template=template, channels=channels
    )
    return NotifyResult(notifications=written, queued=queued, dedupe_key=key)


async def notify_selected(
    session: AsyncSession,
    actor: Actor,
    *,
    residents: Select[Any],
    template: str,
    params: Mapping[str, Any] | None = None,
    channels: Sequence[str] | None = None,
    community_id: uuid.UUID | None = None,
    link: str = "",
    dedupe_key: str,
    source_type: str = "",
    source_id: uuid.UUID | None = None,
) -> NotifyResult:
    """:func:`notify` for an audience given as a SELECT of resident ids (one column).

    Set-based: each resident gets one message even if the SELECT names them twice
    (several houses), and a repeat with the same ``dedupe_key`` adds nothing.
    """
    tenant_id = _tenant(actor)
    written = await _insert_from(
        session,
        tenant_id,
        residents,
        recipient_column="resident_id",
        template=template,
        params=params,
        community_id=community_id,
        link=link,
        dedupe_key=dedupe_key,
        source_type=source_type,
        source_id=source_id,
    )
    queued = await queue_deliveries(
        session, tenant_id, dedupe_key=dedupe_key, template=template, channels=channels
    )
    return NotifyResult(notifications=written, queued=queued, dedupe_key=dedupe_key)


async def residents_of_accounts(
    session: AsyncSession, account_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """This company's residents (the session's tenant) behind portal accounts, by phone hash."""
    if not account_ids:
        return []
    rows = await session.scalars(
        select(Resident.id)
        .join(ResidentAccount, ResidentAccount.phone_hash == Resident.phone_hash)
        .where(ResidentAccount.id.in_(list(account_ids)))
    )
    return list(rows.all())


async def _insert_from(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ids: Select[Any],
    *,
    recipient_column: str,
    template: str,
    params: Mapping[str, Any] | None,
    community_id: uuid.UUID | None,
    link: str,
    dedupe_key: str,
    source_type: str,
    source_id: uuid.UUID | None,
) -> int:
    templates.get(template)  # unknown templates are refused before anything is written
    audience = ids.distinct().subquery("audience")
    recipient = next(iter(audience.c))
    statement = (
        pg_insert(Notification)
        .from_select(
            [
                "tenant_id",
                "id",
                recipient_column,
                "community_id",
                "template",
                "params",
                "link",
                "source_type",
                "source_id",
                "dedupe_key",
            ],
            select(
                literal(tenant_id, Uuid),
                func.linli_uuid7(),
                recipient,
                literal(community_id, Uuid),
                literal(template),
                literal(_plain(params), JSONB),
                literal(link[:300]),
                literal(source_type[:40]),
                literal(source_id, Uuid),
                literal(dedupe_key[:120]),
            ).select_from(audience),
        )
        .on_conflict_do_nothing(
            index_elements=["tenant_id", recipient_column, "dedupe_key"],
            index_where=text(f"{recipient_column} IS NOT NULL"),
        )
    )
    # Counted in SQL: the driver reports no row count for INSERT ... SELECT ... ON CONFLICT.
    written = statement.returning(literal(1)).cte("written")
    return int(await session.scalar(select(func.count()).select_from(written)) or 0)


# One statement: the deliveries of every message of a dedupe key through each outside
# channel (opted-out ones logged as skipped, ones over the template's limit as
# rate_limited), and one procrastinate job per queued delivery.
_QUEUE_DELIVERIES = text(
    """
WITH fresh AS MATERIALIZED (
    SELECT n.tenant_id, n.id, n.resident_id, n.community_id, n.template,
           CASE WHEN n.resident_id IS NOT NULL THEN 'r:' || n.resident_id
                ELSE 's:' || n.staff_id END AS recipient_key
    FROM notifications n
    WHERE n.tenant_id = :tenant AND n.dedupe_key = :dedupe
), recent AS MATERIALIZED (
    -- One grouped read of the window, joined below: a per-row count would rescan the rows
    -- this very statement inserts.
    SELECT d.recipient_key, d.channel, count(*) AS sent
    FROM notification_deliveries d
    WHERE d.tenant_id = :tenant AND d.template = :template
      AND d.channel = ANY(CAST(:channels AS text[]))
      AND d.status IN ('queued', 'sent')
      AND d.created_at > now() - make_interval(secs => :window)
      AND d.recipient_key IN (SELECT recipient_key FROM fresh)
    GROUP BY d.recipient_key, d.channel
), wanted AS (
    SELECT f.*, ch.channel, coalesce(r.sent, 0) AS sent,
           coalesce(p.opt_outs::text[] && ARRAY[f.template || ':' || ch.channel,
                                                '*:' || ch.channel], false) AS opted_out
    FROM fresh f
    CROSS JOIN unnest(CAST(:channels AS text[])) AS ch(channel)
    LEFT JOIN recent r ON r.recipient_key = f.recipient_key AND r.channel = ch.channel
    LEFT JOIN notification_preferences p
           ON p.tenant_id = f.tenant_id AND p.resident_id = f.resident_id
), inserted AS (
    INSERT INTO notification_deliveries
        (tenant_id, id, notification_id, recipient_key, community_id, template, channel,
         status, attempts, last_error, provider_ref)
    SELECT w.tenant_id, linli_uuid7(), w.id, w.recipient_key, w.community_id, w.template,
           w.channel,
           CASE WHEN w.opted_out THEN 'skipped'
                WHEN w.sent >= :amount THEN 'rate_limited'
                ELSE 'queued' END,
           0,
           CASE WHEN w.opted_out THEN 'opted_out' ELSE '' END,
           ''
    FROM wanted w
    ON CONFLICT (tenant_id, notification_id, channel) DO NOTHING
    RETURNING tenant_id, id, status
)
SELECT count(*) FILTER (WHERE status = 'queued'),
       cardinality(procrastinate_defer_jobs_v1(ARRAY(
           SELECT ROW(:queue, :task, 0, NULL, NULL,
                      jsonb_build_object('tenant_id', CAST(:tenant AS text),
                                         'delivery_ids', jsonb_agg(b.id ORDER BY b.id)),
                      NULL)::procrastinate_job_to_defer_v1
           FROM (SELECT i.id, (row_number() OVER (ORDER BY i.id) - 1) / :batch AS batch
                 FROM inserted i WHERE i.status = 'queued') b
           GROUP BY b.batch)))
FROM inserted
"""
)


async def queue_deliveries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    dedupe_key: str,
    template: str,
    channels: Sequence[str] | None,
) -> int:
    """Deliveries (and their jobs) for the messages of ``dedupe_key``; returns how many queued."""
    spec = templates.get(template)
    outside = _outside(channels, spec)
    if not outside:
        return 0
    limit = spec.limit()
    row = (
        await session.execute(
            _QUEUE_DELIVERIES,
            {
                "tenant": tenant_id,
                "dedupe": dedupe_key[:120],
                "template": template,
                "channels": outside,
                "window": limit.get_expiry(),
                "amount": limit.amount,
                "queue": QUEUE,
                "task": DELIVERY_TASK,
                "batch": BATCH,
            },
        )
    ).one()
    return int(row[0] or 0)


# --- sending (the delivery job's work) -------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    status: str
    retry_in: int | None = None  # seconds until the retry job runs, when one was queued
    reason: str = ""


def retry_wait(attempts: int) -> int:
    """Seconds before the next try after ``attempts`` failed ones: base, 2×, 4× … (≤ 1 h)."""
    base = get_notification_settings().retry_base_seconds
    return int(min(MAX_WAIT_SECONDS, base * 2 ** max(0, attempts - 1)))


_DEFER_AT = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,"
    " CAST(:args AS jsonb), now() + make_interval(secs => :wait))"
    "::procrastinate_job_to_defer_v1])"
)


async def defer_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID], *, wait: int = 0
) -> None:
    """One delivery job for these deliveries, in the caller's transaction, after ``wait`` s."""
    await session.execute(
        _DEFER_AT,
        {
            "queue": QUEUE,
            "task": DELIVERY_TASK,
            "args": json.dumps(
                {"tenant_id": str(tenant_id), "delivery_ids": [str(d) for d in delivery_ids]}
            ),
            "wait": wait,
        },
    )


async def _phone_of(session: AsyncSession, message: Notification) -> str | None:
    if message.resident_id is not None:
        blob = await session.scalar(
            select(Resident.phone_enc).where(Resident.id == message.resident_id)
        )
    else:
        blob = await session.scalar(
            select(StaffUser.phone_enc).where(StaffUser.id == message.staff_id)
        )
    return crypto.decrypt(blob) if blob else None


async def _openid_of(session: AsyncSession, message: Notification) -> str | None:
    """The resident's openid at this public account: phone hash → portal account → WeChat."""
    if message.resident_id is None:
        return None
    openid: str | None = await session.scalar(
        select(ResidentWechatIdentity.openid)
        .join(ResidentAccount, ResidentAccount.id == ResidentWechatIdentity.account_id)
        .join(Resident, Resident.phone_hash == ResidentAccount.phone_hash)
        .where(
            Resident.id == message.resident_id,
            ResidentWechatIdentity.appid == get_settings().wechat_appid,
        )
        .order_by(ResidentWechatIdentity.created_at.desc())
        .limit(1)
    )
    return openid


async def _locale_of(session: AsyncSession, message: Notification) -> str:
    if message.resident_id is None:
        return templates.DEFAULT_LOCALE
    locale = await session.scalar(
        select(NotificationPreference.locale).where(
            NotificationPreference.resident_id == message.resident_id
        )
    )
    return locale or templates.DEFAULT_LOCALE


def _wechat_url(link: str) -> str:
    if not link:
        return ""
    if link.startswith(("http://", "https://")):
        return link
    base = get_notification_settings().portal_url or get_settings().public_url
    return base.rstrip("/") + "/" + link.lstrip("/")


async def _send(
    session: AsyncSession,
    delivery: NotificationDelivery,
    message: Notification,
    *,
    sms: TemplateSms | None,
    wechat: WechatTemplateClient | None,
) -> tuple[str, str]:
    """Hand the message to its channel: ``(status, provider ref or skip reason)``."""
    spec = templates.get(message.template)
    locale = await _locale_of(session, message)
    title, body = spec.render(message.params, locale)
    if delivery.channel == Channel.SMS:
        phone = await _phone_of(session, message)
        if phone is None:
            return DeliveryStatus.SKIPPED, "no_phone"
        params = {k: str(v) for k, v in message.params.items() if v is not None}
        sender = sms or get_template_sms()
        return DeliveryStatus.SENT, await sender.send_template(phone, spec.sms_template, params)
    if delivery.channel == Channel.WECHAT:
        template_id = get_notification_settings().wechat_templates.get(message.template)
        if not template_id:
            return DeliveryStatus.SKIPPED, "no_wechat_template"
        openid = await _openid_of(session, message)
        if openid is None:
            return DeliveryStatus.SKIPPED, "no_wechat_follower"
        values = {"title": title, "body": body, **{k: str(v) for k, v in message.params.items()}}
        data = {field: values.get(name, "") for field, name in spec.wechat_fields.items()}
        client = wechat or WechatTemplateClient()
        ref = await client.send(
            openid=openid,
            template_id=template_id,
            data=data,
            url=_wechat_url(message.link),
            client_msg_id=str(delivery.id),
        )
        return DeliveryStatus.SENT, ref
    return DeliveryStatus.FAILED, "unknown_channel"


async def attempt_delivery(
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    sms: TemplateSms | None = None,
    wechat: WechatTemplateClient | None = None,
) -> Attempt:
    """One try at one delivery, in its own transaction (the job calls this).

    The attempt is recorded even when it fails, so the log shows every try. A
    provider failure queues the retry (a job of its own, ``retry_wait`` later) in
    the same transaction as the record, so no retry is lost to a crash; the try
    that reaches ``LINLI_NOTIFY_MAX_ATTEMPTS`` marks the delivery failed instead.
    A delivery that is no longer queued (sent by an earlier run) is left alone.
    """
    async with unit_of_work(tenant_id) as session:
        await session.execute(text("SELECT set_config('lock_timeout', '15s', true)"))
        delivery = await session.scalar(
            select(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id)
            .with_for_update()
        )
        if delivery is None or delivery.status != DeliveryStatus.QUEUED:
            return Attempt(delivery.status if delivery else "missing")
        message = await session.scalar(
            select(Notification).where(Notification.id == delivery.notification_id)
        )
        now = dt.datetime.now(dt.UTC)
        delivery.attempts += 1
        delivery.updated_at = now
        if message is None:
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, "message_gone"
            return Attempt(delivery.status)
        try:
            status, detail = await _send(session, delivery, message, sms=sms, wechat=wechat)
        except SendError as exc:
            delivery.last_error = exc.reason
            final = delivery.attempts >= get_notification_settings().max_attempts
            if exc.permanent or final:
                delivery.status = DeliveryStatus.FAILED
                log.warning(
                    "notify.delivery_failed",
                    delivery_id=str(delivery.id),
                    channel=delivery.channel,
                    reason=exc.reason,
                    attempts=delivery.attempts,
                )
                return Attempt(delivery.status, reason=exc.reason)
            wait = retry_wait(delivery.attempts)
            await defer_deliveries(session, tenant_id, [delivery.id], wait=wait)
            return Attempt(delivery.status, retry_in=wait, reason=exc.reason)
        except ValidationFailed:
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, "unknown_template"
            return Attempt(delivery.status, reason="unknown_template")
        delivery.status = status
        if status == DeliveryStatus.SENT:
            delivery.provider_ref, delivery.sent_at, delivery.last_error = detail, now, ""
        else:
            delivery.last_error = detail
        log.info(
            "notify.delivery",
            delivery_id=str(delivery.id),
            channel=delivery.channel,
            status=status,
        )
        return Attempt(status)


# --- the delivery log and templates (console) ------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    channel: str | None = None
    template: str | None = None
    community_id: uuid.UUID | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def readable_deliveries(actor: Actor) -> Select[NotificationDelivery]:
    return select(NotificationDelivery).where(
        community_scope(actor, NotificationDelivery.community_id)
    )


async def list_deliveries(
    session: AsyncSession, actor: Actor, *, filters: DeliveryFilter, page: PageParams
) -> tuple[list[NotificationDelivery], str | None]:
    """Newest first; the cursor is the last id of the previous page."""
    statement = readable_deliveries(actor)
    if filters.status:
        statement = statement.where(NotificationDelivery.status == filters.status)
    if filters.channel:
        statement = statement.where(NotificationDelivery.channel == filters.channel)
    if filters.template:
        statement = statement.where(NotificationDelivery.template == filters.template)
    if filters.community_id:
        statement = statement.where(NotificationDelivery.community_id == filters.community_id)
    if filters.since:
        statement = statement.where(NotificationDelivery.created_at >= filters.since)
    if filters.until:
        statement = statement.where(NotificationDelivery.created_at < filters.until)
    after = page.after_id()
    if after is not None:
        statement = statement.where(NotificationDelivery.id < after)
    rows = (
        await session.scalars(
            statement.order_by(NotificationDelivery.id.desc()).limit(page.limit + 1)
        )
    ).all()
    return make_page(list(rows), page)


async def get_delivery(
    session: AsyncSession, actor: Actor, *, delivery_id: uuid.UUID
) -> NotificationDelivery:
    row = await session.scalar(
        readable_deliveries(actor).where(NotificationDelivery.id == delivery_id)
    )
    if row is None:
        raise NotFound("Delivery not found.", code="delivery_not_found")
    return row


async def delivery_counts(
    session: AsyncSession, actor: Actor, *, since: dt.datetime | None = None
) -> dict[tuple[str, str], int]:
    """(channel, status) → count, for the log's chart."""
    statement = select(
        NotificationDelivery.channel, NotificationDelivery.status, func.count()
    ).where(community_scope(actor, NotificationDelivery.community_id))
    if since is not None:
        statement = statement.where(NotificationDelivery.created_at >= since)
    rows = await session.execute(
        statement.group_by(NotificationDelivery.channel, NotificationDelivery.status)
    )
    return {(channel, status): int(n) for channel, status, n in rows.all()}


async def retry_delivery(
    session: AsyncSession, actor: Actor, *, delivery_id: uuid.UUID
) -> NotificationDelivery:
    """Queue a failed delivery again (after the provider is back), with a fresh job."""
    delivery = await get_delivery(session, actor, delivery_id=delivery_id)
    if delivery.status != DeliveryStatus.FAILED:
        raise ValidationFailed(
            "Only failed deliveries can be retried.",
            code="delivery_not_failed",
            errors=[FieldError("delivery_id", "Not failed.", "delivery_not_failed")],
        )
    delivery.status = DeliveryStatus.QUEUED
    delivery.last_error = ""
    delivery.updated_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await defer_deliveries(session, delivery.tenant_id, [delivery.id])
    await audit.record(
        session, actor, "notification.retry", target_type="delivery", target_id=delivery.id
    )
    return delivery


# --- the resident's side: inbox and preferences ----------------------------------------------


@dataclass(frozen=True)
class Membership:
    """The signed-in person as one company knows them."""

    tenant_id: uuid.UUID
    tenant_name: str
    resident_ids: list[uuid.UUID]


async def memberships(session: AsyncSession, actor: Actor) -> list[Membership]:
    """Every company that knows the signed-in resident's phone, with their resident ids there.

    Leaves the session's tenant unset; callers set it per company before reading.
    """
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    phone_hash = await session.scalar(
        select(ResidentAccount.phone_hash).where(
            ResidentAccount.id == actor.id, ResidentAccount.is_active
        )
    )
    if phone_hash is None:
        return []
    companies = (
        await session.execute(
            select(Tenant.id, Tenant.name)
            .join(ResidentCompany, ResidentCompany.tenant_id == Tenant.id)
            .where(ResidentCompany.phone_hash == phone_hash)
            .order_by(Tenant.id)
        )
    ).all()
    found: list[Membership] = []
    try:
        for tenant_id, name in companies:
            await set_tenant(session, tenant_id)
            mine = select(Resident.id).where(Resident.phone_hash == phone_hash)
            ids = list((await session.scalars(mine)).all())
            if ids:
                found.append(Membership(tenant_id, name, ids))
    finally:
        await set_tenant(session, None)
    return found


@dataclass(frozen=True)
class InboxItem:
    id: uuid.UUID
    company_id: uuid.UUID
    company_name: str
    template: str
    title: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None


def _item(message: Notification, membership: Membership, locale: str) -> InboxItem:
    try:
        title, body = templates.get(message.template).render(message.params, locale)
    except ValidationFailed:
        title, body = message.template, ""
    return InboxItem(
        id=message.id,
        company_id=membership.tenant_id,
        company_name=membership.tenant_name,
        template=message.template,
        title=title,
        body=body,
        link=message.link,
        created_at=message.created_at,
        read_at=message.read_at,
    )


async def inbox(
    session: AsyncSession, actor: Actor, *, locale: str, limit: int = 50, unread_only: bool = False
) -> list[InboxItem]:
    """The resident's latest messages across companies, newest first (站内信)."""
    items: list[InboxItem] = []
    try:
        for membership in await memberships(session, actor):
            await set_tenant(session, membership.tenant_id)
            statement = select(Notification).where(
                Notification.resident_id.in_(membership.resident_ids)
            )
            if unread_only:
                statement = statement.where(Notification.read_at.is_(None))
            rows = (
                await session.scalars(statement.order_by(Notification.id.desc()).limit(limit))
            ).all()
            items.extend(_item(row, membership, locale) for row in rows)
    finally:
        await set_tenant(session, None)
    items.sort(key=lambda item: item.id, reverse=True)
    return items[:limit]


@dataclass(frozen=True)
class StaffMessage:
    id: uuid.UUID
    template: str
    title: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None


async def staff_inbox(
    session: AsyncSession, actor: Actor, *, locale: str, limit: int = 50
) -> list[StaffMessage]:
    """A staff member's own messages (SLA warnings, assignments), newest first."""
    if actor.kind is not PrincipalKind.STAFF:
        raise PermissionDenied()
    rows = (
        await session.scalars(
            select(Notification)
            .where(Notification.staff_id == actor.id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    ).all()
    messages = []
    for row in rows:
        try:
            title, body = templates.get(row.template).render(row.params, locale)
        except ValidationFailed:
            title, body = row.template, ""
        messages.append(
            StaffMessage(row.id, row.template, title, body, row.link, row.created_at, row.read_at)
        )
    return messages


async def mark_staff_messages_read(session: AsyncSession, actor: Actor) -> int:
    """Mark every unread message of the signed-in staff member read (opening the inbox)."""
    if actor.kind is not PrincipalKind.STAFF:
        raise PermissionDenied()
    result = await session.execute(
        update(Notification)
        .where(Notification.staff_id == actor.id, Notification.read_at.is_(None))
        .values(read_at=func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def unread_count(session: AsyncSession, actor: Actor) -> int:
    total = 0
    try:
        for membership in await memberships(session, actor):
            await set_tenant(session, membership.tenant_id)
            total += int(
                await session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(
                        Notification.resident_id.in_(membership.resident_ids),
                        Notification.read_at.is_(None),
                    )
                )
                or 0
            )
    finally:
        await set_tenant(session, None)
    return total


async def _membership(session: AsyncSession, actor: Actor, company_id: uuid.UUID) -> Membership:
    for membership in await memberships(session, actor):
        if membership.tenant_id == company_id:
            return membership
    raise NotFound("Message not found.", code="notification_not_found")


async def open_message(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    notification_id: uuid.UUID,
    locale: str,
) -> InboxItem:
    """One of the resident's messages; opening it marks it read. Leaves the tenant set."""
    membership = await _membership(session, actor, company_id)
    await set_tenant(session, company_id)
    message = await session.scalar(
        select(Notification).where(
            Notification.id == notification_id,
            Notification.resident_id.in_(membership.resident_ids),
        )
    )
    if message is None:
        raise NotFound("Message not found.", code="notification_not_found")
    if message.read_at is None:
        message.read_at = dt.datetime.now(dt.UTC)
        await session.flush()
    return _item(message, membership, locale)


async def mark_read_by_key(
    session: AsyncSession, resident_ids: Sequence[uuid.UUID], *, dedupe_key: str
) -> None:
    """Mark the messages of ``dedupe_key`` read for these residents (the tenant is set)."""
    await session.execute(
        update(Notification)
        .where(
            Notification.dedupe_key == dedupe_key,
            Notification.resident_id.in_(list(resident_ids)),
            Notification.read_at.is_(None),
        )
        .values(read_at=func.now())
    )


@dataclass
class Preferences:
    locale: str
    opt_outs: set[str]

    def receives(self, template: str, channel: str) -> bool:
        if channel == Channel.PORTAL:
            return True
        return f"{template}:{channel}" not in self.opt_outs and f"*:{channel}" not in self.opt_outs


async def get_preferences(session: AsyncSession, actor: Actor) -> Preferences:
    """The resident's choices (the same in every company that knows them)."""
    try:
        for membership in await memberships(session, actor):
            await set_tenant(session, membership.tenant_id)
            row = await session.scalar(
                select(NotificationPreference)
                .where(NotificationPreference.resident_id.in_(membership.resident_ids))
                .limit(1)
            )
            if row is not None:
                return Preferences(row.locale, set(row.opt_outs))
    finally:
        await set_tenant(session, None)
    return Preferences(templates.DEFAULT_LOCALE, set())


def _valid_opt_out(value: str) -> bool:
    kind, _, channel = value.partition(":")
    if channel not in (c.value for c in OUTSIDE_CHANNELS):
        return False
    return kind == "*" or kind in {t.key for t in templates.all_templates()}


async def set_preferences(
    session: AsyncSession, actor: Actor, *, locale: str, opt_outs: Sequence[str]
) -> Preferences:
    """Save the resident's language and opt-outs in every company that knows them.

    The inbox cannot be opted out of; an opt-out naming it (or an unknown
    template or channel) is refused.
    """
    bad = [i for i, value in enumerate(opt_outs) if not _valid_opt_out(value)]
    errors = [FieldError(f"opt_outs[{i}]", "Unknown template or channel.", "invalid") for i in bad]
    if locale not in templates.LOCALES:
        errors.append(FieldError("locale", "Choose zh_CN or en.", "invalid_locale"))
    if errors:
        raise ValidationFailed(errors=errors)
    chosen = sorted(set(opt_outs))
    try:
        for membership in await memberships(session, actor):
            await set_tenant(session, membership.tenant_id)
            for resident_id in membership.resident_ids:
                await session.execute(
                    pg_insert(NotificationPreference)
                    .values(
                        tenant_id=membership.tenant_id,
                        id=new_id(),
                        resident_id=resident_id,
                        locale=locale,
                        opt_outs=chosen,
                    )
                    .on_conflict_do_update(
                        index_elements=["tenant_id", "resident_id"],
                        set_={"locale": locale, "opt_outs": chosen},
                    )
                )
            scoped = Actor(
                kind=PrincipalKind.RESIDENT,
                id=actor.id,
                tenant_id=membership.tenant_id,
                request_id=actor.request_id,
                ip=actor.ip,
            )
            await audit.record(
                session,
                scoped,
                "notification.preferences",
                target_type="resident",
                target_id=membership.resident_ids[0],
                detail={"opt_outs": len(chosen), "locale": locale},
            )
    finally:
        await set_tenant(session, None)
    return Preferences(locale, set(chosen))
