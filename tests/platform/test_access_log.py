"""The company's data-sovereignty view: per-day figures and anomaly flags."""

from __future__ import annotations

import datetime as dt

from linli.core.ids import new_id
from linli.db.engine import unit_of_work
from linli.platform import access_log
from linli.platform.models import AccessLogEntry
from tests.factories import bearer, make_company, staff_token
from tests.platform.factories import install, make_partner_app


async def test_an_app_reading_far_more_than_usual_is_flagged(client) -> None:
    company = await make_company(communities=1)
    app = await make_partner_app()
    inst = await install(company, app, scopes=["residents:read:basic"])
    now = dt.datetime.now(dt.UTC)
    rows = []
    for days_ago in range(10, 0, -1):  # ten ordinary days: 40 residents read a day
        for _ in range(2):
            rows.append((now - dt.timedelta(days=days_ago), 20, 200))
    rows += [(now, 1000, 200), (now, 1000, 200), (now, 0, 403)]  # today: 2,000 read
    async with unit_of_work(company.id) as session:
        await session.execute(
            AccessLogEntry.__table__.insert(),
            [
                {
                    "tenant_id": company.id,
                    "id": new_id(),
                    "installation_id": inst.installation_id,
                    "app_id": app.app_id,
                    "at": at,
                    "method": "GET",
                    "endpoint": "/api/v1/residents",
                    "resource": "residents",
                    "community_id": company.communities[0],
                    "records": records,
                    "status": status,
                }
                for at, records, status in rows
            ],
        )
    response = await client.get(
        "/api/v1/platform/access-log/daily", headers=bearer(staff_token(company))
    )
    assert response.status_code == 200
    days = response.json()
    assert len(days) == 11
    assert not any(d["anomaly"] for d in days[:-1])
    today = days[-1]
    assert (today["calls"], today["records"], today["refused"], today["anomaly"]) == (
        3,
        2000,
        1,
        True,
    )
    # another company sees none of it
    other = await make_company()
    theirs = await client.get(
        "/api/v1/platform/access-log/daily", headers=bearer(staff_token(other))
    )
    assert theirs.json() == []
    assert access_log.ANOMALY_FACTOR > 1
