"""A log whose key is named otherwise than its origin (a rotated key) verifies when the verifier
is told the origin, and only then."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.integration.ledger.support import append_synthetic, factory_on
from zhkh.ledger import publication
from zhkh.ledger.note import generate_signer
from zhkh.ledger.publisher import Publisher
from zhkh.ledger.verify import VerificationFailed, directory_fetcher, verify_log


def test_the_origin_can_be_given_when_it_is_not_the_key_name(session: Session, tmp_path: Path) -> None:
    key = generate_signer("ledger-key-2027")
    append_synthetic(session, 300)
    published = Publisher(key, "zhkh.test/ledger", interval=0).publish_if_due(factory_on(session))
    assert published is not None
    assert published.published
    publication.export(session, tmp_path)

    with pytest.raises(
        VerificationFailed, match=re.escape("the checkpoint is of log 'zhkh.test/ledger', not of 'ledger-key-2027'")
    ):
        verify_log(directory_fetcher(tmp_path), key.verifier)
    verified = verify_log(directory_fetcher(tmp_path), key.verifier, origin="zhkh.test/ledger")
    assert (verified.checkpoint.origin, verified.checkpoint.size) == ("zhkh.test/ledger", 300)
    with pytest.raises(VerificationFailed, match=re.escape("not of 'zhkh.test/other'")):
        verify_log(directory_fetcher(tmp_path), key.verifier, origin="zhkh.test/other")
