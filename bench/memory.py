"""Memory figures of a benchmark on Linux: this process's peak RSS since a reset, and its
children's (worker processes') proportional set size, sampled in a thread."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import threading
from pathlib import Path


def reset_peak_rss() -> float:
    """Hand freed memory back to the system (glibc ``malloc_trim``), start a new high-water mark
    of this process's RSS (Linux: clear_refs 5), and return the RSS now, MiB: what a stage
    starts with, still held from earlier stages."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS:") or 0.0


def peak_rss_mib() -> float:
    """This process's peak RSS since the last ``reset_peak_rss``, MiB."""
    return _status_mib("VmHWM:") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(key: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return None


class ChildrenRss:
    """Samples the memory of this process's children (the rendering workers) in a thread: their
    PSS (proportional set size), so pages a forked worker still shares with its parent are
    counted once, not in every process."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.peak_one = 0.0  # MiB, the largest single child
        self.peak_sum = 0.0  # MiB, all children together
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildrenRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            sizes = [pss for pid in _children() if (pss := _pss_mib(pid)) is not None]
            if sizes:
                self.peak_one = max(self.peak_one, *sizes)
                self.peak_sum = max(self.peak_sum, sum(sizes))


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.extend(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def _pss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
