"""Console pages of staff records (员工档案): list with filters, create, edit.

Thin like :mod:`linli.staff.api`: the staff service does the work and the scoping
(company through RLS; a manager sees the records of people serving one of their
communities); these routes turn query strings and forms into service calls.
Staff *logins* have their own pages in :mod:`linli.auth.pages`; a record may link one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth import service as auth_service
from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core import crypto
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.estate.rows import CertificateRow
from linli.staff import service
from linli.staff.models import Education, EmploymentType, StaffCertificate, StaffRecord
from linli.web import nav
from linli.web.forms import optional_uuid, required_uuid
from linli.web.nav import N_
from linli.web.pages import StaffDb, console_shell, staff
from linli.web.session import ConsoleCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

RECORDS_PATH = "/console/staff-records"
RECORD_PAGE_SIZE = 50
LOGIN_CHOICES = 200
BLANK_CERTIFICATE_ROWS = 2

EMPLOYMENT_LABELS = {
    EmploymentType.OWN.value: N_("Own employee"),
    EmploymentType.OUTSOURCED.value: N_("Outsourced"),
}
EDUCATION_LABELS = {
    Education.NONE.value: N_("Not recorded"),
    Education.PRIMARY.value: N_("Primary school"),
    Education.JUNIOR.value: N_("Junior middle school"),
    Education.SENIOR.value: N_("Senior high school"),
    Education.VOCATIONAL.value: N_("Vocational school"),
    Education.COLLEGE.value: N_("Junior college"),
    Education.BACHELOR.value: N_("Bachelor"),
    Education.MASTER.value: N_("Master"),
    Education.DOCTOR.value: N_("Doctorate"),
}
CERTIFICATE_STATES = {"expired": N_("Expired"), "expiring": N_("Expires soon")}
# What the page says about a field the form got wrong, in our words.
FIELD_MESSAGES = {
    "employee_no": N_("Use 1 to 40 letters, digits, dashes or underscores."),
    "name": N_("Write the name, at most 100 characters."),
    "date": N_("Write a date as 2024-03-01."),
}

RecordReader = Annotated[Actor, staff(Permission.STAFF_RECORDS_READ)]
RecordWriter = Annotated[Actor, staff(Permission.STAFF_RECORDS_WRITE)]
FormText = Annotated[str, Form(max_length=100)]
FormDate = Annotated[str, Form(max_length=20)]
FormList = Annotated[list[str], Form(max_length=500)]

nav.register(
    nav.NavItem(
        "staff_records",
        N_("Staff records"),
        RECORDS_PATH,
        Permission.STAFF_RECORDS_READ,
        "badge",
        82,
    )
)


def _record_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Staff record not found.", code="staff_record_not_found")


@dataclass(frozen=True)
class CertificateView:
    cert_type: str
    number: str
    expires_on: dt.date | None
    state: str | None  # "expired", "expiring" or None


@dataclass(frozen=True)
class RecordView:
    record: StaffRecord
    community_ids: list[uuid.UUID]
    certificates: list[CertificateView]

    @property
    def flagged(self) -> bool:
        return any(c.state for c in self.certificates)


def _views(
    records: list[StaffRecord],
    communities: dict[uuid.UUID, list[uuid.UUID]],
    certificates: dict[uuid.UUID, list[StaffCertificate]],
    today: dt.date,
) -> list[RecordView]:
    return [
        RecordView(
            record=r,
            community_ids=communities.get(r.id, []),
            certificates=[
                CertificateView(
                    c.cert_type,
                    c.number,
                    c.expires_on,
                    service.certificate_state(c.expires_on, today=today),
                )
                for c in certificates.get(r.id, [])
            ],
        )
        for r in records
    ]


def _labels() -> dict[str, Any]:
    return {
        "employment_labels": EMPLOYMENT_LABELS,
        "education_labels": EDUCATION_LABELS,
        "certificate_states": CERTIFICATE_STATES,
        "warning_days": service.CERTIFICATE_WARNING_DAYS,
    }


# --- list -----------------------------------------------------------------------------------------


@router.get(RECORDS_PATH, name="console.staff_records")
async def records_page(
    request: Request,
    actor: RecordReader,
    session: StaffDb,
    department: Annotated[str, Query(max_length=100)] = "",
    community: Annotated[str, Query(max_length=64)] = "",
    employment: Annotated[str, Query(max_length=20)] = "",
    expiring: Annotated[str, Query(max_length=4)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    today = dt.date.today()
    due = today + dt.timedelta(days=service.CERTIFICATE_WARNING_DAYS)
    employment_type = EmploymentType(employment) if employment in EMPLOYMENT_LABELS else None
    community_id = optional_uuid(community)
    records, next_cursor = await service.list_records(
        session,
        actor,
        community_id=community_id,
        department=department.strip() or None,
        employment_type=employment_type,
        certificates_expiring_by=due if expiring == "1" else None,
        page=PageParams(cursor=cursor, limit=RECORD_PAGE_SIZE),
    )
    communities, certificates = await service.record_details(
        session, actor, record_ids=[r.id for r in records]
    )
    filters = {
        "department": department.strip(),
        "community": str(community_id) if community_id else "",
        "employment": employment_type.value if employment_type else "",
        "expiring": "1" if expiring == "1" else "",
    }
    return render(
        request,
        "staff/records.html",
        shell
        | _labels()
        | {
            "rows": _views(records, communities, certificates, today),
            "departments": await service.list_departments(session, actor),
            "community_names": {c.id: c.name for c in shell["communities"]},
            "certificates_due": await service.count_certificates_due(session, actor, today=today),
            "filters": filters,
            "filter_query": "&".join(f"{k}={v}" for k, v in filters.items() if v),
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "may_write": actor.can(Permission.STAFF_RECORDS_WRITE),
        },
    )


# --- the form (create and edit) -------------------------------------------------------------------


@dataclass
class RecordForm:
    """What the form sent, read into typed values; ``errors`` name the fields it got wrong."""

    values: dict[str, Any]
    certificates: list[CertificateRow]
    errors: list[FieldError]


def _date(raw: str, field_name: str, errors: list[FieldError]) -> dt.date | None:
    value = raw.strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(field_name, FIELD_MESSAGES["date"], "invalid_date"))
        return None


def _read_form(
    *,
    name: str,
    department: str,
    position: str,
    employment_type: str,
    hire_date: str,
    birth_date: str,
    education: str,
    staff_user_id: str,
    community_ids: list[str],
    cert_type: list[str],
    cert_number: list[str],
    cert_expires: list[str],
) -> RecordForm:
    errors: list[FieldError] = []
    if not name.strip() or len(name.strip()) > 100:
        errors.append(FieldError("name", FIELD_MESSAGES["name"], "invalid"))
    communities = [optional_uuid(c) for c in dict.fromkeys(community_ids)]
    certificates = []
    for i, (kind, number) in enumerate(zip(cert_type, cert_number, strict=False)):
        expires = cert_expires[i] if i < len(cert_expires) else ""
        if not kind.strip() and not number.strip() and not expires.strip():
            continue  # a blank row of the form
        certificates.append(
            CertificateRow(
                kind.strip(), number.strip(), _date(expires, f"certificates[{i}]", errors)
            )
        )
    values = {
        "name": name.strip(),
        "department": department.strip(),
        "position": position.strip(),
        "employment_type": EmploymentType(employment_type)
        if employment_type in EMPLOYMENT_LABELS
        else EmploymentType.OWN,
        "hire_date": _date(hire_date, "hire_date", errors),
        "birth_date": _date(birth_date, "birth_date", errors),
        "education": Education(education) if education in EDUCATION_LABELS else Education.NONE,
        "staff_user_id": optional_uuid(staff_user_id),
        "community_ids": [c for c in communities if c is not None],
    }
    return RecordForm(values=values, certificates=certificates, errors=errors)


async def _login_choices(session: AsyncSession, actor: Actor) -> list[tuple[str, str]] | None:
    """Staff logins a record may link, or None when the actor may not list logins."""
    if not actor.can(Permission.STAFF_READ):
        return None
    members, _ = await auth_service.list_staff(session, actor, page=PageParams(limit=LOGIN_CHOICES))
    return [(str(m.user.id), f"{m.user.display_name} ({m.user.username})") for m in members]


async def _form_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    view: RecordView | None,
    phone: str | None = None,
    form: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    if form is None:
        form = _form_of(view)
    blanks = [{"cert_type": "", "number": "", "expires_on": ""}] * BLANK_CERTIFICATE_ROWS
    logins = await _login_choices(session, actor)
    return render(
        request,
        "staff/record.html",
        shell
        | _labels()
        | {
            "view": view,
            "phone": phone,
            "form": form,
            "certificate_rows": list(form["certificates"]) + blanks,
            "logins": logins,
            "login_names": dict(logins or []),
            "departments": await service.list_departments(session, actor),
            "community_names": {c.id: c.name for c in shell["communities"]},
            "may_write": actor.can(Permission.STAFF_RECORDS_WRITE),
            "error": error,
            "notice": notice,
        },
        status_code=status_code,
    )


def _form_of(view: RecordView | None) -> dict[str, Any]:
    if view is None:
        return {
            "employee_no": "",
            "name": "",
            "phone": "",
            "department": "",
            "position": "",
            "employment_type": EmploymentType.OWN.value,
            "hire_date": "",
            "birth_date": "",
            "education": "",
            "staff_user_id": "",
            "community_ids": [],
            "certificates": [],
        }
    r = view.record
    return {
        "employee_no": r.employee_no,
        "name": r.name,
        "phone": "",
        "department": r.department,
        "position": r.position,
        "employment_type": EmploymentType(r.employment_type).value,
        "hire_date": r.hire_date.isoformat() if r.hire_date else "",
        "birth_date": r.birth_date.isoformat() if r.birth_date else "",
        "education": r.education,
        "staff_user_id": str(r.staff_user_id) if r.staff_user_id else "",
        "left_on": r.left_on.isoformat() if r.left_on else "",
        "community_ids": [str(c) for c in view.community_ids],
        "certificates": [
            {
                "cert_type": c.cert_type,
                "number": c.number,
                "expires_on": c.expires_on.isoformat() if c.expires_on else "",
            }
            for c in view.certificates
        ],
    }


def _echo(
    *,
    employee_no: str,
    phone: str,
    raw: dict[str, Any],
    cert_type: list[str],
    cert_number: list[str],
    cert_expires: list[str],
) -> dict[str, Any]:
    """The form as sent, to show again next to the errors."""
    certificates = [
        {
            "cert_type": kind,
            "number": number,
            "expires_on": cert_expires[i] if i < len(cert_expires) else "",
        }
        for i, (kind, number) in enumerate(zip(cert_type, cert_number, strict=False))
        if kind.strip() or number.strip()
    ]
    return raw | {"employee_no": employee_no, "phone": phone, "certificates": certificates}


async def _view(session: AsyncSession, actor: Actor, record_id: uuid.UUID) -> RecordView:
    record = await service.get_record(session, actor, record_id=record_id)
    communities, certificates = await service.record_details(session, actor, record_ids=[record.id])
    return _views([record], communities, certificates, dt.date.today())[0]


@router.get(RECORDS_PATH + "/new", name="console.staff_record_new")
async def new_record_page(request: Request, actor: RecordWriter, session: StaffDb) -> Response:
    return await _form_page(request, session, actor, view=None)


@router.post(RECORDS_PATH, dependencies=[ConsoleCsrf])
async def create_record(
    request: Request,
    actor: RecordWriter,
    session: StaffDb,
    employee_no: Annotated[str, Form(max_length=40)] = "",
    name: FormText = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    department: FormText = "",
    position: FormText = "",
    employment_type: Annotated[str, Form(max_length=20)] = "",
    hire_date: FormDate = "",
    birth_date: FormDate = "",
    education: Annotated[str, Form(max_length=20)] = "",
    staff_user_id: Annotated[str, Form(max_length=64)] = "",
    community_ids: FormList | None = None,
    cert_type: FormList | None = None,
    cert_number: FormList | None = None,
    cert_expires: FormList | None = None,
) -> Response:
    raw: dict[str, Any] = {
        "name": name,
        "department": department,
        "position": position,
        "employment_type": employment_type,
        "hire_date": hire_date,
        "birth_date": birth_date,
        "education": education,
        "staff_user_id": staff_user_id,
        "community_ids": list(community_ids or []),
    }
    certs = (list(cert_type or []), list(cert_number or []), list(cert_expires or []))
    read = _read_form(**raw, cert_type=certs[0], cert_number=certs[1], cert_expires=certs[2])
    number = employee_no.strip()
    if not number or len(number) > 40 or not all(ch.isalnum() or ch in "-_" for ch in number):
        read.errors.insert(0, FieldError("employee_no", FIELD_MESSAGES["employee_no"], "invalid"))
    try:
        if read.errors:
            raise ValidationFailed(errors=read.errors)
        async with session.begin_nested():
            record = await service.create_record(
                session,
                actor,
                employee_no=number,
                phone=phone.strip() or None,
                certificates=read.certificates,
                **read.values,
            )
    except DomainError as exc:
        form = _echo(
            employee_no=employee_no,
            phone=phone,
            raw=raw,
            cert_type=certs[0],
            cert_number=certs[1],
            cert_expires=certs[2],
        )
        return await _form_page(
            request,
            session,
            actor,
            view=None,
            form=form,
            error=describe(exc),
            status_code=exc.status,
        )
    return redirect(request, f"{RECORDS_PATH}/{record.id}?saved=1")


# --- one record -----------------------------------------------------------------------------------


@router.get(RECORDS_PATH + "/{record_id}", name="console.staff_record")
async def record_page(
    request: Request,
    actor: RecordReader,
    session: StaffDb,
    record_id: str,
    saved: Annotated[str, Query(max_length=4)] = "",
) -> Response:
    view = await _view(session, actor, _record_id(record_id))
    phone = crypto.decrypt(view.record.phone_enc) if view.record.phone_enc else None
    return await _form_page(
        request,
        session,
        actor,
        view=view,
        phone=crypto.mask_phone(phone) if phone else None,
        notice=N_("Saved.") if saved == "1" else "",
    )


@router.post(RECORDS_PATH + "/{record_id}", dependencies=[ConsoleCsrf])
async def update_record(
    request: Request,
    actor: RecordWriter,
    session: StaffDb,
    record_id: str,
    name: FormText = "",
    department: FormText = "",
    position: FormText = "",
    employment_type: Annotated[str, Form(max_length=20)] = "",
    hire_date: FormDate = "",
    birth_date: FormDate = "",
    education: Annotated[str, Form(max_length=20)] = "",
    staff_user_id: Annotated[str, Form(max_length=64)] = "",
    left_on: FormDate = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    clear_phone: Annotated[str, Form(max_length=10)] = "",
    community_ids: FormList | None = None,
    cert_type: FormList | None = None,
    cert_number: FormList | None = None,
    cert_expires: FormList | None = None,
) -> Response:
    wanted = _record_id(record_id)
    view = await _view(session, actor, wanted)
    raw: dict[str, Any] = {
        "name": name,
        "department": department,
        "position": position,
        "employment_type": employment_type,
        "hire_date": hire_date,
        "birth_date": birth_date,
        "education": education,
        "staff_user_id": staff_user_id,
        "community_ids": list(community_ids or []),
    }
    certs = (list(cert_type or []), list(cert_number or []), list(cert_expires or []))
    read = _read_form(**raw, cert_type=certs[0], cert_number=certs[1], cert_expires=certs[2])
    changes = read.values | {"left_on": _date(left_on, "left_on", read.errors)}
    changes["education"] = changes["education"].value
    # The form offers the communities of the switcher; ones it could not offer stay as they were.
    offered = {c.id for c in (await console_shell(request, session, actor))["communities"]}
    kept = [c for c in view.community_ids if c not in offered]
    changes["community_ids"] = list(dict.fromkeys([*changes["community_ids"], *kept]))
    try:
        if read.errors:
            raise ValidationFailed(errors=read.errors)
        async with session.begin_nested():
            await service.update_record(session, actor, record_id=wanted, changes=changes)
            await service.replace_certificates(
                session, actor, record_id=wanted, certificates=read.certificates
            )
            # The number is shown masked, so a blank field keeps it; a box clears it.
            if clear_phone or phone.strip():
                await service.change_record_phone(
                    session, actor, record_id=wanted, phone=None if clear_phone else phone.strip()
                )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "staff_record_not_found":
            raise
        view = await _view(session, actor, wanted)  # the savepoint's rollback expired it
        form = _echo(
            employee_no=view.record.employee_no,
            phone=phone,
            raw=raw | {"left_on": left_on},
            cert_type=certs[0],
            cert_number=certs[1],
            cert_expires=certs[2],
        )
        return await _form_page(
            request,
            session,
            actor,
            view=view,
            form=form,
            error=describe(exc),
            status_code=exc.status,
        )
    return redirect(request, f"{RECORDS_PATH}/{wanted}?saved=1")
