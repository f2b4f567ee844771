"""Reading the tables operators bring: CSV (UTF-8 or Windows-1251, `,` `;` or tab separated,
Russian or English headers) and XLSX, row by row, without loading the file into memory.

A problem with the file as a whole (unreadable encoding, no header, a required column missing)
raises ``FileRejected``; a problem with one row's shape is recorded in ``TableReader.problems``
with its line number, and reading goes on so every bad row can be reported at once.
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from zhkh.core.errors import DomainError, Problem
from zhkh.core.values import decimal_to_text

SNIFF_BYTES = 256 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# KOI8-R text read as Windows-1251 turns "Квартира" into "кВАРТИРА": a lowercase letter followed
# by capitals inside one word, which real Russian text almost never has.
_KOI8_AS_CP1251 = re.compile(r"\b[а-яё][А-ЯЁ]{2,}")
_CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]{3,}")


class FileRejected(DomainError):
    """The file cannot be read as a table at all; nothing was imported."""

    status_code = 422


@dataclass(frozen=True, slots=True)
class Column:
    """A column of an import format: its English name and the headers it is also known by."""

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = True


@dataclass(frozen=True, slots=True)
class TableSpec:
    what: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A data row: ``line`` is the 1-based line (CSV) or row number (XLSX) the user sees."""

    line: int
    values: Mapping[str, str]


def normalize_header(text: str) -> str:
    """ "Лицевой счёт" -> "лицевой счет", "Area, m2" -> "area m2", "area_m2" -> "area m2"."""
    lowered = text.strip().lower().replace("ё", "е").replace("\ufeff", "")
    return " ".join(re.sub(r"[^\w]+|_", " ", lowered).split())


@dataclass
class TableReader:
    """Iterates the data rows of a table; see ``open_table``."""

    spec: TableSpec
    name: str
    rows: Iterator[SourceRow]
    encoding: str | None = None
    delimiter: str | None = None
    problems: list[Problem] = field(default_factory=list)
    _close: list[Any] = field(default_factory=list)

    def __iter__(self) -> Iterator[SourceRow]:
        return self.rows

    def close(self) -> None:
        for closable in self._close:
            closable.close()

    def __enter__(self) -> TableReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_table(path: Path, spec: TableSpec) -> TableReader:
    """Open ``path`` as a table of ``spec``; CSV or XLSX is told by content, not by extension."""
    if not path.is_file():
        raise FileRejected(f"{path}: no such file")
    with path.open("rb") as probe:
        head = probe.read(SNIFF_BYTES)
    if not head.strip():
        raise FileRejected(f"{path.name}: the file is empty")
    if head.startswith(_ZIP_MAGIC):
        return _open_xlsx(path, spec)
    return _open_csv(path, spec, head)


def rows_from_records(spec: TableSpec, records: Iterable[Mapping[str, Any]], name: str) -> TableReader:
    """A table made in code (the demo, tests): records keyed by column name, numbered from 2 as
    if line 1 were the header."""

    def rows() -> Iterator[SourceRow]:
        for line, record in enumerate(records, start=2):
            yield SourceRow(line, {key: cell_text(value) for key, value in record.items()})

    return TableReader(spec=spec, name=name, rows=rows())


def cell_text(value: Any) -> str:
    """The text of a cell as a person would read it; spreadsheet numbers lose no digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        # Excel stores numbers as doubles; repr() is the shortest text that reads back the same,
        # which is what the person typed (45.6, not 45.600000000000001).
        return decimal_to_text(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return decimal_to_text(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# --- CSV ---------------------------------------------------------------------------------------


def _open_csv(path: Path, spec: TableSpec, head: bytes) -> TableReader:
    encoding = _detect_encoding(path.name, head)
    binary = path.open("rb")
    try:
        lines = _decoded_lines(binary, encoding, path.name)
        header_line = next(lines, None)
        if header_line is None:
            raise FileRejected(f"{path.name}: the file is empty")
        delimiter = _detect_delimiter(header_line)
        header = next(csv.reader([header_line], delimiter=delimiter))
        mapping = _map_header(header, spec, path.name, encoding)
    except BaseException:
        binary.close()
        raise
    reader = TableReader(spec=spec, name=path.name, rows=iter(()), encoding=encoding, delimiter=delimiter)
    reader.rows = _csv_rows(lines, delimiter, mapping, len(header), reader.problems)
    reader._close.append(binary)
    return reader


def _detect_encoding(name: str, head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        raise FileRejected(
            f"{name}: the file is UTF-16 or binary, not a CSV table; save it as CSV in UTF-8 or Windows-1251"
        )
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        try:
            text = head.decode("cp1251")
        except UnicodeDecodeError as exc:
            raise FileRejected(
                f"{name}: the file is neither UTF-8 nor Windows-1251 (byte 0x{head[exc.start]:02x} at offset "
                f"{exc.start}); save it as CSV in UTF-8 or Windows-1251"
            ) from exc
        encoding = "cp1251"
    if _CONTROL.search(text):
        raise FileRejected(f"{name}: the file contains control characters; it is not a CSV text table")
    words = _CYRILLIC_WORD.findall(text)
    if words and len(_KOI8_AS_CP1251.findall(text)) * 2 > len(words):
        raise FileRejected(
            f"{name}: the Russian text reads as garbled, the file looks like KOI8-R or another unsupported "
            "encoding; save it as CSV in UTF-8 or Windows-1251"
        )
    return encoding


def _decoded_lines(binary: IO[bytes], encoding: str, name: str) -> Iterator[str]:
    """Lines decoded one by one, so a bad byte deep in a large file names its line."""
    for number, raw in enumerate(binary, start=1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            shown = "UTF-8" if encoding.startswith("utf") else "Windows-1251"
            raise FileRejected(
                f"{name}: line {number} is not valid {shown} although the file starts as {shown}; "
                "the file mixes encodings"
            ) from exc
        if number == 1:
            line = line.lstrip("\ufeff")
        yield line


def _detect_delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(
    lines: Iterator[str],
    delimiter: str,
    mapping: Mapping[str, int],
    width: int,
    problems: list[Problem],
) -> Iterator[SourceRow]:
    reader = csv.reader(lines, delimiter=delimiter)
    line = 1  # the header, already read
    while True:
        first_line = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem(first_line, "malformed_row", f"cannot be read as CSV: {exc}"))
            return
        line = 1 + reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            problems.append(Problem(first_line, "malformed_row", f"has {len(cells)} fields but the header has {width}"))
            continue
        yield SourceRow(first_line, _pick(cells, mapping))


def _pick(cells: Sequence[str], mapping: Mapping[str, int]) -> dict[str, str]:
    return {name: cells[index].strip() if index < len(cells) else "" for name, index in mapping.items()}


def _map_header(header: Sequence[str], spec: TableSpec, name: str, encoding: str | None) -> dict[str, int]:
    """Which cell index holds which column of ``spec``; unknown columns are ignored."""
    wanted: dict[str, str] = {}
    for column in spec.columns:
        for alias in (column.name, *column.aliases):
            wanted[normalize_header(alias)] = column.name
    mapping: dict[str, int] = {}
    for index, title in enumerate(header):
        column_name = wanted.get(normalize_header(title))
        if column_name is None:
            continue
        if column_name in mapping:
            raise FileRejected(f"{name}: line 1: column {column_name!r} appears twice in the header")
        mapping[column_name] = index
    missing = [column for column in spec.required if column not in mapping]
    if missing:
        found = ", ".join(repr(t) for t in header if t.strip()) or "nothing"
        hint = " (if the header looks garbled, the encoding is wrong)" if encoding == "cp1251" else ""
        raise FileRejected(
            f"{name}: line 1: missing required column(s) {', '.join(missing)} for {spec.what}; "
            f"the header has {found}{hint}"
        )
    return mapping


# --- XLSX --------------------------------------------------------------------------------------


def _open_xlsx(path: Path, spec: TableSpec) -> TableReader:
    from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

    # A file object, not the path: openpyxl judges a path by its extension, and a workbook saved
    # as "premises.csv" is still a workbook.
    binary = path.open("rb")
    try:
        with warnings.catch_warnings():
            # openpyxl warns about workbook quirks (styles, data validation) that do not affect values.
            warnings.simplefilter("ignore")
            workbook = load_workbook(binary, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged archive
        binary.close()
        raise FileRejected(f"{path.name}: not a readable XLSX workbook ({exc})") from exc
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_number, header = 0, []
        for values in rows:
            header_number += 1
            header = [cell_text(v) for v in values]
            if any(header):
                break
        if not any(header):
            raise FileRejected(f"{path.name}: the workbook's first sheet is empty")
        mapping = _map_header(header, spec, path.name, None)
    except BaseException:
        workbook.close()
        binary.close()
        raise
    reader = TableReader(spec=spec, name=path.name, rows=iter(()))
    reader.rows = _xlsx_rows(rows, header_number, mapping)
    reader._close += [workbook, binary]
    return reader


def _xlsx_rows(rows: Iterator[Sequence[Any]], header_number: int, mapping: Mapping[str, int]) -> Iterator[SourceRow]:
    number = header_number
    while True:
        with warnings.catch_warnings():  # scoped to the read, never held across a yield
            warnings.simplefilter("ignore")
            values = next(rows, None)
        if values is None:
            return
        number += 1
        cells = [cell_text(v) for v in values]
        if any(cells):
            yield SourceRow(number, _pick(cells, mapping))
