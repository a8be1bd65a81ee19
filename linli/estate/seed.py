"""Seed generator (演示数据): realistic Chinese estates, residents, vehicles and staff, fast.

``seed_houses(tenant_id=..., houses=N)`` fills a fresh company with whole communities of
buildings, units, houses, families, tenants and cars, and staff records:

* Rows are generated in worker processes (both cores), batch by batch, as COPY text, with
  phones and ID numbers already encrypted and blind-indexed in Python (the data key never
  reaches PostgreSQL, so encryption cannot happen in SQL).
* Two connections load batches as the workers finish them: ``COPY`` into temp tables
  (COPY FROM is refused on tables with row-level security), then one ``INSERT ... SELECT``
  per table, as the app role under the tenant's RLS, so the seed cannot write into another
  company. Temp tables live in local memory (``temp_buffers``); commits do not wait for the
  WAL flush (seed data can be regenerated).
* The portal's phone directory (``resident_companies``) is filled once at the end, in key
  order (see ``register_phones``).

Where the time goes: PostgreSQL's per-row foreign-key checks and index maintenance are most of
it, the same work a raw ``COPY`` of these rows does (``bench/seed.py`` measures both); the
rest is generating rows in Python, spread over the two workers.

Phones and ID numbers come from bijections of a counter, so they are unique in
the company without a lookup; seed into a fresh company (a second run into the
same company would reuse numbers and be refused by the unique indexes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections import deque
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


_TODAY = dt.date(2026, 1, 1)
# Moved-in dates over the last ten years; leases start in the last 700 days and run 1-3
# years: _DAYS[700 + k] is the date k days from _TODAY.
_MOVED_ON = tuple((_TODAY - dt.timedelta(days=d)).isoformat() for d in range(3650))
_DAYS = tuple((_TODAY + dt.timedelta(days=d)).isoformat() for d in range(-700, 3 * 365 + 1))
# Percent tables: family members besides the owner (25/35/25/10/5 %) and cars (60/35/5 %).
_FAMILY_SIZES = (0,) * 25 + (1,) * 35 + (2,) * 25 + (3,) * 10 + (4,) * 5
_CAR_COUNTS = (0,) * 60 + (1,) * 35 + (2,) * 5


def build_batch(
    tenant_id: str, plans: list[CommunityPlan], person_start: int, seed: int
) -> tuple[Batch, int]:
    """Generate the rows of some communities; returns the batch and the next person counter.

    This is the Python half of the seed's CPU time, so the hot loop draws with ``random()``
    and table look-ups (a bound ``rng.choice`` costs three Python calls) and looks up dates
    from precomputed strings instead of formatting one per row.
    """
    from linli.core import crypto

    rng = random.Random(seed)
    rnd = rng.random
    out: dict[str, list[str]] = {t: [] for t in TABLE_ORDER}
    w_buildings = out["buildings"].append
    w_units = out["units"].append
    w_houses = out["houses"].append
    w_relations = out["resident_houses"].append
    w_vehicles = out["vehicles"].append
    new_id = uuid_utils.uuid7
    person = person_start
    t = tenant_id
    moved_on = _MOVED_ON
    days = _DAYS
    surnames, n_surnames = SURNAMES, len(SURNAMES)
    given, n_given = GIVEN, len(GIVEN)
    statuses, n_statuses = STATUSES, len(STATUSES)
    plate_chars = "0123456789" + PLATE_LETTERS
    brands, colors = CAR_BRANDS, CAR_COLORS
    id_base = dt.date(1950, 1, 1)

    # People are collected first and encrypted at the end, in one batch call per column:
    # (id, name, phone, ID number, gender).
    people: list[tuple[str, str, str | None, str | None, str]] = []
    add = people.append

    def name(family: str) -> str:
        if family == "欧":
            family = "欧阳"
        first = given[int(rnd() * n_given)]
        return family + first + (given[int(rnd() * n_given)] if rnd() < 0.7 else "")

    def new_person(full_name: str, gender: str, *, adult: bool, with_phone: bool) -> str:
        nonlocal person
        rid = str(new_id())
        person += 1
        phone = phone_number(person) if with_phone else None
        number = id_number(person, id_base) if adult and rnd() < 0.25 else None
        add((rid, full_name, phone, number, gender))
        return rid

    for plan in plans:
        cid = plan.id
        head = f"{t}\t"  # every row starts with the tenant id
        province = PLATE_PROVINCES[plan.index % len(PLATE_PROVINCES)]
        city = PLATE_LETTERS[plan.index % 8]
        remaining = plan.houses
        building_no = 0
        plates: set[str] = set()
        while remaining > 0:
            building_no += 1
            floors = 18 + int(rnd() * 16)
            units = 2 + int(rnd() * 3)
            per_floor = 2 + int(rnd() * 5)
            bid = str(new_id())
            w_buildings(
                f"{head}{bid}\t{cid}\t{building_no}\t{building_no}栋\t{floors}\t{int(rnd() * 3)}\n"
            )
            base_area = 60 + int(rnd() * 81)
            for unit_no in range(1, units + 1):
                if remaining <= 0:
                    break
                uid = str(new_id())
                w_units(f"{head}{uid}\t{cid}\t{bid}\t{unit_no}\t{unit_no}单元\n")
                for floor in range(1, floors + 1):
                    if remaining <= 0:
                        break
                    for n in range(1, per_floor + 1):
                        if remaining <= 0:
                            break
                        remaining -= 1
                        hid = str(new_id())
                        area = min(180, base_area + n * 7 + int(rnd() * 21))
                        inner = area * (74 + int(rnd() * 13)) // 100
                        status = statuses[int(rnd() * n_statuses)]
                        w_houses(
                            f"{head}{hid}\t{cid}\t{bid}\t{uid}\t{floor}{n:02d}\t{floor}"
                            f"\t{area}.{int(rnd() * 100):02d}\t{inner}.00\tresidence\t{status}\n"
                        )
                        if status == "unsold":
                            continue
                        link_head = f"\t{hid}\t{cid}\t"
                        surname = surnames[int(rnd() * n_surnames)]
                        gender = "male" if rnd() < 0.5 else "female"
                        owner = new_person(name(surname), gender, adult=True, with_phone=True)
                        w_relations(
                            f"{head}{new_id()}\t{owner}{link_head}owner\t\\N\t\\N"
                            f"\t{moved_on[int(rnd() * 3650)]}\tseed\n"
                        )
                        occupied = status == "occupied"
                        if occupied and rnd() < 0.08:  # let to tenants with a lease
                            start = int(rnd() * 700)  # days ago
                            years = 1 + int(rnd() * 3)
                            lease = f"{days[700 - start]}\t{days[700 - start + 365 * years]}"
                            for _ in range(1 + int(rnd() * 2)):
                                rid = new_person(
                                    name(surnames[int(rnd() * n_surnames)]),
                                    "male" if rnd() < 0.5 else "female",
                                    adult=True,
                                    with_phone=True,
                                )
                                w_relations(
                                    f"{head}{new_id()}\t{rid}{link_head}tenant\t{lease}"
                                    f"\t{moved_on[int(rnd() * 3650)]}\tseed\n"
                                )
                        elif occupied:
                            members = _FAMILY_SIZES[int(rnd() * 100)]
                            for m in range(members):
                                if m == 0:  # spouse
                                    mid = new_person(
                                        name(surnames[int(rnd() * n_surnames)]),
                                        "female" if gender == "male" else "male",
                                        adult=True,
                                        with_phone=True,
                                    )
                                elif m < 3:  # children: some too young for a phone
                                    mid = new_person(
                                        name(surname),
                                        "male" if rnd() < 0.5 else "female",
                                        adult=False,
                                        with_phone=rnd() < 0.4,
                                    )
                                else:  # a parent
                                    mid = new_person(
                                        name(surname),
                                        "male" if rnd() < 0.5 else "female",
                                        adult=True,
                                        with_phone=rnd() < 0.7,
                                    )
                                w_relations(
                                    f"{head}{new_id()}\t{mid}{link_head}family\t\\N\t\\N"
                                    f"\t{moved_on[int(rnd() * 3650)]}\tseed\n"
                                )
                        for _ in range(_CAR_COUNTS[int(rnd() * 100)]):
                            if rnd() < 0.3:  # new energy: 8 characters
                                plate = (
                                    f"{province}{city}{'DF'[int(rnd() * 2)]}"
                                    f"{PLATE_LETTERS[int(rnd() * 24)]}{int(rnd() * 10000):04d}"
                                )
                            else:
                                plate = (
                                    province
                                    + city
                                    + "".join([plate_chars[int(rnd() * 34)] for _ in range(5)])
                                )
                            if plate in plates:
                                continue
                            plates.add(plate)
                            w_vehicles(
                                f"{head}{new_id()}\t{cid}\t{plate}"
                                f"\t{'t' if len(plate) == 8 else 'f'}\t{owner}\t{hid}"
                                f"\t{brands[int(rnd() * len(brands))]}"
                                f"\t{colors[int(rnd() * len(colors))]}\n"
                            )
    phones = [p[2] for p in people]
    numbers = [p[3] for p in people]

    def birth_of(number: str | None) -> str:
        return f"{number[6:10]}-{number[10:12]}-{number[12:14]}" if number else "\\N"

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
    lines = [
        (
            phone_hash,
            f"{t}\t{rid}\t{full_name}\t{phone_enc}\t{phone_hash}\t{id_enc}\t{id_hash}"
            f"\t{gender}\t{birth_of(number)}\t{{}}\n",
        )
        for (rid, full_name, _, number, gender), phone_enc, phone_hash, id_enc, id_hash in columns
    ]
    # In blind-index order: the (tenant_id, phone_hash) index and resident_companies' key are
    # random, and far larger than shared_buffers at a million houses. Unsorted, nearly every
    # row lands on a page that is not in memory; sorted, a batch walks the index once.
    # (Hex of equal-length digests sorts as the bytes do.)
    lines.sort()
    out["residents"] = [line for _, line in lines]
    counts = {table: len(rows) for table, rows in out.items()}
    return Batch({table: "".join(rows) for table, rows in out.items()}, counts), person


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


async def ingest(conn: Any, tenant_id: uuid.UUID, batch: Batch) -> dict[str, float]:
    """COPY one batch into temp tables and move it into the real ones under the tenant's RLS.

    Returns seconds per step (``copy``, ``insert``) for the report.
    """
    spent = {"copy": 0.0, "insert": 0.0}
    clock = time.perf_counter
    async with conn.transaction():
        await conn.execute("SELECT set_config('linli.tenant_id', %s, true)", (str(tenant_id),))
        for table in TABLE_ORDER:
            columns = ", ".join(COLUMNS[table])
            started = clock()
            async with conn.cursor().copy(f"COPY seed_{table} ({columns}) FROM STDIN") as copy:
                await copy.write(batch.tables[table])
            copied = clock()
            # Table and column names come from COLUMNS above, never from input.
            insert = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM seed_{table}"  # noqa: S608
            await conn.execute(insert)
            spent["copy"] += copied - started
            spent["insert"] += clock() - copied
    return spent


async def register_phones(conn: Any, tenant_id: uuid.UUID, part: int, parts: int) -> None:
    """Note the company's phones in the portal's directory (resident_companies), one slice.

    The directory's key starts with the blind index, so it is random across all companies and
    far larger than shared_buffers; batch by batch, every batch would touch most of its pages
    (and log each page whole after every checkpoint). Done once at the end, in key order read
    straight from the residents' (tenant_id, phone_hash) index, it walks the directory once;
    ``parts`` connections take a slice of the key space each.
    """
    low = bytes([256 * part // parts])
    # Past the last slice's end: longer than any 32-byte digest, and above every one of them.
    high = bytes([256 * (part + 1) // parts]) if part + 1 < parts else b"\xff" * 33
    async with conn.transaction():
        await conn.execute("SELECT set_config('linli.tenant_id', %s, true)", (str(tenant_id),))
        await conn.execute(
            "INSERT INTO resident_companies (phone_hash, tenant_id)"
            " SELECT phone_hash, tenant_id FROM residents"
            " WHERE phone_hash >= %s AND phone_hash < %s"
            " ORDER BY phone_hash ON CONFLICT DO NOTHING",
            (low, high),
        )


async def _loader_session(conn: Any) -> None:
    """Session settings of a loading connection, then its temp tables."""
    # Seed data can be regenerated: do not wait for the WAL flush at each commit.
    await conn.execute("SET synchronous_commit = off")
    # A batch's temp rows (tens of MB) stay in local buffers instead of being written out and
    # read back (the default 8 MB spills); must be set before the session touches a temp table.
    await conn.execute("SET temp_buffers = '256MB'")
    # The INSERT ... SELECTs are plain scans: compiling them would only cost time.
    await conn.execute("SET jit = off")
    for table in TABLE_ORDER:
        # Emptied at each commit, so each batch starts from empty tables.
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS seed_{table} (LIKE {table} INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        )
    await conn.commit()


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
    batch_houses: int = 25_000,
    seed: int | None = None,
    connections: int = 2,
    workers: int = 2,
) -> SeedReport:
    """Create ``houses`` houses with buildings, units, residents, vehicles and staff records.

    ``workers`` processes generate batches while ``connections`` connections load them,
    ``workers + connections`` batches ahead, so generation and loading overlap.
    """
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
    # Each connection starts with one community, so loading begins after a fraction of a second
    # instead of after a whole batch has been generated.
    first = max(1, connections)
    groups = [[plan] for plan in plans[:first]] + batches_of(plans[first:], batch_houses)
    # Person counters per batch are fixed up front so batches can be built out of order.
    person_starts = []
    cursor = rng.randrange(10_000_000)
    for group in groups:
        person_starts.append(cursor)
        cursor += sum(p.houses for p in group) * 8  # a house never holds more than 8 people
    seeds = [rng.randrange(2**32) for _ in groups]
    jobs = iter(zip(groups, person_starts, seeds, strict=True))
    spent = {"generate_wait": 0.0, "copy": 0.0, "insert": 0.0, "resident_companies": 0.0}
    loaders = max(1, connections)
    dsn = app_dsn(get_settings())
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        # Batches being generated or ready, in order: enough that both workers stay busy while
        # the connections load (a few batches of tens of MB in memory at most).
        ahead: deque[asyncio.Future[tuple[Batch, int]]] = deque()
        depth = max(1, workers) + max(1, connections)

        def top_up() -> None:
            while len(ahead) < depth and (job := next(jobs, None)) is not None:
                ahead.append(loop.run_in_executor(pool, build_batch, str(tenant_id), *job))

        async def load() -> None:
            # PostgreSQL spends most of the time on foreign-key checks and index work, one core
            # per connection: each connection takes whole communities, so they never wait on
            # each other's rows.
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                await _loader_session(conn)
                top_up()
                while ahead:
                    pending = ahead.popleft()
                    top_up()
                    waited = time.perf_counter()
                    batch, _ = await pending
                    spent["generate_wait"] += time.perf_counter() - waited
                    for step, seconds in (await ingest(conn, tenant_id, batch)).items():
                        spent[step] += seconds
                    report.buildings += batch.counts["buildings"]
                    report.units += batch.counts["units"]
                    report.houses += batch.counts["houses"]
                    report.residents += batch.counts["residents"]
                    report.relations += batch.counts["resident_houses"]
                    report.vehicles += batch.counts["vehicles"]
                    if progress is not None:
                        progress(report.houses)
                # Once every connection is done with the rows, each registers its slice of the
                # company's phones (see register_phones).
                finished.append(conn)
                if len(finished) == loaders:
                    all_loaded.set()
                await all_loaded.wait()
                waited = time.perf_counter()
                await register_phones(conn, tenant_id, finished.index(conn), loaders)
                spent["resident_companies"] += time.perf_counter() - waited

        async def staff() -> None:
            # A few thousand ORM rows: done alongside the loads, it fills their waits.
            staff_started = time.perf_counter()
            report.staff_records = await seed_staff(tenant_id, plans, rng)
            report.timings["staff"] = time.perf_counter() - staff_started

        tasks = [asyncio.ensure_future(staff())]
        finished: list[Any] = []
        all_loaded = asyncio.Event()
        tasks += [asyncio.ensure_future(load()) for _ in range(loaders)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One loader failed (say a unique violation): stop the others at their next await
            # instead of leaving them loading in the background, then report the failure.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    report.timings["rows"] = time.perf_counter() - started - report.timings["communities"]
    # Summed over the loading connections: compare with rows x connections.
    report.timings.update({f"rows.{step}": seconds for step, seconds in spent.items()})
    report.seconds = time.perf_counter() - started
    return report
