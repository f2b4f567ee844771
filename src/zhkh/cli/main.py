"""The ``zhkh`` entry point: wires the command groups and turns errors into one clear line."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from zhkh.cli import db, demo, imports, serve, tokens
from zhkh.cli.output import errors, fail
from zhkh.core.errors import DomainError, ProblemsFound

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
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)


def main() -> None:
    try:
        app()
    except ProblemsFound as exc:
        for problem in exc.problems:
            errors.print(str(problem))
        fail(exc.message)
        sys.exit(1)
    except DomainError as exc:
        fail(exc.message)
        sys.exit(1)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(f"database error: {reason} (is the schema up to date? run: zhkh db upgrade)")
        sys.exit(1)
