"""Routes of staff records. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from linli.auth.actor import Actor
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core import crypto
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params
from linli.estate.rows import CertificateRow
from linli.staff import service
from linli.staff.models import StaffCertificate, StaffRecord
from linli.staff.schemas import (
    CertificateRead,
    StaffRecordCreate,
    StaffRecordRead,
    StaffRecordUpdate,
)

router = APIRouter(prefix="/api/v1/staff-records", route_class=DeclaredRoute, tags=["staff"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.STAFF_RECORDS_READ))]
Writer = Annotated[Actor, Depends(Authorizer(Permission.STAFF_RECORDS_WRITE))]
Paging = Annotated[PageParams, Depends(page_params)]


def record_read(
    record: StaffRecord, communities: list[uuid.UUID], certificates: list[StaffCertificate]
) -> StaffRecordRead:
    phone = crypto.decrypt(record.phone_enc) if record.phone_enc else None
    return StaffRecordRead(
        id=record.id,
        employee_no=record.employee_no,
        name=record.name,
        phone_masked=crypto.mask_phone(phone) if phone else None,
        department=record.department,
        position=record.position,
        employment_type=record.employment_type,
        hire_date=record.hire_date,
        birth_date=record.birth_date,
        education=record.education,
        staff_user_id=record.staff_user_id,
        left_on=record.left_on,
        community_ids=sorted(communities),
        certificates=[
            CertificateRead(cert_type=c.cert_type, number=c.number, expires_on=c.expires_on)
            for c in certificates
        ],
    )


async def _read_one(session: DbSession, actor: Actor, record: StaffRecord) -> StaffRecordRead:
    communities, certificates = await service.record_details(session, actor, record_ids=[record.id])
    return record_read(record, communities[record.id], certificates[record.id])


@router.get("", response_model=Page[StaffRecordRead])
async def list_records(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    department: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[StaffRecordRead]:
    rows, cursor = await service.list_records(
        session, actor, community_id=community_id, department=department, page=page
    )
    communities, certificates = await service.record_details(
        session, actor, record_ids=[r.id for r in rows]
    )
    return Page[StaffRecordRead](
        items=[record_read(r, communities[r.id], certificates[r.id]) for r in rows],
        next_cursor=cursor,
    )


@router.post("", response_model=StaffRecordRead, status_code=201)
async def create_record(
    actor: Writer, session: DbSession, body: StaffRecordCreate, idempotency: IdempotencyDep
) -> StaffRecordRead:
    async def create() -> StaffRecordRead:
        values = body.model_dump(exclude={"certificates"})
        certificates = [CertificateRow(**c.model_dump()) for c in body.certificates]
        record = await service.create_record(session, actor, certificates=certificates, **values)
        return await _read_one(session, actor, record)

    result: StaffRecordRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/{record_id}", response_model=StaffRecordRead)
async def get_record(actor: Reader, session: DbSession, record_id: uuid.UUID) -> StaffRecordRead:
    return await _read_one(
        session, actor, await service.get_record(session, actor, record_id=record_id)
    )


@router.patch("/{record_id}", response_model=StaffRecordRead)
async def update_record(
    actor: Writer, session: DbSession, record_id: uuid.UUID, body: StaffRecordUpdate
) -> StaffRecordRead:
    changes = body.model_dump(exclude_unset=True, exclude={"certificates"})
    if "education" in changes and changes["education"] is not None:
        changes["education"] = changes["education"].value
    if body.certificates is not None:
        changes["certificates"] = [CertificateRow(**c.model_dump()) for c in body.certificates]
    record = await service.update_record(session, actor, record_id=record_id, changes=changes)
    return await _read_one(session, actor, record)
