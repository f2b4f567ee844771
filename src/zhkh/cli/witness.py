"""``zhkh witness``: a C2SP tlog-witness that an independent organisation runs (docs/witness.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from zhkh.cli.output import console
from zhkh.core.errors import InvalidInput

if TYPE_CHECKING:
    from zhkh.ledger.note import Signer, Verifier

app = typer.Typer(help="Run a witness that cosigns the log's checkpoints (C2SP tlog-witness).", no_args_is_help=True)

DEFAULT_DATABASE = "sqlite:///./var/witness.db"


@app.command("serve")
def serve(
    key: Path = typer.Option(..., "--key", help="file holding the witness's private key (from: zhkh ledger keygen)"),
    log: list[str] = typer.Option(..., "--log", help="repeatable: a log's verifier key (name+id+key)"),
    origin: list[str] = typer.Option(
        [],
        "--origin",
        help="repeatable, one per --log in the same order: the log's checkpoint origin when it differs "
        "from its key name (default: the key name)",
    ),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(7380, help="port to listen on"),
    database: str = typer.Option(DEFAULT_DATABASE, "--db", help="database URL for the witness's own state"),
) -> None:
    """Serve POST /add-checkpoint: verify each checkpoint against the last one cosigned, store it,
    return a cosignature. Prints the witness's verifier key, which the log's operator configures."""
    import uvicorn

    from zhkh.ledger.witness import create_witness_app

    signer = read_signer(key)
    logs = trusted_logs(log, origin)
    application = create_witness_app(signer, logs, database)
    console.print(f"witness {signer.name}: verifier key {witness_verifier_text(signer)}")
    for name, verifiers in logs.items():
        console.print(f"witnessing {name} ({', '.join(v.text for v in verifiers)})")
    console.print(f"state in {database}; listening on http://{host}:{port}/add-checkpoint")
    uvicorn.run(application, host=host, port=port, log_level="info")


def read_signer(path: Path) -> Signer:
    """The witness key from its file; a missing or malformed file is one clear error."""
    from zhkh.ledger.note import NoteError, parse_signer_key

    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"--key {path}: cannot read the key file ({exc.strerror})") from exc
    try:
        return parse_signer_key(text)
    except NoteError as exc:
        raise InvalidInput(f"--key {path}: not a signer key ({exc})") from exc


def trusted_logs(keys: list[str], origins: list[str]) -> dict[str, list[Verifier]]:
    """Origin -> the log keys trusted for it. Several keys may share an origin (a key rotation)."""
    from zhkh.ledger.note import NoteError, parse_verifier_key

    if origins and len(origins) != len(keys):
        raise typer.BadParameter(
            f"{len(origins)} --origin for {len(keys)} --log: give one per --log, in order, or none",
            param_hint="--origin",
        )
    logs: dict[str, list[Verifier]] = {}
    for index, text in enumerate(keys):
        try:
            verifier = parse_verifier_key(text.strip())
        except NoteError as exc:
            raise InvalidInput(f"--log {text!r}: not a verifier key ({exc})") from exc
        logs.setdefault(origins[index] if origins else verifier.name, []).append(verifier)
    return logs


def witness_verifier_text(signer: Signer) -> str:
    """The vkey a log operator configures for this witness (cosignature/v1, type 0x04)."""
    from zhkh.ledger.witness import cosigning_signer

    return cosigning_signer(signer).verifier.text
