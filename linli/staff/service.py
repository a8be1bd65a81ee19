"""Staff records (员工档案): HR data, certificates, communities served.

Company-wide staff see every record; others see the records of people who
serve one of their communities.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.models import StaffUser
from linli.core import audit, crypto, outbox
from linli.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.estate import events
from linli.estate import service as estate
from linli.estate.rows import CertificateRow, StaffRecordRow, UpsertResult
from linli.staff.models import (
    Education,
    EmploymentType,
    StaffCertificate,
    StaffRecord,
    StaffRecordCommunity,
)

_NONE = uuid.UUID(int=0)
RECORD_FIELDS = (
    "name",
    "department",
    "position",
    "employment_type",
    "hire_date",
    "birth_date",
    "education",
    "left_on",
)


def _serves_my_communities(actor: Actor) -> ColumnElement[bool]:
    return exists(
        select(StaffRecordCommunity.record_id).where(
            StaffRecordCommunity.tenant_id == StaffRecord.tenant_id,
            StaffRecordCommunity.record_id == StaffRecord.id,
            StaffRecordCommunity.community_id.in_(list(actor.community_ids) or [_NONE]),
        )
    )


def readable_records(actor: Actor) -> Select[StaffRecord]:
    statement = select(StaffRecord)
    if not estate.sees_all_communities(actor):
        statement = statement.where(_serves_my_communities(actor))
    return statement


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


async def get_record(session: AsyncSession, actor: Actor, *, record_id: uuid.UUID) -> StaffRecord:
    record = await session.scalar(readable_records(actor).where(StaffRecord.id == record_id))
    if record is None:
        raise NotFound("Staff record not found.", code="staff_record_not_found")
    return record


async def list_records(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None = None,
    department: str | None = None,
    employment_type: EmploymentType | None = None,
    certificates_expiring_by: dt.date | None = None,
    page: PageParams,
) -> tuple[list[StaffRecord], str | None]:
    statement = readable_records(actor)
    if community_id is not None:
        statement = statement.where(
            exists(
                select(StaffRecordCommunity.record_id).where(
                    StaffRecordCommunity.tenant_id == StaffRecord.tenant_id,
                    StaffRecordCommunity.record_id == StaffRecord.id,
                    StaffRecordCommunity.community_id == community_id,
                )
            )
        )
    if department:
        statement = statement.where(StaffRecord.department == department)
    if employment_type is not None:
        statement = statement.where(StaffRecord.employment_type == employment_type)
    if certificates_expiring_by is not None:
        statement = statement.where(_has_certificate_expiring_by(certificates_expiring_by))
    rows = (await session.scalars(paginate_statement(statement, StaffRecord.id, page))).all()
    return make_page(list(rows), page)


async def record_details(
    session: AsyncSession, actor: Actor, *, record_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[uuid.UUID]], dict[uuid.UUID, list[StaffCertificate]]]:
    """Communities and certificates of many records in two statements (no N+1 on lists)."""
    ids = list(record_ids)
    if not ids:
        return {}, {}
    communities: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    for record_id, community_id in (
        await session.execute(
            select(StaffRecordCommunity.record_id, StaffRecordCommunity.community_id).where(
                StaffRecordCommunity.record_id.in_(ids)
            )
        )
    ).all():
        communities[record_id].append(community_id)
    certificates: dict[uuid.UUID, list[StaffCertificate]] = {i: [] for i in ids}
    for cert in (
        await session.scalars(
            select(StaffCertificate)
            .where(StaffCertificate.record_id.in_(ids))
            .order_by(StaffCertificate.id)
        )
    ).all():
        certificates[cert.record_id].append(cert)
    return communities, certificates


async def _check_communities(
    session: AsyncSession, actor: Actor, community_ids: Sequence[uuid.UUID]
) -> None:
    for community_id in set(community_ids):
        await estate.get_community(session, actor, community_id=community_id)
    if not community_ids and not estate.sees_all_communities(actor):
        raise ValidationFailed(
            errors=[
                FieldError(
                    "community_ids", "Give at least one community this person serves.", "required"
                )
            ]
        )


async def _check_login(session: AsyncSession, staff_user_id: uuid.UUID | None) -> None:
    if (
        staff_user_id is not None
        and await session.scalar(select(StaffUser.id).where(StaffUser.id == staff_user_id)) is None
    ):
        raise ValidationFailed(
            errors=[FieldError("staff_user_id", "No such staff login.", "not_found")]
        )


async def create_record(
    session: AsyncSession,
    actor: Actor,
    *,
    employee_no: str,
    name: str,
    phone: str | None = None,
    department: str = "",
    position: str = "",
    employment_type: EmploymentType = EmploymentType.OWN,
    hire_date: dt.date | None = None,
    birth_date: dt.date | None = None,
    education: Education = Education.NONE,
    staff_user_id: uuid.UUID | None = None,
    community_ids: Sequence[uuid.UUID] = (),
    certificates: Sequence[CertificateRow] = (),
) -> StaffRecord:
    tenant_id = _tenant(actor)
    await _check_communities(session, actor, community_ids)
    await _check_login(session, staff_user_id)
    normalized = None
    if phone:
        normalized = crypto.normalize_phone(phone)
        if normalized is None:
            raise ValidationFailed(
                errors=[FieldError("phone", "Not a valid mainland mobile number.", "invalid_phone")]
            )
    record = StaffRecord(
        tenant_id=tenant_id,
        employee_no=employee_no,
        name=name,
        phone_enc=crypto.encrypt(normalized) if normalized else None,
        phone_hash=crypto.blind_index(normalized) if normalized else None,
        department=department,
        position=position,
        employment_type=employment_type,
        hire_date=hire_date,
        birth_date=birth_date,
        education=education.value,
        staff_user_id=staff_user_id,
    )
    session.add(record)
    await flush_or_conflict(
        session, Conflict("This employee number already exists.", code="employee_no_taken")
    )
    await _set_communities(session, tenant_id, record.id, community_ids)
    for cert in certificates:
        session.add(
            StaffCertificate(
                tenant_id=tenant_id,
                record_id=record.id,
                cert_type=cert.cert_type,
                number=cert.number,
                expires_on=cert.expires_on,
            )
        )
    await session.flush()
    await audit.record(
        session, actor, "staff_record.create", target_type="staff_record", target_id=record.id
    )
    await outbox.emit(session, actor, events.STAFF_RECORD_CREATED, {"record_id": str(record.id)})
    return record


async def _set_communities(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    record_id: uuid.UUID,
    community_ids: Sequence[uuid.UUID],
) -> None:
    await session.execute(
        delete(StaffRecordCommunity).where(StaffRecordCommunity.record_id == record_id)
    )
    if community_ids:
        await session.execute(
            pg_insert(StaffRecordCommunity).values(
                [
                    {"tenant_id": tenant_id, "record_id": record_id, "community_id": c}
                    for c in set(community_ids)
                ]
            )
        )


async def update_record(
    session: AsyncSession,
    actor: Actor,
    *,
    record_id: uuid.UUID,
    changes: dict[str, Any],
) -> StaffRecord:
    record = await get_record(session, actor, record_id=record_id)
    changed = sorted(
        k for k, v in changes.items() if k in RECORD_FIELDS and getattr(record, k) != v
    )
    for key in changed:
        setattr(record, key, changes[key])
    if "staff_user_id" in changes and changes["staff_user_id"] != record.staff_user_id:
        await _check_login(session, changes["staff_user_id"])
        record.staff_user_id = changes["staff_user_id"]
        changed.append("staff_user_id")
    if "community_ids" in changes:
        await _check_communities(session, actor, changes["community_ids"])
        await _set_communities(session, _tenant(actor), record.id, changes["community_ids"])
        changed.append("community_ids")
    await session.flush()
    # The phone (encrypted) and the certificates audit themselves.
    if "phone" in changes:
        await change_record_phone(session, actor, record_id=record.id, phone=changes["phone"])
    if changes.get("certificates") is not None:
        await replace_certificates(
            session, actor, record_id=record.id, certificates=changes["certificates"]
        )
    if changed:
        await audit.record(
            session,
            actor,
            "staff_record.update",
            target_type="staff_record",
            target_id=record.id,
            detail={"fields": sorted(changed)},
        )
    return record


# --- certificates (持证上岗) ----------------------------------------------------------------

CERTIFICATE_WARNING_DAYS = 60  # a certificate this close to expiry is flagged for renewal


def certificate_state(expires_on: dt.date | None, *, today: dt.date) -> str | None:
    """``expired``, ``expiring`` (within CERTIFICATE_WARNING_DAYS) or None when still good."""
    if expires_on is None:
        return None
    if expires_on < today:
        return "expired"
    if expires_on <= today + dt.timedelta(days=CERTIFICATE_WARNING_DAYS):
        return "expiring"
    return None


def _certificate_errors(certificates: Sequence[CertificateRow]) -> list[FieldError]:
    errors = []
    seen: set[tuple[str, str]] = set()
    for i, cert in enumerate(certificates):
        if not cert.cert_type.strip() or not cert.number.strip():
            errors.append(
                FieldError(
                    f"certificates[{i}]", "Give the certificate type and number.", "required"
                )
            )
        elif len(cert.cert_type) > 60 or len(cert.number) > 60:
            errors.append(FieldError(f"certificates[{i}]", "At most 60 characters.", "too_long"))
        key = (cert.cert_type.strip(), cert.number.strip())
        if key in seen:
            errors.append(
                FieldError(f"certificates[{i}]", "This certificate is listed twice.", "duplicate")
            )
        seen.add(key)
    return errors


async def replace_certificates(
    session: AsyncSession,
    actor: Actor,
    *,
    record_id: uuid.UUID,
    certificates: Sequence[CertificateRow],
) -> list[StaffCertificate]:
    """Make a record's certificates exactly ``certificates`` (the edit form sends them all)."""
    record = await get_record(session, actor, record_id=record_id)
    errors = _certificate_errors(certificates)
    if errors:
        raise ValidationFailed(errors=errors)
    wanted = [
        CertificateRow(c.cert_type.strip(), c.number.strip(), c.expires_on) for c in certificates
    ]
    _, current = await record_details(session, actor, record_ids=[record.id])
    have = [(c.cert_type, c.number, c.expires_on) for c in current[record.id]]
    if sorted(have, key=str) == sorted(
        ((c.cert_type, c.number, c.expires_on) for c in wanted), key=str
    ):
        return current[record.id]
    await session.execute(delete(StaffCertificate).where(StaffCertificate.record_id == record.id))
    tenant_id = _tenant(actor)
    rows = [
        StaffCertificate(
            tenant_id=tenant_id,
            record_id=record.id,
            cert_type=c.cert_type,
            number=c.number,
            expires_on=c.expires_on,
        )
        for c in wanted
    ]
    session.add_all(rows)
    await session.flush()
    await audit.record(
        session,
        actor,
        "staff_record.certificates",
        target_type="staff_record",
        target_id=record.id,
        detail={"certificates": len(rows)},
    )
    return rows


async def change_record_phone(
    session: AsyncSession, actor: Actor, *, record_id: uuid.UUID, phone: str | None
) -> StaffRecord:
    """Set or clear the work phone of a record (stored encrypted, with its blind index)."""
    record = await get_record(session, actor, record_id=record_id)
    normalized = crypto.normalize_phone(phone) if phone else None
    if phone and normalized is None:
        raise ValidationFailed(
            errors=[FieldError("phone", "Not a valid mainland mobile number.", "invalid_phone")]
        )
    new_hash = crypto.blind_index(normalized) if normalized else None
    if new_hash == record.phone_hash:
        return record
    record.phone_enc = crypto.encrypt(normalized) if normalized else None
    record.phone_hash = new_hash
    await session.flush()
    await audit.record(
        session,
        actor,
        "staff_record.update",
        target_type="staff_record",
        target_id=record.id,
        detail={"fields": ["phone"]},
    )
    return record


def _has_certificate_expiring_by(day: dt.date) -> ColumnElement[bool]:
    return exists(
        select(StaffCertificate.id).where(
            StaffCertificate.tenant_id == StaffRecord.tenant_id,
            StaffCertificate.record_id == StaffRecord.id,
            StaffCertificate.expires_on <= day,
        )
    )


async def count_certificates_due(session: AsyncSession, actor: Actor, *, today: dt.date) -> int:
    """Certificates of current staff the actor may see that expire within the warning window
    (or already have): the number the console shows above the list."""
    visible = (
        readable_records(actor)
        .where(StaffRecord.left_on.is_(None))
        .with_only_columns(StaffRecord.id)
    )
    due = today + dt.timedelta(days=CERTIFICATE_WARNING_DAYS)
    count = await session.scalar(
        select(func.count())
        .select_from(StaffCertificate)
        .where(StaffCertificate.expires_on <= due, StaffCertificate.record_id.in_(visible))
    )
    return int(count or 0)


async def list_departments(session: AsyncSession, actor: Actor) -> list[str]:
    """Departments named on the records the actor may see, for filters and suggestions."""
    visible = readable_records(actor).with_only_columns(StaffRecord.department).distinct()
    names = (await session.scalars(visible.where(StaffRecord.department != ""))).all()
    return sorted(names)


def _row_errors(index: int, row: StaffRecordRow) -> list[FieldError]:
    prefix = f"rows[{index}]"
    errors = []
    if not row.employee_no or not row.name:
        errors.append(
            FieldError(
                f"{prefix}.employee_no", "Employee number and name are required.", "required"
            )
        )
    if row.phone and crypto.normalize_phone(row.phone) is None:
        errors.append(
            FieldError(f"{prefix}.phone", "Not a valid mainland mobile number.", "invalid_phone")
        )
    if row.employment_type not in EmploymentType._value2member_map_:
        errors.append(
            FieldError(f"{prefix}.employment_type", "Unknown employment type.", "invalid_choice")
        )
    if row.education not in Education._value2member_map_:
        errors.append(
            FieldError(f"{prefix}.education", "Unknown education level.", "invalid_choice")
        )
    return errors


async def upsert_staff_records(
    session: AsyncSession, actor: Actor, *, rows: list[StaffRecordRow]
) -> UpsertResult:
    """Create or update staff records by employee number, with communities and certificates."""
    tenant_id = _tenant(actor)
    if not rows:
        return UpsertResult(0, 0, 0)
    all_codes = {c for r in rows for c in r.community_codes}
    codes = await estate.community_ids_by_code(session, actor, all_codes)
    bad = [i for i, r in enumerate(rows) if any(c not in codes for c in r.community_codes)]
    if bad:
        raise ValidationFailed(
            "Some rows name a community that does not exist or that you may not manage.",
            code="unknown_community",
            errors=[
                FieldError(f"rows[{i}].community_codes", "Unknown community.", "unknown_community")
                for i in bad
            ],
        )
    if not estate.sees_all_communities(actor):
        unscoped = [i for i, r in enumerate(rows) if not r.community_codes]
        if unscoped:
            raise ValidationFailed(
                errors=[
                    FieldError(f"rows[{i}].community_codes", "Give a community.", "required")
                    for i in unscoped
                ]
            )
    errors = [e for i, r in enumerate(rows) for e in _row_errors(i, r)]
    if errors:
        raise ValidationFailed(errors=errors[:200])
    latest = {r.employee_no: r for r in rows}
    existing = {
        rec.employee_no: rec
        for rec in (
            await session.scalars(
                select(StaffRecord).where(StaffRecord.employee_no.in_(list(latest)))
            )
        ).all()
    }
    # A scoped manager must not overwrite a record serving only communities they cannot see.
    if not estate.sees_all_communities(actor) and existing:
        visible = set(
            (
                await session.scalars(
                    readable_records(actor).where(
                        StaffRecord.id.in_([e.id for e in existing.values()])
                    )
                )
            ).all()
        )
        hidden = [
            i
            for i, r in enumerate(rows)
            if r.employee_no in existing and existing[r.employee_no] not in visible
        ]
        if hidden:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        f"rows[{i}].employee_no",
                        "This employee number is taken.",
                        "employee_no_taken",
                    )
                    for i in hidden
                ]
            )
    communities, certificates = await record_details(
        session, actor, record_ids=[e.id for e in existing.values()]
    )
    new_rows = [r for no, r in latest.items() if no not in existing]
    created_ids: dict[str, uuid.UUID] = {r.employee_no: new_id() for r in new_rows}
    if new_rows:
        phones = [crypto.normalize_phone(r.phone) if r.phone else None for r in new_rows]
        await session.execute(
            text(
                """
                INSERT INTO staff_records (tenant_id, id, employee_no, name, phone_enc,
                    phone_hash, department,
                                           position, employment_type, hire_date, birth_date,
                                               education)
                SELECT :tenant, i, e, n, pe, ph, d, p, CAST(et AS employment_type), hd, bd, ed
                FROM unnest(CAST(:ids AS uuid[]), CAST(:nos AS text[]), CAST(:names AS text[]),
                            CAST(:pe AS bytea[]), CAST(:ph AS bytea[]), CAST(:deps AS text[]),
                            CAST(:pos AS text[]), CAST(:ets AS text[]), CAST(:hds AS date[]),
                            CAST(:bds AS date[]), CAST(:eds AS text[])) AS t(i, e, n, pe, ph,
                                d, p, et, hd, bd, ed)
                """
            ),
            {
                "tenant": tenant_id,
                "ids": [created_ids[r.employee_no] for r in new_rows],
                "nos": [r.employee_no for r in new_rows],
                "names": [r.name for r in new_rows],
                "pe": [crypto.encrypt(p) if p else None for p in phones],
                "ph": [crypto.blind_index(p) if p else None for p in phones],
                "deps": [r.department for r in new_rows],
                "pos": [r.position for r in new_rows],
                "ets": [r.employment_type for r in new_rows],
                "hds": [r.hire_date for r in new_rows],
                "bds": [r.birth_date for r in new_rows],
                "eds": [r.education for r in new_rows],
            },
        )
    updated_nos: set[str] = set()
    for no, record in existing.items():
        row = latest[no]
        changed = False
        for attr in ("name", "department", "position", "hire_date", "birth_date", "education"):
            if getattr(record, attr) != getattr(row, attr):
                setattr(record, attr, getattr(row, attr))
                changed = True
        if record.employment_type.value != row.employment_type:
            record.employment_type = EmploymentType(row.employment_type)
            changed = True
        phone = crypto.normalize_phone(row.phone) if row.phone else None
        if phone and record.phone_hash != crypto.blind_index(phone):
            record.phone_enc, record.phone_hash = crypto.encrypt(phone), crypto.blind_index(phone)
            changed = True
        wanted = {codes[c] for c in row.community_codes}
        if wanted != set(communities.get(record.id, [])):
            await _set_communities(session, tenant_id, record.id, list(wanted))
            changed = True
        have = {(c.cert_type, c.number, c.expires_on) for c in certificates.get(record.id, [])}
        if {(c.cert_type, c.number, c.expires_on) for c in row.certificates} != have:
            await session.execute(
                delete(StaffCertificate).where(StaffCertificate.record_id == record.id)
            )
            changed = True
            created_ids.setdefault(no, record.id)  # certificates rewritten below
        if changed:
            updated_nos.add(no)
    await session.flush()
    # Communities and certificates of new records (and rewritten certificates), set-based.
    link_rows = [
        {"tenant_id": tenant_id, "record_id": created_ids[r.employee_no], "community_id": codes[c]}
        for r in new_rows
        for c in set(r.community_codes)
    ]
    if link_rows:
        await session.execute(
            pg_insert(StaffRecordCommunity).values(link_rows).on_conflict_do_nothing()
        )
    cert_rows = [
        {
            "tenant_id": tenant_id,
            "id": new_id(),
            "record_id": created_ids[no],
            "cert_type": c.cert_type,
            "number": c.number,
            "expires_on": c.expires_on,
        }
        for no, rid in created_ids.items()
        for c in {(x.cert_type, x.number): x for x in latest[no].certificates}.values()
    ]
    if cert_rows:
        await session.execute(
            pg_insert(StaffCertificate).values(cert_rows).on_conflict_do_nothing()
        )
    created = sum(
        1
        for r in rows
        if r.employee_no in {x.employee_no for x in new_rows} and latest[r.employee_no] is r
    )
    updated = sum(1 for r in rows if r.employee_no in updated_nos and latest[r.employee_no] is r)
    outcome = UpsertResult(
        created=created, updated=updated, unchanged=len(rows) - created - updated
    )
    if created or updated:
        detail = {"created": created, "updated": updated, "unchanged": outcome.unchanged}
        await audit.record(
            session,
            actor,
            "staff_record.upsert",
            target_type="staff_record",
            target_id="bulk",
            detail=detail,
        )
        await outbox.emit(session, actor, events.STAFF_RECORDS_IMPORTED, detail)
    return outcome


# --- export ------------------------------------------------------------------------------


async def stream_staff_records(
    session: AsyncSession, actor: Actor
) -> AsyncIterator[StaffRecordRow]:
    """Every staff record the actor may see, as import rows (导出), chunk by chunk.

    Each chunk of records from the server-side cursor costs two more statements
    (communities, certificates), never one per record.
    """
    from linli.tenancy.models import Community

    rows = await session.execute(select(Community.id, Community.code))
    code_of = {community_id: code for community_id, code in rows.all()}
    statement = (
        readable_records(actor)
        .order_by(StaffRecord.employee_no)
        .execution_options(yield_per=estate.EXPORT_CHUNK)
    )
    result = await session.stream_scalars(statement)
    async for chunk in result.partitions():
        records = list(chunk)
        communities, certificates = await record_details(
            session, actor, record_ids=[r.id for r in records]
        )
        for record in records:
            yield StaffRecordRow(
                employee_no=record.employee_no,
                name=record.name,
                phone=crypto.decrypt(record.phone_enc) if record.phone_enc else None,
                department=record.department,
                position=record.position,
                employment_type=EmploymentType(record.employment_type).value,
                hire_date=record.hire_date,
                birth_date=record.birth_date,
                education=record.education,
                community_codes=tuple(
                    sorted(code_of[c] for c in communities[record.id] if c in code_of)
                ),
                certificates=tuple(
                    CertificateRow(c.cert_type, c.number, c.expires_on)
                    for c in certificates[record.id]
                ),
            )
