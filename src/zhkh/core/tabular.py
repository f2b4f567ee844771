"""Reading the tables operators bring: CSV (UTF-8 or Windows-1251, `,` `;` or tab separated,
Russian or English headers) and XLSX, row by row, without loading the file into memory.

A problem with the file as a whole (unreadable encoding, no header, a required column missing)
raises ``FileRejected``; a problem with one row's shape is recorded in ``TableReader.problems``
with its line number, and reading goes on so every bad row can be reported at once.
"""

from __future__ import annotations

import codecs
import csv
import itertools
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
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
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
    columns: frozenset[str] = frozenset()  # the spec's columns the file has
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
    if head.startswith(_OLE2_MAGIC):
        raise FileRejected(f"{path.name}: an old Excel 97-2003 workbook (XLS) is not supported; save it as XLSX or CSV")
    return _open_csv(path, spec, head)


def rows_from_records(spec: TableSpec, records: Iterable[Mapping[str, Any]], name: str) -> TableReader:
    """A table made in code (the demo, tests): records keyed by column name, numbered from 2 as
    if line 1 were the header. The columns present are those of the first record."""
    iterator = iter(records)
    first = next(iterator, None)

    def rows() -> Iterator[SourceRow]:
        if first is None:
            return
        for line, record in enumerate(itertools.chain([first], iterator), start=2):
            yield SourceRow(line, {key: cell_text(value) for key, value in record.items()})

    present = frozenset(first or ()) & {c.name for c in spec.columns}
    return TableReader(spec=spec, name=name, rows=rows(), columns=present)


def cell_text(value: Any) -> str:
    """The text of a cell as a person would read it; spreadsheet numbers lose no digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        # Excel keeps numbers as doubles and shows at most 15 significant digits; a formula's
        # 12.3*3 is 36.900000000000006 inside but 36.9 on screen, which is what the person means.
        return decimal_to_text(Decimal(format(value, ".15g")))
    if isinstance(value, Decimal):
        return decimal_to_text(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# --- CSV ---------------------------------------------------------------------------------------


def _open_csv(path: Path, spec: TableSpec, head: bytes) -> TableReader:
    encoding = _detect_encoding(path, head)
    # Excel for Mac ("CSV (Macintosh)") ends lines with a bare CR.
    separator = b"\r" if b"\r" in head and b"\n" not in head else b"\n"
    binary = path.open("rb")
    try:
        lines = _decoded_lines(_binary_lines(binary, separator), encoding, path.name)
        skipped = 0
        first = next(lines, None)
        while first is not None and not first.strip():
            skipped, first = skipped + 1, next(lines, None)
        if first is None:
            raise FileRejected(f"{path.name}: the file is empty")
        delimiter = _detect_delimiter(first)
        reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
        try:
            header = next(reader)  # a header cell may span lines (Alt+Enter in Excel)
        except csv.Error as exc:
            raise FileRejected(f"{path.name}: line {skipped + 1}: the header cannot be read as CSV: {exc}") from exc
        mapping = _map_header(header, spec, path.name, encoding, line=skipped + 1)
    except BaseException:
        binary.close()
        raise
    table = TableReader(
        spec=spec, name=path.name, rows=iter(()), encoding=encoding, delimiter=delimiter, columns=frozenset(mapping)
    )
    table.rows = _csv_rows(reader, skipped, mapping, len(header), table.problems)
    table._close.append(binary)
    return table


def _detect_encoding(path: Path, head: bytes) -> str:
    """UTF-8 when the whole file is valid UTF-8, Windows-1251 when it has no UTF-8 at all;
    refused when it is UTF-16, binary, a mix of the two, or text that only reads as garbage."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        raise FileRejected(
            f"{path.name}: the file is UTF-16 or binary, not a CSV table; save it as CSV in UTF-8 or Windows-1251"
        )
    bad_line, utf8_line = _scan_utf8(path)
    if bad_line is None:
        encoding, text = "utf-8-sig", codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    elif utf8_line is not None:
        raise FileRejected(
            f"{path.name}: the file mixes encodings: line {utf8_line} is UTF-8 but line {bad_line} is not; "
            "save the whole file in one encoding"
        )
    else:
        try:
            text = path.read_bytes().decode("cp1251")
        except UnicodeDecodeError as exc:
            byte = exc.object[exc.start]
            raise FileRejected(
                f"{path.name}: the file is neither UTF-8 nor Windows-1251 (byte 0x{byte:02x} at offset {exc.start}); "
                "save it as CSV in UTF-8 or Windows-1251"
            ) from exc
        encoding, text = "cp1251", text[: len(head)]
    if _CONTROL.search(text):
        raise FileRejected(f"{path.name}: the file contains control characters; it is not a CSV text table")
    words = _CYRILLIC_WORD.findall(text)
    if words and len(_KOI8_AS_CP1251.findall(text)) * 2 > len(words):
        raise FileRejected(
            f"{path.name}: the Russian text reads as garbled, the file looks like KOI8-R or another unsupported "
            "encoding; save it as CSV in UTF-8 or Windows-1251"
        )
    return encoding


def _scan_utf8(path: Path) -> tuple[int | None, int | None]:
    """The first line that is not UTF-8, and the first line with non-ASCII UTF-8 text (so a file
    glued from a UTF-8 part and a Windows-1251 part is caught wherever the seam is)."""
    bad_line = utf8_line = None
    with path.open("rb") as binary:
        for number, raw in enumerate(binary, start=1):
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                bad_line = bad_line or number
            else:
                utf8_line = utf8_line or number
            if bad_line and utf8_line:
                break
    return bad_line, utf8_line


def _binary_lines(binary: IO[bytes], separator: bytes) -> Iterator[bytes]:
    if separator == b"\n":
        yield from binary
        return
    pending = b""
    for chunk in iter(lambda: binary.read(1 << 16), b""):
        pending += chunk
        *complete, pending = pending.split(separator)
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _decoded_lines(lines: Iterable[bytes], encoding: str, name: str) -> Iterator[str]:
    """Lines decoded one by one, so a bad byte deep in a large file names its line."""
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:  # pragma: no cover - _detect_encoding scanned the file
            raise FileRejected(f"{name}: line {number} cannot be decoded as {encoding}") from exc
        if number == 1:
            line = line.lstrip("\ufeff")
        yield line


def _detect_delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(
    reader: Any,
    offset: int,
    mapping: Mapping[str, int],
    width: int,
    problems: list[Problem],
) -> Iterator[SourceRow]:
    """Data rows with the physical line each starts on (``offset`` blank lines preceded the
    header). An unreadable row (an unclosed quote) ends the reading with a problem: everything
    after it would be guesswork."""
    line = offset + reader.line_num
    while True:
        first_line = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(
                Problem(first_line, "malformed_row", f"cannot be read as CSV ({exc}); is a quote left open?")
            )
            return
        line = offset + reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            problems.append(Problem(first_line, "malformed_row", f"has {len(cells)} fields but the header has {width}"))
            continue
        yield SourceRow(first_line, _pick(cells, mapping))


def _pick(cells: Sequence[str], mapping: Mapping[str, int]) -> dict[str, str]:
    return {name: cells[index].strip() if index < len(cells) else "" for name, index in mapping.items()}


def _map_header(
    header: Sequence[str], spec: TableSpec, name: str, encoding: str | None, *, line: int = 1
) -> dict[str, int]:
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
            raise FileRejected(f"{name}: line {line}: column {column_name!r} appears twice in the header")
        mapping[column_name] = index
    missing = [column for column in spec.required if column not in mapping]
    if missing:
        found = ", ".join(repr(t) for t in header if t.strip()) or "nothing"
        hint = " (if the header looks garbled, the encoding is wrong)" if encoding == "cp1251" else ""
        raise FileRejected(
            f"{name}: line {line}: missing required column(s) {', '.join(missing)} for {spec.what}; "
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
        # Read-only mode trusts the sheet's stored dimension, which other programs get wrong.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header_number, header = 0, []
        for values in rows:
            header_number += 1
            header = [cell_text(v) for v in values]
            if any(header):
                break
        if not any(header):
            raise FileRejected(f"{path.name}: the workbook's first sheet is empty")
        mapping = _map_header(header, spec, path.name, None, line=header_number)
    except BaseException:
        workbook.close()
        binary.close()
        raise
    reader = TableReader(spec=spec, name=path.name, rows=iter(()), columns=frozenset(mapping))
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
