"""What can be imported: the columns of each kind, the words people use for them,
and how one spreadsheet row becomes one row for the estate services.

The same column list drives the templates, the header matching, and the
exports, so an exported file imports back unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from linli.imports import normalize as n
from linli.imports.normalize import CellError

Raw = dict[str, Any]  # field -> raw cell value


class ImportKind(enum.StrEnum):
    HOUSES = "houses"  # 房屋
    RESIDENTS = "residents"  # 住户
    VEHICLES = "vehicles"  # 车辆
    STAFF = "staff"  # 员工档案
    PARKING = "parking_spaces"  # 停车场与车位
    FACILITIES = "facilities"  # 公共设施


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the template's Chinese header, also the export header
    synonyms: tuple[str, ...] = ()
    required: bool = False
    # Grouping columns (community, building, unit) are often merged over many rows
    # in real sheets; their value is filled down inside a merged range.
    grouping: bool = False
    example: Any = ""


_COMMUNITY = Column(
    "community",
    "小区编码",
    ("小区", "小区代码", "小区名称", "项目", "项目编码", "项目名称", "园区", "community"),
    required=True,
    grouping=True,
    example="C01",
)
_BUILDING = Column(
    "building_no",
    "楼栋",
    ("楼号", "栋号", "楼栋号", "幢号", "楼宇", "栋", "幢", "building"),
    grouping=True,
    example="3",
)
_UNIT = Column("unit_no", "单元", ("单元号", "门洞", "unit"), grouping=True, example="2")
_HOUSE = Column(
    "house_no",
    "房号",
    ("房间号", "门牌号", "室号", "房屋号", "房号/门牌号", "house"),
    required=True,
    example="1201",
)
_ADDRESS = Column(
    "address", "房屋", ("房屋地址", "房屋编号", "楼栋单元房号", "房产", "住址"), example=""
)

COLUMNS: dict[ImportKind, tuple[Column, ...]] = {
    ImportKind.HOUSES: (
        _COMMUNITY,
        _BUILDING,
        _UNIT,
        _HOUSE,
        Column("floor", "楼层", ("所在楼层", "层", "floor"), example=12),
        Column(
            "building_area",
            "建筑面积",
            ("建面", "面积", "产权面积", "建筑面积m2", "building_area"),
            required=True,
            example="89.50",
        ),
        Column(
            "inner_area",
            "套内面积",
            ("套内建筑面积", "使用面积", "套内", "inner_area"),
            example="72.30",
        ),
        Column("house_type", "房屋类型", ("类型", "用途", "房屋用途", "物业类型"), example="住宅"),
        Column("status", "房屋状态", ("状态", "交付状态"), example="已入住"),
    ),
    ImportKind.RESIDENTS: (
        Column(
            "name",
            "姓名",
            ("业主姓名", "客户名称", "住户姓名", "客户姓名", "业主", "住户", "联系人", "name"),
            required=True,
            example="张伟",
        ),
        Column(
            "phone",
            "手机号",
            ("手机", "手机号码", "联系电话", "电话", "联系方式", "移动电话", "phone"),
            example="13800138000",
        ),
        Column(
            "id_card",
            "身份证号",
            ("身份证", "身份证号码", "证件号码", "证件号", "id_card"),
            example="",
        ),
        Column("gender", "性别", ("gender",), example="男"),
        Column("birth_date", "出生日期", ("生日", "出生年月", "birth_date"), example="1985-06-01"),
        _COMMUNITY,
        _BUILDING,
        _UNIT,
        _HOUSE,
        Column(
            "relation",
            "与房屋关系",
            ("关系", "身份", "住户类型", "客户类型", "住户身份", "relation"),
            example="业主",
        ),
        Column(
            "lease_start",
            "租期开始",
            ("起租日期", "租赁开始", "租赁开始日期", "lease_start"),
            example="",
        ),
        Column(
            "lease_end",
            "租期结束",
            ("到期日期", "租赁结束", "租赁结束日期", "lease_end"),
            example="",
        ),
    ),
    ImportKind.VEHICLES: (
        Column("plate", "车牌号", ("车牌", "车牌号码", "plate"), required=True, example="粤B12345"),
        _COMMUNITY,
        _BUILDING,
        _UNIT,
        dataclasses.replace(_HOUSE, required=False),
        Column(
            "owner_phone",
            "车主手机号",
            ("车主电话", "车主手机", "手机号", "手机", "联系电话", "owner_phone"),
            example="13800138000",
        ),
        Column("brand", "品牌", ("车辆品牌", "品牌型号", "车型", "brand"), example="比亚迪"),
        Column("color", "颜色", ("车身颜色", "车辆颜色", "color"), example="白色"),
    ),
    ImportKind.STAFF: (
        Column(
            "employee_no",
            "工号",
            ("员工编号", "员工号", "职工编号", "编号", "employee_no"),
            required=True,
            example="E0001",
        ),
        Column("name", "姓名", ("员工姓名", "name"), required=True, example="李强"),
        Column(
            "phone",
            "手机号",
            ("手机", "手机号码", "联系电话", "电话", "phone"),
            example="13900139000",
        ),
        Column("department", "部门", ("所属部门", "department"), example="工程部"),
        Column("position", "岗位", ("职位", "职务", "岗位名称", "position"), example="电工"),
        Column(
            "employment_type",
            "用工类型",
            ("用工性质", "用工方式", "employment_type"),
            example="自有",
        ),
        Column("hire_date", "入职日期", ("入职时间", "hire_date"), example="2021-03-01"),
        Column("birth_date", "出生日期", ("生日", "birth_date"), example="1988-08-08"),
        Column("education", "学历", ("文化程度", "最高学历", "education"), example="大专"),
        Column(
            "certificates",
            "证书",
            ("资格证书", "持证情况", "certificates"),
            example="电工证:T123456、消防设施操作员",
        ),
        Column(
            "communities",
            "服务小区",
            ("负责小区", "所在小区", "服务项目", "小区编码", "小区", "communities"),
            example="C01",
        ),
    ),
    ImportKind.PARKING: (
        _COMMUNITY,
        Column(
            "area_name",
            "停车场",
            ("停车场名称", "车场", "车场名称", "车库", "停车区域", "区域", "parking_area"),
            required=True,
            grouping=True,
            example="地下车库B1",
        ),
        Column("underground", "是否地下", ("地下", "地下车库", "underground"), example="是"),
        Column(
            "space_no",
            "车位号",
            ("车位", "车位编号", "车位编码", "车位号码", "space_no"),
            required=True,
            example="B1-001",
        ),
        Column(
            "usage",
            "车位类型",
            ("类型", "车位性质", "性质", "使用类型", "车位状态", "usage"),
            example="产权",
        ),
        dataclasses.replace(_BUILDING, grouping=False),
        dataclasses.replace(_UNIT, grouping=False),
        dataclasses.replace(_HOUSE, required=False, example="1201"),
        Column(
            "owner_phone",
            "持有人手机号",
            (
                "业主手机号",
                "业主电话",
                "车主手机号",
                "承租人手机号",
                "手机号",
                "手机",
                "联系电话",
                "owner_phone",
            ),
            example="13800138000",
        ),
        Column(
            "lease_start",
            "租期开始",
            ("起租日期", "租赁开始", "租赁开始日期", "lease_start"),
            example="",
        ),
        Column(
            "lease_end",
            "租期结束",
            ("到期日期", "租赁结束", "租赁结束日期", "lease_end"),
            example="",
        ),
        Column("area_m2", "车位面积", ("面积", "area_m2"), example="12.50"),
    ),
    ImportKind.FACILITIES: (
        _COMMUNITY,
        Column(
            "name",
            "设施名称",
            ("名称", "设施", "设备名称", "name"),
            required=True,
            example="3栋1号电梯",
        ),
        Column("kind", "设施类型", ("类型", "类别", "设施类别", "kind"), example="电梯"),
        dataclasses.replace(_BUILDING, grouping=False, header="所在楼栋", example=""),
        Column(
            "location", "位置", ("安装位置", "所在位置", "具体位置", "location"), example="3栋大堂"
        ),
    ),
}
# The combined "3-2-1201" column is accepted wherever the address parts are.
for _kind in (ImportKind.HOUSES, ImportKind.RESIDENTS, ImportKind.VEHICLES, ImportKind.PARKING):
    COLUMNS[_kind] = (*COLUMNS[_kind], _ADDRESS)

TEMPLATE_COLUMNS: dict[ImportKind, tuple[Column, ...]] = {
    kind: tuple(c for c in columns if c.field != "address") for kind, columns in COLUMNS.items()
}


_HEADER_NOISE = re.compile(r"[\s*＊:：]|[(（\[【].*?[)）\]】]")


def header_key(text: Any) -> str:
    """``* 建筑面积（㎡）`` and ``建筑面积`` name the same column."""
    return _HEADER_NOISE.sub("", n.clean_text(text)).lower()


def header_index(kind: ImportKind) -> dict[str, str]:
    index: dict[str, str] = {}
    for column in COLUMNS[kind]:
        for word in (column.header, *column.synonyms, column.field):
            index.setdefault(header_key(word), column.field)
    return index


# --- building rows ----------------------------------------------------------------------


@dataclass
class RowContext:
    """What a row may refer to: the actor's communities by id, code and name."""

    communities: dict[str, str]  # any accepted spelling -> community code

    def community_code(self, raw: Any) -> str:
        text = n.clean_text(raw)
        if not text:
            raise CellError("required", "This value is required.")
        code = self.communities.get(text) or self.communities.get(text.lower())
        if code is None:
            # Also what another company's community id or code gets: existence is not revealed.
            raise CellError(
                "unknown_community",
                "Unknown community \u201c{value}\u201d: it is not one of your communities.",
                value=text[:40],
            )
        return code


class RowErrors(Exception):
    """All the problems of one row, keyed by field."""

    def __init__(self, errors: dict[str, CellError]) -> None:
        super().__init__("row has errors")
        self.errors = errors


class _Collector:
    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.errors: dict[str, CellError] = {}

    def get(self, fieldname: str, parse: Callable[[Any], Any], *, required: bool = False) -> Any:
        value = self.raw.get(fieldname)
        if isinstance(value, CellError):  # a reader-level problem (formula, Excel error)
            self.errors[fieldname] = value
            return None
        if n.is_blank(value):
            if required:
                self.errors[fieldname] = CellError("required", "This value is required.")
            return None
        try:
            return parse(value)
        except CellError as error:
            self.errors[fieldname] = error
            return None

    def fail(self, fieldname: str, error: CellError) -> None:
        self.errors.setdefault(fieldname, error)

    def done(self) -> None:
        if self.errors:
            raise RowErrors(self.errors)


def _address(c: _Collector) -> tuple[str | None, str | None, str | None]:
    """Building, unit, house from separate columns, or from one ``3-2-1201`` cell."""
    building = c.get("building_no", lambda v: n.parse_part(v, n.BUILDING_SUFFIXES))
    if building is not None or "building_no" in c.errors:
        unit = c.get("unit_no", lambda v: n.parse_part(v, n.UNIT_SUFFIXES))
        house = c.get("house_no", lambda v: n.parse_part(v, n.HOUSE_SUFFIXES), required=True)
        return building, unit, house
    combined_field = "address" if not n.is_blank(c.raw.get("address")) else "house_no"
    address = c.get(combined_field, n.parse_house_address)
    if address is None:
        if combined_field not in c.errors:
            c.fail(
                "house_no",
                CellError(
                    "required",
                    "The house is missing: fill 楼栋 and 房号, or write it like 3-2-1201.",
                ),
            )
        return None, None, None
    unit = address.unit_no
    if unit is None and not n.is_blank(c.raw.get("unit_no")):
        unit = c.get("unit_no", lambda v: n.parse_part(v, n.UNIT_SUFFIXES))
    return address.building_no, unit, address.house_no


def build_house(raw: Raw, ctx: RowContext) -> dict[str, Any]:
    c = _Collector(raw)
    community = c.get("community", ctx.community_code, required=True)
    building, unit, house = _address(c)
    values = {
        "community_code": community,
        "building_no": building,
        "unit_no": unit,
        "house_no": house,
        "floor": c.get("floor", n.parse_floor),
        "building_area": c.get("building_area", n.parse_area, required=True),
        "inner_area": c.get("inner_area", n.parse_area),
        "house_type": c.get("house_type", n.HOUSE_TYPE.parse) or "residence",
        "status": c.get("status", n.HOUSE_STATUS.parse) or "delivered",
    }
    area, inner = values["building_area"], values["inner_area"]
    if area is not None and inner is not None and inner > area:
        c.fail(
            "inner_area",
            CellError("out_of_range", "The inner area is larger than the building area."),
        )
    c.done()
    return values


def build_resident(raw: Raw, ctx: RowContext) -> dict[str, Any]:
    c = _Collector(raw)
    phone = c.get("phone", n.parse_phone)
    id_card = c.get("id_card", n.parse_id_card)
    community = c.get("community", ctx.community_code, required=True)
    building, unit, house = _address(c)
    relation = c.get("relation", n.RELATION.parse) or "owner"
    lease_start = c.get("lease_start", n.parse_date)
    lease_end = c.get("lease_end", n.parse_date)
    if lease_start and lease_end and lease_end < lease_start:
        c.fail("lease_end", CellError("out_of_range", "The lease ends before it starts."))
    if relation != "tenant" and (lease_start or lease_end):
        c.fail(
            "relation",
            CellError("lease_without_tenant", "Lease dates are only for tenants (租户)."),
        )
    values = {
        "name": c.get("name", _name, required=True),
        "phone": phone,
        "id_card": id_card,
        "gender": c.get("gender", n.GENDER.parse),
        "birth_date": c.get("birth_date", n.parse_date),
        "community_code": community,
        "building_no": building,
        "unit_no": unit,
        "house_no": house,
        "relation": relation,
        "lease_start": lease_start,
        "lease_end": lease_end,
    }
    c.done()
    return values


def build_vehicle(raw: Raw, ctx: RowContext) -> dict[str, Any]:
    c = _Collector(raw)
    community = c.get("community", ctx.community_code, required=True)
    building = unit = house = None
    if any(not n.is_blank(raw.get(f)) for f in ("building_no", "unit_no", "house_no", "address")):
        building, unit, house = _address(c)
    values = {
        "plate": c.get("plate", n.parse_plate, required=True),
        "community_code": community,
        "building_no": building,
        "unit_no": unit,
        "house_no": house,
        "owner_phone": c.get("owner_phone", n.parse_phone),
        "brand": c.get("brand", _short_text) or "",
        "color": c.get("color", _short_text) or "",
    }
    c.done()
    return values


def build_parking_space(raw: Raw, ctx: RowContext) -> dict[str, Any]:
    """One space; its holder (house and/or owner phone) only when owned or rented."""
    c = _Collector(raw)
    community = c.get("community", ctx.community_code, required=True)
    building = unit = house = None
    if any(not n.is_blank(raw.get(f)) for f in ("building_no", "unit_no", "house_no", "address")):
        building, unit, house = _address(c)
    owner_phone = c.get("owner_phone", n.parse_phone)
    held = bool(house or owner_phone)
    usage = c.get("usage", n.PARKING_USAGE.parse) or ("owned" if held else "temporary")
    lease_start = c.get("lease_start", n.parse_date)
    lease_end = c.get("lease_end", n.parse_date)
    if usage == "temporary" and held:
        c.fail(
            "usage",
            CellError(
                "temporary_space_bound",
                "A temporary space has no holder: make it 产权 or 租赁, or clear the holder.",
            ),
        )
    if usage != "rented" and (lease_start or lease_end):
        c.fail(
            "usage",
            CellError("lease_not_allowed", "Lease dates are only for rented spaces (租赁)."),
        )
    if lease_start and lease_end and lease_end < lease_start:
        c.fail("lease_end", CellError("out_of_range", "The lease ends before it starts."))
    values = {
        "community_code": community,
        "area_name": c.get("area_name", _name, required=True),
        "underground": c.get("underground", n.parse_bool),
        "space_no": c.get("space_no", n.parse_space_no, required=True),
        "usage": usage,
        "building_no": building,
        "unit_no": unit,
        "house_no": house,
        "owner_phone": owner_phone,
        "lease_start": lease_start,
        "lease_end": lease_end,
        "area_m2": c.get("area_m2", n.parse_area),
    }
    c.done()
    return values


def build_facility(raw: Raw, ctx: RowContext) -> dict[str, Any]:
    c = _Collector(raw)
    values = {
        "community_code": c.get("community", ctx.community_code, required=True),
        "name": c.get("name", _name, required=True),
        "kind": c.get("kind", n.FACILITY_KIND.parse) or "other",
        "building_no": c.get("building_no", lambda v: n.parse_part(v, n.BUILDING_SUFFIXES)),
        "location": c.get("location", _location) or "",
    }
    c.done()
    return values


def _location(value: Any) -> str:
    text = n.clean_text(value)
    if len(text) > 200:
        raise CellError("too_long", "At most {limit} characters.", limit=200)
    return text


_LIST_SEPARATORS = re.compile(r"[、,，;；/|\s]+")


def build_staff_record(raw: Raw, ctx: RowContext) -> dict[str, Any]:
    c = _Collector(raw)

    def communities(value: Any) -> tuple[str, ...]:
        return tuple(
            ctx.community_code(part) for part in _LIST_SEPARATORS.split(n.clean_text(value)) if part
        )

    values = {
        "employee_no": c.get("employee_no", _code, required=True),
        "name": c.get("name", _name, required=True),
        "phone": c.get("phone", n.parse_phone),
        "department": c.get("department", _short_text) or "",
        "position": c.get("position", _short_text) or "",
        "employment_type": c.get("employment_type", n.EMPLOYMENT.parse) or "own",
        "hire_date": c.get("hire_date", n.parse_date),
        "birth_date": c.get("birth_date", n.parse_date),
        "education": c.get("education", n.EDUCATION.parse) or "",
        "certificates": c.get("certificates", _certificates) or (),
        "community_codes": c.get("communities", communities) or (),
    }
    c.done()
    return values


_CERT_LIST = re.compile(r"[、,，;；|\n]+")


def _certificates(value: Any) -> tuple[dict[str, str], ...]:
    """``电工证:T123、消防设施操作员`` → certificate type and (optional) number each."""
    found = []
    for part in _CERT_LIST.split(n.clean_text(value)):
        cert_type, _, number = part.strip().partition(":")
        if cert_type.strip():
            found.append({"cert_type": cert_type.strip()[:60], "number": number.strip()[:60]})
    return tuple(found)


def _code(value: Any) -> str:
    text = n.clean_text(value).replace(" ", "").upper()
    if len(text) > 40:
        raise CellError("too_long", "At most {limit} characters.", limit=40)
    return text


def _name(value: Any) -> str:
    text = n.clean_text(value)
    if len(text) > 100:
        raise CellError("too_long", "At most {limit} characters.", limit=100)
    return text


def _short_text(value: Any) -> str:
    text = n.clean_text(value)
    if len(text) > 60:
        raise CellError("too_long", "At most {limit} characters.", limit=60)
    return text


BUILDERS: dict[ImportKind, Callable[[Raw, RowContext], dict[str, Any]]] = {
    ImportKind.HOUSES: build_house,
    ImportKind.RESIDENTS: build_resident,
    ImportKind.VEHICLES: build_vehicle,
    ImportKind.STAFF: build_staff_record,
    ImportKind.PARKING: build_parking_space,
    ImportKind.FACILITIES: build_facility,
}


def natural_key(kind: ImportKind, values: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rows of the file the same thing (and the upsert's natural key)."""
    house = (
        values.get("community_code"),
        values.get("building_no"),
        values.get("unit_no"),
        values.get("house_no"),
    )
    if kind is ImportKind.HOUSES:
        return house
    if kind is ImportKind.RESIDENTS:
        return (values["phone"] or values["id_card"] or values["name"], *house)
    if kind is ImportKind.VEHICLES:
        return (values["community_code"], values["plate"])
    if kind is ImportKind.PARKING:
        return (values["community_code"], values["area_name"], values["space_no"])
    if kind is ImportKind.FACILITIES:
        return (values["community_code"], values["name"])
    return (values["employee_no"],)


DUPLICATE_MESSAGES: dict[ImportKind, str] = {
    ImportKind.HOUSES: "This house already appears in row {first_row}.",
    ImportKind.RESIDENTS: "This person is already linked to this house in row {first_row}.",
    ImportKind.VEHICLES: "This plate number already appears in row {first_row}.",
    ImportKind.STAFF: "This employee number already appears in row {first_row}.",
    ImportKind.PARKING: "This parking space already appears in row {first_row}.",
    ImportKind.FACILITIES: "This facility already appears in row {first_row}.",
}
DUPLICATE_FIELD: dict[ImportKind, str] = {
    ImportKind.HOUSES: "house_no",
    ImportKind.RESIDENTS: "phone",
    ImportKind.VEHICLES: "plate",
    ImportKind.STAFF: "employee_no",
    ImportKind.PARKING: "space_no",
    ImportKind.FACILITIES: "name",
}


# --- the estate services' row types -------------------------------------------------------

ROW_CLASS_NAMES = {
    ImportKind.HOUSES: "HouseRow",
    ImportKind.RESIDENTS: "ResidentRow",
    ImportKind.VEHICLES: "VehicleRow",
    ImportKind.STAFF: "StaffRecordRow",
    ImportKind.PARKING: "ParkingSpaceRow",
    ImportKind.FACILITIES: "FacilityRow",
}


@dataclass(frozen=True)
class FallbackRow:
    """Stand-in used only while ``linli.estate.rows`` is not installed."""

    kind: str
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def row_factory(kind: ImportKind) -> Callable[[dict[str, Any]], Any]:
    """Build the estate service's row type, passing only the fields it declares.

    Declared fields are read from the class (dataclass, NamedTuple or pydantic),
    so an extra column here or there on either side does not break the import.
    """
    try:
        module = importlib.import_module("linli.estate.rows")
    except ModuleNotFoundError as exc:
        if exc.name not in ("linli.estate", "linli.estate.rows"):
            raise
        return lambda values: FallbackRow(kind.value, values)
    cls = getattr(module, ROW_CLASS_NAMES[kind])
    declared = _declared_fields(cls)
    certificate = getattr(module, "CertificateRow", None)
    if kind is ImportKind.STAFF and certificate is not None:

        def staff_row(values: dict[str, Any]) -> Any:
            certificates = tuple(certificate(**c) for c in values.get("certificates", ()))
            return cls(**{**_pick(values, declared), "certificates": certificates})

        return staff_row
    return lambda values: cls(**_pick(values, declared))


def _declared_fields(cls: Any) -> frozenset[str]:
    if dataclasses.is_dataclass(cls):
        return frozenset(f.name for f in dataclasses.fields(cls))
    if hasattr(cls, "model_fields"):
        return frozenset(cls.model_fields)
    if hasattr(cls, "_fields"):
        return frozenset(cls._fields)
    return frozenset(getattr(cls, "__annotations__", {}))


def _pick(values: dict[str, Any], declared: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in declared}


def looks_like_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
