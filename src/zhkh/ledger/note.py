"""Signed notes (c2sp.org/signed-note), their keys, and witness cosignatures (c2sp.org/tlog-cosignature).

A note is a text ending in a newline, a blank line, then one line per signature::

    <text, ending in "\\n">
    <blank line>
    — <key name> base64(4-byte key ID || signature)

Every checkpoint of the ledger is such a note: the log signs it with Ed25519 (signature type 0x01) and each
witness adds a timestamped cosignature (type 0x04, ``cosignature/v1``). The formats are public so that tools
nobody here wrote (golang.org/x/mod/sumdb/note, transparency-dev/formats, litewitness) read our notes and we
read theirs; the tests pin that with their published vectors.

Keys travel as text, as in golang.org/x/mod/sumdb/note:

- verifier key: ``<name>+<hex key ID>+<base64(type || 32-byte public key)>``
- signer key:   ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || 32-byte Ed25519 seed)>``

where the key ID is the first 4 bytes of SHA-256(name || 0x0A || type || public key). A witness key has type
0x04 (tlog-cosignature: "Ed25519 public keys MAY be encoded as vkeys with signature type 0x04"), so its key ID
differs from the ID the same public key would have as a plain note signer.

This module is pure: no clock, no files. Callers read key files and pass text, and pass the cosignature
timestamp explicitly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "COSIGNATURE_V1_HEADER",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "Note",
    "NoteError",
    "Signature",
    "Signer",
    "Verifier",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "generate_signer",
    "key_id",
    "open_note",
    "parse_note",
    "parse_signature_lines",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
    "verified_by",
    "verify_cosignature",
]

ALG_ED25519 = 0x01
"""signed-note signature type: Ed25519 over the note text."""
ALG_COSIGNATURE_V1 = 0x04
"""signed-note signature type: timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature)."""
_ALGORITHMS = {ALG_ED25519: "Ed25519", ALG_COSIGNATURE_V1: "Ed25519 cosignature/v1"}

MAX_SIGNATURES = 100
"""Signature lines accepted in one note. signed-note: verifiers SHOULD limit it and MUST accept at least 16;
golang.org/x/mod/sumdb/note rejects more than 100, and so do we."""
MAX_TIMESTAMP = 2**63 - 1
"""tlog-cosignature: a cosignature timestamp MUST NOT exceed 2^63 - 1."""
COSIGNATURE_V1_HEADER = "cosignature/v1"

KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
TIMESTAMP_SIZE = 8
COSIGNATURE_V1_SIZE = TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


class NoteError(ValueError):
    """A note, key or signature is malformed or does not verify; the message says what and where."""


# --- small helpers -----------------------------------------------------------------------------------------


def b64decode_strict(text: str, what: str) -> bytes:
    """Decode standard, padded base64 (RFC 4648 §4) and insist on the canonical spelling, so that one value
    has one text form (otherwise two checkpoint texts could carry the same root)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what}: {text!r} is not valid base64 ({exc})") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what}: {text!r} is not canonical base64")
    return raw


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def check_key_name(name: str, what: str = "key name") -> None:
    """signed-note: key names MUST be non-empty and MUST NOT contain Unicode spaces or plus (U+002B)."""
    if not name:
        raise NoteError(f"{what} is empty")
    for char in name:
        if char.isspace():
            raise NoteError(f"{what} {name!r} contains a space character (U+{ord(char):04X})")
        if char == "+":
            raise NoteError(f"{what} {name!r} contains '+'")
        if ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF:
            raise NoteError(f"{what} {name!r} contains the character U+{ord(char):04X}")


def check_note_characters(text: str, what: str) -> None:
    """signed-note: valid UTF-8 and no ASCII control characters (below U+0020) other than newline."""
    for position, char in enumerate(text):
        code = ord(char)
        if (code < 0x20 and char != "\n") or 0xD800 <= code <= 0xDFFF:
            line = text.count("\n", 0, position) + 1
            hint = " (CRLF line endings?)" if char == "\r" else ""
            raise NoteError(f"{what}: line {line} contains the control character U+{code:04X}{hint}")


def _decode_utf8(data: str | bytes, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8 (byte {exc.start})") from None


def key_id(name: str, alg_and_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || type || public key)[:4] (signed-note, tlog-cosignature)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + alg_and_key).digest()[:KEY_ID_SIZE]


def _check_algorithm(algorithm: int) -> None:
    if algorithm not in _ALGORITHMS:
        raise NoteError(
            f"unsupported signature type 0x{algorithm:02x}: only 0x01 (Ed25519) and 0x04 (cosignature/v1) are"
        )


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def cosignature_message(checkpoint_text: str | bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: ``cosignature/v1\\ntime <T>\\n`` then the whole checkpoint body
    (extension lines included, signature lines not), tlog-cosignature "Ed25519 signed message"."""
    body = checkpoint_text.encode("utf-8") if isinstance(checkpoint_text, str) else checkpoint_text
    return f"{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n".encode() + body


# --- keys --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A public key trusted under a name: checks signatures by one log or one witness."""

    name: str
    key_id: bytes
    public_key: bytes
    algorithm: int = ALG_ED25519

    def __post_init__(self) -> None:
        check_key_name(self.name)
        _check_algorithm(self.algorithm)
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise NoteError(f"key {self.name!r}: an Ed25519 public key is 32 bytes, not {len(self.public_key)}")
        expected = key_id(self.name, bytes([self.algorithm]) + self.public_key)
        if self.key_id != expected:
            raise NoteError(
                f"key {self.name!r}: key ID {self.key_id.hex()} does not match the key, which gives {expected.hex()}"
            )

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes, algorithm: int = ALG_ED25519) -> Verifier:
        """Build a verifier from a raw 32-byte Ed25519 public key, computing its key ID."""
        _check_algorithm(algorithm)
        return cls(name, key_id(name, bytes([algorithm]) + public_key), public_key, algorithm)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key ID of a signature line) signs the note text
        ``message``. For a cosignature key the signature starts with its 8-byte timestamp, and the signed
        message is the cosignature/v1 message built from the text, as golang.org/x/mod verifiers do."""
        if self.algorithm == ALG_ED25519:
            return _ed25519_verify(self.public_key, message, signature)
        if len(signature) != COSIGNATURE_V1_SIZE:
            return False
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        signed = cosignature_message(message, timestamp)
        return _ed25519_verify(self.public_key, signed, signature[TIMESTAMP_SIZE:])

    @property
    def text(self) -> str:
        """The verifier key string ``name+hex(keyID)+base64(type||pubkey)``."""
        return f"{self.name}+{self.key_id.hex()}+{b64encode(bytes([self.algorithm]) + self.public_key)}"


def _split_key(text: str, what: str) -> tuple[str, bytes, int, bytes]:
    """Split ``name+hexid+base64`` at its first two '+' (the base64 part may contain '+' itself)."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"{what} {text!r}: expected <name>+<hex key ID>+<base64 key>")
    name, hex_id, key64 = parts
    check_key_name(name, f"{what} name")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError(f"{what} {name!r}: key ID {hex_id!r} is not 8 hex digits")
    raw = b64decode_strict(key64, f"{what} {name!r} key")
    if len(raw) != 1 + ED25519_KEY_SIZE:
        raise NoteError(f"{what} {name!r}: expected a type byte and a 32-byte Ed25519 key, got {len(raw)} bytes")
    _check_algorithm(raw[0])
    return name, bytes.fromhex(hex_id), raw[0], raw[1:]


def parse_verifier_key(text: str) -> Verifier:
    """Parse ``name+hex(keyID)+base64(type||pubkey)``: name rules, 8 hex digits, type 0x01 or 0x04, a 32-byte
    key, and a key ID that matches the key (as golang.org/x/mod/sumdb/note NewVerifier checks)."""
    name, claimed, algorithm, public_key = _split_key(text, "verifier key")
    expected = key_id(name, bytes([algorithm]) + public_key)
    if claimed != expected:
        raise NoteError(
            f"verifier key {name!r}: key ID {claimed.hex()} does not match the key, which gives {expected.hex()}"
        )
    return Verifier(name, claimed, public_key, algorithm)


@dataclass(frozen=True)
class Signer:
    """A private key under a name. ``private_key`` is the 32-byte Ed25519 seed; it is kept out of repr()."""

    name: str
    private_key: bytes = field(repr=False)
    algorithm: int = ALG_ED25519

    def __post_init__(self) -> None:
        check_key_name(self.name)
        _check_algorithm(self.algorithm)
        if len(self.private_key) != ED25519_KEY_SIZE:
            raise NoteError(f"signer {self.name!r}: an Ed25519 seed is 32 bytes, not {len(self.private_key)}")

    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.private_key)

    @property
    def public_key(self) -> bytes:
        return self._key().public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, bytes([self.algorithm]) + self.public_key)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.public_key, self.algorithm)

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of a note text. A cosignature key refuses: its signatures carry a timestamp,
        which this pure module never reads from a clock; use cosign(text, signer, timestamp)."""
        if self.algorithm != ALG_ED25519:
            raise NoteError(
                f"signer {self.name!r} is a cosignature/v1 key: sign checkpoints with cosign(text, signer, timestamp)"
            )
        return self._key().sign(message)

    @property
    def text(self) -> str:
        """The private key string ``PRIVATE+KEY+name+hex(keyID)+base64(type||seed)``; keep it secret."""
        encoded = b64encode(bytes([self.algorithm]) + self.private_key)
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"


def parse_signer_key(text: str) -> Signer:
    """Parse ``PRIVATE+KEY+name+hex(keyID)+base64(type||seed)``; the key ID is checked against the public key
    derived from the seed (golang.org/x/mod/sumdb/note NewSigner)."""
    if not text.startswith(_PRIVATE_PREFIX):
        raise NoteError("signer key: does not start with 'PRIVATE+KEY+'")
    name, claimed, algorithm, seed = _split_key(text[len(_PRIVATE_PREFIX) :], "signer key")
    signer = Signer(name, seed, algorithm)
    if claimed != signer.key_id:
        raise NoteError(
            f"signer key {name!r}: key ID {claimed.hex()} does not match the key, which gives {signer.key_id.hex()}"
        )
    return signer


def generate_signer(name: str, algorithm: int = ALG_ED25519) -> Signer:
    """A new random key; give ``signer.verifier.text`` to whoever verifies, keep ``signer.text`` secret."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return Signer(name, seed, algorithm)


# --- notes -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and ID and the signature bytes (for cosignature/v1: the 8-byte
    big-endian timestamp then the 64-byte Ed25519 signature)."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name, "signature key name")
        if len(self.key_id) != KEY_ID_SIZE:
            raise NoteError(f"signature by {self.name!r}: key ID must be 4 bytes, not {len(self.key_id)}")
        if not self.signature:
            raise NoteError(f"signature by {self.name!r}: signature bytes are empty")

    @property
    def line(self) -> str:
        """``— name base64(keyID||signature)\\n``."""
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A text (ending in a newline) and its signatures, in the order they appear."""

    text: str
    signatures: tuple[Signature, ...] = ()

    def __post_init__(self) -> None:
        if not self.text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        check_note_characters(self.text, "note text")

    def format(self) -> str:
        """The note as exchanged: text, blank line, signature lines."""
        if not self.signatures:
            raise NoteError("a note needs at least one signature to be written out")
        return self.text + "\n" + "".join(signature.line for signature in self.signatures)


def _parse_signature_line(line: str, number: int) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"signature line {number}: does not start with an em dash (U+2014) and a space: {line!r}")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        check_key_name(name, "key name")
    except NoteError as exc:
        raise NoteError(f"signature line {number}: {exc}") from None
    if not encoded:
        raise NoteError(f"signature line {number}: no signature after the key name {name!r}")
    raw = b64decode_strict(encoded, f"signature line {number}")
    if len(raw) <= KEY_ID_SIZE:
        raise NoteError(f"signature line {number}: {len(raw)} bytes is too short for a key ID and a signature")
    return Signature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def parse_signature_lines(data: str | bytes) -> tuple[Signature, ...]:
    """Parse a block of signature lines, each ending in a newline: the signature part of a note, and the body of
    a witness's add-checkpoint answer (tlog-witness)."""
    text = _decode_utf8(data, "signature lines")
    check_note_characters(text, "signature lines")
    if not text:
        raise NoteError("no signature lines")
    if not text.endswith("\n"):
        raise NoteError("the last signature line does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"too many signatures: {len(lines)}, at most {MAX_SIGNATURES} are accepted")
    return tuple(_parse_signature_line(line, number) for number, line in enumerate(lines, start=1))


def parse_note(data: str | bytes) -> Note:
    """Parse a signed note without verifying it. The text is everything up to the last blank line; at least one
    and at most MAX_SIGNATURES signature lines follow."""
    text = _decode_utf8(data, "note")
    check_note_characters(text, "note")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line separating the text from the signatures")
    try:
        signatures = parse_signature_lines(text[split + 2 :])
    except NoteError as exc:
        raise NoteError(f"note: {exc}") from None
    return Note(text[: split + 1], signatures)


def sign_note(text: str, signers: Sequence[Signer]) -> Note:
    """Sign a text with Ed25519 keys (type 0x01), one signature line per signer, in order."""
    if not signers:
        raise NoteError("sign_note needs at least one signer")
    note = Note(text)
    message = text.encode("utf-8")
    signatures = tuple(Signature(s.name, s.key_id, s.sign(message)) for s in signers)
    return Note(note.text, signatures)


def _lookup(verifiers: Sequence[Verifier], signature: Signature) -> Verifier | None:
    """The one verifier with the signature's name and key ID; signed-note identifies a key by both."""
    matches = {v for v in verifiers if v.name == signature.name and v.key_id == signature.key_id}
    if len(matches) > 1:
        raise NoteError(f"ambiguous key {signature.name}+{signature.key_id.hex()}: several verifiers have it")
    return matches.pop() if matches else None


def verified_by(note: Note, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """The verifiers whose signatures are present and valid, in order of first appearance.

    As signed-note requires, signatures by unknown keys (name and key ID not both matching) are ignored, and a
    signature by a known key is always checked; one that fails rejects the whole note with NoteError. An empty
    list means no known key signed: the caller MUST then reject the note (open_note does)."""
    message = note.text.encode("utf-8")
    found: list[Verifier] = []
    for signature in note.signatures:
        verifier = _lookup(verifiers, signature)
        if verifier is None:
            continue
        if not verifier.verify(message, signature.signature):
            raise NoteError(f"invalid signature for key {verifier.name}+{verifier.key_id.hex()}")
        if verifier not in found:
            found.append(verifier)
    return found


def open_note(data: str | bytes, verifiers: Sequence[Verifier]) -> tuple[Note, list[Verifier]]:
    """Parse a note and verify it: at least one of ``verifiers`` must have signed it validly."""
    note = parse_note(data)
    found = verified_by(note, verifiers)
    if not found:
        names = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers) or "none given"
        raise NoteError(f"note has no valid signature by a known key (known: {names})")
    return note, found


# --- cosignature/v1 ----------------------------------------------------------------------------------------


def _check_cosignable(checkpoint_text: str) -> None:
    """A cosignature covers a checkpoint body: at least the origin, size and root lines, each non-empty."""
    if not checkpoint_text.endswith("\n"):
        raise NoteError("cosign: the checkpoint text must end with a newline")
    check_note_characters(checkpoint_text, "cosign: checkpoint text")
    lines = checkpoint_text[:-1].split("\n")
    if len(lines) < 3 or not all(lines[:3]):
        raise NoteError("cosign: the checkpoint text needs non-empty origin, size and root lines")


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")


def cosign(checkpoint_text: str, signer: Signer, timestamp: int) -> Signature:
    """A witness's cosignature/v1 on a checkpoint body at ``timestamp`` (POSIX seconds). The caller parses the
    checkpoint first (checkpoint.parse_checkpoint); the signature covers the whole body, extension lines too."""
    if signer.algorithm != ALG_COSIGNATURE_V1:
        raise NoteError(f"cosign: signer {signer.name!r} is not a cosignature/v1 (type 0x04) key")
    _check_cosignable(checkpoint_text)
    _check_timestamp(timestamp)
    signed = signer._key().sign(cosignature_message(checkpoint_text, timestamp))
    return Signature(signer.name, signer.key_id, timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signed)


def cosignature_timestamp(signature: Signature) -> int:
    """The timestamp carried by a cosignature/v1 signature (not verified: use verify_cosignature)."""
    if len(signature.signature) != COSIGNATURE_V1_SIZE:
        raise NoteError(
            f"signature by {signature.name!r} is {len(signature.signature)} bytes, "
            f"not the {COSIGNATURE_V1_SIZE} of a cosignature/v1"
        )
    return int.from_bytes(signature.signature[:TIMESTAMP_SIZE], "big")


def verify_cosignature(checkpoint_text: str, signature: Signature, verifier: Verifier) -> int:
    """Check one cosignature on a checkpoint body against a witness key and return its timestamp."""
    if verifier.algorithm != ALG_COSIGNATURE_V1:
        raise NoteError(f"verifier {verifier.name!r} is not a cosignature/v1 (type 0x04) key")
    if signature.name != verifier.name or signature.key_id != verifier.key_id:
        raise NoteError(
            f"signature is by {signature.name}+{signature.key_id.hex()}, not by {verifier.name}+{verifier.key_id.hex()}"
        )
    timestamp = cosignature_timestamp(signature)
    _check_timestamp(timestamp)
    if not verifier.verify(checkpoint_text.encode("utf-8"), signature.signature):
        raise NoteError(f"cosignature by {verifier.name}+{verifier.key_id.hex()} at time {timestamp} does not verify")
    return timestamp
