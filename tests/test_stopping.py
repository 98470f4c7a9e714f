"""Stopping: the first stop lets work under way finish and starts nothing; work that has cost
nothing yet is dropped when its engine says so; the caller's cancellation always wins."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.engines.base import Engine
from batchscribe.errors import Stopped
from batchscribe.report import Reporter
from batchscribe.run.pipeline import run
from batchscribe.run.stopping import Stop
from tests.fakes import FakeEngine, journal_states
from tests.kit import speech


async def test_droppable_work_is_cancelled_by_a_stop() -> None:
    stop, cancelled = Stop(), asyncio.Event()

    async def upload() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "uploaded"

    waiting = asyncio.create_task(stop.unless_stopped(upload(), droppable=lambda: True))
    await asyncio.sleep(0.01)
    assert stop.request() and not stop.request()  # only the first counts

    with pytest.raises(Stopped):
        await waiting
    assert cancelled.is_set()


async def test_work_past_its_first_paid_step_runs_to_its_end() -> None:
    stop = Stop()

    async def create() -> str:
        await asyncio.sleep(0.05)
        return "created"

    waiting = asyncio.create_task(stop.unless_stopped(create(), droppable=lambda: False))
    await asyncio.sleep(0.01)
    stop.request()

    assert await waiting == "created"


async def test_a_stop_asked_before_the_work_ends_nothing_finished() -> None:
    stop = Stop()

    async def quick() -> int:
        return 7

    assert await stop.unless_stopped(quick(), droppable=lambda: True) == 7


async def test_cancelling_the_caller_cancels_the_work_and_is_not_a_stop() -> None:
    stop, cancelled = Stop(), asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cancelled.set()

    waiting = asyncio.create_task(stop.unless_stopped(slow(), droppable=lambda: False))
    await asyncio.sleep(0.01)
    waiting.cancel()

    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled.is_set()


def transcripts(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("*.txt"))


async def run_and_stop(root: Path, engine: FakeEngine, *, after: int) -> Reporter:
    """Run on `root` and ask a stop as the `after`-th file starts."""
    for i in range(6):
        (root / f"{i}.mp3").write_bytes(speech(f"take {i}"))
    settings = Settings(paths=(root,), engine="local", concurrency=2, poll_interval=0.01)
    reporter, stop = Reporter(stream=io.StringIO()), Stop()

    def factory(_: Settings) -> Engine:
        return engine

    def stop_at(_: object) -> None:
        if len(engine.started) == after:
            stop.request()

    engine.on_start = stop_at
    await run(settings, reporter, factory, stop=stop)
    return reporter


async def test_a_stop_lets_local_transcriptions_under_way_finish_and_starts_no_more(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(delay=0.2)

    reporter = await run_and_stop(tmp_path, engine, after=2)

    assert len(engine.started) == 2 and reporter.summary.done == 2
    assert transcripts(tmp_path) == ["0.txt", "1.txt"]
    assert set(journal_states(tmp_path).values()) == {"done"}
    assert reporter.summary.in_progress == 0


async def test_a_stop_drops_uploads_in_flight_and_pays_for_nothing(tmp_path: Path) -> None:
    engine = FakeEngine(submit=True, delay=0.5)

    reporter = await run_and_stop(tmp_path, engine, after=2)

    assert engine.submitted_ids == [] and reporter.summary.done == 0
    assert transcripts(tmp_path) == []
    assert set(journal_states(tmp_path).values()) == {"pending"}  # the next run does them
    assert reporter.summary.in_progress == 0 and not reporter.summary.failed


async def test_a_caller_cancelled_while_dropped_work_winds_down_stays_cancelled() -> None:
    stop = Stop()
    winding_down = asyncio.Event()

    async def upload() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            winding_down.set()
            await asyncio.sleep(0.05)  # cleanup that takes a moment
            raise

    waiting = asyncio.create_task(stop.unless_stopped(upload(), droppable=lambda: True))
    await asyncio.sleep(0.01)
    stop.request()
    await winding_down.wait()
    waiting.cancel()  # the grace time is over meanwhile: the run stops now

    with pytest.raises(asyncio.CancelledError):
        await waiting
