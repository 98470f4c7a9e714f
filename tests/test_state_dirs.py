"""The journal folders of a run: locked once, journal calls off the loop, writes that survive
a stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from batchscribe.errors import JournalError, LockHeld
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal import InvalidTransition, Start, State
from batchscribe.state.journal_view import peek
from batchscribe.state.lock import RunLock
from batchscribe.state.state_dirs import JournalThread, StateDirs

FP = Fingerprint(1, 2)
T = TypeVar("T")


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


@pytest.fixture
async def trips(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call handed to the journal thread to write."""
    handed: list[object] = []
    real_write = JournalThread.write

    async def write(self: JournalThread, call: Callable[[], T]) -> T:
        handed.append(call)
        return await real_write(self, call)

    monkeypatch.setattr(JournalThread, "write", write)
    return handed


START = Start("a.mp3", FP, "assemblyai", ("a.txt",), "o", "d")


async def test_a_held_back_start_and_the_upload_are_one_trip_and_one_commit(
    tmp_path: Path, trips: list[object]
) -> None:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    trips.clear()

    await state_dirs[tmp_path].journal.uploaded("a.mp3", "https://cdn/u", start=START)
    await state_dirs[tmp_path].journal.submitted("a.mp3", "t1")
    state_dirs.close("completed", {})

    assert len(trips) == 2  # start + uploaded, then submitted
    record = peek(tmp_path)[0]["a.mp3"]
    assert (record.state, record.upload_url, record.transcript_id) == (
        State.SUBMITTED,
        "https://cdn/u",
        "t1",
    )
    assert (record.outputs, record.digest) == (("a.txt",), "d")


async def test_a_held_back_start_whose_next_write_fails_is_not_recorded_either(
    tmp_path: Path,
) -> None:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    journal = state_dirs[tmp_path].journal
    real_uploaded = journal.sync.uploaded

    def uploaded_then_disk_full(key: str, upload_url: str) -> None:
        real_uploaded(key, upload_url)
        raise JournalError("disk full")

    journal.sync.uploaded = uploaded_then_disk_full  # type: ignore[method-assign]
    with pytest.raises(JournalError):
        await journal.uploaded("a.mp3", "https://cdn/u", start=START)
    state_dirs.close("failed", {})

    assert peek(tmp_path)[0] == {}  # both or neither: neither


async def test_files_done_together_are_one_trip_and_one_commit(
    tmp_path: Path, trips: list[object]
) -> None:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    journal = state_dirs[tmp_path].journal
    await journal.start("b.mp3", FP, "assemblyai", ["b.txt"], "o", "d")
    await journal.start("c.mp3", FP, "assemblyai", ["c.txt"], "o", "d")
    await journal.start("e.mp3", FP, "assemblyai", ["e.txt"], "o", "d")
    trips.clear()

    await journal.done("a.mp3", "b.mp3", "c.mp3", start=START)
    with pytest.raises(InvalidTransition):  # a bug in the middle undoes the whole commit
        await journal.done("e.mp3", "no-row.mp3")
    await journal.begin(None)  # nothing held back: no trip
    state_dirs.close("completed", {})

    assert len(trips) == 2
    records = peek(tmp_path)[0]
    assert {key: r.state for key, r in records.items()} == {
        **dict.fromkeys(("a.mp3", "b.mp3", "c.mp3"), State.DONE),
        "e.mp3": State.PENDING,
    }
