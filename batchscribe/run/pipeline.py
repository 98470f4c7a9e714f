"""One run: producer -> bounded queue -> N workers -> one poller -> writer, in one TaskGroup.

Wiring only: what each stage does lives in `producer`, `worker`, `poller`, `writer`, and who
waits for whom in `identical`. Cancellation (Ctrl-C, SIGTERM, a fatal error) flows through the
TaskGroup; every billable step is journaled as it happens and outputs are written atomically,
so stopping anywhere is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.engines.base import Engine
from batchscribe.errors import BatchscribeError, ConfigError, FileError
from batchscribe.output.atomic import REAL_FILE_OPS, FileOps
from batchscribe.report import Reporter, summary_json
from batchscribe.run.attempt import Attempts
from batchscribe.run.budget import RunBudget
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.job import Job, Root, Wanted
from batchscribe.run.live import Live, RunView
from batchscribe.run.poller import Poller
from batchscribe.run.producer import Producer
from batchscribe.run.stopping import Stop
from batchscribe.run.walk import resolve_roots
from batchscribe.run.watch import Watcher
from batchscribe.run.worker import Worker
from batchscribe.run.writer import Writer
from batchscribe.state.state_dirs import StateDirs

#: Jobs waiting for a worker, per worker: keeps workers busy while the walk stays lazy.
QUEUE_PER_WORKER = 2

EngineFactory = Callable[[Settings], Engine]


async def run(
    settings: Settings,
    reporter: Reporter,
    engine_factory: EngineFactory,
    *,
    files: FileOps = REAL_FILE_OPS,
    stop: Stop | None = None,
    live: Live | None = None,
) -> None:
    """Transcribe everything under `settings.paths` that needs work; counts go to `reporter`.

    Raises ConfigError / LockHeld / FatalApiError / JournalError for run-wide trouble;
    per-file failures are reported and the run goes on. `files` are the file-system calls
    outputs are written with (tests inject failures there). Once `stop` is requested, no file
    starts; what is under way finishes (see stopping.py) and the run returns. `live` follows
    the run for --metrics-file and a watcher's --status.
    """
    roots = resolve_roots(settings.paths, settings.output_dir)
    for root in roots:
        if not root.walk_from.exists():
            raise ConfigError(f"{root.walk_from}: no such file or folder.")
    engine = LazyEngine(engine_factory, settings)
    state_dirs = StateDirs(notice=reporter.notice)
    outcome = "interrupted"
    try:
        for root in roots:
            given = root.walk_from if root.output_dir is None else None
            await state_dirs.open(root.path, given=given)
        stop = stop or Stop()
        pipeline = Pipeline(settings, engine, state_dirs, reporter, files, stop)
        view = RunView(lambda: state_dirs.paths, lambda: engine.created, pipeline.queued)
        async with live.following(view) if live else contextlib.nullcontext():
            await pipeline.run(roots)
        outcome = "stopped" if stop.requested else "completed"
    except BaseExceptionGroup as group:
        error = _first_expected(group)
        outcome = f"stopped: {error}" if isinstance(error, BatchscribeError) else outcome
        raise error from None
    except BatchscribeError as error:
        outcome = f"stopped: {error}"
        raise
    finally:
        try:
            await engine.aclose()
        finally:
            state_dirs.close(outcome, summary_json(reporter.summary))


def _first_expected(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to show for a failed TaskGroup: a fatal BatchscribeError, else the group."""
    for error in _leaves(group):
        if isinstance(error, BatchscribeError | KeyboardInterrupt | asyncio.CancelledError):
            return error
    return group


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


class LazyEngine:
    """Creates the engine on first use, so a run with nothing to do loads no model."""

    def __init__(self, factory: EngineFactory, settings: Settings) -> None:
        self._factory, self._settings = factory, settings
        self._engine: Engine | None = None

    @property
    def created(self) -> Engine | None:
        """The engine if it was made: asking never loads a model."""
        return self._engine

    def get(self) -> Engine:
        if self._engine is None:
            self._engine = self._factory(self._settings)
        return self._engine

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()


class Pipeline:
    """The stages of one run, wired: one round for the walk, one for stranded copies."""

    def __init__(
        self,
        settings: Settings,
        engine: LazyEngine,
        state_dirs: StateDirs,
        reporter: Reporter,
        files: FileOps,
        stop: Stop,
    ) -> None:
        self._settings, self._engine, self._state_dirs, self._reporter = (
            settings,
            engine,
            state_dirs,
            reporter,
        )
        self._stop = stop
        #: in the queue, not yet started: with --watch, never twice (and --status lists them)
        self.queued: set[Path] = set()
        self._wanted = wanted = Wanted.of(settings)
        self._identical = identical = IdenticalRecordings()
        #: started, not yet ended: with --watch, never queued again while in flight
        self._attempts = Attempts(state_dirs, reporter)
        self._writer = Writer(
            state_dirs,
            identical,
            reporter,
            engine.get,
            self._attempts,
            options=wanted.options,
            limits=settings.output().cue_limits(),
            delete_after=settings.delete_after,
            files=files,
        )
        self._budget = RunBudget(
            max_files=settings.max_files,
            max_audio_hours=settings.max_audio_hours,
            daily=settings.watch,  # a watcher has no next run: its budget is per day
        )

    async def run(self, roots: list[Root]) -> None:
        await self._round(self._producer().jobs(roots), self._watcher(roots))
        if self._stop.requested:
            return  # copies left waiting are done by the next run, which finds them unfinished
        stranded = self._identical.strand()  # adoptions are journaled by the worker
        if stranded.jobs:
            self._reporter.requeued(len(stranded.jobs))
            await self._round(_each(stranded.jobs))
        # Every file ends reported; one left waiting on a copy would be a bug, never silence.
        for job in self._identical.leftovers():
            await self._writer.fail(job, FileError("its identical twin never finished; run again"))

    def _producer(self, *, announce: bool = True) -> Producer:
        return Producer(
            self._state_dirs,
            self._identical,
            self._reporter,
            wanted=self._wanted,
            extensions=self._settings.extensions,
            own_tree=self._settings.output_dir is None,
            announce=announce,
        )

    def _watcher(self, roots: list[Root]) -> Watcher | None:
        """--watch: after the walk, files as they arrive, until stopped."""
        settings = self._settings
        if not settings.watch:
            return None
        return Watcher(
            roots,
            self._state_dirs,
            self._wanted,
            extensions=settings.extensions,
            watching=settings.watching(),
            rescan_jobs=lambda: self._producer(announce=False).jobs(roots),
            stop_event=self._stop.event,
        )

    async def _round(self, jobs: AsyncIterator[Job], watcher: Watcher | None = None) -> None:
        """Producer (and watcher), workers and poller of one round, all in one TaskGroup."""
        concurrency = self._settings.concurrency
        queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=concurrency * QUEUE_PER_WORKER)
        queued = self.queued

        async def put(job: Job) -> None:
            queued.add(job.source)
            await queue.put(job)

        def in_flight(source: Path) -> bool:
            return source in queued or source in self._attempts

        writer = self._writer
        poller = Poller(
            self._engine.get,
            self._settings.assemblyai(),  # the service's cadence: poll interval, budget, wait
            finish=writer.finish,
            fail=writer.fail_together,
            give_up=writer.give_up,
        )
        worker = Worker(
            state_dirs=self._state_dirs,
            identical=self._identical,
            writer=writer,
            attempts=self._attempts,
            reporter=self._reporter,
            engine=self._engine.get,
            budget=self._budget,
            wanted=self._wanted,
            upload_ttl=self._settings.upload_ttl,
            submitted=poller.add,
            stop=self._stop,
        )
        workers_left = [concurrency]

        async def work() -> None:
            try:
                while (job := await queue.get()) is not None:
                    queued.discard(job.source)
                    if not self._stop.requested:  # once stopping, drain the queue unstarted
                        await worker.start(job)
            finally:
                workers_left[0] -= 1
                if workers_left[0] == 0:
                    poller.close()  # nothing more will be submitted

        async def follow() -> None:
            """--watch: after the walk, the files that arrive, until the stop."""
            if watcher is not None:
                self._reporter.watching(len(watcher.folders))
                await watcher.feed(put, in_flight)

        async with asyncio.TaskGroup() as tasks:
            if watcher is not None:
                tasks.create_task(watcher.events())
            tasks.create_task(_fill(put, queue, jobs, concurrency, self._stop, follow))
            for _ in range(concurrency):
                tasks.create_task(work())
            tasks.create_task(poller.run())


async def _fill(
    put: Callable[[Job], Awaitable[None]],
    queue: asyncio.Queue[Job | None],
    jobs: AsyncIterator[Job],
    workers: int,
    stop: Stop,
    follow: Callable[[], Awaitable[None]],
) -> None:
    """The walk's jobs, then what `follow` finds (--watch: until the stop); then one end
    marker per worker."""
    async with contextlib.aclosing(jobs):  # type: ignore[type-var]
        async for job in jobs:
            if stop.requested:
                break  # the walk ends here; the rest is for the next run
            await put(job)
    if not stop.requested:
        await follow()
    # Not in a `finally`: once cancelled, the workers are gone and a put could block forever.
    for _ in range(workers):
        await queue.put(None)


async def _each(jobs: list[Job]) -> AsyncIterator[Job]:
    for job in jobs:
        yield job
