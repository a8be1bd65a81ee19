"""The API's one-statement steps (linli.workorders.fastpath): same rows, same answers, races.

Open (desk, no auto-dispatch), dispatch by the rules, accept and finish run as one
write each; these tests hold them to what the ORM path of the service writes and
refuses, and run the races the state check in the UPDATE must settle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text, update

from linli.auth.actor import Actor
from linli.auth.models import StaffUser
from linli.core.models import AuditEntry, OutboxEvent
from linli.db import reads
from linli.db.engine import unit_of_work
from linli.workorders import fastpath, service
from linli.workorders.models import OrderSource, Priority, WorkOrder, WorkOrderEvent
from tests.factories import bearer, make_company, staff_token
from tests.residents.test_list_query_counts import counted
from tests.workorders.helpers import Desk, make_desk, make_technician, technician_token

WO = "/api/v1/workorders"


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Messages sent through linli.db.reads (each one round trip), by statements held."""
    sent: list[int] = []
    real = reads._run_script
    real_read = reads.read_rows

    async def run(conn: Any, parts: list[Any]) -> Any:
        sent.append(len(parts))
        return await real(conn, parts)

    async def read(tenant_id: Any, query: Any, values: Any) -> Any:
        sent.append(2)  # the tenant setting and the query, one pipeline
        return await real_read(tenant_id, query, values)

    monkeypatch.setattr(reads, "_run_script", run)
    monkeypatch.setattr(fastpath, "read_rows", read)
    yield sent


async def _open(client: Any, desk: Desk, **extra: Any) -> dict[str, Any]:
    body = {
        "community_id": str(desk.company.communities[0]),
        "category_id": str(desk.category_id),
        "description": "电梯异响",
        "location": "3栋电梯",
        "auto_assign": False,
        **extra,
    }
    response = await client.post(f"{WO}/orders", headers=desk.front_desk, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _rows(company_id: uuid.UUID, order_id: str) -> dict[str, Any]:
    oid = uuid.UUID(order_id)
    async with unit_of_work(company_id) as session:
        events = (
            await session.execute(
                select(WorkOrderEvent.kind, WorkOrderEvent.note, WorkOrderEvent.detail)
                .where(WorkOrderEvent.order_id == oid)
                .order_by(WorkOrderEvent.id)
            )
        ).all()
        audits = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.community_id, AuditEntry.detail)
                .where(AuditEntry.target_id == str(oid))
                .order_by(AuditEntry.id)
            )
        ).all()
        outbox = (
            await session.execute(
                select(OutboxEvent.event_type, OutboxEvent.payload, OutboxEvent.id)
                .where(OutboxEvent.payload["order_id"].astext == str(oid))
                .order_by(OutboxEvent.id)
            )
        ).all()
        jobs = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE task_name = 'linli.core.tasks.deliver_event'"
                " AND args->>'event_id' = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": [str(row.id) for row in outbox]},
        )
        order = await session.scalar(select(WorkOrder).where(WorkOrder.id == oid))
        assert order is not None
        return {
            "order": order,
            "events": [(e.kind, e.note, e.detail) for e in events],
            "audits": [(a.action, a.community_id, a.detail) for a in audits],
            "outbox": [(o.event_type, o.payload) for o in outbox],
            "jobs": jobs,
        }


async def test_the_life_of_an_order_in_one_write_per_step(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = await make_desk()
    await _open(client, desk)  # warms the cached community and category
    with counted() as orm, round_trips(monkeypatch) as sent:
        order = await _open(client, desk, priority="urgent")
        oid = order["id"]
        assigned = await client.post(f"{WO}/orders/{oid}/assign", headers=desk.front_desk, json={})
        accepted = await client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician)
        finished = await client.post(
            f"{WO}/orders/{oid}/finish", headers=desk.technician, json={"note": " 换了轴承 "}
        )
    assert orm == []  # no unit of work at all
    # open: 1 write; assign: 1 write; accept and finish: 1 read + 1 write each.
    assert sent == [2, 2, 2, 2, 2, 2]
    assert assigned.status_code == 200, assigned.text
    assert accepted.status_code == 200, accepted.text
    assert finished.status_code == 200, finished.text
    assert order["status"] == "new" and order["priority"] == "urgent"
    assert assigned.json()["assignee_id"] == str(desk.technician_id)
    assert accepted.json()["status"] == "in_progress"
    assert accepted.json()["response_minutes"] is not None
    body = finished.json()
    assert body["status"] == "finished" and body["completion_met"] is True
    rows = await _rows(desk.company.id, oid)
    stored: WorkOrder = rows["order"]
    assert body["completion_minutes"] == stored.completion_minutes
    assert stored.created_by_staff_id == desk.front_desk_id
    assert stored.response_warn_at < stored.response_due_at
    community = desk.company.communities[0]
    tech = str(desk.technician_id)
    assert rows["events"] == [
        ("created", "电梯异响", {"source": "phone", "priority": "urgent"}),
        ("assigned", "", {"technician_id": tech, "auto": True}),
        ("accepted", "", {}),
        ("finished", "换了轴承", {}),
    ]
    assert rows["audits"] == [
        ("workorder.created", community, {"source": "phone", "priority": "urgent"}),
        ("workorder.assigned", community, {"technician_id": tech, "auto": True}),
        ("workorder.accepted", community, {}),
        ("workorder.finished", community, {}),
    ]
    number = order["number"]
    base = {"order_id": oid, "number": number, "community_id": str(community)}
    assert rows["outbox"] == [
        ("workorder.created", {**base, "status": "new", "kind": "repair"}),
        (
            "workorder.assigned",
            {
                **base,
                "status": "assigned",
                "technician_ids": [tech],
                "recipient_staff_ids": [tech],
            },
        ),
        (
            "workorder.finished",
            {**base, "status": "finished", "resident_account_ids": [], "house_id": None},
        ),
    ]
    assert rows["jobs"] == 3  # each event's delivery queued with it


async def test_the_fast_open_matches_the_service(client: Any) -> None:
    """Same order from the API's one statement and from service.create_order."""
    desk = await make_desk()
    shown = await _open(client, desk, priority="high", reporter_name="李先生")
    async with unit_of_work(desk.company.id) as session:
        made = await service.create_order(
            session,
            Actor.system(desk.company.id),
            new=service.NewOrder(
                community_id=desk.company.communities[0],
                category_id=desk.category_id,
                description="电梯异响",
                location="3栋电梯",
                priority=Priority.HIGH,
                reporter_name="李先生",
            ),
            source=OrderSource.PHONE,
            auto_assign=False,
        )
        reference = {
            "kind": made.kind.value,
            "status": made.status.value,
            "minutes": (made.completion_due_at - made.created_at).total_seconds() // 3600,
        }
    fast: WorkOrder = (await _rows(desk.company.id, shown["id"]))["order"]
    assert fast.kind.value == reference["kind"] and fast.status.value == reference["status"]
    assert (fast.completion_due_at - fast.created_at).total_seconds() // 3600 == reference[
        "minutes"
    ]
    assert fast.reporter_name == "李先生" and fast.rating_comment == "" and fast.reopen_count == 0
    read = await client.get(f"{WO}/orders/{shown['id']}", headers=desk.front_desk)
    assert read.json() == shown  # the answer is the stored row


async def test_an_idempotent_open_replays_and_refuses_another_body(client: Any) -> None:
    desk = await make_desk()
    headers = {**desk.front_desk, "Idempotency-Key": f"call-{uuid.uuid4().hex}"}
    body = {
        "community_id": str(desk.company.communities[0]),
        "category_id": str(desk.category_id),
        "description": "楼道灯不亮",
        "location": "2栋",
        "auto_assign": False,
    }
    first = await client.post(f"{WO}/orders", headers=headers, json=body)
    again = await client.post(f"{WO}/orders", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = await client.post(f"{WO}/orders", headers=headers, json={**body, "location": "3栋"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    async with unit_of_work(desk.company.id) as session:
        count = await session.scalar(
            select(func.count()).where(WorkOrder.description == "楼道灯不亮")
        )
    assert count == 1


async def test_the_fast_open_sees_category_and_sla_changes_at_once(client: Any) -> None:
    desk = await make_desk()
    before = await _open(client, desk)  # cached now
    async with unit_of_work(desk.company.id) as session:
        await service.update_category(
            session,
            Actor.system(desk.company.id),
            category_id=desk.category_id,
            name=None,
            default_priority=Priority.URGENT,
            sla={Priority.URGENT: service.SlaTarget(10, 20)},
            archived=None,
        )
    after = await _open(client, desk)
    assert before["priority"] == "normal" and after["priority"] == "urgent"
    async with unit_of_work(desk.company.id) as session:
        await service.update_category(
            session,
            Actor.system(desk.company.id),
            category_id=desk.category_id,
            name=None,
            default_priority=None,
            sla=None,
            archived=True,
        )
    refused = await client.post(
        f"{WO}/orders",
        headers=desk.front_desk,
        json={
            "community_id": str(desk.company.communities[0]),
            "category_id": str(desk.category_id),
            "description": "x",
            "location": "y",
            "auto_assign": False,
        },
    )
    assert refused.status_code == 404 and refused.json()["code"] == "category_not_found"


async def test_another_community_or_company_is_refused(client: Any) -> None:
    desk = await make_desk()
    body = {
        "community_id": str(desk.company.communities[1]),  # not granted to the desk
        "category_id": str(desk.category_id),
        "description": "x",
        "location": "y",
        "auto_assign": False,
    }
    refused = await client.post(f"{WO}/orders", headers=desk.front_desk, json=body)
    assert refused.status_code == 404 and refused.json()["code"] == "community_not_found"
    oid = (await _open(client, desk))["id"]
    stranger = await make_company()
    admin_b = bearer(staff_token(stranger))
    foreign = await client.post(f"{WO}/orders", headers=admin_b, json=body)
    assert foreign.status_code == 404 and foreign.json()["code"] == "community_not_found"
    for step in ("assign", "accept", "finish"):
        response = await client.post(f"{WO}/orders/{oid}/{step}", headers=admin_b, json={})
        assert response.status_code == 404, (step, response.text)
    other = await make_technician(desk.company, community=1, rule=False)
    elsewhere = technician_token(desk.company, other, desk.company.communities[1])
    assert (await client.post(f"{WO}/orders/{oid}/accept", headers=elsewhere)).status_code == 404


async def test_two_technicians_race_to_accept(client: Any) -> None:
    desk = await make_desk()
    oid = (await _open(client, desk))["id"]
    await client.post(f"{WO}/orders/{oid}/assign", headers=desk.front_desk, json={})
    other_id = await make_technician(desk.company, rule=False)
    other = technician_token(desk.company, other_id, desk.company.communities[0])
    mine, theirs, again = await asyncio.gather(
        client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician),
        client.post(f"{WO}/orders/{oid}/accept", headers=other),
        client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician),
    )
    assert theirs.status_code == 404  # not theirs: not even visible
    codes = sorted([mine.status_code, again.status_code])
    assert codes == [200, 409], (mine.text, again.text)
    loser = mine if mine.status_code == 409 else again
    assert loser.json()["code"] == "order_not_assigned"
    kinds = [e[0] for e in (await _rows(desk.company.id, oid))["events"]]
    assert kinds.count("accepted") == 1


async def test_a_double_finish_finishes_once(client: Any) -> None:
    desk = await make_desk()
    oid = (await _open(client, desk))["id"]
    await client.post(f"{WO}/orders/{oid}/assign", headers=desk.front_desk, json={})
    early = await client.post(f"{WO}/orders/{oid}/finish", headers=desk.technician, json={})
    assert early.status_code == 409 and early.json()["code"] == "order_not_in_progress"
    await client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician)
    first, second = await asyncio.gather(
        client.post(f"{WO}/orders/{oid}/finish", headers=desk.technician, json={}),
        client.post(f"{WO}/orders/{oid}/finish", headers=desk.technician, json={}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] == "order_not_in_progress"
    rows = await _rows(desk.company.id, oid)
    assert [e[0] for e in rows["events"]].count("finished") == 1
    assert [o[0] for o in rows["outbox"]].count("workorder.finished") == 1
    accepted = await client.post(f"{WO}/orders/{oid}/accept", headers=desk.technician)
    assert accepted.status_code == 409 and accepted.json()["code"] == "order_not_assigned"


async def test_auto_dispatch_refusals_and_inactive_technicians(client: Any) -> None:
    desk = await make_desk(routing=False)
    oid = (await _open(client, desk))["id"]
    none = await client.post(f"{WO}/orders/{oid}/assign", headers=desk.front_desk, json={})
    assert none.status_code == 409 and none.json()["code"] == "no_technician"
    idle = await make_technician(desk.company)  # a rule, but about to leave
    busy = await make_technician(desk.company)
    async with unit_of_work(desk.company.id) as session:
        await session.execute(update(StaffUser).where(StaffUser.id == idle).values(is_active=False))
    picked = await client.post(f"{WO}/orders/{oid}/assign", headers=desk.front_desk, json={})
    assert picked.status_code == 200 and picked.json()["assignee_id"] == str(busy)
    # The lighter load wins: a fresh technician with a rule takes the next order.
    fresh = await make_technician(desk.company)
    second = (await _open(client, desk))["id"]
    again = await client.post(f"{WO}/orders/{second}/assign", headers=desk.front_desk, json={})
    assert again.json()["assignee_id"] == str(fresh)
    cancelled = await client.post(
        f"{WO}/orders/{second}/cancel", headers=desk.front_desk, json={"reason": "重复报修"}
    )
    assert cancelled.status_code == 200, cancelled.text
    closed = await client.post(f"{WO}/orders/{second}/assign", headers=desk.front_desk, json={})
    assert closed.status_code == 409 and closed.json()["code"] == "order_not_open"
    missing = await client.post(
        f"{WO}/orders/{uuid.uuid4()}/assign", headers=desk.front_desk, json={}
    )
    assert missing.status_code == 404 and missing.json()["code"] == "work_order_not_found"


async def test_a_new_calendar_counts_at_once(client: Any) -> None:
    """Hours and holidays set in this process replace the cached ones for the next order."""
    desk = await make_desk()
    community = desk.company.communities[0]
    await _open(client, desk)  # community, category and calendar cached
    tz = ZoneInfo("Asia/Shanghai")
    today = dt.datetime.now(tz).date()
    off = [today + dt.timedelta(days=d) for d in range(3)]
    response = await client.put(
        f"{WO}/communities/{community}/calendar",
        headers=desk.admin,
        json={
            "weekly": {str(d): [["09:00", "18:00"]] for d in range(1, 8)},
            "holidays": [{"day": d.isoformat(), "kind": "holiday", "name": "假期"} for d in off],
        },
    )
    assert response.status_code == 200, response.text
    order = await _open(client, desk)
    first_working_morning = dt.datetime.combine(today + dt.timedelta(days=3), dt.time(9), tz)
    # Normal priority: 120 working minutes, all of them after the holidays.
    response_due = dt.datetime.fromisoformat(order["response_due_at"])
    assert response_due == first_working_morning + dt.timedelta(minutes=120)
    calendar = await fastpath.cached_calendar(desk.company.id, community)
    assert calendar.holidays == frozenset(off)
