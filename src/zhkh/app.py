"""The HTTP service: API routers, error handlers and the health check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import zhkh
from zhkh.billing.api import router as billing_router
from zhkh.core.api import install_error_handlers
from zhkh.core.config import Settings, get_settings
from zhkh.core.db import session_factory as default_session_factory
from zhkh.core.runtime import settle_for_service
from zhkh.housing.api import router as housing_router
from zhkh.ledger.api import router as ledger_router
from zhkh.metering.api import router as metering_router
from zhkh.notify.api import router as notify_router
from zhkh.payments.api import router as payments_router


@asynccontextmanager
async def _settled(_app: FastAPI) -> AsyncIterator[None]:
    settle_for_service()
    yield


def create_service_app() -> FastAPI:
    """The app as ``zhkh serve`` runs it, in each worker process: settled for a long-running
    service once it has started (core.runtime). Tests use ``create_app``, whose objects must not
    be frozen: the permanent generation would keep their reference cycles (sessions,
    connections) for the rest of the test run."""
    app = create_app()
    app.router.lifespan_context = _settled
    return app


def create_app(session_factory: sessionmaker[Session] | None = None, settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="zhkh",
        version=zhkh.__version__,
        description="Housing and communal services platform: registry, billing, readings, payments, ledger. "
        "Send an API token as `Authorization: Bearer <token>` (create one with `zhkh token create`).",
    )
    app.state.settings = settings or get_settings()
    app.state.session_factory = session_factory or default_session_factory()
    install_error_handlers(app)
    app.include_router(housing_router)
    app.include_router(billing_router)
    app.include_router(metering_router)
    app.include_router(notify_router)
    app.include_router(payments_router)
    app.include_router(ledger_router)

    @app.get("/healthz", tags=["service"])
    def healthz() -> Any:
        """Liveness and database reachability; 503 when the database does not answer."""
        try:
            with app.state.session_factory() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return {"status": "ok", "database": "ok", "version": zhkh.__version__}

    return app
