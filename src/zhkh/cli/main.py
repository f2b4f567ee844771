"""The ``zhkh`` entry point: wires the command groups and turns errors into one clear line."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from zhkh.cli import (
    account,
    billing,
    bills,
    db,
    demo,
    imports,
    ledger,
    metering,
    operations,
    payments,
    penalty,
    serve,
    tokens,
    witness,
)
from zhkh.cli.output import errors, fail
from zhkh.core.errors import DomainError, ProblemsFound

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

app = typer.Typer(
    name="zhkh",
    help="zhkh: an open platform for housing and communal services (ЖКХ).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(imports.app, name="import")
app.add_typer(tokens.app, name="token")
app.add_typer(metering.devices, name="devices")
app.add_typer(metering.meters, name="meters")
app.add_typer(metering.readings, name="readings")
app.add_typer(metering.consumption, name="consumption")
app.add_typer(metering.ingest, name="ingest")
app.add_typer(operations.alarms, name="alarms")
app.add_typer(operations.contacts, name="contacts")
app.add_typer(billing.app, name="billing")
app.add_typer(bills.app, name="bills")
app.add_typer(payments.app, name="payments")
app.add_typer(account.app, name="account")
app.add_typer(penalty.app, name="penalty")
app.add_typer(witness.app, name="witness")
app.add_typer(ledger.app, name="ledger")
app.command("serve")(serve.serve)
app.command("worker")(operations.worker)
app.command("demo")(demo.demo)


def run(args: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code: 0 done, 1 refused or failed, 2 misuse."""
    from sqlalchemy.exc import DBAPIError

    try:
        # Standalone mode: Typer prints usage errors itself and exits with 2 (or 0 for --help).
        app(args=list(args) if args is not None else None, prog_name="zhkh")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ProblemsFound as exc:
        for problem in exc.problems:
            errors.print(str(problem))
        fail(exc.message)
        return 1
    except DomainError as exc:
        fail(exc.message)
        return 1
    except DBAPIError as exc:
        fail(database_problem(exc))
        return 1
    return 0


def database_problem(exc: DBAPIError) -> str:
    """One line about what the database refused, with the likely remedy."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    reason = (str(exc.orig).strip().splitlines() or [""])[0] if exc.orig else type(exc).__name__
    lowered = reason.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"database error: {reason} (the schema is missing or old; run: zhkh db upgrade)"
    if "database" in lowered and "does not exist" in lowered:
        return f"database error: {reason} (create the database first, then run: zhkh db upgrade)"
    if isinstance(exc, IntegrityError):
        return f"database refused the change: {reason} (did another process write the same data at once? try again)"
    if isinstance(exc, OperationalError):
        return f"database error: {reason} (is the database running and reachable?)"
    return f"database error: {reason}"


def main() -> None:
    sys.exit(run())
