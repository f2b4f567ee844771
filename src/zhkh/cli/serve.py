"""``zhkh serve``: the HTTP API."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    workers: int = typer.Option(1, help="worker processes"),
) -> None:
    """Serve the API (OpenAPI docs at /docs, health at /healthz)."""
    import uvicorn

    uvicorn.run("zhkh.app:create_service_app", factory=True, host=host, port=port, workers=workers, log_level="info")
