"""Checkpoint bodies (C2SP tlog-checkpoint) and the add-checkpoint wire format (C2SP tlog-witness).

Vectors: the examples of tlog-checkpoint and tlog-witness (request and response bodies), transparency-dev/formats
log/checkpoint_test.go (its malformed checkpoints), and the sum.golang.org checkpoint whose origin has spaces.
"""

from __future__ import annotations

import base64
import re

import pytest

from zhkh.ledger.checkpoint import (
    MAX_ADD_CHECKPOINT_BODY,
    MAX_PROOF_LINES,
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    AddCheckpointError,
    Checkpoint,
    CheckpointError,
    format_size_response,
    parse_add_checkpoint,
    parse_checkpoint,
    parse_size_response,
)
from zhkh.ledger.note import NoteError, parse_note

SOFA = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_SIG = "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
SOFA_SIG2 = "— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
PROOF_LINES = [
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
]
# tlog-witness: the example request body, verbatim.
WITNESS_REQUEST = (
    "old 20852014\n" + "".join(line + "\n" for line in PROOF_LINES) + "\n" + SOFA + "\n" + SOFA_SIG + SOFA_SIG2
)
ROOT_B64 = "dGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ=="  # formats: 37 bytes, not a SHA-256 hash
ROOT32 = base64.b64encode(bytes(range(32))).decode()


def request(old: str, proof: list[str], note: str = SOFA + "\n" + SOFA_SIG) -> bytes:
    return (f"old {old}\n" + "".join(line + "\n" for line in proof) + "\n" + note).encode()


# --- checkpoint body ---------------------------------------------------------------------------------------


def test_the_spec_checkpoint_parses() -> None:
    checkpoint = parse_checkpoint(SOFA)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.format() == SOFA


def test_the_spec_checkpoint_note_body_is_a_checkpoint() -> None:
    note = parse_note(SOFA + "\n" + SOFA_SIG)
    assert parse_checkpoint(note.text).size == 20852163


def test_an_origin_may_contain_spaces() -> None:
    """tlog-checkpoint: clients MUST NOT assume the origin is a URL; sum.golang.org's is "go.sum database tree"."""
    body = "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    assert parse_checkpoint(body).origin == "go.sum database tree"


def test_extension_lines_are_kept_in_order() -> None:
    body = f"Log\n9944\n{ROOT32}\nlots\nof\nlines\n"
    checkpoint = parse_checkpoint(body)
    assert checkpoint.extensions == ("lots", "of", "lines")
    assert checkpoint.format() == body


def test_the_empty_tree_has_size_zero() -> None:
    empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # SHA-256 of nothing
    assert parse_checkpoint(f"example.com/log\n0\n{empty}\n").size == 0


def test_format_writes_origin_size_and_base64_root() -> None:
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, base64.b64decode(SOFA.split("\n")[2]))
    assert checkpoint.format() == SOFA
    assert Checkpoint("Log", 1, bytes(32), ("ext",)).format() == f"Log\n1\n{'A' * 43}=\next\n"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Head\n9944\n", "2 line\\(s\\)"),
        (f"\n9944\n{ROOT32}\n", "line 1: the origin is empty"),
        (f"Log\n123\n{ROOT32}", "must end with a newline"),
        (f"Log\nbananas\n{ROOT32}\n", "line 2: tree size 'bananas' is not a decimal"),
        (f"Log\n-34\n{ROOT32}\n", "'-34' is not a decimal"),
        (f"Log\n3438945738945739845734895735\n{ROOT32}\n", "does not fit in 64 bits"),
        (f"Log\n18446744073709551616\n{ROOT32}\n", "does not fit in 64 bits"),
        (f"Log\n0123\n{ROOT32}\n", "'0123' is not a decimal number without leading zeroes"),
        (f"Log\n00\n{ROOT32}\n", "'00' is not a decimal"),
        (f"Log\n+5\n{ROOT32}\n", "'\\+5' is not a decimal"),
        (f"Log\n 5\n{ROOT32}\n", "' 5' is not a decimal"),
        (f"Log\n1_000\n{ROOT32}\n", "'1_000' is not a decimal"),
        ("Log\n\u0665\n" + ROOT32 + "\n", "is not a decimal"),  # an Arabic-Indic five: int() would take it
        ("Log\n123\nThisIsn'tBase64\n", "line 3: root hash: .* is not valid base64"),
        (f"Log\n123\n{ROOT_B64}\n", "line 3: root hash: 37 bytes"),
        ("Log\n123\nYmFuYW5hcw==\n", "root hash: 7 bytes, a SHA-256 hash is 32"),
        (f"Log\n123\n{base64.b64encode(bytes(31)).decode()}\n", "root hash: 31 bytes"),
        (f"Log\n123\n{base64.b64encode(bytes(33)).decode()}\n", "root hash: 33 bytes"),
        (f"Log\n123\n{ROOT32[:-2]}9=\n", "not canonical base64"),
        (f"Log\n123\n{ROOT32.rstrip('=')}\n", "not valid base64"),
        (f"Log\n9944\n{ROOT32}\n\n\n\n", "line 4: extension lines must be non-empty"),
        (f"Log\n9944\n{ROOT32}\next\n\nmore\n", "line 5: extension lines must be non-empty"),
        (f"Log\r\n9944\n{ROOT32}\n", "CRLF"),
    ],
)
def test_malformed_checkpoints_are_rejected_with_the_reason(text: str, error: str) -> None:
    """Includes every invalid case of transparency-dev/formats TestUnmarshalLogState; its "valid with trailing
    newlines" case has empty extension lines, which tlog-checkpoint forbids, so it is invalid here."""
    with pytest.raises(CheckpointError, match=error):
        parse_checkpoint(text)


def test_checkpoint_errors_are_note_errors() -> None:
    with pytest.raises(NoteError):
        parse_checkpoint("x\n")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("", 1, bytes(32)), "origin is empty"),
        (("a\nb", 1, bytes(32)), "contains a newline"),
        (("Log", -1, bytes(32)), "outside 0..2\\^64-1"),
        (("Log", 2**64, bytes(32)), "outside 0..2\\^64-1"),
        (("Log", 1, bytes(31)), "root is 31 bytes"),
        (("Log", 1, bytes(32), ("",)), "line 4: an extension line"),
        (("Log", 1, bytes(32), ("a\nb",)), "line 4: an extension line"),
        (("Log\t", 1, bytes(32)), "control character U\\+0009"),
    ],
)
def test_checkpoints_cannot_be_built_malformed(args: tuple[object, ...], error: str) -> None:
    with pytest.raises(CheckpointError, match=error):
        Checkpoint(*args)  # type: ignore[arg-type]


# --- add-checkpoint ----------------------------------------------------------------------------------------


def test_the_spec_add_checkpoint_request_parses() -> None:
    parsed = parse_add_checkpoint(WITNESS_REQUEST.encode())
    assert parsed.old_size == 20852014
    assert parsed.proof == tuple(base64.b64decode(line) for line in PROOF_LINES)
    assert parsed.checkpoint_note == SOFA + "\n" + SOFA_SIG + SOFA_SIG2
    assert parsed.checkpoint.size == 20852163
    assert len(parsed.note.signatures) == 2
    assert parsed.check_sizes() == parsed.checkpoint


def test_the_spec_add_checkpoint_request_is_written_byte_for_byte() -> None:
    proof = tuple(base64.b64decode(line) for line in PROOF_LINES)
    assert AddCheckpoint(20852014, proof, SOFA + "\n" + SOFA_SIG + SOFA_SIG2).format() == WITNESS_REQUEST.encode()


def test_a_request_without_proof_lines_has_old_then_the_empty_line() -> None:
    body = request("0", [])
    assert body.startswith(b"old 0\n\nexample.com/behind-the-sofa\n")
    parsed = parse_add_checkpoint(body)
    assert (parsed.old_size, parsed.proof) == (0, ())
    assert parsed.format() == body


def test_old_zero_with_a_proof_is_left_to_the_witness_to_refuse_with_422() -> None:
    """tlog-witness: the proof MUST be empty when old is 0; a non-empty one is a proof that does not verify
    (422), decided where consistency is checked, not a syntax error."""
    parsed = parse_add_checkpoint(request("0", PROOF_LINES[:1]))
    assert parsed.old_size == 0
    assert len(parsed.proof) == 1


def test_sixty_three_proof_lines_are_the_most() -> None:
    assert len(parse_add_checkpoint(request("5", [ROOT32] * MAX_PROOF_LINES)).proof) == MAX_PROOF_LINES
    with pytest.raises(AddCheckpointError, match="64 proof lines; at most 63"):
        parse_add_checkpoint(request("5", [ROOT32] * (MAX_PROOF_LINES + 1)))
    with pytest.raises(AddCheckpointError, match="64 proof lines; at most 63"):
        AddCheckpoint(5, (bytes(32),) * 64, SOFA + "\n" + SOFA_SIG)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (request("05", []), "line 1: old size '05' is not a decimal number without leading zeroes"),
        (request("-1", []), "old size '-1' is not a decimal"),
        (request("abc", []), "old size 'abc' is not a decimal"),
        (request(" 5", []), "old size ' 5' is not a decimal"),
        (request("", []), "old size '' is not a decimal"),
        (request("18446744073709551616", []), "does not fit in 64 bits"),
        (request("5", ["not base64!"]), "line 2: proof hash: 'not base64!' is not valid base64"),
        (request("5", [ROOT32, "new 7"]), "line 3: proof hash"),
        (request("5", [base64.b64encode(bytes(31)).decode()]), "line 2: proof hash: 31 bytes"),
        (request("5", [ROOT_B64]), "proof hash: 37 bytes"),
        (b"new 5\n\n" + (SOFA + "\n" + SOFA_SIG).encode(), "line 1: expected 'old <size>'"),
        (b"old 5\n" + (SOFA + "\n" + SOFA_SIG).encode(), "line 2: proof hash"),
        (b"old 5\n", "no empty line"),
        (request("5", [], SOFA), "checkpoint: .*no blank line"),
        (request("5", [], SOFA + "\n"), "checkpoint: .*no signature lines"),
        (request("5", [], "Log\nx\n" + ROOT32 + "\n\n" + SOFA_SIG), "checkpoint: checkpoint line 2"),
        (request("5", [], SOFA + "\n" + SOFA_SIG.replace("— ", "-- ")), "checkpoint: .*em dash"),
        (request("5", []).replace(b"\n", b"\r\n"), "CRLF"),
        (b"old 5\n\n\xff", "not valid UTF-8 \\(byte 7\\)"),
        (b"x" * (MAX_ADD_CHECKPOINT_BODY + 1), "at most 65536 are accepted"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: bytes, error: str) -> None:
    with pytest.raises(AddCheckpointError, match=error):
        parse_add_checkpoint(body)


def test_old_size_above_the_checkpoint_size_is_a_bad_request() -> None:
    parsed = parse_add_checkpoint(request("20852164", []))
    with pytest.raises(AddCheckpointError, match="old size 20852164 is larger than the checkpoint size 20852163"):
        parsed.check_sizes()
    assert parse_add_checkpoint(request("20852163", [])).check_sizes().size == 20852163


def test_add_checkpoint_proof_hashes_are_32_bytes() -> None:
    with pytest.raises(AddCheckpointError, match="proof hash 2 is 31 bytes"):
        AddCheckpoint(5, (bytes(32), bytes(31)), SOFA + "\n" + SOFA_SIG)
    with pytest.raises(AddCheckpointError, match=re.escape("outside 0..2^64-1")):
        AddCheckpoint(-1, (), SOFA + "\n" + SOFA_SIG)


# --- the 409 body ------------------------------------------------------------------------------------------


def test_the_conflict_body_is_the_size_and_a_newline() -> None:
    assert SIZE_CONTENT_TYPE == "text/x.tlog.size"
    assert format_size_response(20852014) == b"20852014\n"
    assert format_size_response(0) == b"0\n"
    assert parse_size_response(b"20852014\n") == 20852014


@pytest.mark.parametrize(
    ("body", "error"), [(b"5", "does not end with a newline"), (b"05\n", "not a decimal"), (b"\n", "not a decimal")]
)
def test_malformed_conflict_bodies_are_rejected(body: bytes, error: str) -> None:
    with pytest.raises(CheckpointError, match=error):
        parse_size_response(body)
