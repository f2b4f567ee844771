"""What every router shares: the request's database session, error handlers, pagination."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from http import HTTPStatus
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Row
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhkh.core.db import AnySelect
from zhkh.core.errors import DomainError, InvalidInput

T = TypeVar("T")
log = logging.getLogger("zhkh.api")


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the endpoint returns, rolled back on error."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit happens before the response is sent. With FastAPI's default
# ("request") it would run after: a client could act on a 201 before its write was visible,
# and a failed commit would never reach the client that was told it succeeded.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` put in place of their references, for an
    endpoint that reads its body itself and documents it with ``openapi_extra``."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


async def domain_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method) in the same shape as ours."""
    assert isinstance(exc, StarletteHTTPException)
    code = (
        HTTPStatus(exc.status_code).phrase.replace(" ", "")
        if exc.status_code in HTTPStatus._value2member_map_
        else "HTTPError"
    )
    return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def unexpected_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A bug, not bad input: logged with its traceback, answered without it."""
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        {"error": "InternalError", "detail": "an unexpected error happened; it was logged"}, status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated listing; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None


class PageRequest:
    """``?limit=&cursor=`` for listings ordered by an internal, increasing id. Keyset pagination
    stays fast at any depth, unlike OFFSET over a million accounts."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, description="items per page")] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> None:
        maximum: int = request.app.state.settings.api_page_limit_max
        if limit > maximum:
            raise InvalidInput(f"limit must be at most {maximum}, got {limit}")
        self.limit = limit
        self.after_id = decode_cursor(cursor) if cursor else 0

    def fetch(
        self, session: Session, statement: AnySelect, id_column: InstrumentedAttribute[int]
    ) -> tuple[list[Row[Any]], str | None]:
        """This page's rows of ``statement`` (which must select ``id_column``) and the cursor of
        the next page, or None on the last one."""
        rows = session.execute(
            statement.where(id_column > self.after_id).order_by(id_column).limit(self.limit + 1)
        ).all()
        if len(rows) <= self.limit:
            return list(rows), None
        page = list(rows[: self.limit])
        return page, encode_cursor(page[-1]._mapping[id_column])


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cursor {cursor!r} is not one this API handed out") from exc
    if not 0 <= value < 2**63:
        raise InvalidInput(f"cursor {cursor!r} is not one this API handed out")
    return value
