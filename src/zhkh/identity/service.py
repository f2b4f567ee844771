"""Creating, listing, revoking and checking API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.clock import utc_now
from zhkh.core.errors import InvalidInput
from zhkh.identity.errors import InvalidToken, MissingScope, TokenNameTaken, TokenNotFound, UnknownScope
from zhkh.identity.models import ApiToken
from zhkh.identity.scopes import ADMIN_SCOPE, RESIDENT_SCOPE, SCOPES

TOKEN_PREFIX = "zhkh_"  # noqa: S105 - a marker that makes leaked tokens easy to find, not a secret


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once; only its hash is kept


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: Sequence[str], subject: str | None = None) -> IssuedToken:
    """A new token. A ``resident`` token acts for one personal account only (``subject``
    "account:<number>") and carries no other scope."""
    name = name.strip()
    if not name:
        raise InvalidInput("a token needs a name")
    if not scopes:
        raise UnknownScope(f"a token needs at least one scope; known scopes: {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise UnknownScope(f"unknown scope(s) {', '.join(unknown)}; known scopes: {', '.join(SCOPES)}")
    if (RESIDENT_SCOPE in scopes) != (subject is not None):
        raise InvalidInput("a resident token needs its account (and only a resident token has one)")
    if RESIDENT_SCOPE in scopes and set(scopes) != {RESIDENT_SCOPE}:
        raise InvalidInput("a resident token carries the resident scope only")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise TokenNameTaken(f"a token named {name!r} already exists")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name, prefix=secret[:12], secret_hash=_hash(secret), scopes=sorted(set(scopes)), subject=subject
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, name: str) -> ApiToken:
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise TokenNotFound(f"no token named {name!r}")
    if token.revoked_at is None:
        token.revoked_at = utc_now()
        session.flush()
    return token


def authenticate(session: Session, secret: str, scope: str) -> ApiToken:
    """The live token for ``secret`` that grants ``scope``; ``InvalidToken`` (401) or
    ``MissingScope`` (403) otherwise."""
    token = session.scalar(select(ApiToken).where(ApiToken.secret_hash == _hash(secret)))
    if token is None or token.revoked_at is not None:
        raise InvalidToken("the API token is unknown or revoked")
    granted = scope in token.scopes or (ADMIN_SCOPE in token.scopes and scope != RESIDENT_SCOPE)
    if not granted:
        raise MissingScope(f"the token {token.name!r} lacks the scope {scope!r}")
    return token
