"""Reading uploaded spreadsheets into rows of raw cell values.

``.xlsx`` goes through python-calamine (Rust; an order of magnitude faster than
openpyxl on 100,000 rows); ``.csv`` through the standard library after the
encoding is found. The file's *contents* decide what it is, never its name:
people rename files, and a renamed ``.xls`` or PDF must get a clear refusal
rather than a parser crash.
"""

from __future__ import annotations

import csv
import enum
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import python_calamine

from linli.core.errors import DomainError

Cell = Any  # str | int | float | bool | date | datetime | time | timedelta


class FileRefused(DomainError):
    """The upload as a whole cannot be read (as opposed to one bad row)."""

    status = 422
    code = "import_file_refused"
    default_message = "This file cannot be imported."


class FileFormat(enum.StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, .et (WPS) and other legacy Office files
_OTHER_MAGIC = {
    b"%PDF": "PDF",
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"Rar!": "RAR",
    b"7z\xbc\xaf": "7z",
    b"\x1f\x8b": "gzip",
}


def sniff(data: bytes, filename: str = "") -> FileFormat:
    """Decide from the bytes whether this is an .xlsx workbook or a CSV text file."""
    if not data.strip():
        raise FileRefused("The file is empty.", code="import_file_empty")
    if data.startswith(_OLE):
        raise FileRefused(
            "Old Excel (.xls) and WPS (.et) files are not supported; "
            "save the file as .xlsx and upload again.",
            code="import_legacy_excel",
        )
    if data.startswith(_ZIP):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            raise FileRefused(
                "The file is damaged (a broken zip archive).", code="import_file_damaged"
            ) from None
        if "xl/workbook.xml" in names:
            return FileFormat.XLSX
        raise FileRefused(
            "This is not a spreadsheet; upload an .xlsx or .csv file.",
            code="import_not_spreadsheet",
        )
    for magic, kind in _OTHER_MAGIC.items():
        if data.startswith(magic):
            raise FileRefused(
                "This is a {kind} file, not a spreadsheet; upload an .xlsx or .csv file.",
                code="import_not_spreadsheet",
                kind=kind,
            )
    head = data[:65536]
    if b"\x00" in head:
        raise FileRefused(
            "This is not a spreadsheet; upload an .xlsx or .csv file.",
            code="import_not_spreadsheet",
        )
    return FileFormat.CSV


@dataclass
class RawSheet:
    """The cells of one sheet. ``rows`` yields (row number as Excel shows it, cells)."""

    rows: Iterator[tuple[int, list[Cell]]]
    # Merged ranges, 1-based inclusive: (first_row, first_col, last_row, last_col).
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    # Cells (1-based row, 1-based col) holding a formula with no saved result.
    uncached_formulas: set[tuple[int, int]] = field(default_factory=set)
    encoding: str | None = None


def read_sheet(data: bytes, fmt: FileFormat) -> RawSheet:
    if fmt is FileFormat.XLSX:
        return _read_xlsx(data)
    return _read_csv(data)


# --- CSV ---------------------------------------------------------------------------------


def decode_text(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM) if it decodes strictly, else GB18030 (a superset of GBK)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise FileRefused(
            "The text encoding of this CSV file is unknown; save it as UTF-8 or GBK.",
            code="import_unknown_encoding",
        ) from None


def _read_csv(data: bytes) -> RawSheet:
    text, encoding = decode_text(data)
    first_line = text[:4096].split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, row in enumerate(reader, start=1):
                yield number, list(row)
        except csv.Error as exc:
            raise FileRefused(
                "The CSV file is malformed near line {line}.",
                code="import_bad_csv",
                line=reader.line_num,
            ) from exc

    return RawSheet(rows=rows(), encoding=encoding)


# --- XLSX --------------------------------------------------------------------------------


def _read_xlsx(data: bytes) -> RawSheet:
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises several unrelated types for broken files
        raise FileRefused(
            "The file is damaged and cannot be read.", code="import_file_damaged"
        ) from exc
    index = _first_worksheet(workbook)
    sheet = workbook.get_sheet_by_index(index)
    merged = [
        (r1 + 1, c1 + 1, r2 + 1, c2 + 1) for (r1, c1), (r2, c2) in (sheet.merged_cell_ranges or [])
    ]
    start = sheet.start
    # calamine yields rows from the sheet's first row but columns only from its first used column.
    col_offset = start[1] if start else 0

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        pad: list[Cell] = [""] * col_offset
        for number, row in enumerate(sheet.iter_rows(), start=1):
            yield number, pad + row if col_offset else row

    return RawSheet(rows=rows(), merged=merged, uncached_formulas=_uncached_formulas(data, index))


def _first_worksheet(workbook: python_calamine.CalamineWorkbook) -> int:
    for position, meta in enumerate(workbook.sheets_metadata):
        if (
            meta.typ == python_calamine.SheetTypeEnum.WorkSheet
            and meta.visible == python_calamine.SheetVisibleEnum.Visible
        ):
            return position
    raise FileRefused("The workbook has no visible worksheet.", code="import_no_sheet")


_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _uncached_formulas(data: bytes, sheet_index: int) -> set[tuple[int, int]]:
    """Cells whose formula has no saved result (files written by programs, never opened in Excel).

    calamine reads saved results and shows such a cell as empty; we must tell the
    user instead of importing a blank. The sheet XML is scanned only when it
    contains a formula at all, so ordinary files pay nothing.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        path = _sheet_path(archive, sheet_index)
        if path is None or path not in archive.namelist() or not _has_formula(archive, path):
            return set()
        found: set[tuple[int, int]] = set()
        with archive.open(path) as stream:
            # The XML is the workbook's own part, already size-checked; expat refuses entity bombs.
            for _, element in ElementTree.iterparse(stream, events=("end",)):  # noqa: S314
                if element.tag != f"{_NS_MAIN}c":
                    continue
                formula = element.find(f"{_NS_MAIN}f")
                value = element.find(f"{_NS_MAIN}v")
                if formula is not None and (value is None or not (value.text or "").strip()):
                    match = _CELL_REF.fullmatch(element.get("r", ""))
                    if match:
                        found.add((int(match[2]), _column_number(match[1])))
                element.clear()
        return found


_FORMULA_TAGS = (b"<f>", b"<f ", b":f>", b":f ")


def _has_formula(archive: zipfile.ZipFile, path: str) -> bool:
    """Stream the sheet looking for a formula element, without holding the whole XML."""
    tail = b""
    with archive.open(path) as stream:
        while chunk := stream.read(1 << 20):
            window = tail + chunk
            if any(tag in window for tag in _FORMULA_TAGS):
                return True
            tail = window[-4:]
    return False


def _sheet_path(archive: zipfile.ZipFile, sheet_index: int) -> str | None:
    # expat >= 2.4.1 refuses entity-expansion bombs; these parts are a few KB.
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))  # noqa: S314
    sheets = workbook.findall(f"{_NS_MAIN}sheets/{_NS_MAIN}sheet")
    if sheet_index >= len(sheets):
        return None
    rel_id = sheets[sheet_index].get(f"{_NS_REL}id")
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))  # noqa: S314
    for rel in rels:
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return None


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def column_letter(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
