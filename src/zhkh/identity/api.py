"""FastAPI dependencies that guard endpoints with token scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Header

from zhkh.core.api import SessionDep
from zhkh.identity.errors import InvalidToken
from zhkh.identity.models import ApiToken
from zhkh.identity.service import authenticate


def require_scope(scope: str) -> Callable[..., ApiToken]:
    """A dependency: the request must carry ``Authorization: Bearer <token>`` granting ``scope``."""

    def dependency(
        session: SessionDep,
        authorization: Annotated[str | None, Header()] = None,
    ) -> ApiToken:
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise InvalidToken("send the API token as 'Authorization: Bearer <token>'")
        return authenticate(session, secret.strip(), scope)

    return dependency


def resident_account(token: ApiToken) -> str:
    """The personal account number a resident token acts for."""
    kind, _, number = (token.subject or "").partition(":")
    if kind != "account" or not number:
        raise InvalidToken("this endpoint is for a resident's token, which belongs to one personal account")
    return number
