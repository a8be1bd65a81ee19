"""Seed generator (演示数据): realistic Chinese estates, residents, vehicles and staff, fast.

``seed_houses(tenant_id=..., houses=1_000_000)`` fills a fresh company in well
under a minute on a 2-core machine:

* Rows are generated in a worker process, batch by batch, as COPY text, with
  phones and ID numbers already encrypted and blind-indexed in Python (the
  data key never reaches PostgreSQL, so encryption cannot happen in SQL).
* While the worker builds batch n+1, PostgreSQL swallows batch n: ``COPY``
  into temp tables (COPY FROM is refused on tables with row-level security),
  then one ``INSERT ... SELECT`` per table, as the app role under the tenant's
  RLS, so the seed cannot write into another company either.

Phones and ID numbers come from bijections of a counter, so they are unique in
the company without a lookup; seed into a fresh company (a second run into the
same company would reuse numbers and be refused by the unique indexes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import uuid_utils

SURNAMES = (
    "王王王李李李张张张刘刘陈陈杨杨黄赵赵吴周周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
    "向汤欧阳"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建国建华文辉鹏飞志强海燕晓东子涵浩然宇轩梓萱"
    "欣怡雨桐一诺思远嘉怡俊杰佳琪博文子轩紫涵梦瑶天佑晨曦"
)
COMMUNITY_PREFIX = (
    "锦绣",
    "翠湖",
    "阳光",
    "金地",
    "碧桂",
    "滨江",
    "紫荆",
    "龙湖",
    "枫林",
    "海月",
    "星河",
    "御景",
    "半山",
    "东方",
    "华府",
    "绿城",
    "春华",
    "秋实",
    "明珠",
    "世纪",
)
COMMUNITY_SUFFIX = ("花园", "苑", "家园", "名邸", "华庭", "公馆", "新村", "雅居", "城", "湾")
PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)
ID_REGIONS = (
    "110105",
    "310104",
    "440305",
    "440106",
    "510107",
    "330106",
    "320102",
    "420106",
    "610113",
    "500103",
)
PLATE_PROVINCES = "粤京沪浙苏川鄂湘鲁豫"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
CAR_BRANDS = (
    "比亚迪",
    "大众",
    "丰田",
    "本田",
    "特斯拉",
    "吉利",
    "长安",
    "奔驰",
    "宝马",
    "理想",
    "蔚来",
    "五菱",
)
CAR_COLORS = ("白", "黑", "银", "灰", "蓝", "红")
DEPARTMENTS = (
    ("工程部", "电工", "电工证"),
    ("工程部", "水暖工", "特种作业操作证"),
    ("秩序部", "保安员", "保安员证"),
    ("环境部", "保洁员", ""),
    ("客服部", "客服专员", ""),
    ("管理处", "项目经理", "物业管理师证"),
    ("秩序部", "消控员", "消防设施操作员证"),
)
EDUCATION = ("junior", "senior", "vocational", "college", "bachelor")
CITIES = ("深圳市南山区", "广州市天河区", "杭州市西湖区", "成都市武侯区")
STATUSES = ("occupied",) * 14 + ("vacant", "delivered", "renovating", "unsold")

# Bijective phone numbers: n -> prefix n % P, body (n // P * K) mod 10^8 with K coprime to 10.
_PHONE_K = 7_919_393
_ID_DAYS = 21_900  # birth dates over 60 years


def phone_number(n: int) -> str:
    prefix = PHONE_PREFIXES[n % len(PHONE_PREFIXES)]
    return f"{prefix}{(n // len(PHONE_PREFIXES) * _PHONE_K) % 100_000_000:08d}"


def id_number(n: int, base: dt.date) -> str:
    from linli.residents.validators import id_card_check_char

    region = ID_REGIONS[n % len(ID_REGIONS)]
    rest = n // len(ID_REGIONS)
    born = base + dt.timedelta(days=rest % _ID_DAYS)
    first17 = f"{region}{born:%Y%m%d}{(rest // _ID_DAYS) % 1000:03d}"
    return first17 + id_card_check_char(first17)


@dataclass
class SeedReport:
    tenant_id: uuid.UUID
    communities: int = 0
    buildings: int = 0
    units: int = 0
    houses: int = 0
    residents: int = 0
    relations: int = 0
    vehicles: int = 0
    staff_records: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CommunityPlan:
    id: str
    index: int
    houses: int


@dataclass
class Batch:
    """COPY text per table and counts, built in the worker process."""

    tables: dict[str, str]
    counts: dict[str, int]


# Columns written per table (temp table, COPY and INSERT use the same list).
COLUMNS: dict[str, tuple[str, ...]] = {
    "buildings": (
        "tenant_id",
        "id",
        "community_id",
        "building_no",
        "name",
        "floors_above",
        "floors_below",
    ),
    "units": ("tenant_id", "id", "community_id", "building_id", "unit_no", "name"),
    "houses": (
        "tenant_id",
        "id",
        "community_id",
        "building_id",
        "unit_id",
        "house_no",
        "floor",
        "building_area",
        "inner_area",
        "house_type",
        "status",
    ),
    "residents": (
        "tenant_id",
        "id",
        "name",
        "phone_enc",
        "phone_hash",
        "id_card_enc",
        "id_card_hash",
        "gender",
        "birth_date",
        "tags",
    ),
    "resident_houses": (
        "tenant_id",
        "id",
        "resident_id",
        "house_id",
        "community_id",
        "relation",
        "lease_start",
        "lease_end",
        "moved_in_on",
        "source",
    ),
    "vehicles": (
        "tenant_id",
        "id",
        "community_id",
        "plate",
        "new_energy",
        "resident_id",
        "house_id",
        "brand",
        "color",
    ),
}
TABLE_ORDER = ("buildings", "units", "houses", "residents", "resident_houses", "vehicles")


def _uuid() -> str:
    return str(uuid_utils.uuid7())


def _name(rng: random.Random, surname: str | None = None) -> str:
    family = surname or rng.choice(SURNAMES)
    if family == "欧":
        family = "欧阳"
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return family + given


def build_batch(
    tenant_id: str, plans: list[CommunityPlan], person_start: int, seed: int
) -> tuple[Batch, int]:
    """Generate the rows of some communities; returns the batch and the next person counter."""
    from linli.core import crypto

    rng = random.Random(seed)
    out = {t: io.StringIO() for t in TABLE_ORDER}
    counts = dict.fromkeys(TABLE_ORDER, 0)
    w = {t: out[t].write for t in TABLE_ORDER}
    person = person_start
    id_base = dt.date(1950, 1, 1)
    today = dt.date(2026, 1, 1)
    t = tenant_id

    # Residents are collected first and encrypted at the end, in one batch call per column.
    people: list[tuple[str, str, str | None, str | None, str]] = []

    def add_person(name: str, *, adult: bool, with_phone: bool, gender: str) -> str:
        nonlocal person
        rid = _uuid()
        person += 1
        phone = phone_number(person) if with_phone else None
        number = id_number(person, id_base) if adult and rng.random() < 0.25 else None
        people.append((rid, name, phone, number, gender))
        return rid

    def link(
        rid: str, hid: str, cid: str, relation: str, lease: tuple[str, str] | None = None
    ) -> None:
        moved = (today - dt.timedelta(days=rng.randrange(3650))).isoformat()
        ls, le = lease or ("\\N", "\\N")
        w["resident_houses"](
            f"{t}\t{_uuid()}\t{rid}\t{hid}\t{cid}\t{relation}\t{ls}\t{le}\t{moved}\tseed\n"
        )
        counts["resident_houses"] += 1

    for plan in plans:
        cid = plan.id
        province = PLATE_PROVINCES[plan.index % len(PLATE_PROVINCES)]
        city = PLATE_LETTERS[plan.index % 8]
        remaining = plan.houses
        building_no = 0
        plates: set[str] = set()
        while remaining > 0:
            building_no += 1
            floors, units, per_floor = rng.randint(18, 33), rng.randint(2, 4), rng.randint(2, 6)
            bid = _uuid()
            w["buildings"](
                f"{t}\t{bid}\t{cid}\t{building_no}\t{building_no}栋\t{floors}"
                f"\t{rng.randint(0, 2)}\n"
            )
            counts["buildings"] += 1
            base_area = rng.randint(60, 140)
            for unit_no in range(1, units + 1):
                if remaining <= 0:
                    break
                uid = _uuid()
                w["units"](f"{t}\t{uid}\t{cid}\t{bid}\t{unit_no}\t{unit_no}单元\n")
                counts["units"] += 1
                for floor in range(1, floors + 1):
                    if remaining <= 0:
                        break
                    for n in range(1, per_floor + 1):
                        if remaining <= 0:
                            break
                        remaining -= 1
                        hid = _uuid()
                        area = min(180, base_area + n * 7 + rng.randint(0, 20))
                        inner = area * rng.randint(74, 86) // 100
                        status = rng.choice(STATUSES)
                        w["houses"](
                            f"{t}\t{hid}\t{cid}\t{bid}\t{uid}\t{floor}{n:02d}\t{floor}"
                            f"\t{area}.{rng.randint(0, 99):02d}"
                            f"\t{inner}.00\tresidence\t{status}\n"
                        )
                        counts["houses"] += 1
                        if status == "unsold":
                            continue
                        surname = rng.choice(SURNAMES)
                        gender = rng.choice(("male", "female"))
                        owner = add_person(
                            _name(rng, surname), adult=True, with_phone=True, gender=gender
                        )
                        link(owner, hid, cid, "owner")
                        rented = status != "occupied" or rng.random() < 0.08
                        if rented and status == "occupied":
                            start = today - dt.timedelta(days=rng.randrange(700))
                            lease = (
                                start.isoformat(),
                                (start + dt.timedelta(days=365 * rng.randint(1, 3))).isoformat(),
                            )
                            for _ in range(rng.randint(1, 2)):
                                tenant = add_person(
                                    _name(rng),
                                    adult=True,
                                    with_phone=True,
                                    gender=rng.choice(("male", "female")),
                                )
                                link(tenant, hid, cid, "tenant", lease)
                        elif status == "occupied":
                            members = rng.choices((0, 1, 2, 3, 4), weights=(25, 35, 25, 10, 5))[0]
                            for m in range(members):
                                if m == 0:  # spouse
                                    mid = add_person(
                                        _name(rng),
                                        adult=True,
                                        with_phone=True,
                                        gender="female" if gender == "male" else "male",
                                    )
                                elif m < 3:  # children: some too young for a phone
                                    mid = add_person(
                                        _name(rng, surname),
                                        adult=False,
                                        with_phone=rng.random() < 0.4,
                                        gender=rng.choice(("male", "female")),
                                    )
                                else:  # a parent
                                    mid = add_person(
                                        _name(rng, surname),
                                        adult=True,
                                        with_phone=rng.random() < 0.7,
                                        gender=rng.choice(("male", "female")),
                                    )
                                link(mid, hid, cid, "family")
                        cars = rng.choices((0, 1, 2), weights=(60, 35, 5))[0]
                        for _ in range(cars):
                            if rng.random() < 0.3:
                                plate = (
                                    province
                                    + city
                                    + rng.choice("DF")
                                    + rng.choice(PLATE_LETTERS)
                                    + f"{rng.randrange(10000):04d}"
                                )
                            else:
                                plate = (
                                    province
                                    + city
                                    + "".join(
                                        rng.choice("0123456789" + PLATE_LETTERS) for _ in range(5)
                                    )
                                )
                            if plate in plates:
                                continue
                            plates.add(plate)
                            w["vehicles"](
                                f"{t}\t{_uuid()}\t{cid}\t{plate}"
                                f"\t{'t' if len(plate) == 8 else 'f'}\t{owner}\t{hid}"
                                f"\t{rng.choice(CAR_BRANDS)}\t{rng.choice(CAR_COLORS)}\n"
                            )
                            counts["vehicles"] += 1
    phones = [p[2] for p in people]
    numbers = [p[3] for p in people]

    def hexes(blobs: list[bytes | None]) -> list[str]:
        return ["\\N" if b is None else "\\\\x" + b.hex() for b in blobs]

    columns = zip(
        people,
        hexes(crypto.encrypt_many(phones)),
        hexes(crypto.blind_index_many(phones, purpose="phone")),
        hexes(crypto.encrypt_many(numbers)),
        hexes(crypto.blind_index_many(numbers, purpose="id_card")),
        strict=True,
    )
    write = w["residents"]
    for (rid, name, _, number, gender), phone_enc, phone_hash, id_enc, id_hash in columns:
        birth = f"{number[6:10]}-{number[10:12]}-{number[12:14]}" if number else "\\N"
        write(
            f"{t}\t{rid}\t{name}\t{phone_enc}\t{phone_hash}\t{id_enc}\t{id_hash}"
            f"\t{gender}\t{birth}\t{{}}\n"
        )
    counts["residents"] = len(people)
    return Batch({k: v.getvalue() for k, v in out.items()}, counts), person


def plan_communities(houses: int, rng: random.Random) -> list[int]:
    """Community sizes: 1,000-8,000 houses each (the last one takes the rest)."""
    sizes = []
    left = houses
    while left > 0:
        size = min(left, rng.randint(1000, 8000))
        sizes.append(size)
        left -= size
    return sizes


def community_name(index: int) -> str:
    prefix = COMMUNITY_PREFIX[index % len(COMMUNITY_PREFIX)]
    suffix = COMMUNITY_SUFFIX[(index // len(COMMUNITY_PREFIX)) % len(COMMUNITY_SUFFIX)]
    round_no = index // (len(COMMUNITY_PREFIX) * len(COMMUNITY_SUFFIX))
    return f"{prefix}{suffix}" + (f"{round_no + 1}期" if round_no else "")


async def create_communities(
    tenant_id: uuid.UUID, sizes: list[int], run: str
) -> list[CommunityPlan]:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.tenancy import service as tenancy_service

    plans = []
    async with unit_of_work(tenant_id) as session:
        for index, size in enumerate(sizes):
            community = await tenancy_service.create_community(
                session,
                Actor.system(tenant_id),
                code=f"S{run}{index + 1:04d}",
                name=community_name(index),
                address=f"{CITIES[index % len(CITIES)]}{index + 1}号",
            )
            plans.append(CommunityPlan(id=str(community.id), index=index, houses=size))
    return plans


def batches_of(plans: list[CommunityPlan], batch_houses: int) -> list[list[CommunityPlan]]:
    groups: list[list[CommunityPlan]] = [[]]
    total = 0
    for plan in plans:
        if total >= batch_houses:
            groups.append([])
            total = 0
        groups[-1].append(plan)
        total += plan.houses
    return [g for g in groups if g]


async def ingest(conn: Any, tenant_id: uuid.UUID, batch: Batch) -> None:
    """COPY one batch into temp tables and move it into the real ones under the tenant's RLS."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('linli.tenant_id', %s, true)", (str(tenant_id),))
        for table in TABLE_ORDER:
            columns = ", ".join(COLUMNS[table])
            async with conn.cursor().copy(f"COPY seed_{table} ({columns}) FROM STDIN") as copy:
                await copy.write(batch.tables[table])
            # Table and column names come from COLUMNS above, never from input.
            insert = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM seed_{table}"  # noqa: S608
            await conn.execute(insert)
        await conn.execute(
            "INSERT INTO resident_companies (phone_hash, tenant_id)"
            " SELECT phone_hash, tenant_id FROM seed_residents"
            " WHERE phone_hash IS NOT NULL ON CONFLICT DO NOTHING"
        )
        for table in TABLE_ORDER:
            await conn.execute(f"TRUNCATE seed_{table}")


async def _temp_tables(conn: Any) -> None:
    for table in TABLE_ORDER:
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS seed_{table} (LIKE {table} INCLUDING DEFAULTS)"
        )


async def seed_staff(tenant_id: uuid.UUID, plans: list[CommunityPlan], rng: random.Random) -> int:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.estate.rows import CertificateRow, StaffRecordRow
    from linli.staff import service as staff_service
    from linli.tenancy.models import Community

    async with unit_of_work(tenant_id) as session:
        from sqlalchemy import select

        codes = dict((await session.execute(select(Community.id, Community.code))).all())
        rows = []
        for plan in plans:
            code = codes[uuid.UUID(plan.id)]
            for n in range(max(4, plan.houses // 400)):
                department, position, cert = rng.choice(DEPARTMENTS)
                hired = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(5800))
                rows.append(
                    StaffRecordRow(
                        employee_no=f"{code}-{n + 1:03d}",
                        name=_name(rng),
                        phone=None,
                        department=department,
                        position=position,
                        employment_type="outsourced"
                        if position in ("保安员", "保洁员") and rng.random() < 0.6
                        else "own",
                        hire_date=hired,
                        birth_date=dt.date(1965, 1, 1) + dt.timedelta(days=rng.randrange(12000)),
                        education=rng.choice(EDUCATION),
                        community_codes=(code,),
                        certificates=(
                            CertificateRow(
                                cert,
                                f"{rng.randrange(10**9):09d}",
                                hired + dt.timedelta(days=365 * 6),
                            ),
                        )
                        if cert
                        else (),
                    )
                )
        result = await staff_service.upsert_staff_records(
            session, Actor.system(tenant_id), rows=rows
        )
    return result.created


async def seed_houses(
    *,
    tenant_id: uuid.UUID,
    houses: int,
    progress: Callable[[int], None] | None = None,
    batch_houses: int = 50_000,
    seed: int | None = None,
    connections: int = 2,
) -> SeedReport:
    """Create ``houses`` houses with buildings, units, residents, vehicles and staff records."""
    import psycopg

    from linli.config import get_settings
    from linli.db.dsn import app_dsn

    started = time.perf_counter()
    rng = random.Random(seed)
    report = SeedReport(tenant_id=tenant_id)
    run = f"{rng.randrange(36**2):02d}"[-2:]
    plans = await create_communities(tenant_id, plan_communities(houses, rng), run)
    report.communities = len(plans)
    report.timings["communities"] = time.perf_counter() - started
    groups = batches_of(plans, batch_houses)
    # Person counters per batch are fixed up front so batches can be built out of order.
    person_starts = []
    cursor = rng.randrange(10_000_000)
    for group in groups:
        person_starts.append(cursor)
        cursor += sum(p.houses for p in group) * 8  # a house never holds more than 8 people
    loop = asyncio.get_running_loop()
    seeds = [rng.randrange(2**32) for _ in groups]
    with ProcessPoolExecutor(max_workers=1) as pool:
        futures = [
            loop.run_in_executor(pool, build_batch, str(tenant_id), group, start, s)
            for group, start, s in zip(groups, person_starts, seeds, strict=True)
        ]
        queue = iter(futures)

        async def load() -> None:
            # PostgreSQL spends most of the time on index and foreign-key work, one core per
            # connection: two connections take batches as they come (each batch is its own
            # communities, so they never wait on each other's rows).
            async with await psycopg.AsyncConnection.connect(app_dsn(get_settings())) as conn:
                # Seed data can be regenerated: do not wait for the WAL flush at each commit.
                await conn.execute("SET synchronous_commit = off")
                await _temp_tables(conn)
                await conn.commit()
                for future in queue:
                    batch, _ = await future
                    await ingest(conn, tenant_id, batch)
                    report.buildings += batch.counts["buildings"]
                    report.units += batch.counts["units"]
                    report.houses += batch.counts["houses"]
                    report.residents += batch.counts["residents"]
                    report.relations += batch.counts["resident_houses"]
                    report.vehicles += batch.counts["vehicles"]
                    if progress is not None:
                        progress(report.houses)

        await asyncio.gather(*(load() for _ in range(max(1, connections))))
    report.timings["rows"] = time.perf_counter() - started - report.timings["communities"]
    report.staff_records = await seed_staff(tenant_id, plans, rng)
    report.seconds = time.perf_counter() - started
    return report
