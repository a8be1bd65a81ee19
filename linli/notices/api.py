"""Routes of the notices domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params
from linli.notices import service
from linli.notices.models import Announcement, NoticeStatus
from linli.notices.schemas import (
    AnnouncementCreate,
    AnnouncementDetail,
    AnnouncementRead,
    AnnouncementUpdate,
    ApproveBody,
    NoticeRead,
    ReceiptsRead,
    RejectBody,
    UnreadResidentRead,
)

router = APIRouter(prefix="/api/v1/notices", route_class=DeclaredRoute, tags=["notices"])

Writer = Annotated[Actor, Depends(Authorizer(Permission.NOTICES_WRITE))]
Approver = Annotated[Actor, Depends(Authorizer(Permission.NOTICES_APPROVE))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Paging = Annotated[PageParams, Depends(page_params)]


async def _detail(session: DbSession, announcement: Announcement) -> AnnouncementDetail:
    targets = await service.targets_of(session, announcement)
    return AnnouncementDetail.model_validate(
        {
            **AnnouncementRead.model_validate(announcement).model_dump(),
            "building_ids": targets.building_ids,
            "house_ids": targets.house_ids,
        }
    )


@router.post("/announcements", response_model=AnnouncementDetail, status_code=201)
async def create_announcement(
    actor: Writer, session: DbSession, body: AnnouncementCreate, idempotency: IdempotencyDep
) -> AnnouncementDetail:
    async def create() -> AnnouncementDetail:
        announcement = await service.create_draft(session, actor, **body.model_dump())
        return await _detail(session, announcement)

    result: AnnouncementDetail = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/announcements", response_model=Page[AnnouncementRead], summary="Newest first")
async def list_announcements(
    actor: Writer,
    session: DbSession,
    page: Paging,
    status: NoticeStatus | None = None,
    community_id: uuid.UUID | None = None,
) -> Page[AnnouncementRead]:
    rows, cursor = await service.list_announcements(
        session, actor, status=status, community_id=community_id, page=page
    )
    return Page[AnnouncementRead].of(rows, cursor)


@router.get("/announcements/{announcement_id}", response_model=AnnouncementDetail)
async def get_announcement(
    actor: Writer, session: DbSession, announcement_id: uuid.UUID
) -> AnnouncementDetail:
    announcement = await service.get_announcement(session, actor, announcement_id=announcement_id)
    return await _detail(session, announcement)


@router.patch("/announcements/{announcement_id}", response_model=AnnouncementDetail)
async def update_announcement(
    actor: Writer, session: DbSession, announcement_id: uuid.UUID, body: AnnouncementUpdate
) -> AnnouncementDetail:
    changes = body.model_dump(exclude_unset=True)
    announcement = await service.update_draft(
        session, actor, announcement_id=announcement_id, changes=changes
    )
    return await _detail(session, announcement)


@router.post("/announcements/{announcement_id}/submit", response_model=AnnouncementRead)
async def submit_announcement(
    actor: Writer, session: DbSession, announcement_id: uuid.UUID
) -> AnnouncementRead:
    return AnnouncementRead.model_validate(
        await service.submit(session, actor, announcement_id=announcement_id)
    )


@router.post(
    "/announcements/{announcement_id}/approve",
    response_model=AnnouncementRead,
    summary="Approve: publish now or schedule (idempotent once published)",
)
async def approve_announcement(
    actor: Approver,
    session: DbSession,
    announcement_id: uuid.UUID,
    body: ApproveBody | None = None,
) -> AnnouncementRead:
    announcement = await service.approve(
        session,
        actor,
        announcement_id=announcement_id,
        publish_at=body.publish_at if body else None,
    )
    return AnnouncementRead.model_validate(announcement)


@router.post("/announcements/{announcement_id}/publish", response_model=AnnouncementRead)
async def publish_announcement(
    actor: Approver, session: DbSession, announcement_id: uuid.UUID
) -> AnnouncementRead:
    return AnnouncementRead.model_validate(
        await service.publish_now(session, actor, announcement_id=announcement_id)
    )


@router.post("/announcements/{announcement_id}/reject", response_model=AnnouncementRead)
async def reject_announcement(
    actor: Approver, session: DbSession, announcement_id: uuid.UUID, body: RejectBody
) -> AnnouncementRead:
    return AnnouncementRead.model_validate(
        await service.reject(session, actor, announcement_id=announcement_id, note=body.note)
    )


@router.post("/announcements/{announcement_id}/withdraw", response_model=AnnouncementRead)
async def withdraw_announcement(
    actor: Approver, session: DbSession, announcement_id: uuid.UUID
) -> AnnouncementRead:
    return AnnouncementRead.model_validate(
        await service.withdraw(session, actor, announcement_id=announcement_id)
    )


@router.get("/announcements/{announcement_id}/receipts", response_model=ReceiptsRead)
async def announcement_receipts(
    actor: Writer, session: DbSession, announcement_id: uuid.UUID, page: Paging
) -> ReceiptsRead:
    found = await service.receipts(session, actor, announcement_id=announcement_id, page=page)
    return ReceiptsRead(
        recipients=found.recipients,
        read=found.read,
        unread=[UnreadResidentRead.model_validate(u) for u in found.unread],
        next_cursor=found.next_cursor,
    )


# --- residents ------------------------------------------------------------------------------


@router.get("/mine", response_model=list[NoticeRead], summary="My announcements, pinned first")
async def my_notices(actor: Resident, session: DbSession) -> list[NoticeRead]:
    views = await service.my_announcements(session, actor)
    return [NoticeRead.model_validate(v) for v in views]


@router.post("/mine/{announcement_id}/read", response_model=NoticeRead)
async def read_notice(
    actor: Resident, session: DbSession, announcement_id: uuid.UUID, company_id: uuid.UUID
) -> NoticeRead:
    view = await service.open_announcement(
        session, actor, company_id=company_id, announcement_id=announcement_id
    )
    return NoticeRead.model_validate(view)
