"""`zhkh ledger` as an operator and a resident use it, on a committed database of each engine with
a log cosigned by three witnesses: keygen, info, export, verify (twice, with the trusted state),
proof and verify-proof; and the refusals (a key never overwritten, bad keys, tampered files)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration.cli.test_cli import cli
from tests.integration.ledger.support import NUMBERS, Witnesses, publish_town, threaded_witnesses
from zhkh.core import config
from zhkh.ledger.bundle import parse_bundle
from zhkh.ledger.checkpoint import parse_checkpoint
from zhkh.ledger.note import ALG_COSIGNATURE_V1, ALG_ED25519, parse_note, parse_signer_key, parse_verifier_key

Capture = pytest.CaptureFixture[str]


def test_keygen_writes_a_private_key_once_and_prints_its_verifier_key(capsys: Capture, tmp_path: Path) -> None:
    target = tmp_path / "keys" / "log.key"
    code, out, err = cli(capsys, "ledger", "keygen", "zhkh.test/cli-log", "--out", str(target))
    assert (code, err) == (0, "")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    signer = parse_signer_key(target.read_text().strip())
    printed = parse_verifier_key(out.strip().splitlines()[-1])
    assert printed == signer.verifier
    assert (printed.name, printed.algorithm) == ("zhkh.test/cli-log", ALG_ED25519)

    kept = target.read_text()
    code, _out, err = cli(capsys, "ledger", "keygen", "zhkh.test/cli-log", "--out", str(target))
    assert code == 1
    assert "exists already" in err
    assert target.read_text() == kept

    witness_key = tmp_path / "witness.key"
    code, out, _err = cli(capsys, "ledger", "keygen", "witness.test/w9", "--witness", "--out", str(witness_key))
    assert code == 0
    printed = parse_verifier_key(out.strip().splitlines()[-1])
    assert (printed.name, printed.algorithm) == ("witness.test/w9", ALG_COSIGNATURE_V1)
    assert parse_signer_key(witness_key.read_text().strip()).verifier == printed


def test_keygen_defaults_to_var_ledger(capsys: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "ledger", "keygen", "zhkh.test/cli-log")[0] == 0
    (written,) = (tmp_path / "var" / "ledger").iterdir()
    assert parse_signer_key(written.read_text().strip()).name == "zhkh.test/cli-log"
    assert "/" not in written.name


@pytest.fixture(scope="module")
def witnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnesses]:
    with threaded_witnesses(tmp_path_factory.mktemp("cli-witnesses"), log_keys=12) as started:
        yield started


class Town:
    def __init__(self, witnesses: Witnesses, key_file: Path, size: int) -> None:
        self.witnesses = witnesses
        self.log = parse_signer_key(key_file.read_text().strip())
        self.size = size

    def keys(self, quorum: int = 2) -> list[str]:
        options = ["--log-key", self.log.verifier.text]
        for verifier in self.witnesses.verifiers:
            options += ["--witness", verifier.text]
        return [*options, "--quorum", str(quorum)]


@pytest.fixture
def town(
    scratch_database: str, tmp_path: Path, witnesses: Witnesses, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Town]:
    """The published town on the scratch database; the settings name its key and witnesses."""
    log = witnesses.fresh_log()
    key_file = tmp_path / "log.key"
    key_file.write_text(log.text + "\n")
    size = publish_town(scratch_database, tmp_path, witnesses, log)
    monkeypatch.setenv("ZHKH_LEDGER_KEY_FILE", str(key_file))
    monkeypatch.setenv("ZHKH_LEDGER_ORIGIN", log.name)
    endpoints = [{"url": p.url, "key": p.verifier.text} for p in witnesses.processes]
    monkeypatch.setenv("ZHKH_LEDGER_WITNESSES", json.dumps(endpoints))
    monkeypatch.setenv("ZHKH_LEDGER_QUORUM", "2")
    config.get_settings.cache_clear()
    yield Town(witnesses, key_file, size)
    config.get_settings.cache_clear()


def test_info_export_and_verify_twice(capsys: Capture, tmp_path: Path, town: Town) -> None:
    code, out, err = cli(capsys, "ledger", "info")
    assert (code, err) == (0, "")
    assert town.log.name in out
    assert f"{town.size} entries, cosigned by 3" in out
    assert f"verifier key  {town.log.verifier.text}\n" in out, "whole, on its line, to be copied"
    for process in town.witnesses.processes:
        assert f"witness       {process.verifier.text} at {process.url}\n" in out
    assert "2 of 3" in out

    exported = tmp_path / "export"
    code, out, err = cli(capsys, "ledger", "export", str(exported))
    assert (code, err) == (0, "")
    note = parse_note((exported / "checkpoint").read_text())
    assert parse_checkpoint(note.text).size == town.size == 11  # three accounts' three entries, two payments
    assert (exported / "tile" / "0" / "000.p" / "11").is_file()
    assert (exported / "tile" / "entries" / "000.p" / "11").is_file()

    state = tmp_path / "trust" / "state"
    code, out, err = cli(capsys, "ledger", "verify", "--url", str(exported), *town.keys(), "--state", str(state))
    assert (code, err) == (0, "")
    assert f"verified: {town.log.name}, 11 entries" in out
    assert "extends" not in out
    assert parse_note(state.read_text()).text == note.text, "the verified checkpoint is trusted from now on"

    code, out, _err = cli(capsys, "ledger", "verify", "--url", str(exported), *town.keys(3), "--state", str(state))
    assert code == 0
    assert "extends the trusted 11" in out

    entries = exported / "tile" / "entries" / "000.p" / "11"
    entries.write_bytes(entries.read_bytes().replace(b'"kopecks":12000', b'"kopecks":12001'))
    code, out, err = cli(capsys, "ledger", "verify", "--url", str(exported), *town.keys(), "--state", str(state))
    assert code == 1
    assert "hash tile tile/0/000.p/11 does not match" in err
    assert parse_note(state.read_text()).text == note.text


def test_proof_files_verify_offline_and_a_tampered_one_does_not(capsys: Capture, tmp_path: Path, town: Town) -> None:
    out_dir = tmp_path / "proofs"
    code, out, err = cli(
        capsys, "ledger", "proof", "--account", NUMBERS[0], "--period", "2026-04", "--out", str(out_dir)
    )
    assert (code, err) == (0, "")
    files = sorted(out_dir.glob("*.tlog-proof"))
    assert len(files) == 4  # accrual, benefit, recalculation, the payment
    assert all(name.name.startswith(f"{NUMBERS[0]}-2026-04-") for name in files)
    kinds = []
    for file in files:
        code, out, err = cli(capsys, "ledger", "verify-proof", str(file), *town.keys())
        assert (code, err) == (0, "")
        assert f"of account {NUMBERS[0]}" in out
        kinds.append(out.split("verified: ")[1].split()[0])
    assert sorted(kinds) == ["accrual", "benefit", "payment", "recalculation"]
    code, out, err = cli(capsys, "ledger", "verify-proof", str(files[0]), "--log-key", town.log.verifier.text)
    assert code == 0, "the operator's signature alone verifies"
    assert err.startswith("warning: no witness cosignature was required"), err

    bundle = parse_bundle(files[0].read_text())
    assert bundle.extra is not None
    extra = json.loads(bundle.extra)
    extra["account"] = NUMBERS[1]
    tampered = tmp_path / "tampered.tlog-proof"
    tampered.write_text(replace(bundle, extra=json.dumps(extra).encode()).format())
    code, out, err = cli(capsys, "ledger", "verify-proof", str(tampered), *town.keys())
    assert code == 1
    assert f"is not about account {NUMBERS[1]}" in err

    lines = files[0].read_text().splitlines(keepends=True)
    lines[3] = ("A" if lines[3][0] != "A" else "B") + lines[3][1:]  # the first inclusion proof hash
    tampered.write_text("".join(lines))
    code, out, err = cli(capsys, "ledger", "verify-proof", str(tampered), *town.keys())
    assert code == 1
    assert "the proof does not verify" in err

    code, _out, err = cli(capsys, "ledger", "proof", "--account", "0000000000", "--period", "2026-04")
    assert (code, "no account 0000000000" in err) == (1, True)
    code, _out, err = cli(capsys, "ledger", "proof", "--account", NUMBERS[2], "--period", "2026-03")
    assert code == 1
    assert "no entries" in err


def test_bad_keys_are_one_clear_error(capsys: Capture, tmp_path: Path, town: Town) -> None:
    exported = tmp_path / "export"
    assert cli(capsys, "ledger", "export", str(exported))[0] == 0
    state = ["--state", str(tmp_path / "state")]
    code, _out, err = cli(capsys, "ledger", "verify", "--url", str(exported), "--log-key", "nonsense", *state)
    assert code == 1
    assert "--log-key 'nonsense': not a verifier key" in err
    assert len(err.strip().splitlines()) == 1

    code, _out, err = cli(
        capsys, "ledger", "verify", "--url", str(exported), "--log-key", town.log.verifier.text,
        "--witness", town.log.verifier.text, "--quorum", "1", *state,
    )  # fmt: skip
    assert code == 1
    assert "not a cosignature/v1" in err
    assert not (tmp_path / "state").exists(), "nothing trusted after a refusal"

    stranger = town.witnesses.fresh_log()  # a valid key, not this log's
    code, _out, err = cli(
        capsys, "ledger", "verify", "--url", str(exported), "--log-key", stranger.verifier.text, *state
    )
    assert code == 1
    assert f"the checkpoint is not signed by the log key {stranger.name}" in err

    proof_dir = tmp_path / "proofs"
    assert (
        cli(capsys, "ledger", "proof", "--account", NUMBERS[1], "--period", "2026-04", "--out", str(proof_dir))[0] == 0
    )
    proof = next(proof_dir.glob("*.tlog-proof"))
    code, _out, err = cli(capsys, "ledger", "verify-proof", str(proof), "--log-key", "x+y+z")
    assert code == 1
    assert "--log-key 'x+y+z': not a verifier key" in err
    code, _out, err = cli(capsys, "ledger", "verify-proof", str(tmp_path / "missing.tlog-proof"), *town.keys())
    assert code == 1
    assert "cannot read it" in err


@pytest.mark.usefixtures("scratch_database")
def test_a_log_with_nothing_published(capsys: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHKH_LEDGER_KEY_FILE", str(tmp_path / "none.key"))
    monkeypatch.setenv("ZHKH_LEDGER_ORIGIN", "zhkh.test/empty")
    config.get_settings.cache_clear()
    code, out, err = cli(capsys, "ledger", "info")
    assert (code, err) == (0, "")
    assert "published     nothing yet" in out
    assert "no key: run zhkh ledger keygen zhkh.test/empty" in out
    code, _out, err = cli(capsys, "ledger", "export", str(tmp_path / "export"))
    assert code == 1
    assert "published no checkpoint yet" in err
    code, _out, err = cli(capsys, "ledger", "proof", "--account", NUMBERS[0], "--period", "2026-04")
    assert code == 1
    config.get_settings.cache_clear()
