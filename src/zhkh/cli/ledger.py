"""``zhkh ledger``: keys, the log's state, export for static hosting, verification, residents'
proofs (docs/ledger.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import typer
from rich.text import Text

from zhkh.cli.options import period_value
from zhkh.cli.output import bold, console, errors
from zhkh.core.config import get_settings
from zhkh.core.db import session_scope
from zhkh.core.errors import Conflict, InvalidInput, NotFound
from zhkh.housing.repository import account_by_number
from zhkh.ledger import publication, store
from zhkh.ledger.checkpoint import Checkpoint, parse_checkpoint
from zhkh.ledger.note import ALG_COSIGNATURE_V1, ALG_ED25519, NoteError, Verifier, generate_signer, parse_note
from zhkh.ledger.note import parse_verifier_key as parse_key
from zhkh.ledger.proofs import resident_proofs, verify_resident_proof
from zhkh.ledger.verify import fetcher, verify_log

app = typer.Typer(
    help="The transparent ledger: keys, export, verification and residents' proofs.", no_args_is_help=True
)

LOG_KEY = typer.Option(..., "--log-key", help="the log's verifier key (name+id+key), as `zhkh ledger info` prints it")
WITNESSES = typer.Option([], "--witness", help="repeatable: a witness's verifier key")
QUORUM = typer.Option(0, "--quorum", help="how many of the given witnesses must have cosigned")
ORIGIN = typer.Option(None, "--origin", help="the log's origin, when it differs from its key's name (a rotated key)")


@app.command("keygen")
def keygen(
    name: str = typer.Argument(..., help="the key's name: the log's origin, or the witness's name"),
    out: Path | None = typer.Option(None, "--out", help="where to write the private key (default var/ledger/NAME.key)"),
    witness: bool = typer.Option(False, "--witness", help="a witness's cosigning key (cosignature/v1)"),
) -> None:
    """Write a new private key file (mode 0600, never overwritten) and print its verifier key."""
    signer = generate_signer(name, ALG_COSIGNATURE_V1 if witness else ALG_ED25519)
    target = out or Path("var/ledger") / f"{_file_name(name)}.key"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise Conflict(f"{target} exists already; a key is never overwritten (move it away first)") from exc
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(signer.text + "\n")
    console.print(f"private key written to {target} (keep it secret; back it up)")
    console.print(signer.verifier.text)


@app.command("info")
def info() -> None:
    """The log's origin, size, verifier key, witnesses and quorum."""
    settings = get_settings()
    key_file = Path(settings.ledger_key_file)
    with session_scope() as session:
        size = store.tree_size(session)
        latest = store.latest_checkpoint(session)
    rows = [
        ("origin", settings.ledger_origin),
        ("entries", str(size)),
        ("published", f"{latest.size} entries, cosigned by {latest.cosigners}" if latest else "nothing yet"),
        ("verifier key", _verifier_text(key_file) or f"no key: run zhkh ledger keygen {settings.ledger_origin}"),
        *(("witness", f"{witness.key} at {witness.url}") for witness in settings.ledger_witnesses),
        ("quorum", f"{settings.witness_quorum} of {len(settings.ledger_witnesses)}"),
    ]
    # Plain lines, never a table: keys are copied from here whole, and a table cuts them to fit.
    for label, value in rows:
        console.print(f"{label:<13} {value}")


@app.command("export")
def export(directory: Path = typer.Argument(..., help="where to write checkpoint and tile/...")) -> None:
    """Write the published log as static files (C2SP tlog-tiles) for any web server to mirror."""
    with session_scope() as session:
        written = publication.export(session, directory)
    console.print(f"{written} files written to {directory}")


@app.command("verify")
def verify(
    url: str = typer.Option(..., "--url", help="the log's base address (…/ledger) or an exported directory"),
    log_key: str = LOG_KEY,
    witness: list[str] = WITNESSES,
    quorum: int = QUORUM,
    origin: str | None = ORIGIN,
    state: Path | None = typer.Option(
        None, "--state", help="the last trusted checkpoint (default var/ledger-trust/ORIGIN)"
    ),
) -> None:
    """Re-derive the whole tree from the tiles and check the root, the signatures, the quorum and
    that the log extends the checkpoint trusted last time; then trust the new one."""
    log = _key(log_key, "--log-key")
    witnesses = [_key(text, "--witness") for text in witness]
    _warn_if_unwitnessed(witnesses, quorum)
    trust_file = state or Path("var/ledger-trust") / _file_name(origin or log.name)
    trusted = _trusted(trust_file)
    with httpx.Client(timeout=30) as client:
        verified = verify_log(fetcher(url, client), log, witnesses, quorum, trusted, origin=origin)
    trust_file.parent.mkdir(parents=True, exist_ok=True)
    partial = trust_file.with_name(trust_file.name + ".tmp")
    partial.write_text(verified.note)
    partial.replace(trust_file)
    since = f", extends the trusted {verified.trusted_size}" if verified.trusted_size is not None else ""
    console.print(
        Text.assemble(
            bold(f"verified: {verified.checkpoint.origin}, {verified.checkpoint.size} entries"),
            f"{since}; cosigned by {', '.join(verified.cosigners) or 'no witness'}",
        )
    )


@app.command("proof")
def proof(
    account: str = typer.Option(..., "--account", help="personal account number"),
    period: str = typer.Option(..., "--period", help="the billing period, YYYY-MM"),
    out: Path = typer.Option(Path("."), "--out", help="directory for the .tlog-proof files"),
) -> None:
    """The account's entries of the period with their offline proofs (one .tlog-proof file each)."""
    month = period_value(period)
    with session_scope() as session:
        holder = account_by_number(session, account)
        if holder is None:
            raise NotFound(f"no account {account}")
        proofs = resident_proofs(session, holder.id, account, month.first_day)
    if not proofs:
        raise NotFound(f"the published ledger has no entries of account {account} for {month}")
    out.mkdir(parents=True, exist_ok=True)
    for item in proofs:
        target = out / f"{_file_name(account)}-{month}-{item.index}.tlog-proof"
        target.write_text(item.bundle)
        console.print(f"{item.entry_type} at index {item.index}: {target}")


@app.command("verify-proof")
def verify_proof(
    file: Path = typer.Argument(..., help="a .tlog-proof file from zhkh ledger proof"),
    log_key: str = LOG_KEY,
    witness: list[str] = WITNESSES,
    quorum: int = QUORUM,
    origin: str | None = ORIGIN,
) -> None:
    """Check a resident's proof offline: signatures, inclusion, and the account's commitment."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot read it ({exc.strerror})") from exc
    witnesses = [_key(text, "--witness") for text in witness]
    _warn_if_unwitnessed(witnesses, quorum)
    opened = verify_resident_proof(text, _key(log_key, "--log-key"), witnesses, quorum, origin)
    console.print(
        Text.assemble(
            bold(f"verified: {opened.entry['type']} of account {opened.account}"),
            f" is entry {opened.index} of {opened.checkpoint.origin} (size {opened.checkpoint.size})",
        )
    )


def _warn_if_unwitnessed(witnesses: list[Verifier], quorum: int) -> None:
    if not witnesses or quorum == 0:
        errors.print(
            "warning: no witness cosignature was required (--witness KEY ... --quorum K): this shows only that "
            "the operator signed it, not that the log shows everyone the same history"
        )


def _key(text: str, option: str) -> Verifier:
    try:
        return parse_key(text.strip())
    except NoteError as exc:
        raise InvalidInput(f"{option} {text!r}: not a verifier key ({exc})") from exc


def _trusted(path: Path) -> Checkpoint | None:
    if not path.is_file():
        return None
    try:
        return parse_checkpoint(parse_note(path.read_text()).text)
    except NoteError as exc:
        raise InvalidInput(f"{path}: the trusted checkpoint is unreadable ({exc}); restore it or remove it") from exc


def _verifier_text(key_file: Path) -> str | None:
    if not key_file.is_file():
        return None
    from zhkh.ledger.note import parse_signer_key

    return parse_signer_key(key_file.read_text().strip()).verifier.text


def _file_name(name: str) -> str:
    """A key name or account number as a safe file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
