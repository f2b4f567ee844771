"""The public ledger: the checkpoint and tiles (C2SP tlog-tiles) under ``/ledger``, for anyone,
without a token. Full tiles never change and are served as immutable; the checkpoint and the
partial tiles at the right edge are fetched fresh."""

from __future__ import annotations

from fastapi import APIRouter, Response

from zhkh.core.api import SessionDep
from zhkh.ledger import publication

router = APIRouter(prefix="/ledger", tags=["ledger"])

IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "no-cache"


@router.get("/checkpoint", response_class=Response)
def checkpoint(session: SessionDep) -> Response:
    """The newest published checkpoint: a signed note with the log's signature and the
    witnesses' cosignatures."""
    note = publication.published_checkpoint(session)
    return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": FRESH})


@router.get("/tile/{path:path}", response_class=Response)
def tile(path: str, session: SessionDep) -> Response:
    """A hash tile (``tile/<L>/<N>[.p/<W>]``) or an entry bundle (``tile/entries/<N>[.p/<W>]``)."""
    data = publication.tile(session, f"tile/{path}")
    full = ".p/" not in path
    headers = {"Cache-Control": IMMUTABLE if full else FRESH}
    return Response(data, media_type="application/octet-stream", headers=headers)
