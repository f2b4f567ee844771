"""Verifying a published log from the outside, trusting nothing but keys.

``verify_log`` fetches the checkpoint and every tile of its tree (over HTTP, or from a directory
written by ``zhkh ledger export``), and checks:

1. the checkpoint is signed by the log's key, and cosigned by at least ``quorum`` of the given
   witnesses (each counted once; only cosignature/v1 keys are witnesses);
2. every entry bundle holds exactly the entries the tree needs, and every hash tile is exactly
   what those entries hash to: a changed, removed or reordered entry or hash shows up here,
   named by its tile, and so does a tile the log does not serve at all;
3. the root of the tree the entries make is the signed root;
4. the tree extends the last checkpoint this verifier trusted (same origin, not smaller, and the
   same root at the trusted size): a rollback or a fork shown to someone else shows up here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from zhkh.core.errors import DomainError, InvalidInput
from zhkh.ledger.checkpoint import Checkpoint, parse_checkpoint
from zhkh.ledger.merkle import Frontier, leaf_hash
from zhkh.ledger.note import ALG_COSIGNATURE_V1, Note, NoteError, Verifier, parse_note, verified_by
from zhkh.ledger.tiles import TileRef, TileWriter, decode_bundle, entry_bundles_of_tree, hash_tiles_of_tree

Fetch = Callable[[str], bytes]


class VerificationFailed(DomainError):
    """The log does not verify; the message says which check failed and where."""

    status_code = 409


class FetchFailed(DomainError):
    status_code = 502


class Missing(FetchFailed):
    """The log answered, and does not have the file (HTTP 404, no such file in an export)."""


@dataclass(frozen=True)
class Verified:
    checkpoint: Checkpoint
    note: str
    cosigners: list[str]
    trusted_size: int | None  # the size of the checkpoint it was checked to extend


def http_fetcher(base_url: str, client: httpx.Client) -> Fetch:
    base = base_url.rstrip("/")

    def fetch(path: str) -> bytes:
        try:
            response = client.get(f"{base}/{path}")
        except httpx.HTTPError as exc:
            raise FetchFailed(f"could not fetch {base}/{path}: {exc}") from exc
        if response.status_code != 200:
            failure = Missing if response.status_code == 404 else FetchFailed
            raise failure(f"{base}/{path} answered {response.status_code}: {response.text[:200]}")
        return response.content

    return fetch


def directory_fetcher(directory: Path) -> Fetch:
    def fetch(path: str) -> bytes:
        try:
            return (directory / path).read_bytes()
        except FileNotFoundError as exc:
            raise Missing(f"could not read {directory / path}: {exc.strerror}") from exc
        except OSError as exc:
            raise FetchFailed(f"could not read {directory / path}: {exc.strerror}") from exc

    return fetch


def fetcher(location: str, client: httpx.Client) -> Fetch:
    """An ``http(s)://`` base address, or a directory exported by ``zhkh ledger export``."""
    if location.startswith(("http://", "https://")):
        return http_fetcher(location, client)
    return directory_fetcher(Path(location))


def check_witness_keys(witnesses: Sequence[Verifier]) -> None:
    """Witnesses cosign with cosignature/v1 (type 0x04) keys: an Ed25519 note key given as a
    witness (the log's own key, say) would count the log's signature as a cosignature."""
    for witness in witnesses:
        if witness.algorithm != ALG_COSIGNATURE_V1:
            raise InvalidInput(
                f"witness key {witness.name}+{witness.key_id.hex()} is not a cosignature/v1 (type 0x04) key; "
                "a witness prints its key when it starts (zhkh witness serve)"
            )
    distinct = list(dict.fromkeys(witnesses))
    if len({witness.public_key for witness in distinct}) != len(distinct):
        # A cosignature does not sign the witness's name: one key under two names would count twice.
        raise InvalidInput("two witness keys share one public key; each witness counts once, with its own key")


def check_checkpoint(
    data: bytes | str, log: Verifier, witnesses: Sequence[Verifier], quorum: int, origin: str | None = None
) -> tuple[Note, Checkpoint, list[str]]:
    """The checkpoint note's log signature and its quorum of cosignatures. The checkpoint must be
    of ``origin``: by default the log key's name (tlog-checkpoint: they SHOULD match; a rotated
    key may carry another name)."""
    check_witness_keys(witnesses)
    try:
        note = parse_note(data)
        if log not in verified_by(note, [log]):
            raise VerificationFailed(f"the checkpoint is not signed by the log key {log.name}")
        checkpoint = parse_checkpoint(note.text)
    except NoteError as exc:
        raise VerificationFailed(f"the checkpoint does not verify: {exc}") from exc
    expected = log.name if origin is None else origin
    if checkpoint.origin != expected:
        raise VerificationFailed(f"the checkpoint is of log {checkpoint.origin!r}, not of {expected!r}")
    try:
        cosigners = cosigned_by(note, witnesses)
    except NoteError as exc:
        raise VerificationFailed(f"a cosignature does not verify: {exc}") from exc
    if len(cosigners) < quorum:
        raise VerificationFailed(
            f"the checkpoint of size {checkpoint.size} has {len(cosigners)} valid cosignatures of the "
            f"{quorum} required (by: {', '.join(cosigners) or 'none'})"
        )
    return note, checkpoint, cosigners


def cosigned_by(note: Note, witnesses: Sequence[Verifier]) -> list[str]:
    """The witnesses (each once) whose cosignature on the note verifies; a bad cosignature by
    a configured witness key fails the checkpoint (signed-note: a known key must verify)."""
    return list(dict.fromkeys(witness.name for witness in verified_by(note, witnesses)))


def verify_log(
    fetch: Fetch,
    log: Verifier,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
    trusted: Checkpoint | None = None,
    jobs: int = 8,
    origin: str | None = None,
) -> Verified:
    note, checkpoint, cosigners = check_checkpoint(fetch("checkpoint"), log, witnesses, quorum, origin)
    covered = _covered(fetch, checkpoint.size)
    leaves = _leaf_hashes(covered, checkpoint.size, jobs)
    _check_tiles(covered, leaves, checkpoint, jobs)
    if trusted is not None:
        _check_extends(trusted, checkpoint, leaves)
    return Verified(checkpoint, note.format(), cosigners, trusted.size if trusted else None)


def _covered(fetch: Fetch, size: int) -> Fetch:
    """``fetch`` for the tiles of a signed tree: one the log does not have is a failure of the
    log (its checkpoint covers data it cannot show), not of the network."""

    def fetch_covered(path: str) -> bytes:
        try:
            return fetch(path)
        except Missing as exc:
            raise VerificationFailed(
                f"the log does not serve {path}, which its checkpoint of size {size} covers ({exc.message})"
            ) from exc

    return fetch_covered


def _leaf_hashes(fetch: Fetch, size: int, jobs: int) -> list[bytes]:
    bundles = entry_bundles_of_tree(size)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        hashed = pool.map(lambda ref: _bundle_leaves(fetch, ref), bundles)
        return [leaf for leaves in hashed for leaf in leaves]


def _bundle_leaves(fetch: Fetch, ref: TileRef) -> list[bytes]:
    try:
        entries = decode_bundle(fetch(ref.path))
    except ValueError as exc:
        raise VerificationFailed(f"entry bundle {ref.path} is malformed: {exc}") from exc
    if len(entries) != ref.width:
        raise VerificationFailed(f"entry bundle {ref.path} holds {len(entries)} entries, the tree needs {ref.width}")
    return [leaf_hash(entry) for entry in entries]


def _check_tiles(fetch: Fetch, leaves: list[bytes], checkpoint: Checkpoint, jobs: int) -> None:
    writer = TileWriter()
    expected = {tile.ref.path: tile.hashes for tile in writer.append(leaves)}
    refs = hash_tiles_of_tree(checkpoint.size)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for ref, served in zip(refs, pool.map(lambda r: fetch(r.path), refs), strict=True):
            if expected.get(ref.path) != served:
                raise VerificationFailed(f"hash tile {ref.path} does not match the entries it covers")
    if writer.root() != checkpoint.root:
        raise VerificationFailed(
            f"the entries' root differs from the root signed in the checkpoint of size {checkpoint.size}"
        )


def _check_extends(trusted: Checkpoint, checkpoint: Checkpoint, leaves: list[bytes]) -> None:
    if trusted.origin != checkpoint.origin:
        raise VerificationFailed(f"the trusted checkpoint is of log {trusted.origin!r}, not {checkpoint.origin!r}")
    if checkpoint.size < trusted.size:
        raise VerificationFailed(
            f"rollback: the log shows {checkpoint.size} entries, but {trusted.size} were already published"
        )
    frontier = Frontier()
    frontier.extend(leaves[: trusted.size])
    if frontier.root() != trusted.root:
        raise VerificationFailed(
            f"fork: the first {trusted.size} entries no longer have the root that was published for them"
        )
