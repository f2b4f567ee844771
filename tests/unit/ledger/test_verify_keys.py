"""The witness keys a verifier is given: cosignature keys, each counted once."""

from __future__ import annotations

import pytest

from zhkh.core.errors import InvalidInput
from zhkh.ledger.note import ALG_COSIGNATURE_V1, Verifier, generate_signer
from zhkh.ledger.verify import check_witness_keys


def test_one_witness_key_under_two_names_is_refused_for_verification() -> None:
    witness = generate_signer("w1", ALG_COSIGNATURE_V1).verifier
    check_witness_keys([witness, witness])  # the same key twice counts once
    alias = Verifier.from_public_key("w2", witness.public_key, ALG_COSIGNATURE_V1)
    with pytest.raises(InvalidInput, match="share one public key"):
        check_witness_keys([witness, alias])
