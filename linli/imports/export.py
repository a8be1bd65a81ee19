"""Export of every estate list to ``.xlsx`` (导出), written row by row.

openpyxl's write-only mode keeps one row in memory at a time (it spools to a
temporary file), so a million residents export in constant memory. The columns
are the import template's, so an export can be edited and imported back.

Rows come from the owning domains' services (``stream_*`` functions yielding
their ``*Row`` types); this module decides only layout and masking.
"""

from __future__ import annotations

import datetime as dt
import importlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.core.crypto import mask_phone
from linli.core.errors import DomainError
from linli.imports import kinds as k
from linli.imports import normalize as n
from linli.imports.kinds import ImportKind
from linli.imports.templates import SHEET_TITLES

Source = Callable[[AsyncSession, Actor], AsyncIterator[Any]]

SOURCE_PATHS: dict[ImportKind, tuple[str, str]] = {
    ImportKind.HOUSES: ("linli.estate.service", "stream_houses"),
    ImportKind.RESIDENTS: ("linli.residents.service", "stream_residents"),
    ImportKind.VEHICLES: ("linli.residents.service", "stream_vehicles"),
    ImportKind.STAFF: ("linli.staff.service", "stream_staff_records"),
    ImportKind.PARKING: ("linli.estate.service", "stream_parking_spaces"),
    ImportKind.FACILITIES: ("linli.estate.service", "stream_facilities"),
}
SOURCE_OVERRIDES: dict[ImportKind, Source] = {}

# Personal numbers are masked unless the reader may contact residents.
MASKED_FIELDS = {
    ImportKind.RESIDENTS: frozenset({"phone", "id_card"}),
    ImportKind.VEHICLES: frozenset({"owner_phone"}),
    ImportKind.PARKING: frozenset({"owner_phone"}),
}
_CHOICES = {
    "house_type": n.HOUSE_TYPE,
    "status": n.HOUSE_STATUS,
    "relation": n.RELATION,
    "gender": n.GENDER,
    "employment_type": n.EMPLOYMENT,
    "usage": n.PARKING_USAGE,
    "kind": n.FACILITY_KIND,
}


class ExportUnavailable(DomainError):
    status = 501
    code = "export_kind_unavailable"
    default_message = "Exporting {kind} is not available in this version."


def source_for(kind: ImportKind) -> Source:
    if kind in SOURCE_OVERRIDES:
        return SOURCE_OVERRIDES[kind]
    module_name, function_name = SOURCE_PATHS[kind]
    try:
        stream: Source = getattr(importlib.import_module(module_name), function_name)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ExportUnavailable(kind=kind.value) from exc
    return stream


def may_see_contacts(actor: Actor) -> bool:
    """The residents domain decides who reads full phone and ID numbers."""
    from linli.residents import service as residents_service

    return residents_service.may_see_contact(actor)


def mask_id_card(value: str) -> str:
    return value[:6] + "********" + value[-4:] if len(value) == 18 else "***"


def _cell_value(kind: ImportKind, fieldname: str, row: Any, masked: frozenset[str]) -> Any:
    attribute = {"community": "community_code", "communities": "community_codes"}.get(
        fieldname, fieldname
    )
    value = getattr(row, attribute, None)
    if value is None and attribute == "community_codes":
        value = getattr(row, "communities", None)
    if value is None:
        return None
    if fieldname in masked and isinstance(value, str):
        return mask_id_card(value) if fieldname == "id_card" else mask_phone(value)
    if fieldname in _CHOICES and isinstance(value, str):
        return _CHOICES[fieldname].label(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (tuple, list, set, frozenset)):
        return "、".join(str(v) for v in value)
    if isinstance(value, (int, float, Decimal, dt.date, str)):
        return value
    return str(getattr(value, "value", value))


async def write_export(
    session: AsyncSession, actor: Actor, *, kind: ImportKind
) -> tuple[IO[bytes], int]:
    """The workbook in a temporary file (rewound) and the number of data rows."""
    stream = source_for(kind)
    masked = frozenset() if may_see_contacts(actor) else MASKED_FIELDS.get(kind, frozenset())
    columns = k.TEMPLATE_COLUMNS[kind]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(SHEET_TITLES[kind])
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    count = 0
    async for row in stream(session, actor):
        sheet.append([_cell_value(kind, c.field, row, masked) for c in columns])
        count += 1
    output = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    workbook.save(output)
    output.seek(0)
    return output, count


def iter_file(handle: IO[bytes], chunk: int = 256 * 1024) -> Iterator[bytes]:
    try:
        while data := handle.read(chunk):
            yield data
    finally:
        handle.close()
