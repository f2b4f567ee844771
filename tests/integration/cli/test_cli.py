"""The command line against committed databases of both engines: exit codes, one-line errors,
nothing written on refusal, the demo twice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from tests.builders import csv_text, premise
from tests.conftest import use_database
from zhkh.cli.main import run
from zhkh.core.db import get_engine, session_scope
from zhkh.housing.models import Account, Building, Organisation, Ownership
from zhkh.ledger.models import LedgerEntry
from zhkh.metering.messages import RawMessage, process_messages
from zhkh.notify.models import Contact, ContactKind, InAppNotification
from zhkh.payments.models import Payment
from zhkh.schema import alembic_config

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def import_examples(capsys: pytest.CaptureFixture[str]) -> list[str]:
    outputs = []
    for kind, name in [
        ("organisations", "organisations.csv"),
        ("buildings", "buildings.csv"),
        ("premises", "premises.csv"),
        ("premises", "premises-1c-cp1251.csv"),
        ("owners", "owners.csv"),
    ]:
        code, out, err = cli(capsys, "import", kind, str(EXAMPLES / name))
        assert (code, err) == (0, ""), err
        outputs.append(out.strip())
    return outputs


@pytest.mark.usefixtures("scratch_database")
def test_import_examples_then_again_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    first = import_examples(capsys)
    assert first == [
        "organisations: 3 rows, 3 created, 0 updated, 0 unchanged",
        "buildings: 2 rows, 2 created, 0 updated, 0 unchanged",
        "premises: 6 rows, 6 created, 0 updated, 0 unchanged",
        "premises: 3 rows, 3 created, 0 updated, 0 unchanged",
        "owners: 13 rows, 13 created, 0 updated, 0 unchanged",
    ]
    second = import_examples(capsys)
    assert all(line.endswith("; nothing changed") for line in second), second
    assert (count(Organisation), count(Building), count(Account), count(Ownership)) == (3, 2, 9, 13)


@pytest.mark.usefixtures("scratch_database")
def test_bad_file_exits_1_lists_every_bad_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import_examples(capsys)
    before = count(Account)
    bad = tmp_path / "premises.csv"
    bad.write_text(
        csv_text(
            [
                premise(account="900001", building_id="EX-1", premise="50"),
                premise(account="900002", building_id="EX-9", premise="51"),
                premise(account="900003", building_id="EX-1", premise="52", area_m2="-1"),
            ]
        ),
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "import", "premises", str(bad))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "line 3: building_id: no building 'EX-9'; import buildings first",
        "line 4: area_m2: must be greater than zero, got '-1'",
        "error: premises.csv (premises): 2 problems found, nothing was written",
    ]
    assert count(Account) == before


@pytest.mark.usefixtures("scratch_database")
def test_dry_run_counts_but_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "import", "organisations", "--dry-run", str(EXAMPLES / "organisations.csv"))
    assert code == 0
    assert out.strip() == "dry run, nothing written: organisations: 3 rows, 3 created, 0 updated, 0 unchanged"
    assert count(Organisation) == 0


@pytest.mark.usefixtures("scratch_database")
@pytest.mark.parametrize(
    ("content", "encoding", "message"),
    [
        ("", "utf-8", "the file is empty"),
        ("inn,kpp,name\n1,2,3\n", "utf-8", "missing required column(s) role"),
        ("ИНН;КПП;Наименование\n", "utf-16", "UTF-16 or binary"),
    ],
)
def test_unreadable_files_get_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, encoding: str, message: str
) -> None:
    path = tmp_path / "organisations.csv"
    path.write_bytes(content.encode(encoding))
    code, _, err = cli(capsys, "import", "organisations", str(path))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "import", "premises")
    assert code == 2
    assert "Missing argument" in err
    assert cli(capsys, "no-such-command")[0] == 2


def test_unmigrated_database_says_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'empty.db'}"):
        code, _, err = cli(capsys, "import", "organisations", str(EXAMPLES / "organisations.csv"))
    assert code == 1
    assert "no such table" in err
    assert "run: zhkh db upgrade" in err


def test_db_upgrade_creates_the_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with use_database(f"sqlite:///{tmp_path / 'new' / 'zhkh.db'}"):
        code, out, _ = cli(capsys, "db", "upgrade")
        assert code == 0
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert f"is at revision {head}" in out
        assert cli(capsys, "db", "current")[1].strip() == head
        assert inspect(get_engine()).has_table("accounts")


@pytest.mark.usefixtures("scratch_database")
def test_tokens_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "token", "create", "--name", "bank", "--scope", "housing:read")
    assert code == 0
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("zhkh_")
    listing = cli(capsys, "token", "list")[1]
    assert "bank" in listing
    assert secret not in listing
    code, _, err = cli(capsys, "token", "create", "--name", "bank", "--scope", "housing:read")
    assert (code, err.strip()) == (1, "error: a token named 'bank' already exists")
    assert cli(capsys, "token", "create", "--name", "x", "--scope", "everything")[0] == 1
    assert cli(capsys, "token", "revoke", "bank")[1].strip() == "token 'bank' is revoked"
    assert cli(capsys, "token", "revoke", "nobody")[0] == 1


def assert_no_personal_data_in_the_log() -> None:
    """Every entry of the log, scanned for every account number, payer, owner and address of the
    registry. Numbers are looked for in the entries' values (a 64-digit hex commitment would
    contain some 9-digit number by chance), names and addresses anywhere in the text."""
    with session_scope() as session:
        entries = [bytes(data).decode() for data in session.scalars(select(LedgerEntry.data))]
        numbers = set(session.scalars(select(Account.number)))
        names = {n for n in session.scalars(select(Account.payer)) if n} | set(session.scalars(select(Ownership.owner)))
        addresses = set(session.scalars(select(Building.address)))
    assert all((entries, numbers, names, addresses)), "the demo has a log and a registry to look for"
    text = "\n".join(entries)
    found = [name for name in names | addresses if name in text]
    assert found == [], f"personal data in the ledger: {found[:5]}"
    for entry in entries:
        values = set(_scalars(json.loads(entry)))
        assert not values & numbers, f"an account number in {entry}"
        assert not {int(n) for n in numbers} & {v for v in values if isinstance(v, int)}


def _scalars(value: object) -> Iterator[object]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


@pytest.mark.usefixtures("scratch_database")
def test_demo_twice_then_reset(capsys: pytest.CaptureFixture[str], backend: str, tmp_path: Path) -> None:
    bills, ledger = tmp_path / "bills", tmp_path / "ledger"
    code, out, err = cli(capsys, "demo", "--bills", str(bills), "--ledger", str(ledger))
    assert (code, err) == (0, "")
    assert "premises: 199 rows, 199 created" in out
    assert "device messages over" in out
    stored = dict(re.findall(r"^ +(\w+): \d+ message\(s\) sent, (\d+) reading\(s\) stored$", out, re.M))
    assert sorted(stored) == ["chirpstack", "platform", "tts", "waterius", "wmbusmeters"]
    assert all(int(count) > 0 for count in stored.values()), stored
    assert re.search(r"notifications by in_app: .*\bsent [1-9]", out), out
    with session_scope() as session:
        resident = select(func.count()).select_from(InAppNotification).join(Contact)
        assert session.scalar(resident.where(Contact.kind == ContactKind.RESIDENT)), "the leak reached the resident"
    assert out.count("leak on ") == 1, "the LoRaWAN module and the flow rule report one leak"
    assert "leak on meter:CW-001-5" in out
    accounts = count(Account)
    assert 190 <= accounts <= 210
    assert count(Ownership) > accounts  # some flats have several owners

    assert out.count("│ closed ") == 5, "five months billed and closed, the sixth open"
    assert "a benefit granted late recalculated the closed months: 2 recalculation lines" in out
    assert "Перерасчёт за" in out

    assert out.count("agent registry pochta-") == 5
    assert "waiting for review: 1 (zhkh payments unmatched)" in out
    assert "penalties charged for 2026-" in out
    payments = count(Payment)
    assert payments > 500
    assert len(list(bills.glob("*.pdf"))) == accounts
    assert f"{accounts} bills (ЕПД" in out
    entries = count(LedgerEntry)
    assert entries > payments, "every payment, its allocation and every account's accruals are logged"
    assert f"verified from the exported tiles: {entries} entries, cosigned by witness-" in out
    assert out.count(" verified\n") >= 1, "one resident's proof checked offline"
    assert_no_personal_data_in_the_log()

    code, out, _ = cli(capsys, "demo", "--bills", str(bills), "--ledger", str(ledger))
    assert code == 0
    assert out.count("nothing changed") == 5, "organisations, buildings, premises, owners, meters"
    assert out.count("│ closed ") == 5
    assert "2 recalculation lines" in out, "the open month re-run: the same recalculations, not twice"
    assert "readings: 0 accepted" in out
    assert count(Account) == accounts
    assert count(Payment) == payments, "the same registries and statement again add nothing"
    assert "waiting for review: 0" in out
    assert "0 money facts appended" in out
    assert count(LedgerEntry) == entries

    if backend == "postgresql":
        refused = cli(capsys, "demo", "--reset")
        assert refused[0] == 1
        assert "add --yes" in refused[2]
    code, out, _ = cli(capsys, "demo", "--reset", "--yes", "--bills", str(bills), "--ledger", str(ledger))
    assert code == 0
    assert "verified from the exported tiles" in out, "the witnesses forgot the old log with it"
    assert "premises: 199 rows, 199 created" in out
    assert count(Account) == accounts


@pytest.mark.usefixtures("scratch_database")
def test_the_example_messages_reach_the_example_meters(capsys: pytest.CaptureFixture[str]) -> None:
    """What a new user does from docs/iot.md: import the example files, then send the example
    platform messages; every reading finds its meter."""
    import_examples(capsys)
    assert cli(capsys, "import", "meters", str(EXAMPLES / "meters.csv"))[0] == 0
    names = ["platform.json", "platform-two-zone.json", "platform-gateway-batch.json"]
    received = datetime(2025, 3, 14, 7, tzinfo=UTC)
    with session_scope() as session:
        results = process_messages(
            session,
            [
                RawMessage("mqtt", "platform", "zhkh/readings/x", (EXAMPLES / "iot" / n).read_bytes(), received)
                for n in names
            ],
        )
    statuses = [outcome.status.value for result in results for outcome in result.readings]
    assert statuses == ["accepted", "accepted", "accepted", "duplicate", "accepted", "duplicate", "duplicate"]


@pytest.mark.usefixtures("scratch_database")
def test_billing_from_the_example_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """What a new user does from docs/billing.md, and every refusal in one line with exit 1."""
    import_examples(capsys)
    for kind in ("meters", "readings", "suppliers", "tariffs", "norms", "multipliers", "benefits"):
        code, _, err = cli(capsys, "import", kind, str(EXAMPLES / f"{kind}.csv"))
        assert (code, err) == (0, ""), err
    code, out, err = cli(capsys, "billing", "run", "--period", "2026-03")
    assert (code, err) == (0, ""), err
    assert "Billing 2026-03: 9 accounts" in out
    code, out, _ = cli(capsys, "billing", "explain", "100101", "--period", "2026-03")
    assert code == 0
    assert "Холодная вода: счётчик CW-100101: показания 123,456 → 130,456 = 7,000 м³ × 55,12 ₽ = 385,84 ₽" in out
    code, out, _ = cli(capsys, "billing", "explain", "100101", "--period", "2026-03", "--lang", "en")
    assert "Cold water: meter CW-100101: readings 123.456 → 130.456 = 7.000 m³ × 55.12 ₽ = 385.84 ₽" in out

    exported = tmp_path / "lines.csv"
    code, out, _ = cli(capsys, "billing", "export", "--period", "2026-03", "--format", "csv", "--out", str(exported))
    assert code == 0
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        "account,period,service,zone,supplier_inn,method,quantity,unit,price,multiplier,amount,benefit,recalculation,total"
    )
    assert "100101,2026-03,cold_water,,6623001028,meter,7,m3,55.12,,385.84,0.00,0.00,385.84" in lines
    assert f"{len(lines) - 1} lines written" in out

    assert cli(capsys, "billing", "close", "--period", "2026-03")[0] == 0
    for args, message in [
        (("billing", "run", "--period", "2026-03"), "period 2026-03 is closed"),
        (("billing", "close", "--period", "2026-03"), "already closed"),
        (("billing", "run", "--period", "March"), "a period is written YYYY-MM"),
        (("billing", "explain", "999", "--period", "2026-03"), "no personal account '999'"),
        (("billing", "explain", "100101", "--period", "2026-05"), "has no lines for 2026-05"),
        (("billing", "export", "--period", "2026-03", "--format", "xml"), "only csv"),
        (("billing", "absence", "100101", "--from", "2026-03-10", "--to", "2026-03-01"), "not after the departure"),
    ]:
        code, out, err = cli(capsys, *args)
        assert code == 1, (args, out, err)
        assert message in err
        assert len(err.strip().splitlines()) == 1, err
    code, out, _ = cli(capsys, "billing", "absence", "100103", "--from", "2026-03-01", "--to", "2026-03-18")
    assert (code, out.strip()) == (0, "absence of 1 from 2026-03-01 to 2026-03-18 recorded: 16 full days away")
