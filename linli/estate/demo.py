"""The demo company's estate: buildings, houses, residents, vehicles, parking, facilities and
staff records.

Small and fixed (the same rows every run), written through the same set-based
upserts as spreadsheet imports, so running ``make demo`` again changes nothing.
The demo residents who sign in to the portal own a house here, so "my homes"
shows something on the first visit.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from linli.auth.actor import Actor
from linli.estate.rows import (
    CertificateRow,
    FacilityRow,
    HouseRow,
    ParkingSpaceRow,
    ResidentRow,
    StaffRecordRow,
    VehicleRow,
)

BUILDINGS = 3
UNITS = 2
FLOORS = 6
PER_FLOOR = 2
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "洋",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "霞",
    "平",
    "刚",
)
PROVINCE_PLATES = ("粤B", "粤A", "粤S")


def house_rows(community_code: str) -> list[HouseRow]:
    rows = []
    for building in range(1, BUILDINGS + 1):
        for unit in range(1, UNITS + 1):
            for floor in range(1, FLOORS + 1):
                for door in range(1, PER_FLOOR + 1):
                    area = Decimal(89 + 20 * ((door + building) % 3)) + Decimal("0.56")
                    rows.append(
                        HouseRow(
                            community_code=community_code,
                            building_no=str(building),
                            unit_no=str(unit),
                            house_no=f"{floor}{door:02d}",
                            floor=floor,
                            building_area=area,
                            inner_area=(area * Decimal("0.78")).quantize(Decimal("0.01")),
                            status="occupied" if (floor + door) % 5 else "vacant",
                        )
                    )
    return rows


def resident_rows(
    community_code: str, index: int, portal_people: tuple[tuple[str, str], ...]
) -> tuple[list[ResidentRow], list[VehicleRow]]:
    """Owners (and some families and tenants) for the occupied houses, seeded by the index."""
    rng = random.Random(f"linli-demo-{community_code}")
    residents: list[ResidentRow] = []
    vehicles: list[VehicleRow] = []
    occupied = [h for h in house_rows(community_code) if h.status == "occupied"]
    for n, house in enumerate(occupied):
        at = (community_code, house.building_no, house.unit_no, house.house_no)
        if index == 0 and n < len(portal_people):
            phone, name = portal_people[n]
        else:
            # 137 0013 8xxx: beside the portal demo numbers, unused by tests.
            phone = f"1370013{8000 + index * 500 + n:04d}"
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        relation = "tenant" if n % 7 == 3 else "owner"
        leased = relation == "tenant"
        residents.append(
            ResidentRow(
                name,
                phone,
                None,
                rng.choice(("male", "female")),
                dt.date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1),
                *at,
                relation=relation,
                lease_start=dt.date(2026, 3, 1) if leased else None,
                lease_end=dt.date(2027, 2, 28) if leased else None,
            )
        )
        if n % 3 == 0:
            family_name = name[0] + rng.choice(GIVEN) + rng.choice(GIVEN)
            residents.append(ResidentRow(family_name, None, None, None, None, *at, "family"))
        if n % 2 == 0:
            letters = "ABCDEFGHJK"
            plate = f"{PROVINCE_PLATES[index % 3]}{letters[n % 10]}{1000 + n * 37 % 9000:04d}"
            vehicles.append(
                VehicleRow(
                    plate,
                    *at,
                    owner_phone=phone,
                    brand=rng.choice(("比亚迪", "丰田", "大众", "本田", "特斯拉")),
                    color=rng.choice(("白", "黑", "灰", "蓝")),
                )
            )
    return residents, vehicles


UNDERGROUND_SPACES = 60
SURFACE_SPACES = 20


def parking_rows(
    community_code: str, residents: list[ResidentRow], vehicles: list[VehicleRow]
) -> list[ParkingSpaceRow]:
    """An underground garage and a surface car park (车位): each resident with a car holds a
    garage space where the car's owner lives (产权 for owners, 租赁 with the lease of
    tenants); the rest stay temporary (临停)."""
    relation_of = {r.phone: r for r in residents if r.phone}
    rows: list[ParkingSpaceRow] = []
    held = 0
    for vehicle in vehicles:
        owner = relation_of.get(vehicle.owner_phone or "")
        if owner is None or held >= UNDERGROUND_SPACES:
            continue
        held += 1
        rented = owner.relation == "tenant"
        rows.append(
            ParkingSpaceRow(
                community_code=community_code,
                area_name="地下车库B1",
                space_no=f"B1-{held:03d}",
                usage="rented" if rented else "owned",
                underground=True,
                building_no=owner.building_no,
                unit_no=owner.unit_no,
                house_no=owner.house_no,
                owner_phone=owner.phone,
                lease_start=owner.lease_start if rented else None,
                lease_end=owner.lease_end if rented else None,
                area_m2=Decimal("12.50"),
            )
        )
    rows.extend(
        ParkingSpaceRow(community_code, "地下车库B1", f"B1-{n:03d}", underground=True)
        for n in range(held + 1, UNDERGROUND_SPACES + 1)
    )
    rows.extend(
        ParkingSpaceRow(community_code, "地面停车场", f"P-{n:02d}", underground=False)
        for n in range(1, SURFACE_SPACES + 1)
    )
    return rows


def facility_rows(community_code: str) -> list[FacilityRow]:
    rows = [
        FacilityRow(community_code, f"{b}栋电梯", "lift", str(b), f"{b}栋大堂")
        for b in range(1, BUILDINGS + 1)
    ]
    rows += [
        FacilityRow(community_code, "二次供水泵房", "pump_room", None, "地下车库B1东侧"),
        FacilityRow(community_code, "配电房", "power_room", None, "1栋负一层"),
        FacilityRow(community_code, "消防控制室", "fire_control", None, "物业中心一楼"),
        FacilityRow(community_code, "充电桩（10个）", "charging", None, "地下车库B1"),
        FacilityRow(community_code, "儿童游乐场", "playground", None, "中心花园"),
    ]
    return rows


def staff_record_rows(community_codes: list[str]) -> list[StaffRecordRow]:
    people = (
        ("物业服务部", "客服专员", "own", None),
        (
            "工程部",
            "电工",
            "own",
            CertificateRow("电工证", "T44030519870001", dt.date(2027, 1, 10)),
        ),
        ("工程部", "水暖工", "outsourced", None),
        ("安保部", "保安员", "outsourced", CertificateRow("保安员证", "B44030520210002", None)),
        ("安保部", "消防主管", "own", CertificateRow("消防设施操作员", "X2023000103", None)),
        ("环境部", "保洁员", "outsourced", None),
    )
    rows = []
    for index, code in enumerate(community_codes):
        for n, (department, position, kind, cert) in enumerate(people):
            rows.append(
                StaffRecordRow(
                    employee_no=f"{code}-{n + 1:03d}",
                    name=SURNAMES[(index * 7 + n) % len(SURNAMES)] + GIVEN[(n * 3) % len(GIVEN)],
                    department=department,
                    position=position,
                    employment_type=kind,
                    hire_date=dt.date(2018 + n % 6, 1 + n, 1),
                    birth_date=dt.date(1975 + n * 3, 5, 1),
                    education=("senior", "vocational", "college", "bachelor")[n % 4],
                    community_codes=(code,),
                    certificates=(cert,) if cert else (),
                )
            )
    return rows


async def seed_demo_estate(
    tenant_id: uuid.UUID, community_codes: list[str], portal_people: tuple[tuple[str, str], ...]
) -> int:
    """Upsert the demo estate of every community; returns how many rows were created."""
    from linli.db.engine import unit_of_work
    from linli.estate import service as estate
    from linli.residents import service as residents
    from linli.staff import service as staff

    system = Actor.system(tenant_id)
    created = 0
    async with unit_of_work(tenant_id) as session:
        for index, code in enumerate(community_codes):
            created += (await estate.upsert_houses(session, system, rows=house_rows(code))).created
            people, cars = resident_rows(code, index, portal_people)
            created += (await residents.upsert_residents(session, system, rows=people)).created
            created += (await residents.upsert_vehicles(session, system, rows=cars)).created
            spaces = parking_rows(code, people, cars)
            created += (await estate.upsert_parking_spaces(session, system, rows=spaces)).created
            facilities = facility_rows(code)
            created += (await estate.upsert_facilities(session, system, rows=facilities)).created
        rows = staff_record_rows(community_codes)
        created += (await staff.upsert_staff_records(session, system, rows=rows)).created
    return created
