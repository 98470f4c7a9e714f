"""What a run shows the people who operate it: `--metrics-file` at the end of every run, and
while a watcher runs, that file and the watcher's queue (for `--status`) kept current.

A watcher looks every TICK whether anything changed (a file done, failed, started or queued)
and then writes both, so an update is at most a second or two late and a burst of arrivals is
one write, not one per event; when idle it still rewrites the metrics every HEARTBEAT, so an
alert can tell a quiet watcher from a dead one. Figures are gathered on the event loop (the
summary and the queue change there) and the journals are counted and the files written in a
thread. The journals are only read here (their writers are the worker and the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.engines.factory import makes_requests, model_label
from batchscribe.engines.stats import RequestStats, request_stats
from batchscribe.errors import BatchscribeError
from batchscribe.report import Reporter
from batchscribe.run.metrics import Figures, write_metrics
from batchscribe.run.walk import resolve_roots
from batchscribe.state.journal_view import tally
from batchscribe.state.watching import (
    LISTED,
    Watching,
    remove_watching,
    write_watching,
)

log = logging.getLogger("batchscribe.run.live")

#: How often a watcher looks for changes (seconds): the most an update is late.
TICK = 1.0
#: An idle watcher rewrites its metrics this often (seconds): a fresh timestamp says it lives.
HEARTBEAT = 60.0

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RunView:
    """What `Live` reads of a run under way; the run owns all of it."""

    #: the journal folders opened so far (the roots, and sub-folders with their own journal)
    journal_folders: Callable[[], list[Path]]
    #: the engine, once one was made (nothing is loaded to ask)
    engine: Callable[[], object | None]
    #: files in the queue, not yet started
    queued: Collection[Path]


@dataclass(frozen=True, slots=True)
class Moment:
    """The in-memory figures at one moment, copied on the event loop."""

    results: dict[str, int]
    audio_seconds: float
    requests: RequestStats | None
    under_way: list[tuple[str, str]]
    queued: list[str]


class Live:
    """The metrics file and a watcher's queue file of one run. Without --metrics-file and
    --watch it does nothing."""

    def __init__(self, settings: Settings, reporter: Reporter, *, clock: Clock = time.time):
        self._settings, self._reporter, self._clock = settings, reporter, clock
        self._since = clock()
        self._view: RunView | None = None
        self._writing_failed = False
        #: a watcher's last update while up: its last success still, once it has stopped
        self._last_up = 0.0

    @contextlib.asynccontextmanager
    async def following(self, view: RunView) -> AsyncIterator[None]:
        """Around a run: with --watch, keep the files current until the run ends (the files
        under way after a stop included); then the queue file is removed."""
        self._view = view
        if not self._settings.watch:
            yield
            return
        over = asyncio.Event()
        task = asyncio.create_task(self._keep_current(over))
        try:
            yield
        finally:
            over.set()
            try:
                await task  # its last update done: nothing writes a queue file after this
            finally:
                task.cancel()  # only if we were cancelled while waiting for it
                self._remove_queue_files()

    def ended(self, exit_code: int) -> None:
        """The run is over with `exit_code`: the metrics file's last word (a watcher: up 0).
        Blocking; called once the event loop is gone."""
        if self._settings.metrics_file is not None:
            self._write_metrics(self._moment(), up=False, exit_code=exit_code)

    async def _keep_current(self, over: asyncio.Event) -> None:
        written: object = None
        written_at = -HEARTBEAT
        while not over.is_set():
            state = self._signature()
            if state != written or time.monotonic() - written_at >= HEARTBEAT:
                moment = self._moment()
                await asyncio.to_thread(self._update, moment)
                written, written_at = state, time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(over.wait(), TICK)

    def _signature(self) -> object:
        """Changes when anything an operator sees changes; cheap (every TICK)."""
        s = self._reporter.summary
        counts = (s.done, len(s.failed), s.skipped, len(s.still_running), s.failed_before,
                  s.over_budget, len(s.warnings))  # fmt: skip
        stages = tuple(sorted((str(p), stage) for p, stage in self._reporter.stages.items()))
        queued = tuple(sorted(str(p) for p in self._view.queued)) if self._view else ()
        return counts, stages, queued

    def _moment(self) -> Moment:
        s = self._reporter.summary
        results = {
            "done": s.done,
            "failed": len(s.failed),
            "up_to_date": s.skipped,
            "still_processing": len(s.still_running),
            "failed_before": s.failed_before,
            "over_budget": s.over_budget,
        }
        requests = None
        if makes_requests(self._settings):
            made = request_stats(self._view.engine()) if self._view else None
            requests = dataclasses.replace(made) if made else RequestStats()
        stages = sorted((str(p), stage) for p, stage in self._reporter.stages.items())
        queued = sorted(str(p) for p in self._view.queued) if self._view else []
        return Moment(results, s.audio_seconds, requests, stages, queued)

    def _update(self, moment: Moment) -> None:
        """A watcher's update (in a thread): its queue file in every journal folder, then the
        metrics file."""
        watching = Watching(
            pid=os.getpid(),
            since=self._since,
            updated=self._clock(),
            under_way=moment.under_way[:LISTED],
            under_way_count=len(moment.under_way),
            queued=moment.queued[:LISTED],
            queued_count=len(moment.queued),
        )
        for folder in self._journal_folders():
            try:
                write_watching(folder, watching)
            except BatchscribeError as err:
                log.debug("no queue file for --status: %s", err)
        if self._settings.metrics_file is not None:
            self._write_metrics(moment, up=True, exit_code=None)

    def _write_metrics(self, moment: Moment, *, up: bool, exit_code: int | None) -> None:
        path = self._settings.metrics_file
        assert path is not None
        states: Counter[str] = Counter()
        last_success = 0.0
        for folder in self._journal_folders():
            try:
                found = tally(folder)
            except BatchscribeError as err:
                log.debug("metrics without %s: %s", folder, err)
                continue
            states.update(found.states)
            last_success = max(last_success, found.last_success or 0.0)
        now = self._clock()
        if up or (exit_code == 0 and last_success < self._since):
            last_success = now  # a watcher running; a good run its journal could not record
        if up:
            self._last_up = now
        last_success = max(last_success, self._last_up)  # a stopped watcher was well till then
        figures = Figures(
            states=states,
            results=moment.results,
            audio_seconds=moment.audio_seconds,
            timestamp=now,
            last_success=last_success,
            exit_code=exit_code,
            up=up,
            engine=self._settings.chosen_engine(),
            model=model_label(self._settings),
            requests=moment.requests,
        )
        written = write_metrics(path, figures, warn=not self._writing_failed)
        self._writing_failed = not written

    def _journal_folders(self) -> list[Path]:
        """The run's journal folders; its roots' when it ended before opening any."""
        if self._view is not None:
            return self._view.journal_folders()
        try:
            roots = resolve_roots(self._settings.paths, self._settings.output_dir)
        except BatchscribeError:
            return []  # the run's own error says why; the metrics go without the journals
        return [root.path for root in roots]

    def _remove_queue_files(self) -> None:
        for folder in self._journal_folders():
            remove_watching(folder)
