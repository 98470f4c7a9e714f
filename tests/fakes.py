"""Fakes and helpers shared by the tests: an in-memory Engine (no HTTP, no model, every call
counted), a virtual clock, one run of the pipeline, the journal read raw, a job, a full disk.

A helper that two test files need lives here (or as a fixture in `tests/conftest.py`), never
copied into both."""

from __future__ import annotations

import asyncio
import errno
import io
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.engines.base import Checkpoint, Engine, Finished, StillRunning, Submitted
from batchscribe.engines.factory import create_engine
from batchscribe.errors import TranscriptionFailed
from batchscribe.fingerprint import Fingerprint
from batchscribe.output.atomic import REAL_FILE_OPS, FileOps
from batchscribe.recording import Recording
from batchscribe.report import Reporter
from batchscribe.run.job import Job
from batchscribe.run.pipeline import run
from batchscribe.state.journal import JOURNAL_NAME
from batchscribe.state.lock import STATE_DIR
from batchscribe.transcript import Transcript


def heard(path: Path) -> str:
    """What the fake "hears": the text `tests.conftest.speech` wrote into the file."""
    return path.read_bytes().split(b"\n")[0].removeprefix(b"SPEECH:").decode()


@dataclass
class FakeEngine:
    """Finishes at once like the local engine, or with `submit`, uploads, submits and is polled
    like AssemblyAI (each transcript finished at its first poll)."""

    name: str = "local"
    submit: bool = False
    listing_page: int = 200
    #: seconds each start takes (to watch concurrency)
    delay: float = 0.0
    #: content heard -> error the transcription ends with
    errors: dict[str, str] = field(default_factory=dict)
    #: called with each recording as it starts (a test can stop the run there)
    on_start: Callable[[Recording], None] | None = None
    started: list[Path] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    _texts: dict[str, str] = field(default_factory=dict)

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished | Submitted:
        self.started.append(recording.path)
        if self.on_start is not None:
            self.on_start(recording)
        transcript_id = f"t{len(self.started)}"  # before any await: ids stay unique
        if not self.submit:
            checkpoint.transcribing()  # like the local engine: the work (the delay) begins
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        text = heard(recording.path)
        if not self.submit:
            if text in self.errors:
                raise TranscriptionFailed(self.errors[text])
            return Finished(Transcript({"status": "completed", "text": text}))
        await checkpoint.uploaded(f"upload-{transcript_id}")
        await checkpoint.submitted(transcript_id)
        self._texts[transcript_id] = text
        return Submitted(transcript_id)

    @property
    def submitted_ids(self) -> list[str]:
        """Transcripts this fake created: what a real service would bill."""
        return list(self._texts)

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        text = self._texts[transcript_id]
        if text in self.errors:
            raise TranscriptionFailed(self.errors[text])
        data = {"id": transcript_id, "status": "completed", "text": text}
        return Finished(Transcript(data))

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        return {}

    async def delete(self, transcript_id: str) -> None:
        self.deleted.append(transcript_id)

    async def aclose(self) -> None:
        return None


class VirtualClock:
    """A clock and a sleep in virtual time: sleeping moves the clock on at once, so waits
    are measured (`slept`), never waited."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def transcribe(
    settings: Settings, engine: Engine | None = None, *, files: FileOps = REAL_FILE_OPS
) -> tuple[Reporter, str]:
    """One run of the pipeline, called directly: with `engine` (a FakeEngine) for every
    recording, or without one the engine `settings` name (the real AssemblyAI or local one).
    Returns the reporter (its summary) and the per-file lines it wrote."""
    out = io.StringIO()
    reporter = Reporter(stream=out)

    def given(_: Settings) -> Engine:
        assert engine is not None
        return engine

    await run(settings, reporter, create_engine if engine is None else given, files=files)
    return reporter, out.getvalue()


def journal_path(root: Path) -> Path:
    """Where a run on `root` keeps its journal: the one place the tests spell it."""
    return root / STATE_DIR / JOURNAL_NAME


@contextmanager
def connect_journal(root: Path) -> Iterator[sqlite3.Connection]:
    """The journal of `root` opened raw, as another program would (to read what a run left,
    or to make a journal an older release would have left); committed, then closed."""
    db = sqlite3.connect(journal_path(root))
    try:
        with db:
            yield db
    finally:
        db.close()


def journal_rows(root: Path, columns: str = "path, state") -> list[tuple[object, ...]]:
    """`columns` of every file the journal of `root` holds, in the order of their paths."""
    with connect_journal(root) as db:
        return db.execute(f"SELECT {columns} FROM files ORDER BY path").fetchall()


def journal_states(root: Path) -> dict[str, str]:
    """Each journaled path of `root` with its state ("done", "submitted", ...)."""
    return {str(path): str(state) for path, state in journal_rows(root, "path, state")}


def state_of(root: Path, key: str) -> str:
    """The journaled state of one file (`key`: its path relative to `root`)."""
    return journal_states(root)[key]


def job(root: Path, key: str, digest: str = "d1") -> Job:
    """A job for `root / key` with a txt output beside it, as the walk would hand it over."""
    stem = key.rpartition(".")[0]
    outputs = {"txt": root / f"{stem}.txt"}
    return Job(root / key, root, key, Fingerprint(1, 2), outputs, "new", digest=digest)


def disk_full(fd: int) -> None:
    """An `fsync` for `FileOps` on a disk with no space left."""
    raise OSError(errno.ENOSPC, "No space left on device")


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait (polling) until `condition()` holds, for a subprocess or server to get there;
    fails the test after `timeout` seconds. Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
