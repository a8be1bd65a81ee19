"""Staff records (员工档案) in the console: filters, create, edit, certificates near expiry."""

from __future__ import annotations

import datetime as dt

import httpx

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.estate.rows import CertificateRow
from linli.staff import service
from linli.staff.models import EmploymentType
from tests.factories import PASSWORD, make_company, make_staff
from tests.web.pageutil import csrf_of, staff_sign_in, text_of


async def test_list_filters_and_expiring_certificates(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=2)
    soon = dt.date.today() + dt.timedelta(days=30)
    later = dt.date.today() + dt.timedelta(days=400)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        await service.create_record(
            session,
            actor,
            employee_no="E1",
            name="刘电工",
            department="工程部",
            community_ids=[company.communities[0]],
            certificates=[
                CertificateRow("电工证", "T-SOON", soon),
                CertificateRow("高处作业证", "H-LATER", later),
            ],
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
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)

    page = await web.get("/console/staff-records")
    assert page.status_code == 200, page.text
    assert 'href="/console/staff-records"' in page.text
    text = text_of(page)
    assert "刘电工" in text and "陈保安" in text
    flagged = page.text.split('data-certificate-state="expiring"', 1)[1].split("</li>", 1)[0]
    assert "T-SOON" in flagged and "<mark>" in page.text
    assert page.text.count("data-certificate-state=") == 1  # the far one is not flagged

    due = page.text.split('data-testid="certificates-due"', 1)[1].split("</div>", 1)[0]
    assert "1 个" in due  # only the certificate expiring in 30 days
    expiring = await web.get("/console/staff-records", params={"expiring": "1"})
    assert "刘电工" in text_of(expiring) and "陈保安" not in text_of(expiring)

    outsourced = await web.get("/console/staff-records", params={"employment": "outsourced"})
    assert "陈保安" in text_of(outsourced) and "刘电工" not in text_of(outsourced)
    engineering = await web.get("/console/staff-records", params={"department": "工程部"})
    assert "刘电工" in text_of(engineering) and "陈保安" not in text_of(engineering)
    by_community = await web.get(
        "/console/staff-records", params={"community": str(company.communities[1])}
    )
    assert "陈保安" in text_of(by_community) and "刘电工" not in text_of(by_community)


async def test_create_then_edit_a_record(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=2)
    login = await make_staff(company, roles=[Role.TECHNICIAN], username="liu", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    form_page = await web.get("/console/staff-records/new")
    assert form_page.status_code == 200
    token = csrf_of(form_page)
    assert f'value="{login}"' in form_page.text  # logins to link are offered

    base = {
        "csrf_token": token,
        "employee_no": "E100",
        "name": "刘师傅",
        "phone": "13912345678",
        "department": "工程部",
        "position": "电工",
        "employment_type": "own",
        "hire_date": "2021-03-01",
        "birth_date": "1985-06-01",
        "education": "vocational",
        "staff_user_id": str(login),
        "community_ids": [str(company.communities[0])],
        "cert_type": ["电工证", ""],
        "cert_number": ["T123", ""],
        "cert_expires": ["2030-01-01", ""],
    }
    bad = await web.post(
        "/console/staff-records", data=base | {"hire_date": "2021-13-01", "employee_no": "E 1"}
    )
    assert bad.status_code == 422
    assert 'id="hire_date-error"' in bad.text and 'id="employee_no-error"' in bad.text
    assert 'value="刘师傅"' in bad.text  # the form keeps what was typed
    bad_phone = await web.post("/console/staff-records", data=base | {"phone": "12345"})
    assert bad_phone.status_code == 422 and 'id="phone-error"' in bad_phone.text

    made = await web.post("/console/staff-records", data=base)
    assert made.status_code == 303, made.text
    record_path = made.headers["location"].split("?", 1)[0]
    twice = await web.post("/console/staff-records", data=base)
    assert twice.status_code == 409

    record = await web.get(record_path)
    text = text_of(record)
    assert "刘师傅" in text and "139****5678" in text and "T123" in text
    assert "员工 (liu)" in text  # the linked login

    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    edit = {
        "csrf_token": csrf_of(record),
        "name": "刘师傅",
        "department": "工程部",
        "position": "领班",
        "employment_type": "outsourced",
        "hire_date": "2021-03-01",
        "birth_date": "",
        "education": "college",
        "staff_user_id": "",
        "community_ids": [str(c) for c in company.communities],
        "cert_type": ["电工证", "消防设施操作员证", ""],
        "cert_number": ["T123", "F9", ""],
        "cert_expires": ["2030-01-01", soon, ""],
    }
    dup = await web.post(
        record_path,
        data=edit | {"cert_type": ["电工证", "电工证"], "cert_number": ["T1", "T1"]},
    )
    assert dup.status_code == 422
    assert "证书 2" in text_of(dup)
    saved = await web.post(record_path, data=edit)
    assert saved.status_code == 303, saved.text

    after = await web.get(record_path)
    certificates = after.text.split('data-testid="record-certificates"', 1)[1]
    assert "F9" in certificates and 'data-certificate-state="expiring"' in certificates
    facts = after.text.split('class="facts"', 1)[1].split("</dl>", 1)[0]
    assert "外包" in facts and "员工 (liu)" not in facts  # no login linked any more
    assert "<dd>无</dd>" in facts
    assert "领班" in text_of(after)
    listed = await web.get("/console/staff-records", params={"employment": "outsourced"})
    row = listed.text.split("刘师傅", 1)[1].split("</tr>", 1)[0]
    assert "小区1号" in row and "小区2号" in row


async def test_permissions_and_other_companies(
    web: httpx.AsyncClient, other_web: httpx.AsyncClient
) -> None:
    company = await make_company(communities=1)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        record = await service.create_record(
            session, actor, employee_no="E1", name="周经理", community_ids=company.communities
        )
    await make_staff(company, roles=[Role.TECHNICIAN], username="tech", all_communities=True)
    await staff_sign_in(web, company=company.slug, login="tech", password=PASSWORD)
    assert (await web.get("/console/staff-records")).status_code == 403
    dashboard = await web.get("/console")
    assert 'href="/console/staff-records"' not in dashboard.text

    stranger = await make_company(communities=1)
    await staff_sign_in(other_web, company=stranger.slug, login="admin", password=PASSWORD)
    assert (await other_web.get(f"/console/staff-records/{record.id}")).status_code == 404
    assert (await other_web.get("/console/staff-records/not-a-uuid")).status_code == 404
    page = await other_web.get("/console/staff-records")
    assert "周经理" not in text_of(page)
    forged = await other_web.post(
        f"/console/staff-records/{record.id}",
        data={"csrf_token": csrf_of(page), "name": "篡改", "community_ids": []},
    )
    assert forged.status_code == 404


async def test_phone_is_kept_changed_or_removed(web: httpx.AsyncClient) -> None:
    company = await make_company(communities=1)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        record = await service.create_record(
            session,
            actor,
            employee_no="E7",
            name="冯保洁",
            phone="13912345678",
            community_ids=company.communities,
        )
    await staff_sign_in(web, company=company.slug, login="admin", password=PASSWORD)
    path = f"/console/staff-records/{record.id}"
    page = await web.get(path)
    assert 'placeholder="不变：139****5678"' in page.text
    form = {
        "csrf_token": csrf_of(page),
        "name": "冯保洁",
        "employment_type": "own",
        "community_ids": [str(c) for c in company.communities],
    }
    kept = await web.post(path, data=form)
    assert kept.status_code == 303
    assert "139****5678" in text_of(await web.get(path))
    bad = await web.post(path, data=form | {"phone": "1391234"})
    assert bad.status_code == 422 and 'id="phone-error"' in bad.text
    changed = await web.post(path, data=form | {"phone": "13800138000"})
    assert changed.status_code == 303
    assert "138****8000" in text_of(await web.get(path))
    removed = await web.post(path, data=form | {"clear_phone": "1"})
    assert removed.status_code == 303
    after = await web.get(path)
    assert "****" not in after.text and "clear_phone" not in after.text
