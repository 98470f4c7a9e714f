"""The journal folders of a run: locked once, journal calls off the loop, writes that survive
a stop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from batchscribe.errors import LockHeld
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal_view import peek
from batchscribe.state.lock import RunLock
from batchscribe.state.state_dirs import StateDirs

FP = Fingerprint(1, 2)


async def test_a_folder_is_opened_once_and_its_run_is_recorded_on_close(tmp_path: Path) -> None:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    first = state_dirs[tmp_path]
    await state_dirs.open(tmp_path)  # a second root sharing the journal
    assert state_dirs[tmp_path] is first

    state_dirs.close("completed", {"done": 3})

    _, runs = peek(tmp_path)
    assert [(run.outcome, run.summary) for run in runs] == [("completed", {"done": 3})]
    with RunLock(tmp_path):  # released
        pass


async def test_opening_a_folder_locked_by_another_run_raises_lock_held(tmp_path: Path) -> None:
    state_dirs = StateDirs()
    with RunLock(tmp_path), pytest.raises(LockHeld):
        await state_dirs.open(tmp_path)
    state_dirs.close("stopped", {})


async def test_journal_calls_run_off_the_event_loop(tmp_path: Path) -> None:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    journal = state_dirs[tmp_path].journal
    threads: list[str] = []
    real_start = journal.sync.start

    def start(*args: object) -> None:
        threads.append(threading.current_thread().name)
        real_start(*args)  # type: ignore[arg-type]

    journal.sync.start = start  # type: ignore[method-assign]
    await journal.start("a.mp3", FP, "assemblyai", [], "o", "d")
    state_dirs.close("completed", {})

    assert threads and threads[0].startswith("batchscribe-journal")


async def test_a_queued_write_is_recorded_even_when_its_caller_is_cancelled(
    tmp_path: Path,
) -> None:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    journal = state_dirs[tmp_path].journal
    await journal.start("a.mp3", FP, "assemblyai", [], "o", "d")
    release = threading.Event()
    real_done = journal.sync.done

    def slow_done(key: str) -> None:
        release.wait(5)
        real_done(key)

    journal.sync.done = slow_done  # type: ignore[method-assign]
    await journal.start("b.mp3", FP, "assemblyai", [], "o", "d")
    busy = asyncio.create_task(journal.done("b.mp3"))  # holds the journal thread
    caller = asyncio.create_task(journal.uploaded("a.mp3", "https://cdn/u"))  # queued behind it
    await asyncio.sleep(0.05)
    caller.cancel()  # Ctrl-C right after the upload finished
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await busy
    state_dirs.close("interrupted", {})  # waits for the writes under way

    records, _ = peek(tmp_path)
    assert records["a.mp3"].upload_url == "https://cdn/u"
