"""One run: producer -> bounded queue -> N workers -> one poller -> outputs, in one TaskGroup.

Cancellation (Ctrl-C, SIGTERM, a fatal error) flows through the TaskGroup; every billable step
is journaled as it happens and outputs are written atomically, so stopping anywhere is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batchscribe.config import Settings
from batchscribe.durations import audio_seconds
from batchscribe.engines.base import Engine, Finished
from batchscribe.errors import (
    ApiError,
    BatchscribeError,
    ConfigError,
    FileError,
    InputError,
    OutputError,
    RetryableApiError,
)
from batchscribe.fingerprint import content_digest
from batchscribe.formats import render, write_atomic
from batchscribe.journal import Journal, Record, State
from batchscribe.lock import STATE_DIR, RunLock
from batchscribe.poller import Poller
from batchscribe.report import Reporter, summary_json
from batchscribe.scan import (
    Batch,
    Found,
    Job,
    Nested,
    Root,
    Unreadable,
    Wanted,
    plan,
    resolve_roots,
    walk,
)
from batchscribe.store import TranscriptStore
from batchscribe.subtitles import CueLimits
from batchscribe.transcript import Transcript

log = logging.getLogger("batchscribe.pipeline")

#: Jobs waiting for a worker, per worker: keeps workers busy while the walk stays lazy.
QUEUE_PER_WORKER = 2


@dataclass(frozen=True, slots=True)
class Home:
    """What belongs to one journal folder: the journal and the transcript store."""

    journal: Journal
    store: TranscriptStore


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
    roots = resolve_roots(settings.paths, settings.output_dir)
    for root in roots:
        if not root.walk_from.exists():
            raise ConfigError(f"{root.walk_from}: no such file or folder.")
    with contextlib.ExitStack() as stack:
        pipeline = Pipeline(settings, LazyEngine(engine_factory, settings), reporter, stack)
        for root in roots:
            pipeline.open_home(root.path)
        outcome = "interrupted"
        try:
            await pipeline.run(roots)
            outcome = "completed"
        except BaseExceptionGroup as group:
            error = _first_expected(group)
            outcome = f"stopped: {error}" if isinstance(error, BatchscribeError) else outcome
            raise error from None
        finally:
            await pipeline.engine.aclose()
            pipeline.end_runs(outcome)


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the folder ({err.strerror}).") from None


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
        reporter: Reporter,
        stack: contextlib.ExitStack,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.homes: dict[Path, Home] = {}
        self.reporter = reporter
        self._stack = stack
        self._runs: dict[Path, int] = {}
        self.wanted = Wanted.of(settings)
        self.engine_name = self.wanted.engine
        #: what has been started so far, for --max-files and --max-audio-hours
        self.budget_files = 0
        self.budget_seconds = 0.0
        self.limits: CueLimits = settings.cue_limits()
        #: content digest -> files with the same bytes waiting for the first one's transcript
        self.twins: dict[str, list[Job]] = {}
        #: digests an interrupted run left uploaded or submitted -> (journal folder, its row)
        self.reserved: dict[str, tuple[Path, Record]] = {}
        #: jobs started a second time after their reservation's owner never came
        self.requeued: set[str] = set()
        self._new_round()

    def _new_round(self) -> None:
        """A fresh queue, worker count and poller for one round of the run."""
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue(
            maxsize=self.settings.concurrency * QUEUE_PER_WORKER
        )
        self.workers_left = self.settings.concurrency
        self.poller = Poller(
            self.engine.get,
            self.settings,
            finish=self._finish,
            fail=self._fail_with_twins,
            give_up=self._give_up,
        )

    def open_home(self, path: Path) -> None:
        """Lock a journal folder for this run and open its journal (once). Raises LockHeld."""
        if path in self.homes:
            return
        _make_folder(path)
        self._stack.enter_context(RunLock(path))
        journal = Journal(path)
        self._stack.callback(journal.close)
        self.homes[path] = Home(journal, TranscriptStore(path / STATE_DIR))
        self._runs[path] = journal.begin_run()

    def end_runs(self, outcome: str) -> None:
        for path, run_id in self._runs.items():
            self.homes[path].journal.end_run(run_id, outcome, summary_json(self.reporter.summary))

    async def run(self, roots: list[Root]) -> None:
        await self._pass(self._produce(roots))
        # Copies that waited for an interrupted original this run never reached (deleted,
        # changed, outside the paths given, over budget): nothing else can settle them now,
        # so they go again on their own; one becomes the original of the others.
        stranded = []
        for digest, (home, owner) in self.reserved.items():
            waiting = self.twins.pop(digest, [])
            if waiting and owner.transcript_id and home == waiting[0].root:
                # The original's transcript exists: the first copy collects it, unpaid.
                first = waiting[0]
                self.homes[home].journal.submitted(first.key, owner.transcript_id)
                waiting[0] = replace(
                    first,
                    record=replace(owner, key=first.key, fingerprint=first.fingerprint),
                )
            stranded += waiting
        self.reserved.clear()
        if stranded:
            self.reporter.summary.in_progress -= len(stranded)
            self.requeued.update(job.key for job in stranded)
            await self._pass(self._feed(stranded))
        # Every file ends reported; one left waiting on a twin would be a bug, never silence.
        for waiting in self.twins.values():
            for job in waiting:
                self._fail(job, FileError("its identical twin never finished; run again"))

    async def _pass(self, producer: Coroutine[Any, Any, None]) -> None:
        """One round of producer, workers and poller, all in one TaskGroup."""
        self._new_round()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(producer)
            for _ in range(self.settings.concurrency):
                tasks.create_task(self._work())
            tasks.create_task(self.poller.run())

    async def _feed(self, jobs: list[Job]) -> None:
        for job in jobs:
            await self.queue.put(replace(job, digest=None))
        for _ in range(self.settings.concurrency):
            await self.queue.put(None)

    # -- producer
    async def _produce(self, roots: list[Root]) -> None:
        todo = list(roots)
        journals_read: dict[Path, dict[str, Record]] = {}
        listings: dict[str, frozenset[str]] = {}
        while todo:
            root = todo.pop(0)
            if root.path not in journals_read:  # once per journal, however many roots share it
                journals_read[root.path] = self.homes[root.path].journal.records()
                self._expect_resumed_twins(root.path, journals_read[root.path])
            records = journals_read[root.path]
            own_tree = self.settings.output_dir is None
            folders = walk(
                root.walk_from, self.settings.extensions, nested=own_tree, listings=listings
            )
            while True:
                batch = await asyncio.to_thread(_plan_next, folders, root, records, self.wanted)
                if batch is None:
                    break
                self.reporter.skipped(batch.skipped)
                self.reporter.summary.failed_before += batch.failed_before
                self.reporter.discovered(len(batch.jobs))
                for problem in batch.problems:
                    self.reporter.failed(
                        problem.path, f"cannot read it ({problem.reason})", started=False
                    )
                todo += self._enter_nested(batch.nested)
                for job in batch.jobs:
                    await self.queue.put(job)
        # Not in a `finally`: once cancelled, the workers are gone and a put could block forever.
        for _ in range(self.settings.concurrency):
            await self.queue.put(None)

    def _enter_nested(self, folders: list[Path]) -> list[Root]:
        """Sub-folders with their own journal: walked under their own lock and journal."""
        roots = []
        for folder in folders:
            try:
                self.open_home(folder)
            except BatchscribeError as err:  # locked by another run, or its journal unusable
                self.reporter.failed(folder, f"skipped: {err}", started=False)
                continue
            roots.append(Root(path=folder, walk_from=folder, base=folder))
        return roots

    def _expect_resumed_twins(self, home: Path, records: dict[str, Record]) -> None:
        """Content already uploaded or submitted by an interrupted run: a file with the same
        bytes must wait for that transcript, even if the walk reaches it first. The
        reservation names its owner, which takes it over when it arrives."""
        for record in records.values():
            if (
                record.digest
                and record.state in (State.UPLOADED, State.SUBMITTED)
                and record.engine == self.wanted.engine
                and record.options in (None, self.wanted.options)
                and record.digest not in self.reserved
            ):
                self.twins.setdefault(record.digest, [])
                self.reserved[record.digest] = (home, record)

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
        if await self._over_budget(job):
            self.reporter.summary.over_budget += 1
            return
        self.reporter.started(job.source)
        home = self.homes[job.root]
        try:
            _refuse_foreign_outputs(job)
            job = replace(job, digest=await _digest(job.source))
            # The owner of a reservation has arrived: from here it is an ordinary original.
            reservation = self.reserved.get(job.digest or "")
            owner = reservation is not None and (reservation[0], reservation[1].key) == (
                job.root,
                job.key,
            )
            if owner:
                del self.reserved[job.digest or ""]
            if _resumable(job, self.wanted):
                self.twins.setdefault(job.digest or "", [])
                # Collected before a crash kept it from being written: never ask again.
                kept = await asyncio.to_thread(
                    home.store.load, job.digest or "", self.wanted.options
                )
                if kept is not None:
                    await self._settle(job, kept)
                    return
            else:
                home.journal.start(
                    job.key,
                    job.fingerprint,
                    self.engine_name,
                    _names(job),
                    self.wanted.options,
                    job.digest,
                )
                # A fresh attempt: the engine must not resume the old upload or transcript.
                job = replace(job, record=None)
                if await self._reuse(job, owner=owner):
                    return
            engine = self.engine.get()
            result = await engine.start(job, JournalCheckpoint(home.journal, job.key))
        except FileError as err:
            self._fail_with_twins(job, err)
            return
        if isinstance(result, Finished):
            await self._finish(job, result.transcript)
        else:
            self.reporter.transcribing(job.source)
            self.poller.add(job, result.transcript_id)

    async def _over_budget(self, job: Job) -> bool:
        """--max-files / --max-audio-hours: once reached, start nothing new (the next run will)."""
        if job.key in self.requeued:
            return False  # counted when it first started
        settings = self.settings
        if settings.max_files is not None and self.budget_files >= settings.max_files:
            return True
        if settings.max_audio_hours is not None:
            if self.budget_seconds >= settings.max_audio_hours * 3600:
                return True
            seconds = await asyncio.to_thread(audio_seconds, job.source)
            self.budget_seconds += seconds or 0.0
        self.budget_files += 1
        return False

    async def _reuse(self, job: Job, *, owner: bool = False) -> bool:
        """Same bytes and options as a transcript already made (this run or an earlier one):
        render from it, or wait for it if it is under way. Nothing is paid twice.
        `owner`: this job held the reservation on its content, so it never waits on itself."""
        assert job.digest is not None
        if job.digest in self.twins and not owner:
            self.twins[job.digest].append(job)
            return True
        # Before any await: a twin arriving meanwhile must wait.
        self.twins.setdefault(job.digest, [])
        store = self.homes[job.root].store
        kept = await asyncio.to_thread(store.load, job.digest, self.wanted.options)
        if kept is None:
            return False
        await self._settle(job, kept, remote=False)
        return True

    # -- writer
    async def _finish(self, job: Job, transcript: Transcript) -> None:
        """A fresh transcript: keep it in the store first, then write every file that wants it."""
        assert job.digest is not None
        store = self.homes[job.root].store
        try:
            await asyncio.to_thread(store.save, job.digest, self.wanted.options, transcript)
        except OutputError as err:
            self._fail(job, err)  # still `submitted`: the next run fetches it again, unpaid
            return
        await self._settle(job, transcript)

    async def _settle(self, job: Job, transcript: Transcript, *, remote: bool = True) -> None:
        """Write the outputs of `job` and of its waiting twins; then, if asked and only if
        every one was written, delete the transcript from the service (`remote`: it came
        from the service in this job's attempt, not from an earlier file's)."""
        written = [await self._write(each, transcript)
                   for each in (job, *self.twins.pop(job.digest or "", []))]  # fmt: skip
        if remote and all(written):
            await self._delete_remote(job, transcript)

    async def _write(self, job: Job, transcript: Transcript) -> bool:
        try:
            await asyncio.to_thread(write_outputs, job, transcript, self.limits)
        except OutputError as err:
            self._fail(job, err)
            return False
        self.homes[job.root].journal.done(job.key)
        reason = "" if job.reason == "new" else f" ({job.reason})"
        self.reporter.done(job.source, transcript.audio_duration, reason)
        return True

    async def _delete_remote(self, job: Job, transcript: Transcript) -> None:
        """--delete-after: remove the transcript from the service once its outputs are safe."""
        transcript_id = transcript.data.get("id")
        if not self.settings.delete_after or not isinstance(transcript_id, str):
            return
        try:
            await self.engine.get().delete(transcript_id)
        except ApiError as err:
            self.reporter.warn(
                job.source,
                f"could not delete transcript {transcript_id} from AssemblyAI ({err.message}); "
                "the outputs are kept",
            )

    def _fail(self, job: Job, err: FileError) -> None:
        # Transient trouble after a billable step keeps that step: an upload is submitted, a
        # transcript polled, on the next run; never paid for again.
        journal = self.homes[job.root].journal
        record = journal.get(job.key)
        transient = isinstance(err, OutputError | RetryableApiError)
        if not (record and record.state in (State.UPLOADED, State.SUBMITTED) and transient):
            journal.failed(job.key, err.message, permanent=err.permanent)
        self.reporter.failed(job.source, err.message)

    def _fail_with_twins(self, job: Job, err: FileError) -> None:
        """The transcription itself failed: its twins fail alike, and a later twin tries anew."""
        self._fail(job, err)
        for twin in self.twins.pop(job.digest or "", []):
            self._fail(twin, err)

    def _give_up(self, job: Job) -> None:
        """Past --max-wait: the journal keeps the transcript id, the next run collects it."""
        for waiting in [job, *self.twins.pop(job.digest or "", [])]:
            self.reporter.still_running(waiting.source)


def _plan_next(
    folders: Iterator[list[Found | Unreadable | Nested]],
    root: Root,
    records: dict[str, Record],
    wanted: Wanted,
) -> Batch | None:
    """Next folder of the walk, planned; runs in a worker thread."""
    items = next(folders, None)
    if items is None:
        return None
    return plan(items, root, records, wanted)


async def _digest(source: Path) -> str:
    try:
        return await asyncio.to_thread(content_digest, source)
    except OSError as err:
        raise InputError(f"cannot read it ({err.strerror or err}); check its permissions") from None


def _names(job: Job) -> list[str]:
    return [path.name for path in job.outputs.values()]


def _resumable(job: Job, wanted: Wanted) -> bool:
    """An earlier run got part-way with these very bytes and options: carry on from there."""
    record = job.record
    return (
        record is not None
        and record.engine == wanted.engine
        and record.options in (None, wanted.options)
        and record.fingerprint == job.fingerprint
        and record.state in (State.UPLOADED, State.SUBMITTED)
    )


def _refuse_foreign_outputs(job: Job) -> None:
    """Never overwrite a file batchscribe did not write (checked before anything is paid)."""
    ours = set(job.record.outputs) if job.record else set()
    for path in job.outputs.values():
        if path.name not in ours and os.path.exists(path):
            raise OutputError(
                f"{path.name} already exists and was not written by batchscribe; kept it. "
                "Move or delete it to transcribe this file.",
            )


def write_outputs(job: Job, transcript: Transcript, limits: CueLimits) -> None:
    """Render and atomically write every requested format of one transcript."""
    for fmt, path in job.outputs.items():
        write_atomic(path, render(fmt, transcript, limits))
