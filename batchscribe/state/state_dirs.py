"""The journal folders of one run: each locked once, with its journal and its transcript store.

Every journal call of a run goes through one thread (`JournalThread`): SQLite commits, the
fsync of an upload record and the read of a 50,000-row journal never block the event loop,
and calls stay in the order they were made. A trip to that thread costs CPU whatever it
carries, so the writes of one file that may share a commit share the trip too: an attempt's
`Start` held back rides with its next record, and the copies written together are done together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from batchscribe.errors import ConfigError
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal import Journal, Record, Start
from batchscribe.state.lock import STATE_DIR, RunLock
from batchscribe.state.store import TranscriptStore

T = TypeVar("T")


class JournalThread:
    """One thread for every journal of a run; `close` waits for the writes under way."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchscribe-journal")

    async def read(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def write(self, call: Callable[[], T]) -> T:
        """Shielded: a step already paid for is recorded even when the run is being stopped."""
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._executor, call))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class RunJournal:
    """One root's journal as a run uses it: the same calls as `Journal`, awaited."""

    def __init__(self, journal: Journal, thread: JournalThread) -> None:
        self.sync, self._thread = journal, thread

    async def records(self) -> dict[str, Record]:
        return await self._thread.read(self.sync.records)

    async def get(self, key: str) -> Record | None:
        return await self._thread.read(functools.partial(self.sync.get, key))

    async def start(
        self,
        key: str,
        fingerprint: Fingerprint,
        engine: str,
        outputs: list[str],
        options: str,
        digest: str | None,
    ) -> None:
        start = functools.partial(
            self.sync.start, key, fingerprint, engine, outputs, options, digest
        )
        await self._thread.write(start)

    async def begin(self, start: Start | None) -> None:
        """An attempt's start held back until now, written on its own (None: nothing to do)."""
        if start is not None:
            await self._write(start)

    async def uploaded(self, key: str, upload_url: str, *, start: Start | None = None) -> None:
        """The upload, synced to disk, after the attempt's `start` if held back: one commit."""
        uploaded = functools.partial(self.sync.uploaded, key, upload_url)
        await self._write(start, uploaded, synced=True)

    async def submitted(self, key: str, transcript_id: str, *, start: Start | None = None) -> None:
        await self._write(start, functools.partial(self.sync.submitted, key, transcript_id))

    async def done(self, *keys: str, start: Start | None = None) -> None:
        """`keys` done (a file and the copies written with it), after the first one's `start`
        if held back: one commit, so either every one of them is recorded or none."""
        await self._write(start, *(functools.partial(self.sync.done, key) for key in keys))

    async def failed(
        self,
        key: str,
        error: str,
        *,
        permanent: bool,
        transient: bool,
        start: Start | None = None,
    ) -> None:
        failed = functools.partial(
            self.sync.failed, key, error, permanent=permanent, transient=transient
        )
        await self._write(start, failed)

    async def _write(
        self, start: Start | None, *writes: Callable[[], object], synced: bool = False
    ) -> None:
        """`start` (if any), then `writes`: one transaction, one trip to the journal thread;
        `synced` when one of them must survive a power cut (`Journal.batch`)."""
        if start is None and len(writes) <= 1:
            for write in writes:
                await self._thread.write(write)
            return

        def together() -> None:
            with self.sync.batch(synced=synced):
                if start is not None:
                    self.sync.begin(start)
                for write in writes:
                    write()

        await self._thread.write(together)


@dataclass(frozen=True, slots=True)
class StateDir:
    """What belongs to one journal folder: its journal and its transcript store."""

    journal: RunJournal
    store: TranscriptStore


class StateDirs:
    """The journal folders of this run, each opened once and held until `close`."""

    def __init__(self, notice: Callable[[str], None] = lambda line: None) -> None:
        #: says what opening a journal had to repair (a damaged one moved aside)
        self._notice = notice
        self._thread = JournalThread()
        self._locks = contextlib.ExitStack()
        self._state_dirs: dict[Path, StateDir] = {}
        self._runs: dict[Path, int] = {}

    def __getitem__(self, path: Path) -> StateDir:
        return self._state_dirs[path]

    @property
    def paths(self) -> list[Path]:
        """The journal folders opened so far: the roots, and sub-folders with their own."""
        return list(self._state_dirs)

    async def open(self, path: Path, *, given: Path | None = None) -> None:
        """Lock a journal folder for this run and open its journal (once). Raises LockHeld,
        or ConfigError when the folder or journal cannot be created. `given` is the path
        named whose journal this is, for the lines to name."""
        if path in self._state_dirs:
            return
        await asyncio.to_thread(_make_folder, path)
        self._locks.enter_context(RunLock(path, given=given))
        journal = await self._thread.read(functools.partial(Journal, path))
        if journal.moved_aside is not None:
            aside, damage = journal.moved_aside
            self._notice(
                f"{path / STATE_DIR}: the journal was damaged ({damage}); moved it aside to "
                f"{aside.name} and started a new one: outputs that match a kept transcript "
                "are adopted, nothing is transcribed twice"
            )
        self._state_dirs[path] = StateDir(
            RunJournal(journal, self._thread), TranscriptStore(path / STATE_DIR)
        )
        self._runs[path] = await self._thread.write(journal.begin_run)

    def close(self, outcome: str, summary: dict[str, object]) -> None:
        """End every run record, close the journals, release the locks. Blocking: it waits for
        the journal writes under way, so it is called once, when nothing else runs."""
        self._thread.close()
        try:
            for path, state_dir in self._state_dirs.items():
                with contextlib.suppress(Exception):  # a full disk must not hide the real error
                    state_dir.journal.sync.end_run(self._runs[path], outcome, summary)
                state_dir.journal.sync.close()
        finally:
            self._locks.close()


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the folder ({err.strerror}).") from None
