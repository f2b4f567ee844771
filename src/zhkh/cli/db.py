"""``zhkh db``: the database schema."""

from __future__ import annotations

import typer

from zhkh.cli.output import console

app = typer.Typer(help="Create and migrate the database (ZHKH_DATABASE_URL, default sqlite:///./var/zhkh.db).")


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Apply migrations up to REVISION (the newest by default)."""
    from zhkh.core.db import get_engine
    from zhkh.schema import current_revision, upgrade  # alembic and every model: only when needed

    engine = get_engine()
    upgrade(engine, revision)
    console.print(
        f"database {engine.url.render_as_string(hide_password=True)} is at revision {current_revision(engine)}"
    )


@app.command("current")
def current_command() -> None:
    """Show the database's current migration revision."""
    from zhkh.core.db import get_engine
    from zhkh.schema import current_revision

    console.print(current_revision(get_engine()) or "empty database (run: zhkh db upgrade)")
