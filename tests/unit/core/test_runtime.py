"""The cyclic garbage collector paused for bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from zhkh.core.runtime import cycle_collector_paused


@pytest.fixture
def collector_running() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_running")
def test_the_collector_is_paused_inside_and_runs_again_after_even_on_an_error() -> None:
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cycle_collector_paused():
        raise RuntimeError("the bulk work failed")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_running")
def test_a_nested_pause_leaves_the_collector_to_the_outer_one() -> None:
    with cycle_collector_paused():
        with cycle_collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with cycle_collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


@pytest.mark.usefixtures("collector_running")
def test_no_collection_pass_runs_during_the_paused_work_and_passes_start_again_after() -> None:
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with cycle_collector_paused():
            held: list[list[int]] = [[] for _ in range(10_000)]  # 14 times the young generation's threshold
            during = len(passes)
        held += [[] for _ in range(10_000)]
        assert during == 0
        assert passes, "the collector did not run again after the pause"
    finally:
        gc.callbacks.remove(count)


def test_a_served_app_freezes_what_start_up_made_and_a_test_app_does_not() -> None:
    """``zhkh serve`` moves start-up's objects out of the collector's sight once a worker has
    started; the app tests build is left alone."""
    from fastapi.testclient import TestClient

    from zhkh.app import create_app, create_service_app

    gc.unfreeze()
    try:
        with TestClient(create_app()):
            assert gc.get_freeze_count() == 0
        with TestClient(create_service_app()):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
