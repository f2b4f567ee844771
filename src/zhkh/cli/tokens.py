"""``zhkh token``: API tokens for machines (billing centres, meter gateways, banks)."""

from __future__ import annotations

import typer
from rich.table import Table

from zhkh.cli.output import console
from zhkh.core.errors import InvalidInput
from zhkh.identity.scopes import SCOPES

app = typer.Typer(help="Create, list and revoke API tokens.")


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="who or what the token is for"),
    scope: list[str] = typer.Option(..., "--scope", help=f"repeatable; one of: {', '.join(SCOPES)}"),
    account: str | None = typer.Option(None, "--account", help="for a resident token: their personal account"),
) -> None:
    """Create a token and print its secret. The secret is shown only this once."""
    from sqlalchemy import select

    from zhkh.core.db import session_scope
    from zhkh.housing.models import Account
    from zhkh.identity.service import create_token

    with session_scope() as session:
        if account is not None and session.scalar(select(Account.id).where(Account.number == account)) is None:
            raise InvalidInput(f"no personal account {account!r}")
        issued = create_token(session, name, scope, subject=f"account:{account}" if account else None)
    console.print(
        f"token {issued.token.name!r} with scopes {', '.join(issued.token.scopes)}; keep the secret, it is shown once:"
    )
    console.print(issued.secret, soft_wrap=True)


@app.command("list")
def list_command() -> None:
    """List tokens (never their secrets)."""
    from zhkh.core.db import session_scope
    from zhkh.identity.service import list_tokens

    table = Table("name", "prefix", "scopes", "created", "revoked")
    with session_scope() as session:
        for token in list_tokens(session):
            revoked = token.revoked_at.isoformat(timespec="seconds") if token.revoked_at else ""
            table.add_row(
                token.name,
                token.prefix + "…",
                " ".join(token.scopes),
                token.created_at.isoformat(timespec="seconds"),
                revoked,
            )
    console.print(table)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="the token's name")) -> None:
    """Revoke a token; requests with it are refused from now on."""
    from zhkh.core.db import session_scope
    from zhkh.identity.service import revoke_token

    with session_scope() as session:
        token = revoke_token(session, name)
    console.print(f"token {token.name!r} is revoked")
