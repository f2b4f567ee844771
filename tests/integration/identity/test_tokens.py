from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.errors import InvalidInput
from zhkh.identity.errors import InvalidToken, MissingScope, TokenNameTaken, TokenNotFound, UnknownScope
from zhkh.identity.models import ApiToken
from zhkh.identity.service import authenticate, create_token, list_tokens, revoke_token


def test_token_is_stored_hashed_and_authenticates(session: Session) -> None:
    issued = create_token(session, "billing centre", ["housing:read"])
    assert issued.secret.startswith("zhkh_")
    stored = session.scalar(select(ApiToken))
    assert stored is not None
    assert issued.secret not in (stored.secret_hash, stored.prefix, stored.name)
    assert len(stored.secret_hash) == 64
    assert authenticate(session, issued.secret, "housing:read").name == "billing centre"


def test_unknown_and_revoked_tokens_are_refused(session: Session) -> None:
    issued = create_token(session, "gateway", ["housing:read"])
    with pytest.raises(InvalidToken):
        authenticate(session, issued.secret + "x", "housing:read")
    revoke_token(session, "gateway")
    with pytest.raises(InvalidToken, match="unknown or revoked"):
        authenticate(session, issued.secret, "housing:read")
    assert list_tokens(session)[0].revoked_at is not None


def test_scope_is_required_and_admin_grants_everything(session: Session) -> None:
    reader = create_token(session, "reader", ["housing:read"])
    admin = create_token(session, "root", ["admin"])
    with pytest.raises(MissingScope, match="lacks the scope 'readings:write'"):
        authenticate(session, reader.secret, "readings:write")
    assert authenticate(session, admin.secret, "readings:write").name == "root"


def test_bad_token_requests(session: Session) -> None:
    with pytest.raises(UnknownScope, match="unknown scope"):
        create_token(session, "x", ["housing:write-everything"])
    with pytest.raises(UnknownScope, match="at least one scope"):
        create_token(session, "x", [])
    with pytest.raises(InvalidInput, match="needs a name"):
        create_token(session, "  ", ["housing:read"])
    create_token(session, "twice", ["housing:read"])
    with pytest.raises(TokenNameTaken):
        create_token(session, "twice", ["housing:read"])
    with pytest.raises(TokenNotFound):
        revoke_token(session, "never made")
