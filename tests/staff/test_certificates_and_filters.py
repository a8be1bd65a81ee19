"""Certificates replaced from the edit form, flagged before they expire; list filters."""

from __future__ import annotations

import datetime as dt

import pytest

from linli.auth.actor import Actor
from linli.core.errors import ValidationFailed
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.estate.rows import CertificateRow
from linli.staff import service
from linli.staff.models import EmploymentType
from tests.factories import make_company

TODAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    ("expires_on", "state"),
    [
        (None, None),
        (TODAY - dt.timedelta(days=1), "expired"),
        (TODAY, "expiring"),
        (TODAY + dt.timedelta(days=60), "expiring"),
        (TODAY + dt.timedelta(days=61), None),
    ],
)
def test_certificate_state(expires_on: dt.date | None, state: str | None) -> None:
    assert service.certificate_state(expires_on, today=TODAY) == state


async def test_replace_certificates_and_filter_by_employment_type() -> None:
    company = await make_company(communities=2)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        own = await service.create_record(
            session,
            actor,
            employee_no="E1",
            name="刘电工",
            department="工程部",
            community_ids=[company.communities[0]],
            certificates=[CertificateRow("电工证", "T1", dt.date(2030, 1, 1))],
        )
        await service.create_record(
            session,
            actor,
            employee_no="E2",
            name="陈保安",
            department="秩序部",
            employment_type=EmploymentType.OUTSOURCED,
            community_ids=[company.communities[1]],
        )
        wanted = [
            CertificateRow("电工证", "T1", dt.date(2031, 1, 1)),
            CertificateRow(" 消防设施操作员证 ", "F9", None),
        ]
        rows = await service.replace_certificates(
            session, actor, record_id=own.id, certificates=wanted
        )
        assert sorted((c.cert_type, c.number, c.expires_on) for c in rows) == [
            ("消防设施操作员证", "F9", None),
            ("电工证", "T1", dt.date(2031, 1, 1)),
        ]
        with pytest.raises(ValidationFailed) as twice:
            await service.replace_certificates(
                session, actor, record_id=own.id, certificates=[wanted[0], wanted[0]]
            )
        assert twice.value.errors[0].code == "duplicate"
        with pytest.raises(ValidationFailed):
            await service.replace_certificates(
                session, actor, record_id=own.id, certificates=[CertificateRow("电工证", " ")]
            )
        _, certificates = await service.record_details(session, actor, record_ids=[own.id])
        assert len(certificates[own.id]) == 2

        outsourced, _ = await service.list_records(
            session, actor, employment_type=EmploymentType.OUTSOURCED, page=PageParams()
        )
        assert [r.employee_no for r in outsourced] == ["E2"]
        assert await service.list_departments(session, actor) == sorted(["工程部", "秩序部"])

    scoped = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({"community_manager"}),
        all_communities=False,
        community_ids=frozenset({company.communities[0]}),
    )
    async with unit_of_work(company.id) as session:
        assert await service.list_departments(session, scoped) == ["工程部"]


async def test_certificates_due_are_counted_for_current_visible_staff() -> None:
    company = await make_company(communities=2)
    actor = Actor.system(company.id)
    today = dt.date.today()
    soon = today + dt.timedelta(days=10)
    async with unit_of_work(company.id) as session:
        first = await service.create_record(
            session,
            actor,
            employee_no="E1",
            name="甲",
            community_ids=[company.communities[0]],
            certificates=[
                CertificateRow("电工证", "A", soon),
                CertificateRow("焊工证", "B", today - dt.timedelta(days=3)),
                CertificateRow("高处作业证", "C", today + dt.timedelta(days=400)),
            ],
        )
        await service.create_record(
            session,
            actor,
            employee_no="E2",
            name="乙",
            community_ids=[company.communities[1]],
            certificates=[CertificateRow("电工证", "D", soon)],
        )
        left = await service.create_record(
            session,
            actor,
            employee_no="E3",
            name="丙",
            community_ids=[company.communities[0]],
            certificates=[CertificateRow("电工证", "E", soon)],
        )
        await service.update_record(session, actor, record_id=left.id, changes={"left_on": today})
        assert await service.count_certificates_due(session, actor, today=today) == 3
        due, _ = await service.list_records(
            session,
            actor,
            certificates_expiring_by=today + dt.timedelta(days=60),
            page=PageParams(),
        )
        assert {r.employee_no for r in due} == {"E1", "E2", "E3"}
    scoped = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({"community_manager"}),
        all_communities=False,
        community_ids=frozenset({company.communities[0]}),
    )
    async with unit_of_work(company.id) as session:
        assert await service.count_certificates_due(session, scoped, today=today) == 2
        mine, _ = await service.list_records(
            session, scoped, certificates_expiring_by=soon, page=PageParams()
        )
        assert {r.id for r in mine} == {first.id, left.id}
