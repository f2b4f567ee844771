"""tlog-proof bundles (c2sp.org/tlog-proof@v1): the format of the spec's example, and offline verification.

Inclusion proofs come from the transparency-dev/merkle conformance corpus (../shared/vectors/merkle/inclusion,
cases 1 and 2 "happy path": the RFC 6962 test tree of 8 leaves), the log key is transparency-dev/formats'
"Log" test key pair, and the real cosigned checkpoint is the one of test_note.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace

import pytest

from tests.unit.ledger.test_note import ARCHE_NOTE, ARCHE_VKEY, WITNESS_VKEYS
from zhkh.ledger.bundle import HEADER, MAX_INCLUSION_PROOF, BundleError, ProofBundle, parse_bundle, verify_bundle
from zhkh.ledger.checkpoint import Checkpoint
from zhkh.ledger.merkle import ProofError, leaf_hash
from zhkh.ledger.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteError,
    Signature,
    Signer,
    Verifier,
    cosign,
    generate_signer,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

LOG_SKEY = "PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ"
LOG_VKEY = "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs"

# transparency-dev/merkle testdata/inclusion/1/happy-path.json and 2/happy-path.json
ROOT8 = base64.b64decode("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
PROOF_0 = tuple(
    base64.b64decode(h)
    for h in [
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    ]
)
PROOF_5 = tuple(
    base64.b64decode(h)
    for h in [
        "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
        "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
        "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
    ]
)
ENTRY_0 = b""  # leaf 0 of the RFC 6962 test tree; its leaf hash is the vector's leafHash
ENTRY_5 = bytes.fromhex("40414243")

# tlog-proof: the spec's example, whose signatures are elided with "[...]".
SPEC_HEAD = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=
"""
SPEC_BODY = "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
SPEC_PROOF = (
    SPEC_HEAD
    + "\n"
    + SPEC_BODY
    + """
— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
— witness2.example TnKKVHLX[...]xwYwrSjgow==
— witness3.example S4X82uH5[...]3oEcROGLFQ==
"""
)


def log_signer() -> Signer:
    return parse_signer_key(LOG_SKEY)


def witnesses(count: int = 3) -> list[Signer]:
    return [generate_signer(f"witness{i}.example", ALG_COSIGNATURE_V1) for i in range(1, count + 1)]


def cosigned_note(body: str, cosigners: list[Signer], log: Signer | None = None) -> str:
    signed = sign_note(body, [log or log_signer()])
    cosignatures = tuple(cosign(body, w, 1700000000 + i) for i, w in enumerate(cosigners))
    return Note(body, (*signed.signatures, *cosignatures)).format()


def tree8_note(cosigners: list[Signer]) -> str:
    return cosigned_note(Checkpoint("Log", 8, ROOT8).format(), cosigners)


# --- format ------------------------------------------------------------------------------------------------


def test_the_spec_example_head_parses_and_its_elided_signatures_are_refused() -> None:
    with pytest.raises(BundleError, match=r"checkpoint: .*not valid base64"):
        parse_bundle(SPEC_PROOF)


def test_the_spec_example_with_real_signatures_parses_and_writes_back() -> None:
    """The spec's header, extra, index and proof lines verbatim; its checkpoint signed by keys of ours."""
    log = generate_signer("example.com/fancylog")
    note = cosigned_note(SPEC_BODY, witnesses(3), log)
    text = SPEC_HEAD + "\n" + note
    bundle = parse_bundle(text)
    assert bundle.index == 73894
    assert bundle.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert bundle.proof == tuple(base64.b64decode(line) for line in SPEC_HEAD.split("\n")[3:8])
    assert bundle.checkpoint_note == note
    assert bundle.checkpoint.size == 109482
    assert bundle.format() == text


def test_the_layout_is_header_index_hashes_blank_line_note() -> None:
    """transparency-dev/formats TestMarshal, with a real note instead of its placeholder checkpoint."""
    h1, h2 = hashlib.sha256(b"hash1").digest(), hashlib.sha256(b"hash2").digest()
    note = tree8_note([])
    b64 = base64.b64encode
    assert (
        ProofBundle(5, (h1, h2), note).format()
        == f"c2sp.org/tlog-proof@v1\nindex 5\n{b64(h1).decode()}\n{b64(h2).decode()}\n\n{note}"
    )
    extra = b"extra information"
    assert (
        ProofBundle(10, (h1,), note, extra).format()
        == f"c2sp.org/tlog-proof@v1\nextra {b64(extra).decode()}\nindex 10\n{b64(h1).decode()}\n\n{note}"
    )
    assert ProofBundle(0, (), note).format() == f"c2sp.org/tlog-proof@v1\nindex 0\n\n{note}"


@pytest.mark.parametrize("extra", [None, b"", b"\x00\xffopaque"])
def test_bundles_round_trip(extra: bytes | None) -> None:
    bundle = ProofBundle(5, PROOF_5, tree8_note(witnesses(2)), extra)
    assert parse_bundle(bundle.format()) == bundle
    assert parse_bundle(bundle.format().encode()) == bundle


def test_empty_extra_data_is_written_as_an_extra_line() -> None:
    assert "\nextra \nindex 0\n" in ProofBundle(0, (), tree8_note([]), b"").format()


NOTE = tree8_note([])
HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (f"wrong-header\nindex 0\n\n{NOTE}", "line 1: expected 'c2sp.org/tlog-proof@v1', got 'wrong-header'"),
        (f"c2sp.org/tlog-proof@v2\nindex 0\n\n{NOTE}", "line 1: expected 'c2sp.org/tlog-proof@v1'"),
        (f" c2sp.org/tlog-proof@v1\nindex 0\n\n{NOTE}", "line 1: expected"),
        (f"{HEADER}\nextra !!notbase64!!\nindex 0\n\n{NOTE}", "line 2: extra data: .* is not valid base64"),
        (f"{HEADER}\n\n\n{NOTE}", "line 2: expected 'index <N>', got nothing"),
        (f"{HEADER}\nindex notanumber\n\n{NOTE}", "line 2: index 'notanumber' is not a decimal"),
        (f"{HEADER}\nindex -5\n\n{NOTE}", "index '-5' is not a decimal"),
        (f"{HEADER}\nindex 05\n\n{NOTE}", "index '05' is not a decimal number without leading zeroes"),
        (f"{HEADER}\nindex 18446744073709551616\n\n{NOTE}", "does not fit in 64 bits"),
        (f"{HEADER}\nIndex 0\n\n{NOTE}", "line 2: expected 'index <N>'"),
        (f"{HEADER}\nextra AAAA\n{HASH}\n\n{NOTE}", "line 3: expected 'index <N>'"),
        (f"{HEADER}\nindex 0\nextra AAAA\n\n{NOTE}", "line 3: inclusion proof hash: .* is not valid base64"),
        (f"{HEADER}\nindex 0\n!!notbase64!!\n\n{NOTE}", "line 3: inclusion proof hash"),
        (
            f"{HEADER}\nindex 0\n{base64.b64encode(bytes(64)).decode()}\n\n{NOTE}",
            "line 3: inclusion proof hash is 64 bytes",
        ),
        (f"{HEADER}\nindex 0\n{HASH}\n{base64.b64encode(bytes(31)).decode()}\n\n{NOTE}", "line 4: .*31 bytes"),
        (f"{HEADER}\nindex 0\n{HASH}\n", "no empty line"),
        (f"{HEADER}\nindex 0\n" + f"{HASH}\n" * (MAX_INCLUSION_PROOF + 1) + f"\n{NOTE}", "65 hashes, at most 64"),
        (f"{HEADER}\nindex 0\n\nnot a note\n", "checkpoint: note has no blank line"),
        (
            f"{HEADER}\nindex 0\n\n{NOTE.replace('Log', 'Log', 1).replace(chr(10) + '8' + chr(10), chr(10) + '08' + chr(10))}",
            "checkpoint: checkpoint line 2",
        ),
        (f"{HEADER}\r\nindex 0\r\n\r\n{NOTE}", "CRLF"),
    ],
)
def test_malformed_proofs_say_which_line_is_wrong(text: str, error: str) -> None:
    """Includes the cases of transparency-dev/formats TestUnmarshalErrors (but its Go scanner's line limit)."""
    with pytest.raises(BundleError, match=error):
        parse_bundle(text)


def test_a_proof_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(BundleError, match=re.escape("not valid UTF-8 (byte 0)")):
        parse_bundle(b"\xff" + ProofBundle(0, (), NOTE).format().encode())


def test_bundles_cannot_be_built_malformed() -> None:
    with pytest.raises(BundleError, match="hash 2 is 31 bytes"):
        ProofBundle(0, (bytes(32), bytes(31)), NOTE)
    with pytest.raises(BundleError, match=re.escape("outside 0..2^64-1")):
        ProofBundle(-1, (), NOTE)
    with pytest.raises(BundleError, match="checkpoint: "):
        ProofBundle(0, (), "Log\n8\n")


# --- verification ------------------------------------------------------------------------------------------


def test_the_vector_entries_are_the_leaves_of_the_vectors() -> None:
    assert leaf_hash(ENTRY_0) == base64.b64decode("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    assert leaf_hash(ENTRY_5) == base64.b64decode("QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=")


@pytest.mark.parametrize(("index", "proof", "entry"), [(0, PROOF_0, ENTRY_0), (5, PROOF_5, ENTRY_5)])
def test_a_cosigned_bundle_verifies(index: int, proof: tuple[bytes, ...], entry: bytes) -> None:
    cosigners = witnesses(3)
    bundle = parse_bundle(ProofBundle(index, proof, tree8_note(cosigners)).format())
    checkpoint = verify_bundle(bundle, entry, parse_verifier_key(LOG_VKEY), [w.verifier for w in cosigners], 3)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == ("Log", 8, ROOT8)


def test_without_witnesses_only_the_log_signature_and_inclusion_are_checked() -> None:
    bundle = ProofBundle(0, PROOF_0, tree8_note([]))
    assert verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY)).size == 8


def test_a_quorum_counts_valid_cosignatures_by_the_given_witnesses() -> None:
    cosigners = witnesses(3)
    keys = [w.verifier for w in cosigners]
    bundle = ProofBundle(0, PROOF_0, tree8_note(cosigners[:2]))
    log = parse_verifier_key(LOG_VKEY)
    assert verify_bundle(bundle, ENTRY_0, log, keys, 2).size == 8
    with pytest.raises(
        NoteError, match=re.escape("2 valid cosignature(s) (witness1.example, witness2.example); the quorum is 3")
    ):
        verify_bundle(bundle, ENTRY_0, log, keys, 3)


def test_a_cosignature_by_a_witness_nobody_trusts_does_not_count() -> None:
    stranger = witnesses(1)
    bundle = ProofBundle(0, PROOF_0, tree8_note(stranger))
    ours = generate_signer("witness1.example", ALG_COSIGNATURE_V1).verifier  # same name, other key
    with pytest.raises(NoteError, match="0 valid cosignature"):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY), [ours], 1)


def test_one_witness_listed_twice_is_one_witness() -> None:
    (witness,) = witnesses(1)
    bundle = ProofBundle(0, PROOF_0, tree8_note([witness]))
    with pytest.raises(ValueError, match="quorum 2 cannot be met by 1 distinct"):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY), [witness.verifier, witness.verifier], 2)


def test_one_public_key_under_two_names_is_refused() -> None:
    """cosignature/v1 does not sign the cosigner's name: a line could be relabelled to count twice."""
    (witness,) = witnesses(1)
    alias = Verifier.from_public_key("alias.example", witness.verifier.public_key, ALG_COSIGNATURE_V1)
    bundle = ProofBundle(0, PROOF_0, tree8_note([witness]))
    with pytest.raises(ValueError, match="share one public key"):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY), [witness.verifier, alias], 2)


def test_witness_keys_must_be_cosignature_keys() -> None:
    bundle = ProofBundle(0, PROOF_0, tree8_note([]))
    log = parse_verifier_key(LOG_VKEY)
    with pytest.raises(ValueError, match="not a cosignature/v1"):
        verify_bundle(bundle, ENTRY_0, log, [log], 1)


@pytest.mark.parametrize("quorum", [-1, 2])
def test_an_unreachable_quorum_is_a_configuration_error(quorum: int) -> None:
    bundle = ProofBundle(0, PROOF_0, tree8_note([]))
    with pytest.raises(ValueError, match=f"quorum {quorum} cannot be met"):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY), [w.verifier for w in witnesses(1)], quorum)


def test_a_checkpoint_not_signed_by_the_log_is_refused() -> None:
    impostor = generate_signer("Log")
    bundle = ProofBundle(0, PROOF_0, cosigned_note(Checkpoint("Log", 8, ROOT8).format(), [], impostor))
    with pytest.raises(NoteError, match="no signature by the log key Log\\+2271c621"):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY))


def test_a_checkpoint_of_another_origin_is_refused() -> None:
    note = cosigned_note(Checkpoint("example.com/other", 8, ROOT8).format(), [])
    bundle = ProofBundle(0, PROOF_0, note)
    with pytest.raises(NoteError, match=re.escape("origin 'example.com/other' is not the expected 'Log'")):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY))
    assert verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY), origin="example.com/other").size == 8


def test_a_changed_entry_index_or_proof_hash_fails_inclusion() -> None:
    bundle = ProofBundle(5, PROOF_5, tree8_note([]))
    log = parse_verifier_key(LOG_VKEY)
    with pytest.raises(ProofError):
        verify_bundle(bundle, ENTRY_5 + b"\x00", log)
    with pytest.raises(ProofError):
        verify_bundle(replace(bundle, index=4), ENTRY_5, log)
    flipped = (bytes([PROOF_5[0][0] ^ 1]) + PROOF_5[0][1:], *PROOF_5[1:])
    with pytest.raises(ProofError):
        verify_bundle(replace(bundle, proof=flipped), ENTRY_5, log)
    with pytest.raises(ProofError):
        verify_bundle(replace(bundle, proof=PROOF_5[:2]), ENTRY_5, log)


def test_an_index_outside_the_tree_fails_inclusion() -> None:
    bundle = ProofBundle(8, PROOF_0, tree8_note([]))
    with pytest.raises(ProofError, match="index 8 is outside the checkpoint's tree of size 8"):
        verify_bundle(bundle, ENTRY_0, parse_verifier_key(LOG_VKEY))


def test_a_changed_checkpoint_breaks_the_log_signature() -> None:
    note = tree8_note([]).replace("\n8\n", "\n9\n", 1)
    with pytest.raises(NoteError, match="invalid signature for key Log\\+2271c621"):
        verify_bundle(ProofBundle(0, PROOF_0, note), ENTRY_0, parse_verifier_key(LOG_VKEY))


def test_a_changed_cosignature_timestamp_rejects_the_proof() -> None:
    (witness,) = witnesses(1)
    signed = sign_note(Checkpoint("Log", 8, ROOT8).format(), [log_signer()])
    good = cosign(signed.text, witness, 1700000000)
    moved = Signature(good.name, good.key_id, (1700000001).to_bytes(8, "big") + good.signature[8:])
    note = Note(signed.text, (*signed.signatures, moved)).format()
    with pytest.raises(NoteError, match=re.escape("invalid signature for key witness1.example+")):
        verify_bundle(ProofBundle(0, PROOF_0, note), ENTRY_0, parse_verifier_key(LOG_VKEY), [witness.verifier], 1)


def test_a_real_cosigned_checkpoint_passes_the_signature_checks() -> None:
    """Real log and witness signatures meet a quorum of 4; only the (absent) inclusion proof then fails."""
    bundle = ProofBundle(0, (), ARCHE_NOTE)
    log = parse_verifier_key(ARCHE_VKEY)
    keys = [parse_verifier_key(k) for k in WITNESS_VKEYS]
    with pytest.raises(ProofError, match="has 0 hashes"):
        verify_bundle(bundle, b"entry", log, keys, 4)
    tampered = ProofBundle(0, (), ARCHE_NOTE.replace("1432088532", "1432088531"))
    with pytest.raises(NoteError, match="invalid signature"):
        verify_bundle(tampered, b"entry", log, keys, 4)
