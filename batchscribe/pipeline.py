"""One run: producer -> bounded queue -> N workers -> one poller -> outputs, in one TaskGroup.

Cancellation (Ctrl-C, SIGTERM, a fatal error) flows through the TaskGroup; every billable step
is journaled as it happens and outputs are written atomically, so stopping anywhere is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.engines.base import Engine, Finished
from batchscribe.errors import (
    BatchscribeError,
    ConfigError,
    FileError,
    InputError,
    OutputError,
)
from batchscribe.formats import RENDERERS, write_atomic
from batchscribe.journal import Journal, Record, RunLock, State, content_digest
from batchscribe.poller import Poller
from batchscribe.report import Reporter
from batchscribe.scan import Batch, Found, Job, Root, Unreadable, plan, resolve_roots, walk
from batchscribe.transcript import Transcript

log = logging.getLogger("batchscribe.pipeline")

#: Jobs waiting for a worker, per worker: keeps workers busy while the walk stays lazy.
QUEUE_PER_WORKER = 2


@dataclass(slots=True)
class Twins:
    """Files of one run with the same bytes: the first is transcribed, the others reuse it."""

    waiting: list[Job] = field(default_factory=list)
    #: the first one's .json once written: a twin found later renders from it
    transcript_json: Path | None = None


class JournalCheckpoint:
    """Records an engine's billable steps in the journal the moment they happen."""

    def __init__(self, journal: Journal, key: str) -> None:
        self._journal, self._key = journal, key

    def uploaded(self, upload_url: str) -> None:
        self._journal.uploaded(self._key, upload_url)

    def submitted(self, transcript_id: str) -> None:
        self._journal.submitted(self._key, transcript_id)


EngineFactory = Callable[[Settings], Engine]


async def run(settings: Settings, reporter: Reporter, engine_factory: EngineFactory) -> None:
    """Transcribe everything under `settings.paths` that needs work; counts go to `reporter`.

    Raises ConfigError / LockHeld / FatalApiError for run-wide trouble; per-file failures are
    reported and the run goes on.
    """
    roots = resolve_roots(settings.paths)
    for root in roots:
        if not root.walk_from.exists():
            raise ConfigError(f"{root.walk_from}: no such file or folder.")
    with contextlib.ExitStack() as stack:
        journals: dict[Path, Journal] = {}
        for root in roots:
            if root.path not in journals:
                stack.enter_context(RunLock(root.path))
                journal = Journal(root.path)
                stack.callback(journal.close)
                journals[root.path] = journal
        pipeline = Pipeline(settings, LazyEngine(engine_factory, settings), journals, reporter)
        try:
            await pipeline.run(roots)
        except BaseExceptionGroup as group:
            raise _first_expected(group) from None
        finally:
            await pipeline.engine.aclose()


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

    def get(self) -> Engine:
        if self._engine is None:
            self._engine = self._factory(self._settings)
        return self._engine

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        engine: LazyEngine,
        journals: dict[Path, Journal],
        reporter: Reporter,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.journals = journals
        self.reporter = reporter
        self.formats = ("txt", "json")
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(
            maxsize=settings.concurrency * QUEUE_PER_WORKER
        )
        self.workers_left = settings.concurrency
        #: content digest -> the other jobs with those bytes, waiting on the first one's result
        self.twins: dict[str, Twins] = {}
        self.poller = Poller(
            engine.get,
            settings,
            finish=self._finish,
            fail=self._fail_with_twins,
            give_up=self._give_up,
        )

    async def run(self, roots: list[Root]) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._produce(roots))
            for _ in range(self.settings.concurrency):
                tasks.create_task(self._work())
            tasks.create_task(self.poller.run())
        # Every file ends reported; one left waiting on a twin would be a bug, never silence.
        for twins in self.twins.values():
            for job in twins.waiting:
                self._fail(job, FileError("its identical twin never finished; run again"))

    # -- producer
    async def _produce(self, roots: list[Root]) -> None:
        for root in roots:
            records = self.journals[root.path].records()
            folders = walk(root.walk_from, self.settings.extensions)
            while True:
                batch = await asyncio.to_thread(
                    _plan_next, folders, root.path, records, self.formats
                )
                if batch is None:
                    break
                self.reporter.skipped(batch.skipped)
                for problem in batch.problems:
                    self.reporter.failed(
                        problem.path, f"cannot read it ({problem.reason})", started=False
                    )
                for job in batch.jobs:
                    await self.queue.put(job)
        # Not in a `finally`: once cancelled, the workers are gone and a put could block forever.
        for _ in range(self.settings.concurrency):
            await self.queue.put(None)

    # -- workers
    async def _work(self) -> None:
        try:
            while (job := await self.queue.get()) is not None:
                await self._start(job)
        finally:
            self.workers_left -= 1
            if self.workers_left == 0:
                self.poller.close()

    async def _start(self, job: Job) -> None:
        self.reporter.started()
        journal = self.journals[job.root]
        try:
            _refuse_foreign_outputs(job)
            job = replace(job, digest=await _digest(job.source))
            engine = self.engine.get()
            resuming = _resumable(job, engine.name)
            if not resuming:
                journal.start(job.key, job.fingerprint, engine.name, _names(job))
                if await self._follow_twin(job):
                    return
            self.twins.setdefault(job.digest or "", Twins())
            result = await engine.start(job, JournalCheckpoint(journal, job.key))
        except FileError as err:
            self._fail_with_twins(job, err)
            return
        if isinstance(result, Finished):
            await self._finish(job, result.transcript)
        else:
            self.poller.add(job, result.transcript_id)

    async def _follow_twin(self, job: Job) -> bool:
        """Same bytes as a file already under way or done in this run: reuse its transcript."""
        twins = self.twins.get(job.digest or "")
        if twins is None:
            return False
        if twins.transcript_json is None:
            twins.waiting.append(job)
            return True
        try:
            transcript = await asyncio.to_thread(_read_transcript, twins.transcript_json)
        except (OSError, ValueError):
            return False  # the twin's output is gone: transcribe this one itself
        await self._finish(job, transcript)
        return True

    # -- writer
    async def _finish(self, job: Job, transcript: Transcript) -> None:
        try:
            await asyncio.to_thread(write_outputs, job, transcript)
        except OutputError as err:
            self._fail(job, err)
        else:
            self.journals[job.root].done(job.key)
            self.reporter.done(job.source, transcript.audio_duration)
            twins = self.twins.get(job.digest or "")
            if twins is not None and twins.transcript_json is None:
                twins.transcript_json = job.outputs.get("json")
        twins = self.twins.get(job.digest or "")
        if twins is not None and twins.waiting:
            waiting, twins.waiting = twins.waiting, []
            for twin in waiting:
                await self._finish(twin, transcript)

    def _fail(self, job: Job, err: FileError) -> None:
        # A file whose transcript exists stays `submitted`: it is paid for, so only poll again.
        record = self.journals[job.root].get(job.key)
        if not (record and record.state is State.SUBMITTED and isinstance(err, OutputError)):
            self.journals[job.root].failed(job.key, err.message)
        self.reporter.failed(job.source, err.message)

    def _fail_with_twins(self, job: Job, err: FileError) -> None:
        """The transcription itself failed: its twins fail alike, and a later twin tries anew."""
        self._fail(job, err)
        twins = self.twins.pop(job.digest or "", None)
        for twin in twins.waiting if twins else []:
            self._fail(twin, err)

    def _give_up(self, job: Job) -> None:
        """Past --max-wait: the journal keeps the transcript id, the next run collects it."""
        twins = self.twins.pop(job.digest or "", None)
        for waiting in [job, *(twins.waiting if twins else [])]:
            self.reporter.still_running(waiting.source)


def _plan_next(
    folders: Iterator[list[Found | Unreadable]],
    root: Path,
    records: dict[str, Record],
    formats: tuple[str, ...],
) -> Batch | None:
    """Next folder of the walk, planned; runs in a worker thread."""
    items = next(folders, None)
    if items is None:
        return None
    return plan(items, root, records, formats)


async def _digest(source: Path) -> str:
    try:
        return await asyncio.to_thread(content_digest, source)
    except OSError as err:
        raise InputError(f"cannot read it ({err.strerror or err}); check its permissions") from None


def _names(job: Job) -> list[str]:
    return [path.name for path in job.outputs.values()]


def _resumable(job: Job, engine: str) -> bool:
    """An earlier run of this engine got part-way with these very bytes: carry on from there."""
    record = job.record
    return (
        record is not None
        and record.engine == engine
        and record.fingerprint == job.fingerprint
        and record.state in (State.UPLOADED, State.SUBMITTED)
    )


def _refuse_foreign_outputs(job: Job) -> None:
    """Never overwrite a file batchscribe did not write (checked before anything is paid)."""
    ours = set(job.record.outputs) if job.record else set()
    for path in job.outputs.values():
        if path.name not in ours and path.exists():
            raise OutputError(
                f"{path.name} already exists and was not written by batchscribe; kept it. "
                "Move or delete it to transcribe this file.",
            )


def _read_transcript(path: Path) -> Transcript:
    return Transcript(json.loads(path.read_text(encoding="utf-8")))


def write_outputs(job: Job, transcript: Transcript) -> None:
    """Render and atomically write every requested format of one transcript."""
    for fmt, path in job.outputs.items():
        write_atomic(path, RENDERERS[fmt](transcript))
