"""What a new user does from the README with the example files: the registry, then payments
through every file path, the review queue, penalties, remittance, statements; and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.integration.cli.test_cli import cli
from zhkh.core.db import session_scope
from zhkh.payments.models import Payment, UnmatchedPayment

EXAMPLES = Path(__file__).parents[3] / "examples"


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.usefixtures("scratch_database")
def test_payments_from_the_example_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for kind, name in [
        ("organisations", "organisations.csv"),
        ("buildings", "buildings.csv"),
        ("premises", "premises.csv"),
        ("premises", "premises-1c-cp1251.csv"),
        ("owners", "owners.csv"),
    ]:
        assert cli(capsys, "import", kind, str(EXAMPLES / name))[0] == 0

    code, out, err = cli(capsys, "payments", "import-registry", str(EXAMPLES / "agent-registry.txt"))
    assert (code, err) == (0, "")
    assert "5 payments, recorded 5, duplicates 0, waiting for review 0" in out
    code, out, _ = cli(capsys, "payments", "import-registry", str(EXAMPLES / "agent-registry-cp1251.txt"))
    assert "recorded 0, duplicates 5" in out, "the same payments in another encoding are the same payments"

    code, out, err = cli(capsys, "payments", "import-statement", str(EXAMPLES / "bank-statement.txt"))
    assert (code, err) == (0, "")
    assert "4 payments" in out
    assert "1 documents are not incoming payments" in out
    assert count(Payment) == 9
    assert count(UnmatchedPayment) == 0

    code, out, _ = cli(
        capsys, "payments", "cash", "--account", "100101", "--amount", "10.50", "--date", "2026-06-02", "--receipt", "1"
    )
    assert (code, out.strip()) == (0, f"recorded payment {count(Payment)}")
    assert cli(capsys, "payments", "cash", "--account", "100101", "--amount", "10.50", "--date", "2026-06-02",
               "--receipt", "1")[1].strip() == "already recorded (same receipt)"  # fmt: skip

    code, out, _ = cli(capsys, "account", "statement", "100101", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "period,service,supplier_inn,opening,accrued,paid,penalty,closing"

    assert cli(capsys, "penalty", "run", "--month", "2026-06")[0] == 0
    code, out, _ = cli(capsys, "payments", "remit", "--date", "2026-06-03", "--out", str(tmp_path))
    assert code == 0
    assert "nothing to remit" in out, "no bills yet: every payment is an advance, nothing belongs to a supplier"
    assert "collected" in cli(capsys, "payments", "reconcile")[1]


@pytest.mark.usefixtures("scratch_database")
def test_bad_payment_files_import_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for kind in ("organisations", "buildings", "premises"):
        assert cli(capsys, "import", kind, str(EXAMPLES / f"{kind}.csv"))[0] == 0

    bad_total = tmp_path / "registry.txt"
    bad_total.write_text("op-1;01.06.2026;100101;052026;10.00\n=1;11.00\n", encoding="utf-8")
    code, _, err = cli(capsys, "payments", "import-registry", str(bad_total))
    assert code == 1
    assert "line 2" in err
    assert "nothing was written" in err

    broken = tmp_path / "statement.txt"
    broken.write_bytes("1CClientBankExchange\nСекцияДокумент=Платежное поручение\nСумма=1.00\n".encode("cp1251"))
    code, _, err = cli(capsys, "payments", "import-statement", str(broken))
    assert code == 1
    assert "КонецДокумента" in err or "КонецФайла" in err

    code, _, err = cli(
        capsys, "payments", "cash", "--account", "100101", "--amount", "-5", "--date", "2026-06-02", "--receipt", "2"
    )
    assert (code, err.strip()) == (1, "error: payment 2: amount must be positive, got -500")
    code, _, err = cli(
        capsys, "payments", "cash", "--account", "7", "--amount", "5", "--date", "2026-06-02", "--receipt", "3"
    )
    assert (code, err.strip()) == (1, "error: account 7 is not in the registry")
    assert count(Payment) == 0
