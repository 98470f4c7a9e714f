"""How a file ends: store, outputs, journal, report, --delete-after; with failures injected."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from batchscribe.errors import OutputError, RetryableApiError, TranscriptionFailed
from batchscribe.fingerprint import Fingerprint
from batchscribe.output.atomic import REAL_FILE_OPS, FileOps
from batchscribe.output.subtitles import DEFAULT_LIMITS
from batchscribe.report import Reporter
from batchscribe.run.attempt import Attempts
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.job import Job
from batchscribe.run.writer import Writer
from batchscribe.state.journal import Start, State
from batchscribe.state.journal_view import peek
from batchscribe.state.state_dirs import JournalThread, StateDirs
from batchscribe.transcript import Transcript
from tests.fakes import FakeEngine, disk_full, job
from tests.kit import events

TRANSCRIPT = Transcript({"id": "t1", "status": "completed", "text": "Hello there."})


@pytest.fixture
async def state_dirs(tmp_path: Path) -> AsyncIterator[StateDirs]:
    state_dirs = StateDirs()
    await state_dirs.open(tmp_path)
    yield state_dirs
    state_dirs.close("completed", {})


async def started(state_dirs: StateDirs, *jobs: Job, submitted: bool = False) -> None:
    journal = state_dirs[jobs[0].state_root].journal
    for each in jobs:
        names = [p.name for p in each.outputs.values()]
        await journal.start(each.key, each.fingerprint, "assemblyai", names, "o", each.digest)
        if submitted:
            await journal.uploaded(each.key, "u")
            await journal.submitted(each.key, "t1")


def writer_for(
    state_dirs: StateDirs,
    identical: IdenticalRecordings,
    engine: FakeEngine,
    *,
    delete: bool = False,
    files: FileOps = REAL_FILE_OPS,
    attempts: Attempts | None = None,
) -> tuple[Writer, io.StringIO]:
    out = io.StringIO()
    reporter = Reporter(stream=out)
    writer = Writer(
        state_dirs,
        identical,
        reporter,
        lambda: engine,
        attempts or Attempts(state_dirs, reporter),
        options="o",
        limits=DEFAULT_LIMITS,
        delete_after=delete,
        files=files,
    )
    return writer, out


def holding_its_start(state_dirs: StateDirs, *jobs: Job) -> Attempts:
    """Attempts of `jobs` under way, each holding its start back (a fresh attempt)."""
    attempts = Attempts(state_dirs, Reporter(stream=io.StringIO()))
    for each in jobs:
        attempts.open(each).hold(start_of(each))
    return attempts


async def state(state_dirs: StateDirs, root: Path, key: str) -> State | None:
    record = await state_dirs[root].journal.get(key)
    return record.state if record else None


async def test_finish_keeps_the_transcript_then_writes_the_file_and_its_waiting_copies(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    identical, engine = IdenticalRecordings(), FakeEngine()
    first, copy = job(tmp_path, "a.mp3"), job(tmp_path, "b.mp3")
    await started(state_dirs, first, copy)
    identical.claim(first)
    identical.claim(copy)
    writer, out = writer_for(state_dirs, identical, engine, delete=True)

    await writer.finish(first, TRANSCRIPT)

    assert (tmp_path / "a.txt").read_text() == "Hello there.\n"
    assert (tmp_path / "b.txt").read_text() == "Hello there.\n"
    assert await state(state_dirs, tmp_path, "a.mp3") is State.DONE
    assert await state(state_dirs, tmp_path, "b.mp3") is State.DONE
    assert state_dirs[tmp_path].store.load("d1", "o") == TRANSCRIPT
    assert engine.deleted == ["t1"]
    assert len(events(out.getvalue(), "done")) == 2


async def test_a_failed_transcription_fails_every_copy_waiting_for_it(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    identical = IdenticalRecordings()
    first, copy, other = (
        job(tmp_path, "a.mp3"),
        job(tmp_path, "b.mp3"),
        job(tmp_path, "c.mp3", "d2"),
    )
    await started(state_dirs, first, copy, other)
    for each in (first, copy, other):
        identical.claim(each)
    writer, out = writer_for(state_dirs, identical, FakeEngine())

    await writer.fail_together(first, TranscriptionFailed("not audio"))

    assert await state(state_dirs, tmp_path, "a.mp3") is State.FAILED
    assert await state(state_dirs, tmp_path, "b.mp3") is State.FAILED
    assert await state(state_dirs, tmp_path, "c.mp3") is State.PENDING
    failed = events(out.getvalue(), "failed")
    assert len(failed) == 2 and failed[1].endswith("b.mp3: not audio")
    assert identical.leftovers() == []  # the copy is no longer waiting


async def test_a_full_disk_fails_the_file_but_keeps_the_paid_transcript_collectable(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    identical, engine = IdenticalRecordings(), FakeEngine()
    first = job(tmp_path, "a.mp3")
    await started(state_dirs, first, submitted=True)
    writer, out = writer_for(
        state_dirs, identical, engine, delete=True, files=FileOps(fsync=disk_full)
    )

    await writer.finish(first, TRANSCRIPT)

    assert "No space left on device" in out.getvalue()
    assert not (tmp_path / "a.txt").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert await state(state_dirs, tmp_path, "a.mp3") is State.SUBMITTED  # polled, never re-paid
    assert engine.deleted == []  # not deleted while an output is missing


async def test_a_transient_api_error_before_anything_was_paid_fails_the_file(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    first = job(tmp_path, "a.mp3")
    await started(state_dirs, first)
    writer, _ = writer_for(state_dirs, IdenticalRecordings(), FakeEngine())

    await writer.fail(first, RetryableApiError("HTTP 503"))

    record = await state_dirs[tmp_path].journal.get("a.mp3")
    assert record is not None and record.state is State.FAILED and not record.permanent


async def test_a_store_that_cannot_keep_the_transcript_fails_the_file_unpaid_next_time(
    state_dirs: StateDirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = job(tmp_path, "a.mp3")
    await started(state_dirs, first, submitted=True)
    store = state_dirs[tmp_path].store

    def cannot_save(*args: object) -> None:
        raise OutputError("cannot keep the transcript")

    monkeypatch.setattr(store, "save", cannot_save)
    writer, out = writer_for(state_dirs, IdenticalRecordings(), FakeEngine())

    await writer.finish(first, TRANSCRIPT)

    assert "cannot keep the transcript" in out.getvalue()
    record = await state_dirs[tmp_path].journal.get("a.mp3")
    assert record is not None and record.state is State.SUBMITTED
    assert record.transcript_id == "t1"  # the next run polls it: never paid for twice
    assert not (tmp_path / "a.txt").exists()


async def test_give_up_reports_the_file_and_its_copies_as_still_processing(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    identical = IdenticalRecordings()
    first, copy = job(tmp_path, "a.mp3"), job(tmp_path, "b.mp3")
    await started(state_dirs, first, submitted=True)
    identical.claim(first)
    identical.claim(copy)
    writer, out = writer_for(state_dirs, identical, FakeEngine())

    writer.give_up(first)

    assert len(events(out.getvalue(), "waiting")) == 2
    record = await state_dirs[tmp_path].journal.get("a.mp3")
    assert record is not None and record.state is State.SUBMITTED
    assert record.transcript_id == "t1"  # the journal keeps it: the next run collects it


async def test_a_transcript_rendered_from_the_store_is_not_deleted_remotely(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    engine = FakeEngine()
    first = job(tmp_path, "a.mp3")
    await started(state_dirs, first)
    writer, _ = writer_for(state_dirs, IdenticalRecordings(), engine, delete=True)

    await writer.settle(replace(first), TRANSCRIPT, remote=False)

    assert (tmp_path / "a.txt").exists() and engine.deleted == []


# -- a fresh attempt's start, held back by the worker, reaches the journal in time


def start_of(each: Job) -> Start:
    names = tuple(p.name for p in each.outputs.values())
    return Start(each.key, each.fingerprint, "local", names, "o", each.digest)


def claims_when_written(root: Path, key: str) -> tuple[FileOps, list[tuple[str, ...]]]:
    """FileOps that read the journal (as a next run would) the moment an output lands."""
    seen: list[tuple[str, ...]] = []

    def replace_and_look(tmp: str, path: Path) -> None:
        os.replace(tmp, path)
        record = peek(root)[0].get(key)
        seen.append(record.outputs if record else ())

    return FileOps(replace=replace_and_look), seen


async def test_a_held_back_start_claiming_new_outputs_is_journaled_before_they_are_written(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    first, copy = job(tmp_path, "a.mp3"), job(tmp_path, "b.mp3")
    await started(state_dirs, copy)  # a copy's start is written when it begins to wait
    identical = IdenticalRecordings()
    identical.claim(first)
    identical.claim(copy)
    files, seen = claims_when_written(tmp_path, "a.mp3")
    attempts = holding_its_start(state_dirs, first)
    writer, _ = writer_for(state_dirs, identical, FakeEngine(), files=files, attempts=attempts)

    await writer.finish(first, TRANSCRIPT)

    assert seen[0] == ("a.txt",)  # a crash right after the rename leaves our own file
    assert await state(state_dirs, tmp_path, "a.mp3") is State.DONE
    assert await state(state_dirs, tmp_path, "b.mp3") is State.DONE


async def test_a_held_back_start_whose_outputs_are_owned_is_one_commit_with_done(
    state_dirs: StateDirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = state_dirs[tmp_path].journal
    earlier = job(tmp_path, "a.mp3")
    await started(state_dirs, earlier)
    await journal.done("a.mp3")
    # The file changed since; its row still owns a.txt.
    changed = replace(earlier, fingerprint=Fingerprint(7, 8), record=await journal.get("a.mp3"))
    files, seen = claims_when_written(tmp_path, "a.mp3")
    attempts = holding_its_start(state_dirs, changed)
    writer, _ = writer_for(
        state_dirs, IdenticalRecordings(), FakeEngine(), files=files, attempts=attempts
    )
    trips: list[object] = []
    real_write = JournalThread.write

    async def write(self: JournalThread, call: Callable[[], object]) -> object:
        trips.append(call)
        return await real_write(self, call)

    monkeypatch.setattr(JournalThread, "write", write)

    await writer.settle(changed, TRANSCRIPT, remote=False)

    assert seen == [("a.txt",)]  # owned by the old row while it was written
    assert len(trips) == 1  # start and done: one trip, one commit
    record = await journal.get("a.mp3")
    assert record is not None and (record.state, record.fingerprint) == (
        State.DONE,
        Fingerprint(7, 8),
    )


async def test_a_held_back_start_of_a_file_that_cannot_be_written_is_kept_with_the_failure(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    first = job(tmp_path, "a.mp3")
    writer, out = writer_for(
        state_dirs,
        IdenticalRecordings(),
        FakeEngine(),
        files=FileOps(fsync=disk_full),
        attempts=holding_its_start(state_dirs, first),
    )

    await writer.finish(first, TRANSCRIPT)

    record = await state_dirs[tmp_path].journal.get("a.mp3")
    assert record is not None and record.state is State.FAILED
    assert record.outputs == ("a.txt",) and "No space left" in (record.error or "")
    assert len(events(out.getvalue(), "failed")) == 1
