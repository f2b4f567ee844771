"""Reading operators' tables: encodings, separators, headers, XLSX, and refusals."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from zhkh.core.tabular import Column, FileRejected, TableSpec, cell_text, open_table, rows_from_records

SPEC = TableSpec(
    "premises",
    (
        Column("account", ("Лицевой счёт", "ЛС")),
        Column("area_m2", ("Площадь",)),
        Column("payer", ("Плательщик",), required=False),
    ),
)
WriteFile = Callable[..., Path]


def read_all(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    with open_table(path, SPEC) as reader:
        rows = [(row.line, dict(row.values)) for row in reader]
        return rows, [str(p) for p in reader.problems]


def test_utf8_with_english_header(write_file: WriteFile) -> None:
    rows, problems = read_all(write_file("p.csv", "account,area_m2,payer\n1001,45.6,Иванов И.И.\n"))
    assert rows == [(2, {"account": "1001", "area_m2": "45.6", "payer": "Иванов И.И."})]
    assert problems == []


def test_windows_1251_semicolons_russian_header_decimal_comma(write_file: WriteFile) -> None:
    path = write_file("p.csv", "Лицевой счёт;Площадь;Плательщик\r\n1001;45,6;Петрова А.В.\r\n", "cp1251")
    with open_table(path, SPEC) as reader:
        rows = list(reader)
        assert reader.encoding == "cp1251"
        assert reader.delimiter == ";"
    assert rows[0].values == {"account": "1001", "area_m2": "45,6", "payer": "Петрова А.В."}


def test_utf8_bom_and_tabs(write_file: WriteFile) -> None:
    path = write_file("p.csv", "\ufeffЛС\tПлощадь\n1001\t30\n")
    rows, _ = read_all(path)
    assert rows == [(2, {"account": "1001", "area_m2": "30"})]


def test_optional_column_may_be_absent_and_extra_columns_are_ignored(write_file: WriteFile) -> None:
    rows, _ = read_all(write_file("p.csv", "floor,account,area_m2\n3,1001,30\n"))
    assert rows == [(2, {"account": "1001", "area_m2": "30"})]


def test_line_numbers_count_quoted_newlines_and_skip_blank_rows(write_file: WriteFile) -> None:
    content = 'account,area_m2,payer\n1001,30,"Иванов\nИван"\n\n,,\n1002,40,\n'
    rows, _ = read_all(write_file("p.csv", content))
    assert [line for line, _ in rows] == [2, 6]


def test_missing_required_column_names_it_and_the_header(write_file: WriteFile) -> None:
    with pytest.raises(FileRejected, match=r"line 1: missing required column\(s\) area_m2 .*'account', 'payer'"):
        read_all(write_file("p.csv", "account,payer\n1001,X\n"))


def test_duplicate_column_is_refused(write_file: WriteFile) -> None:
    with pytest.raises(FileRejected, match="'account' appears twice"):
        read_all(write_file("p.csv", "account,ЛС,area_m2\n1,2,3\n"))


@pytest.mark.parametrize("content", ["", "   \n\n"])
def test_empty_file_is_refused(write_file: WriteFile, content: str) -> None:
    with pytest.raises(FileRejected, match="the file is empty"):
        read_all(write_file("p.csv", content))


def test_utf16_is_refused(write_file: WriteFile) -> None:
    with pytest.raises(FileRejected, match="UTF-16 or binary"):
        read_all(write_file("p.csv", "account,area_m2\n1001,30\n", "utf-16"))


def test_koi8r_is_refused_as_garbled(write_file: WriteFile) -> None:
    path = write_file("p.csv", "Лицевой счёт;Площадь;Плательщик\n1001;30;Иванова Мария Петровна\n", "koi8_r")
    with pytest.raises(FileRejected, match="KOI8-R"):
        read_all(path)


def test_undecodable_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"account,area_m2\n1001,\x98\n")  # 0x98 is the one byte Windows-1251 lacks
    with pytest.raises(FileRejected, match="neither UTF-8 nor Windows-1251"):
        read_all(path)


def test_mixed_encodings_name_the_lines(tmp_path: Path) -> None:
    head = "account,area_m2,payer\n" + "".join(f"{n},30,Иванов\n" for n in range(20000))
    path = tmp_path / "p.csv"
    path.write_bytes(head.encode("utf-8") + "9999,30,Петров\n".encode("cp1251"))
    with pytest.raises(FileRejected, match="line 2 is UTF-8 but line 20002 is not"):
        read_all(path)


def test_mixed_encodings_within_the_first_lines_too(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes("account,area_m2,payer\n1,30,Петрова Анна\n".encode() + "2,30,Смирнов\n".encode("cp1251"))
    with pytest.raises(FileRejected, match="mixes encodings"):
        read_all(path)


def test_windows_1251_whose_first_cyrillic_comes_late(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    ascii_rows = "".join(f"{n},30,Ivanov\n" for n in range(20000))
    path.write_bytes(("account,area_m2,payer\n" + ascii_rows + "99999,30,Иванов\n").encode("cp1251"))
    rows, _ = read_all(path)
    assert rows[-1][1]["payer"] == "Иванов"


def test_unclosed_quote_is_a_problem_not_a_swallowed_file(write_file: WriteFile) -> None:
    content = 'account,area_m2,payer\n1,10,"unterminated\n2,0,x\n3,0,x\n'
    rows, problems = read_all(write_file("p.csv", content))
    assert rows == []
    assert problems == ["line 2: cannot be read as CSV (unexpected end of data); is a quote left open?"]


def test_mac_line_endings(write_file: WriteFile) -> None:
    rows, _ = read_all(write_file("p.csv", "account,area_m2\r1001,30\r1002,40\r"))
    assert rows == [(2, {"account": "1001", "area_m2": "30"}), (3, {"account": "1002", "area_m2": "40"})]


def test_header_cell_wrapped_over_two_lines_and_leading_blank_lines(write_file: WriteFile) -> None:
    rows, _ = read_all(write_file("p.csv", '\n\n"Лицевой\nсчёт",area_m2\n1001,30\n'))
    assert rows == [(5, {"account": "1001", "area_m2": "30"})]


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(bytes(range(1, 32)) * 10)
    with pytest.raises(FileRejected, match="control characters"):
        read_all(path)


def test_row_with_too_many_fields_is_a_problem_not_a_crash(write_file: WriteFile) -> None:
    rows, problems = read_all(write_file("p.csv", "account,area_m2\n1001,30,extra\n1002,40\n"))
    assert rows == [(3, {"account": "1002", "area_m2": "40"})]
    assert problems == ["line 2: has 3 fields but the header has 2"]


def test_missing_file() -> None:
    with pytest.raises(FileRejected, match="no such file"):
        read_all(Path("/nonexistent/p.csv"))


def test_xlsx_reads_values_as_typed(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([])  # a blank first row, as exported reports often have
    sheet.append(["Лицевой счёт", "Площадь", "Плательщик"])
    sheet.append([1001, 45.6, "Иванов"])
    sheet.append([None, None, None])
    sheet.append(["1002", 30, None])
    path = tmp_path / "p.xlsx"
    workbook.save(path)
    rows, problems = read_all(path)
    assert rows == [
        (3, {"account": "1001", "area_m2": "45.6", "payer": "Иванов"}),
        (5, {"account": "1002", "area_m2": "30", "payer": ""}),
    ]
    assert problems == []


def test_xlsx_saved_as_csv_is_still_read_as_xlsx(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["account", "area_m2"])
    sheet.append(["1001", 30.25])
    path = tmp_path / "p.csv"
    workbook.save(path)
    rows, _ = read_all(path)
    assert rows == [(2, {"account": "1001", "area_m2": "30.25"})]


def test_xlsx_with_a_wrong_stored_dimension_is_read_whole(tmp_path: Path) -> None:
    import zipfile

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["account", "area_m2"])
    for n in range(1, 6):
        sheet.append([str(1000 + n), n * 10])
    source = tmp_path / "source.xlsx"
    workbook.save(source)
    damaged = tmp_path / "p.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(damaged, "w") as copy:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:B6"/>', b'<dimension ref="A1:B3"/>')
            copy.writestr(item, data)
    rows, _ = read_all(damaged)
    assert len(rows) == 5


def test_old_xls_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "p.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(FileRejected, match="XLS"):
        read_all(path)


def test_reader_knows_which_columns_the_file_has(write_file: WriteFile) -> None:
    with open_table(write_file("p.csv", "account,area_m2\n1,2\n"), SPEC) as reader:
        assert reader.columns == {"account", "area_m2"}


def test_damaged_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(FileRejected, match="not a readable XLSX"):
        read_all(path)


def test_cell_text_keeps_what_was_typed() -> None:
    assert cell_text(0.1 + 0.2) == "0.3"  # what Excel shows for a formula's result
    assert cell_text(12.3 * 3) == "36.9"
    assert cell_text(45.6) == "45.6"
    assert cell_text(3.0) == "3"
    assert cell_text(datetime(2026, 3, 1)) == "2026-03-01"  # noqa: DTZ001 - spreadsheets have no zones
    assert cell_text(True) == "yes"


def test_records_are_numbered_like_a_file() -> None:
    reader = rows_from_records(SPEC, [{"account": "1", "area_m2": 30}], "demo")
    assert [(r.line, dict(r.values)) for r in reader] == [(2, {"account": "1", "area_m2": "30"})]
