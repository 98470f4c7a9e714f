"""--watch: a folder that transcribes itself as recordings arrive.

File events come from `watchfiles` (Rust `notify`; polling with --watch-poll, for network
mounts), and a full rescan every `watch_rescan` seconds catches any event that was missed. A
file is taken only once it is complete: its size and modification time unchanged for
`watch_settle` seconds. Temporary names (`*.part`, `*.tmp`, `*.crdownload`, hidden files) are
ignored until renamed; outputs and `.batchscribe/` never cause work, because only recordings
are candidates. What a file needs is decided as in a run (`scan.plan`, the journal's record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from batchscribe.run.job import Job, Root, Wanted
from batchscribe.run.walk import plan, walk
from batchscribe.settings.parts import WatchSettings
from batchscribe.state.journal import Record
from batchscribe.state.lock import STATE_DIR
from batchscribe.state.state_dirs import StateDirs

log = logging.getLogger("batchscribe.run.watch")

#: Names a recorder or a copy gives a file still being written: never a recording yet.
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", "~")
#: How often settling files are looked at again (seconds).
TICK = 0.25

Clock = Callable[[], float]


def is_candidate(path: str, extensions: frozenset[str]) -> bool:
    """A file the watch may take: a recording's name, not hidden, temporary or our own."""
    name = os.path.basename(path)
    if not name or name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES):
        return False
    if f"{os.sep}{STATE_DIR}{os.sep}" in path:
        return False
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in extensions


@dataclass(slots=True)
class Settling:
    """Files seen changing, until each has kept its size and mtime for `settle` seconds."""

    settle: float
    #: path -> (size, mtime_ns, since when unchanged)
    seen: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    def saw(self, path: str, size: int, mtime_ns: int, now: float) -> None:
        before = self.seen.get(path)
        if before is None or before[:2] != (size, mtime_ns):
            self.seen[path] = (size, mtime_ns, now)

    def gone(self, path: str) -> None:
        self.seen.pop(path, None)

    def ready(self, now: float) -> list[str]:
        """Files unchanged for the settle time; they leave the list."""
        done = [p for p, (_, _, since) in self.seen.items() if now - since >= self.settle]
        for path in done:
            del self.seen[path]
        return done


def root_of(path: str, roots: list[Root]) -> Root | None:
    """The root a path belongs to: the deepest one whose walk covers it."""
    covering = [
        root
        for root in roots
        if path == str(root.walk_from) or path.startswith(f"{root.walk_from}{os.sep}")
    ]
    return max(covering, key=lambda root: len(str(root.walk_from)), default=None)


class Watcher:
    """Turns file events and rescans into jobs for the run's queue, until `stop_event`."""

    def __init__(
        self,
        roots: list[Root],
        state_dirs: StateDirs,
        wanted: Wanted,
        *,
        extensions: frozenset[str],
        watching: WatchSettings,
        rescan_jobs: Callable[[], AsyncIterator[Job]],
        stop_event: asyncio.Event,
        clock: Clock = time.monotonic,
    ) -> None:
        self._roots, self._state_dirs, self._wanted = roots, state_dirs, wanted
        self._extensions = extensions
        self._settling = Settling(watching.watch_settle)
        self._rescan, self._poll = watching.watch_rescan, watching.watch_poll
        self._rescan_jobs = rescan_jobs
        self._stop, self._clock = stop_event, clock

    @property
    def folders(self) -> list[str]:
        """The folders watched: each root's, or a single file's own folder."""
        return sorted({str(r.walk_from if r.walk_from.is_dir() else r.walk_from.parent)
                       for r in self._roots})  # fmt: skip

    async def events(self) -> None:
        """Note every candidate that changes (watchfiles), until the stop event."""
        async for changes in watchfiles.awatch(
            *self.folders,
            watch_filter=lambda _, path: is_candidate(path, self._extensions),
            stop_event=self._stop,
            force_polling=self._poll or None,
            debounce=200,
            ignore_permission_denied=True,
        ):
            for change, path in changes:
                if change == watchfiles.Change.deleted:
                    self._settling.gone(path)
                else:
                    await self._look(path)

    async def feed(
        self, put: Callable[[Job], Awaitable[None]], in_flight: Callable[[Path], bool]
    ) -> None:
        """Hand each settled file that needs work, and is not under way, to `put`; rescan
        every so often; return once the stop event is set."""
        next_rescan = self._clock() + self._rescan
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TICK)
            for path in list(self._settling.seen):
                await self._look(path)
            for path in self._settling.ready(self._clock()):
                job = await self._job_for(path)
                if job is not None and not in_flight(job.source):
                    await put(job)
            if self._clock() >= next_rescan:
                next_rescan = self._clock() + self._rescan
                async for job in self._rescan_jobs():
                    if not in_flight(job.source):
                        await put(job)

    async def _look(self, path: str) -> None:
        try:
            st = await asyncio.to_thread(os.stat, path)
        except OSError:
            self._settling.gone(path)  # renamed or deleted meanwhile
            return
        self._settling.saw(path, st.st_size, st.st_mtime_ns, self._clock())

    async def _job_for(self, path: str) -> Job | None:
        """What a run would do with this one file now (None: nothing, or not ours)."""
        root = root_of(path, self._roots)
        if root is None:
            return None
        key = Path(path).relative_to(root.base).as_posix()
        record = await self._state_dirs[root.path].journal.get(key)
        single = Root(path=root.path, walk_from=Path(path), base=root.base,
                      output_dir=root.output_dir)  # fmt: skip
        records = {key: record} if record is not None else {}
        return await asyncio.to_thread(_plan_one, single, records, self._wanted, self._extensions)


def _plan_one(
    root: Root, records: dict[str, Record], wanted: Wanted, extensions: frozenset[str]
) -> Job | None:
    """The job for the single file `root.walk_from`, if it needs work. Blocking."""
    for items in walk(root.walk_from, extensions, clean=False):
        for job in plan(items, root, records, wanted).jobs:
            return job
    return None
