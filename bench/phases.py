"""Where a benchmark's time goes: wall time spent in chosen functions of the code under test."""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from types import ModuleType
from typing import Any


class Phases:
    """Wall time spent in chosen functions of the code under test, by wrapping them for the
    duration of a stage (only functions called a few times per batch: the wrappers cost nothing
    measurable). Calls are counted too."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.samples: dict[str, list[float]] = defaultdict(list)
        self._restore: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: ModuleType | type, name: str, label: str) -> None:
        original = owner.__dict__[name]

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - started)

        setattr(owner, name, timed)
        self._restore.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1
        self.samples[label].append(seconds)

    def __str__(self) -> str:
        return ", ".join(f"{label} {seconds:.2f} s" for label, seconds in self.seconds.items())
