"""Staff and resident accounts, sign-in and tokens: the only place their rules live."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.models import StaffCommunityGrant, StaffUser
from linli.auth.passwords import hash_password
from linli.auth.permissions import Role
from linli.core import audit, crypto
from linli.core.errors import Conflict, FieldError, ValidationFailed


async def create_staff(
    session: AsyncSession,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: Sequence[Role | str],
    phone: str | None = None,
    all_communities: bool = False,
    community_ids: Sequence[uuid.UUID] = (),
) -> StaffUser:
    assert actor.tenant_id is not None
    role_names = [Role(r).value for r in roles]
    phone_enc = phone_hash = None
    if phone:
        normalized = crypto.normalize_phone(phone)
        if normalized is None:
            raise ValidationFailed(errors=[FieldError("phone", "Not a valid mainland mobile number.")])
        phone_enc, phone_hash = crypto.encrypt(normalized), crypto.blind_index(normalized)
    staff = StaffUser(
        tenant_id=actor.tenant_id,
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        roles=role_names,
        all_communities=all_communities,
        phone_enc=phone_enc,
        phone_hash=phone_hash,
    )
    session.add(staff)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("This username or phone is already used in the company.", code="staff_taken") from exc
    if community_ids:
        await session.execute(
            insert(StaffCommunityGrant),
            [{"tenant_id": actor.tenant_id, "staff_id": staff.id, "community_id": c} for c in community_ids],
        )
    await audit.record(
        session, actor, "staff.create", target_type="staff", target_id=staff.id, detail={"roles": role_names}
    )
    return staff
