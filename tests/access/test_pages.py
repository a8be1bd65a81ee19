"""Console and portal pages of access control, as a browser uses them."""

from __future__ import annotations

from typing import Any

import httpx

from linli.access.simulator import VirtualDevice
from tests.access.helpers import make_site, running_fleet
from tests.factories import PASSWORD
from tests.web.pageutil import csrf_of, resident_sign_in, staff_sign_in, text_of


async def test_console_devices_events_and_a_walk_in(web: httpx.AsyncClient) -> None:
    site = await make_site()
    signed = await staff_sign_in(web, company=site.company.slug, login="admin", password=PASSWORD)
    assert signed.status_code == 303
    devices = await web.get("/console/access")
    assert devices.status_code == 200
    page = text_of(devices)
    assert "gate-1" in page and "南门" in page
    assert 'data-testid="device-chart"' in devices.text
    device_id = str(site.devices["gate"].device_id)
    disabled = await web.post(
        f"/console/access/devices/{device_id}/disable", data={"csrf_token": csrf_of(devices)}
    )
    assert disabled.status_code == 303
    after = await web.get("/console/access")
    assert f'action="/console/access/devices/{device_id}/enable"' in after.text

    events = await web.get("/console/access/events", params={"kind": "open"})
    assert events.status_code == 200

    visitors = await web.get("/console/access/visitors")
    issued = await web.post(
        "/console/access/visitors",
        data={
            "csrf_token": csrf_of(visitors),
            "community_id": str(site.community_id),
            "name": "送水师傅",
            "hours": "2",
            "entries": "1",
        },
    )
    assert issued.status_code == 200 and "送水师傅" in issued.text
    link = issued.text.split('data-testid="issued"')[1].split('href="')[1].split('"')[0]
    public = await web.get(link)
    assert public.status_code == 200 and "<svg" in public.text and "送水师傅" in public.text


async def test_portal_doors_open_qr_and_invite(web: httpx.AsyncClient) -> None:
    site = await make_site()
    assert (await resident_sign_in(web, site.phone)).status_code == 303
    doors = await web.get("/portal/doors")
    assert doors.status_code == 200
    assert "南门" in doors.text and "1栋单元门" in doors.text and "2栋单元门" not in doors.text
    form: dict[str, Any] = {
        "csrf_token": csrf_of(doors),
        "company_id": str(site.company.id),
        "pass_id": doors.text.split('name="pass_id" value="')[1].split('"')[0],
        "access_point_id": str(site.entrance_id),
    }
    offline = await web.post("/portal/doors/open", data=form)
    assert offline.status_code == 504
    assert 'data-testid="open-result"' in offline.text
    async with running_fleet([VirtualDevice(site.devices["entrance"])]):
        opened = await web.post("/portal/doors/open", data=form)
    assert opened.status_code == 200 and "门已打开" in text_of(opened)
    history = opened.text.split('data-testid="history"')[1].split("</ul>")[0]
    assert "1栋单元门" in history and "通行" in history  # their own passage, just now

    qr = await web.get(
        "/portal/doors/qr", params={"company_id": form["company_id"], "pass_id": form["pass_id"]}
    )
    assert qr.status_code == 200 and "<svg" in qr.text and 'data-token="LQ1.' in qr.text

    visitors = await web.get("/portal/visitors")
    invited = await web.post(
        "/portal/visitors",
        data={
            "csrf_token": csrf_of(visitors),
            "company_id": form["company_id"],
            "pass_id": form["pass_id"],
            "name": "老同学",
            "phone": "13700137000",
            "hours": "3",
            "entries": "2",
        },
    )
    assert invited.status_code == 200 and "老同学" in invited.text
    link = invited.text.split('data-testid="issued"')[1].split('href="')[1].split('"')[0]
    assert (await web.get(link)).status_code == 200
    assert (await web.get(link[:-3] + "xyz")).status_code == 404
