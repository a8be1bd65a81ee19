"""A house with work orders keeps its history: deleting it is refused with the reason."""

from __future__ import annotations

from tests.workorders.helpers import make_desk

WO = "/api/v1/workorders"


async def test_deleting_a_house_with_work_orders_names_them(client) -> None:
    desk = await make_desk(routing=False)
    house = desk.houses[-1]  # no residents on it: only the order holds it
    created = await client.post(
        f"{WO}/orders",
        headers=desk.front_desk,
        json={
            "community_id": str(desk.company.communities[0]),
            "category_id": str(desk.category_id),
            "description": "厨房水管漏水",
            "house_id": str(house),
            "priority": "normal",
            "reporter_name": "李先生",
            "contact_phone": "13800138000",
        },
    )
    assert created.status_code == 201, created.text
    refused = await client.delete(f"/api/v1/estate/houses/{house}", headers=desk.admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "house_in_use"
    assert "work_orders" in refused.text
