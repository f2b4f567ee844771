"""The Python runtime under bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
