"""The Python runtime under bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import configure_mappers


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector for a bulk operation (as ``with`` or as a
    decorator).

    A bulk import holds millions of live objects (a parsed statement of 100,000 documents, the
    debts of 100,000 accounts) and allocates millions more, none of which form reference cycles.
    The collector starts a pass every 700 allocations and now and then traverses everything alive:
    a tenth of importing a bank statement went to it, and loading the debts of its payments took
    2.6 times as long. Objects without cycles are still freed at once by reference counting;
    cycles made meanwhile wait for the first pass after it. The collector is process-wide:
    nested or concurrent pauses leave it running once the outermost that paused it is over.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def settle_for_service() -> None:
    """Once a long-running service (an API worker, the MQTT consumer) has started, move what
    start-up made (modules, the ORM's mappers, the API's models: several hundred thousand
    objects) into the collector's permanent generation, which no pass traverses again.

    Each batch of readings keeps tens of thousands of objects alive for a few milliseconds, long
    enough to be promoted to the oldest generation, and every so often that triggers a pass over
    everything alive: without this, an API worker spent a third of its time in the collector
    (HTTP readings 38,000-44,000/s, with it 47,000-55,000/s; docs/benchmarks.md). Frozen objects
    are still freed by reference counting; only a cycle among them would outlive its use.
    """
    configure_mappers()  # at start-up, not at the first request, so its objects are frozen too
    gc.collect()
    gc.freeze()
