"""How a file ends: store the transcript, write its outputs (and its copies'), journal, report.

Order matters for "never pay twice, never lose a transcript": the transcript is kept in the
store before any output is written, outputs are written atomically before the journal says
"done", and a transcript is deleted from the service (--delete-after) only once every file
that wanted it is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchscribe.engines.base import Engine
from batchscribe.errors import ApiError, FileError, OutputError, RetryableApiError
from batchscribe.output.atomic import REAL_FILE_OPS, FileOps, write_atomic
from batchscribe.output.formats import render
from batchscribe.output.subtitles import CueLimits
from batchscribe.report import Reporter, low_confidence_note
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.truncation import flag_truncated, read_container, truncated_note
from batchscribe.run.walk import Job
from batchscribe.state.journal import Start
from batchscribe.state.state_dirs import StateDirs
from batchscribe.transcript import Transcript


class Writer:
    """The end of every file of a run, whichever engine, worker or poller got it there."""

    def __init__(
        self,
        state_dirs: StateDirs,
        identical: IdenticalRecordings,
        reporter: Reporter,
        engine: Callable[[], Engine],
        *,
        options: str,
        limits: CueLimits,
        delete_after: bool,
        files: FileOps = REAL_FILE_OPS,
    ) -> None:
        self._state_dirs, self._identical, self._reporter = state_dirs, identical, reporter
        self._engine = engine
        self._options, self._limits, self._delete_after = options, limits, delete_after
        self._files = files
        #: sources started and not yet ended (done, failed, given up or left): the run's own
        #: record of what is in flight, so --watch never queues a file twice
        self.underway: set[Path] = set()

    def begin(self, job: Job) -> None:
        """`job` has started: it is in flight until one of the ends below."""
        self.underway.add(job.source)
        self._reporter.started(job.source)

    def left_for_next_run(self, job: Job) -> None:
        """A stop came before `job` (and its copies) cost anything: the next run does them."""
        for each in self._identical.with_copies(job):
            self.underway.discard(each.source)
            self._reporter.left_for_next_run(each.source)

    @property
    def limits(self) -> CueLimits:
        """The subtitle limits outputs are rendered with (to recognise outputs as ours)."""
        return self._limits

    async def finish(self, job: Job, transcript: Transcript, *, start: Start | None = None) -> None:
        """A fresh transcript: keep it in the store first, then write every file that wants it.
        `start`: the attempt's start, if still held back (a local transcript)."""
        assert job.digest is not None
        digest, store = job.digest, self._state_dirs[job.state_root].store
        start = await self._claimed(job, start)

        def keep_and_write() -> tuple[Transcript, OutputError | None]:
            """One trip to a thread: a recording cut short is flagged (its container read),
            the transcript kept in the store (first: nothing is written without), then this
            file's outputs written."""
            flagged = flag_truncated(transcript.data, read_container(job.source))
            kept = transcript if flagged is transcript.data else Transcript(flagged)
            store.save(digest, self._options, kept)
            return kept, self._written(job, kept)

        try:
            kept, error = await asyncio.to_thread(keep_and_write)
        except OutputError as err:
            await self.fail(job, err, start=start)  # still `submitted`: the next run fetches it
            return
        await self._settled(job, error, kept, remote=True, start=start)

    async def settle(
        self, job: Job, transcript: Transcript, *, remote: bool = True, start: Start | None = None
    ) -> None:
        """Write the outputs of `job` and of the copies waiting for it; then, if asked and only
        if every one was written, delete the transcript from the service (`remote`: it came
        from the service in this job's attempt, not from an earlier file's). `start`: the
        attempt's start, if still held back."""
        start = await self._claimed(job, start)
        error = await asyncio.to_thread(self._written, job, transcript)
        await self._settled(job, error, transcript, remote=remote, start=start)

    async def fail(self, job: Job, err: FileError, *, start: Start | None = None) -> None:
        """One file failed. Transient trouble after a billable step keeps that step: an upload
        is submitted, a transcript polled, on the next run; never paid for again. `start`: the
        attempt's start, if still held back: recorded in the same commit."""
        transient = isinstance(err, OutputError | RetryableApiError)
        journal = self._state_dirs[job.state_root].journal
        await journal.failed(
            job.key, err.message, permanent=err.permanent, transient=transient, start=start
        )
        self.underway.discard(job.source)
        self._reporter.failed(job.source, err.message)

    async def fail_together(self, job: Job, err: FileError, *, start: Start | None = None) -> None:
        """The transcription itself failed: its copies fail alike (a later copy tries anew)."""
        for each in self._identical.with_copies(job):
            await self.fail(each, err, start=start if each is job else None)

    def give_up(self, job: Job) -> None:
        """Past --max-wait: the journal keeps the transcript id, the next run collects it."""
        for each in self._identical.with_copies(job):
            self.underway.discard(each.source)
            self._reporter.still_running(each.source)

    async def _claimed(self, job: Job, start: Start | None) -> Start | None:
        """A held-back start that claims outputs not yet owned is written now, before any of
        them; else it is handed back, to be written in one commit with `done`."""
        if start is not None and start.claims_beyond(job.record):
            await self._state_dirs[job.state_root].journal.begin(start)
            return None
        return start

    def _written(self, job: Job, transcript: Transcript) -> OutputError | None:
        """Write `job`'s outputs (blocking); the error, if one could not be written."""
        try:
            write_outputs(job.outputs, transcript, self._limits, self._files)
        except OutputError as err:
            return err
        return None

    def _written_all(self, jobs: list[Job], transcript: Transcript) -> list[OutputError | None]:
        return [self._written(each, transcript) for each in jobs]

    async def _settled(
        self,
        job: Job,
        error: OutputError | None,
        transcript: Transcript,
        *,
        remote: bool,
        start: Start | None,
    ) -> None:
        """`job`'s outputs are written (or `error`): write its copies' in one more trip, record
        every file written in one commit per journal, report each, then delete if asked."""
        copies = self._identical.release(job.digest)
        jobs = [job, *copies]
        errors = [error]
        if copies:
            errors += await asyncio.to_thread(self._written_all, copies, transcript)
        done: dict[Path, list[str]] = {}
        for each, err in zip(jobs, errors, strict=True):
            if err is None:
                done.setdefault(each.state_root, []).append(each.key)
        for root, keys in done.items():
            mine = root == job.state_root and error is None
            await self._state_dirs[root].journal.done(*keys, start=start if mine else None)
        for each, err in zip(jobs, errors, strict=True):
            if err is not None:
                await self.fail(each, err, start=start if each is job else None)
                continue
            self.underway.discard(each.source)
            reason = "" if each.reason == "new" else f" ({each.reason})"
            self._reporter.done(
                each.source,
                transcript.audio_duration,
                reason,
                model=transcript.model_used,
                no_speech=not transcript.text.strip(),
                low_confidence=low_confidence_note(transcript.data),
                truncated=truncated_note(transcript.data),
                language=_detected_language(transcript.data),
            )
        if remote and not any(errors):
            await self._delete_remote(job, transcript)

    async def _delete_remote(self, job: Job, transcript: Transcript) -> None:
        """--delete-after: remove the transcript from the service once its outputs are safe."""
        transcript_id = transcript.transcript_id
        if not self._delete_after or transcript_id is None:
            return
        try:
            await self._engine().delete(transcript_id)
        except ApiError as err:
            self._reporter.warn(
                job.source,
                f"could not delete transcript {transcript_id} from AssemblyAI ({err.message}); "
                "the outputs are kept",
            )


def write_outputs(
    outputs: Mapping[str, Path],
    transcript: Transcript,
    limits: CueLimits,
    files: FileOps = REAL_FILE_OPS,
) -> None:
    """Render and atomically write every requested format of one transcript (blocking)."""
    for fmt, path in outputs.items():
        write_atomic(path, render(fmt, transcript, limits), ops=files)


def _detected_language(data: Mapping[str, Any]) -> object:
    """The language the engine detected (not the one it was given): for the `done` line."""
    detected = data.get("language_probability") is not None or bool(data.get("language_detection"))
    return data.get("language_code") if detected else None
