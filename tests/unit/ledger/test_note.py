"""Signed notes, keys and cosignatures against published vectors, never against our own output.

Sources of the vectors:
- golang.org/x/mod sumdb/note (note.go, note_test.go): the PeterNeumann key pair and signed note, EnochRoot's
  verifier key and second signature, and the mangled keys of TestNewVerifier / TestNewSigner.
- transparency-dev/formats: log/note_test.go (four key pairs, the sum.golang.org key and a real checkpoint),
  note/note_cosigv1_test.go (a type 0x04 witness key, a 0x01 key whose base64 holds '+', a cosignature whose
  timestamp is 1727964367).
- C2SP: signed-note (the quasimodo note; the example.com/foo key and note of the spec's example section),
  tlog-cosignature (the witness.example.com/w1 line and its signed message).
- A real checkpoint of the arche2025h1 staging CT log with cosignatures by public witnesses, and those
  witnesses' published verifier keys: Ed25519 verification cannot pass on bytes nobody signed, so these pin
  the cosignature/v1 message and key ID derivation against independent implementations.
"""

from __future__ import annotations

import base64
import re

import pytest

from zhkh.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_SIGNATURES,
    Note,
    NoteError,
    Signature,
    Signer,
    Verifier,
    cosign,
    cosignature_message,
    cosignature_timestamp,
    generate_signer,
    key_id,
    open_note,
    parse_note,
    parse_signature_lines,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    verified_by,
    verify_cosignature,
)

# golang.org/x/mod sumdb/note
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# transparency-dev/formats log/note_test.go
KEY_PAIRS = [
    (
        "PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ",
        "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",
    ),
    (
        "PRIVATE+KEY+Known+451c786d+AQPRoE2+Z+Ed1HaHBA9F/FfracvcZ2rDU39kCecMEoci",
        "Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH",
    ),
    (
        "PRIVATE+KEY+KnownAgain+4893b26c+ARhZda/l25zjGZswYLDZsLNRzNpmv5wYTN9IoTr1OJ2+",
        "KnownAgain+4893b26c+AQ+LR7BFF/F/dkpIBjBpSvT0crkteizuUkavAoGeaYMj",
    ),
    (
        "PRIVATE+KEY+Unknown+fdbb2e08+Aav2knTC6orbhXX8pMWuNiWgO+Wwk2DB+h1eU2Q1W1nU",
        "Unknown+fdbb2e08+AWgRIYZ+8x1Vl+1Q+sR8zciNHiYI1SdlBjNw+RV0rots",
    ),
]
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n"
    "— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)

# transparency-dev/formats note/note_cosigv1_test.go
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
COSIG_1727964367 = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
)
NOT_A_COSIG = "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY="

# C2SP signed-note
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
QUASIMODO_NOTE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# C2SP tlog-cosignature
SOFA_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_COSIG_LINE = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
SOFA_MESSAGE = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

# A real checkpoint of a CT log, cosigned by public witnesses (type 0x04 keys), and their verifier keys.
ARCHE_VKEY = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
WITNESS_VKEYS = [
    REMORA_VKEY,
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
]
ARCHE_NOTE = """arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
"""


def peter() -> Verifier:
    return parse_verifier_key(PETER_VKEY)


def enoch() -> Verifier:
    return parse_verifier_key(ENOCH_VKEY)


def witness_signer(name: str = "witness.example/w1") -> Signer:
    return generate_signer(name, ALG_COSIGNATURE_V1)


# --- keys --------------------------------------------------------------------------------------------------


def test_peter_verifier_key_parses_to_its_parts_and_back() -> None:
    verifier = peter()
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id == bytes.fromhex("c74f20a3")
    assert verifier.algorithm == ALG_ED25519
    assert verifier.text == PETER_VKEY


def test_key_id_is_the_signed_note_hash_of_name_type_and_key() -> None:
    assert key_id("PeterNeumann", bytes([ALG_ED25519]) + peter().public_key) == bytes.fromhex("c74f20a3")
    spec = parse_verifier_key(SPEC_VKEY)
    assert spec.key_id == bytes.fromhex("530d903a")
    assert spec.public_key == bytes.fromhex("e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4")


def test_peter_signer_key_gives_peters_verifier_key() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert signer.verifier.text == PETER_VKEY
    assert signer.text == PETER_SKEY


@pytest.mark.parametrize(("skey", "vkey"), KEY_PAIRS, ids=[vkey.split("+")[0] for _, vkey in KEY_PAIRS])
def test_formats_key_pairs_match(skey: str, vkey: str) -> None:
    signer = parse_signer_key(skey)
    assert signer.verifier == parse_verifier_key(vkey)
    assert signer.text == skey


def test_a_key_whose_base64_holds_a_plus_splits_at_the_first_two_pluses() -> None:
    verifier = parse_verifier_key(PLUS_VKEY)
    assert verifier.name == "TEST"
    assert verifier.text == PLUS_VKEY


def test_a_witness_key_has_type_4_and_its_key_id_is_computed_with_4() -> None:
    verifier = parse_verifier_key(REMORA_VKEY)
    assert verifier.algorithm == ALG_COSIGNATURE_V1
    assert verifier.key_id == bytes.fromhex("da77ade7")
    assert verifier.text == REMORA_VKEY
    as_note_key = Verifier.from_public_key(verifier.name, verifier.public_key, ALG_ED25519)
    assert as_note_key.key_id != verifier.key_id


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY, SPEC_VKEY, SUMDB_VKEY, REMORA_VKEY, *WITNESS_VKEYS])
def test_from_public_key_rebuilds_published_keys(vkey: str) -> None:
    parsed = parse_verifier_key(vkey)
    assert Verifier.from_public_key(parsed.name, parsed.public_key, parsed.algorithm).text == vkey


def test_every_truncation_of_peters_verifier_key_is_rejected() -> None:
    """x/mod TestNewVerifier: every proper substring fails."""
    for start in range(len(PETER_VKEY)):
        for end in range(start + 1, len(PETER_VKEY) + 1):
            if (start, end) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    parse_verifier_key(PETER_VKEY[start:end])


def test_every_one_character_change_of_peters_verifier_key_is_rejected() -> None:
    for position in range(len(PETER_VKEY)):
        changed = PETER_VKEY[:position] + chr(ord(PETER_VKEY[position]) + 1) + PETER_VKEY[position + 1 :]
        with pytest.raises(NoteError):
            parse_verifier_key(changed)


def test_every_truncation_and_change_of_peters_signer_key_is_rejected() -> None:
    """x/mod TestNewSigner."""
    for start in range(len(PETER_SKEY)):
        for end in range(start + 1, len(PETER_SKEY) + 1):
            if (start, end) != (0, len(PETER_SKEY)):
                with pytest.raises(NoteError):
                    parse_signer_key(PETER_SKEY[start:end])
    for position in range(len(PETER_SKEY)):
        changed = PETER_SKEY[:position] + chr(ord(PETER_SKEY[position]) + 1) + PETER_SKEY[position + 1 :]
        with pytest.raises(NoteError):
            parse_signer_key(changed)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "not canonical base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEQ==", "got 37 bytes"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "signature type 0x65"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match the key"),
        ("PeterNeumann+0xf20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not 8 hex digits"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "not valid base64"),
        ("PeterNeumann+c74f20a3", re.escape("expected <name>+<hex key ID>+<base64 key>")),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "contains a space"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "name is empty"),
        ("rekor.sigstore.dev+12345678+AwEB", "expected a type byte and a 32-byte Ed25519 key"),
    ],
)
def test_malformed_verifier_keys_say_what_is_wrong(vkey: str, message: str) -> None:
    """The first and third are x/mod's (wrong length and unknown type, each with an adjusted key hash); x/mod
    decodes the first leniently, we refuse its non-canonical base64 first."""
    with pytest.raises(NoteError, match=message):
        parse_verifier_key(vkey)


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0here", "ideographic\u3000space", "new\nline"]
)
def test_key_names_follow_the_signed_note_rules(name: str) -> None:
    with pytest.raises(NoteError):
        Signer(name, bytes(32))


def test_signer_key_must_start_with_private_key() -> None:
    with pytest.raises(NoteError, match="PRIVATE\\+KEY"):
        parse_signer_key(PETER_SKEY.replace("PRIVATE", "PUBLIC"))


def test_signer_key_with_a_wrong_key_id_is_rejected() -> None:
    with pytest.raises(NoteError, match="does not match the key, which gives c74f20a3"):
        parse_signer_key(PETER_SKEY.replace("c74f20a3", "c74f20a4"))


def test_generated_keys_round_trip_through_their_text() -> None:
    for algorithm in (ALG_ED25519, ALG_COSIGNATURE_V1):
        signer = generate_signer("example.com/log", algorithm)
        assert parse_signer_key(signer.text) == signer
        assert parse_verifier_key(signer.verifier.text) == signer.verifier
        assert signer.verifier.algorithm == algorithm


def test_a_cosignature_signer_key_is_written_with_type_4() -> None:
    signer = witness_signer()
    assert base64.b64decode(signer.text.split("+", 4)[4])[0] == ALG_COSIGNATURE_V1
    assert signer.verifier.text.split("+", 2)[2].startswith("B")  # base64 of a leading 0x04 byte


def test_the_private_key_stays_out_of_repr() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert signer.private_key.hex() not in repr(signer)
    assert "PeterNeumann" in repr(signer)


def test_verifier_rejects_a_key_id_that_is_not_its_key() -> None:
    with pytest.raises(NoteError, match="does not match the key"):
        Verifier("PeterNeumann", bytes(4), peter().public_key)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_keys_are_32_bytes(size: int) -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        Signer("a", bytes(size))
    with pytest.raises(NoteError, match="32 bytes"):
        Verifier.from_public_key("a", bytes(size))


def test_unsupported_signature_types_are_refused() -> None:
    with pytest.raises(NoteError, match="0x02"):
        Signer("a", bytes(32), 0x02)


# --- signing and parsing notes -----------------------------------------------------------------------------


def test_signing_reproduces_the_x_mod_signed_note_byte_for_byte() -> None:
    note = sign_note(TEXT, [parse_signer_key(PETER_SKEY)])
    assert note.format() == TEXT + "\n" + PETER_SIG


def test_the_x_mod_note_parses_into_text_and_signature() -> None:
    note = parse_note(TEXT + "\n" + PETER_SIG)
    assert note.text == TEXT
    assert note.signatures == (
        Signature("PeterNeumann", bytes.fromhex("c74f20a3"), base64.b64decode(PETER_SIG.split()[2])[4:]),
    )
    assert note.signatures[0].line == PETER_SIG


def test_parse_accepts_bytes() -> None:
    assert parse_note((TEXT + "\n" + PETER_SIG).encode()).text == TEXT


def test_one_known_signature_verifies_and_the_unknown_one_is_ignored() -> None:
    note = parse_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert verified_by(note, [peter()]) == [peter()]


def test_both_signatures_verify_when_both_keys_are_known() -> None:
    note = parse_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert verified_by(note, [peter(), enoch()]) == [peter(), enoch()]


def test_a_note_with_no_known_signature_verifies_nothing_and_open_refuses_it() -> None:
    message = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verified_by(parse_note(message), []) == []
    with pytest.raises(NoteError, match="no valid signature by a known key"):
        open_note(message, [parse_verifier_key(SPEC_VKEY)])


def test_a_key_sharing_only_the_name_or_only_the_id_is_not_the_signer() -> None:
    """signed-note: ignore signatures from unknown keys even if they share a name or an ID with a known key."""
    renamed = PETER_SIG.replace("PeterNeumann", "PeterNeuman")
    assert verified_by(parse_note(TEXT + "\n" + renamed), [peter()]) == []
    other_id = "— PeterNeumann " + base64.b64encode(b"\xc7\x4f\x20\xa4" + bytes(64)).decode() + "\n"
    assert verified_by(parse_note(TEXT + "\n" + other_id), [peter()]) == []


def test_a_bad_signature_by_a_known_key_rejects_the_note() -> None:
    """x/mod TestOpen "Invalid signature": ABCD inserted into Peter's signature."""
    message = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        verified_by(parse_note(message), [peter()])


def test_a_bad_signature_by_an_unknown_key_is_ignored() -> None:
    message = TEXT + "\n" + PETER_SIG + ENOCH_SIG + ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    assert verified_by(parse_note(message), [peter()]) == [peter()]


def test_repeated_signatures_count_once() -> None:
    note = parse_note(TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG)
    assert verified_by(note, [peter(), enoch(), peter()]) == [peter(), enoch()]


def test_changing_one_byte_of_the_text_breaks_the_signature() -> None:
    message = TEXT.replace("problem,", "problem;") + "\n" + PETER_SIG
    with pytest.raises(NoteError, match="invalid signature"):
        verified_by(parse_note(message), [peter()])


def test_the_signed_note_spec_example_verifies() -> None:
    note, found = open_note(SPEC_NOTE, [parse_verifier_key(SPEC_VKEY)])
    assert note.text == "This is an example message.\n"
    assert [v.name for v in found] == ["example.com/foo"]
    assert note.format() == SPEC_NOTE


def test_the_quasimodo_note_text_keeps_its_empty_line() -> None:
    """The text is separated from the signatures by the LAST empty line."""
    note = parse_note(QUASIMODO_NOTE)
    assert note.text == "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    assert note.signatures[0].name == "quasimodo.example/salvatore"
    assert note.signatures[0].key_id == bytes.fromhex("367ba04b")
    assert note.format() == QUASIMODO_NOTE
    assert verified_by(note, [peter()]) == []


def test_the_sum_golang_org_checkpoint_verifies() -> None:
    note, found = open_note(SUMDB_NOTE, [parse_verifier_key(SUMDB_VKEY)])
    assert found[0].name == "sum.golang.org"
    assert note.text.startswith("go.sum database tree\n6476701\n")


def test_signing_keeps_a_text_that_ends_with_an_empty_line() -> None:
    """formats TestVKeyToCosignatureV1 signs "Note\\n\\n"; the last blank line still separates."""
    signer = parse_signer_key(PETER_SKEY)
    note = sign_note("Note\n\n", [signer])
    assert parse_note(note.format()).text == "Note\n\n"
    assert verified_by(parse_note(note.format()), [signer.verifier]) == [signer.verifier]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (TEXT, "no blank line"),
        (TEXT + "\n", "no signature lines"),
        (TEXT + "\n" + PETER_SIG[:-1], "does not end with a newline"),
        ("\x01" + TEXT + "\n" + PETER_SIG, "control character U\\+0001"),
        (TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG, "CRLF"),
        (TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n", "not valid base64"),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n", "line 2: does not start with an em dash"),
        (TEXT + "\n" + PETER_SIG.replace("—", "-"), "does not start with an em dash"),
        (TEXT + "\n" + PETER_SIG.replace("— ", "—"), "does not start with an em dash"),
        (TEXT + "\n" + "— PeterNeumann\n", "no signature after the key name"),
        (TEXT + "\n" + "— PeterNeumann x08go/Z\n", "not valid base64"),
        (TEXT + "\n" + "— PeterNeumann x08goA==\n", "too short"),
        (TEXT + "\n" + "— Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n", "contains '\\+'"),
        (TEXT + "\n" + PETER_SIG.replace("AM=", "AN="), "not canonical base64"),
        (TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), "too many signatures: 101"),
    ],
    ids=[
        "no-blank-line", "no-signatures", "no-final-newline", "control-char", "crlf", "space-in-name",
        "unexpected-line", "hyphen-not-em-dash", "no-space-after-dash", "no-signature", "bad-base64",
        "too-short", "plus-in-name", "non-canonical-base64", "too-many",
    ],
)  # fmt: skip
def test_malformed_notes_are_rejected_with_the_reason(message: str, error: str) -> None:
    """The first seven are x/mod TestOpen's badMsgs (and its 101-signature case, last)."""
    with pytest.raises(NoteError, match=error):
        parse_note(message)


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(NoteError, match="not valid UTF-8 \\(byte 0\\)"):
        parse_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode())


def test_sixteen_and_a_hundred_signatures_are_accepted() -> None:
    """signed-note: MUST accept at least 16; we accept x/mod's 100."""
    for count in (16, MAX_SIGNATURES):
        assert len(parse_note(TEXT + "\n" + PETER_SIG * count).signatures) == count


def test_sign_note_needs_a_text_ending_in_newline_and_a_signer() -> None:
    signer = parse_signer_key(PETER_SKEY)
    with pytest.raises(NoteError, match="must end with a newline"):
        sign_note("abc", [signer])
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note(TEXT, [])
    with pytest.raises(NoteError, match="control character"):
        sign_note("a\tb\n", [signer])


def test_a_note_without_signatures_cannot_be_written_out() -> None:
    with pytest.raises(NoteError, match="at least one signature"):
        Note(TEXT).format()


def test_witness_answer_lines_parse_as_signatures() -> None:
    """tlog-witness example response body: three cosignature lines."""
    body = (
        "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"
        "— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n"
        "— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n"
    )
    signatures = parse_signature_lines(body.encode())
    assert [s.name for s in signatures] == ["witness.example/w1", "witness.example/w1", "witness.example/w2"]
    assert all(len(s.signature) == 72 for s in signatures)
    assert "".join(s.line for s in signatures) == body


# --- cosignature/v1 ----------------------------------------------------------------------------------------


def test_the_cosigned_message_is_the_specs_example() -> None:
    assert cosignature_message(SOFA_BODY, 1679315147) == SOFA_MESSAGE.encode()


def test_the_specs_cosignature_line_carries_key_id_and_timestamp() -> None:
    (signature,) = parse_signature_lines(SOFA_COSIG_LINE)
    assert signature.name == "witness.example.com/w1"
    assert signature.key_id == bytes.fromhex("8d66cf3f")
    assert cosignature_timestamp(signature) == 1679315147  # the time of the spec's signed-message example


def test_cosignature_timestamp_of_the_formats_vector() -> None:
    raw = base64.b64decode(COSIG_1727964367)
    assert cosignature_timestamp(Signature("w", raw[:4], raw[4:])) == 1727964367
    plain = base64.b64decode(NOT_A_COSIG)
    with pytest.raises(NoteError, match="not the 72 of a cosignature/v1"):
        cosignature_timestamp(Signature("w", plain[:4], plain[4:]))


def test_real_witness_cosignatures_on_a_real_checkpoint_verify() -> None:
    note = parse_note(ARCHE_NOTE)
    log = parse_verifier_key(ARCHE_VKEY)
    witnesses = [parse_verifier_key(k) for k in WITNESS_VKEYS]
    assert verified_by(note, [log]) == [log]  # the other log line is a type 0x05 signature: ignored
    assert {w.name for w in verified_by(note, witnesses)} == {w.name for w in witnesses}
    for witness in witnesses:
        (signature,) = (s for s in note.signatures if s.name == witness.name)
        assert verify_cosignature(note.text, signature, witness) == 0x6A122120


def test_a_real_cosignature_fails_on_a_changed_checkpoint() -> None:
    note = parse_note(ARCHE_NOTE)
    remora = parse_verifier_key(REMORA_VKEY)
    (signature,) = (s for s in note.signatures if s.name == remora.name)
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(note.text.replace("1432088532", "1432088533"), signature, remora)
    with pytest.raises(NoteError, match=re.escape("invalid signature for key remora.n621.de+da77ade7")):
        verified_by(parse_note(ARCHE_NOTE.replace("1432088532", "42")), [remora])


def test_cosign_then_verify_returns_the_timestamp() -> None:
    signer = witness_signer()
    signature = cosign(SOFA_BODY, signer, 1679315147)
    assert signature.key_id == signer.verifier.key_id
    assert signature.signature[:8] == (1679315147).to_bytes(8, "big")
    assert verify_cosignature(SOFA_BODY, signature, signer.verifier) == 1679315147


def test_a_cosignature_verifies_as_a_note_signature_too() -> None:
    log = parse_signer_key(PETER_SKEY)
    signer = witness_signer()
    signed = sign_note(SOFA_BODY, [log])
    note = Note(signed.text, (*signed.signatures, cosign(SOFA_BODY, signer, 1700000000)))
    assert verified_by(parse_note(note.format()), [log.verifier, signer.verifier]) == [log.verifier, signer.verifier]


def test_the_cosignature_covers_extension_lines() -> None:
    signer = witness_signer()
    body = SOFA_BODY + "Extendo\n"
    signature = cosign(body, signer, 5)
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(SOFA_BODY + "Extendx\n", signature, signer.verifier)


def test_changing_the_timestamp_breaks_the_cosignature() -> None:
    signer = witness_signer()
    signature = cosign(SOFA_BODY, signer, 1700000000)
    moved = Signature(signature.name, signature.key_id, (1700000001).to_bytes(8, "big") + signature.signature[8:])
    with pytest.raises(NoteError, match="at time 1700000001 does not verify"):
        verify_cosignature(SOFA_BODY, moved, signer.verifier)


def test_changing_one_byte_of_the_body_breaks_the_cosignature() -> None:
    signer = witness_signer()
    signature = cosign(SOFA_BODY, signer, 1700000000)
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(SOFA_BODY.replace("20852163", "20852164"), signature, signer.verifier)


def test_a_cosignature_by_another_witness_is_refused() -> None:
    signature = cosign(SOFA_BODY, witness_signer("w1"), 1)
    with pytest.raises(NoteError, match="not by w2"):
        verify_cosignature(SOFA_BODY, signature, witness_signer("w2").verifier)


def test_only_cosignature_keys_cosign_and_only_they_verify_cosignatures() -> None:
    plain = parse_signer_key(PETER_SKEY)
    with pytest.raises(NoteError, match="not a cosignature/v1"):
        cosign(SOFA_BODY, plain, 1)
    signature = cosign(SOFA_BODY, witness_signer(), 1)
    with pytest.raises(NoteError, match="not a cosignature/v1"):
        verify_cosignature(SOFA_BODY, signature, plain.verifier)


def test_a_cosignature_key_does_not_make_plain_signatures() -> None:
    signer = witness_signer()
    with pytest.raises(NoteError, match="cosign\\(text, signer, timestamp\\)"):
        signer.sign(b"text\n")
    with pytest.raises(NoteError, match="cosign"):
        sign_note(SOFA_BODY, [signer])


@pytest.mark.parametrize("timestamp", [-1, 2**63])
def test_cosignature_timestamps_stay_within_63_bits(timestamp: int) -> None:
    with pytest.raises(NoteError, match=re.escape("outside 0..2^63-1")):
        cosign(SOFA_BODY, witness_signer(), timestamp)


@pytest.mark.parametrize("body", ["example.com/log\n5\n", "example.com/log\n\nroot\n", "no newline"])
def test_cosign_needs_a_checkpoint_body(body: str) -> None:
    with pytest.raises(NoteError, match="cosign"):
        cosign(body, witness_signer(), 1)


def test_a_truncated_cosignature_does_not_verify() -> None:
    signer = witness_signer()
    signature = cosign(SOFA_BODY, signer, 1)
    short = Signature(signature.name, signature.key_id, signature.signature[:-1])
    with pytest.raises(NoteError, match="71 bytes"):
        verify_cosignature(SOFA_BODY, short, signer.verifier)
    assert not signer.verifier.verify(SOFA_BODY.encode(), short.signature)
