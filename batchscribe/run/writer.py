"""How a file ends: store the transcript, write its outputs (and its copies'), journal, report.

Order matters for "never pay twice, never lose a transcript": the transcript is kept in the
store before any output is written, outputs are written atomically before the journal says
"done", and a transcript is deleted from the service (--delete-after) only once every file
that wanted it is written.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchscribe.engines.base import Engine
from batchscribe.errors import ApiError, FileError, OutputError
from batchscribe.output.atomic import REAL_FILE_OPS, FileOps, write_atomic
from batchscribe.output.formats import render
from batchscribe.output.subtitles import CueLimits
from batchscribe.report import Reporter, low_confidence_note
from batchscribe.run.attempt import Attempt, Attempts
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.job import OUTPUTS_MISSING, Job
from batchscribe.run.truncation import flag_truncated, read_container, truncated_note
from batchscribe.state.state_dirs import StateDirs
from batchscribe.transcript import Transcript


class Writer:
    """The end of every file of a run, whichever engine, worker or poller got it there. Its
    journal records are its `Attempt`'s to write."""

    def __init__(
        self,
        state_dirs: StateDirs,
        identical: IdenticalRecordings,
        reporter: Reporter,
        engine: Callable[[], Engine],
        attempts: Attempts,
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
        self._attempts = attempts

    def left_for_next_run(self, job: Job) -> None:
        """A stop came before `job` (and its copies) cost anything: the next run does them."""
        for each in self._identical.with_copies(job):
            self._attempts.close(each)
            self._reporter.left_for_next_run(each.source)

    @property
    def limits(self) -> CueLimits:
        """The subtitle limits outputs are rendered with (to recognise outputs as ours)."""
        return self._limits

    async def finish(self, job: Job, transcript: Transcript) -> None:
        """A fresh transcript: keep it in the store first, then write every file that wants it."""
        assert job.digest is not None
        digest, store = job.digest, self._state_dirs[job.state_root].store
        await self._attempts.of(job).claim(job)

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
            await self.fail(job, err)  # still `submitted`: the next run fetches it
            return
        await self._settled(job, error, kept, remote=True)

    async def settle(self, job: Job, transcript: Transcript, *, remote: bool = True) -> None:
        """Write the outputs of `job` and of the copies waiting for it; then, if asked and only
        if every one was written, delete the transcript from the service (`remote`: it came
        from the service in this job's attempt, not from an earlier file's)."""
        await self._attempts.of(job).claim(job)
        error = await asyncio.to_thread(self._written, job, transcript)
        await self._settled(job, error, transcript, remote=remote)

    async def fail(self, job: Job, err: FileError) -> None:
        """One file failed (its attempt records how)."""
        await self._attempts.of(job).failed(err)
        self._attempts.close(job)
        self._reporter.failed(job.source, err.message)

    async def fail_together(self, job: Job, err: FileError) -> None:
        """The transcription itself failed: its copies fail alike (a later copy tries anew)."""
        for each in self._identical.with_copies(job):
            await self.fail(each, err)

    def give_up(self, job: Job) -> None:
        """Past --max-wait: the journal keeps the transcript id, the next run collects it."""
        for each in self._identical.with_copies(job):
            self._attempts.close(each)
            self._reporter.still_running(each.source)

    def _written(self, job: Job, transcript: Transcript) -> OutputError | None:
        """Write `job`'s outputs (blocking); the error, if one could not be written."""
        outputs = job.outputs
        record = job.record
        if job.reason == OUTPUTS_MISSING and record is not None and record.options == self._options:
            # The same transcript wrote the ones still there: a correction made in one is kept.
            # (With --keep-existing after an options change, it is a new one: all are written.)
            outputs = {fmt: path for fmt, path in outputs.items() if not os.path.lexists(path)}
        try:
            write_outputs(outputs, transcript, self._limits, self._files)
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
    ) -> None:
        """`job`'s outputs are written (or `error`): write its copies' in one more trip, record
        every file written in one commit per journal, report each, then delete if asked."""
        copies = self._identical.release(job.digest)
        jobs = [job, *copies]
        errors = [error]
        if copies:
            errors += await asyncio.to_thread(self._written_all, copies, transcript)
        written = [each for each, err in zip(jobs, errors, strict=True) if err is None]
        await Attempt.done_together(self._attempts.of(each) for each in written)
        for each, err in zip(jobs, errors, strict=True):
            if err is not None:
                await self.fail(each, err)
                continue
            self._attempts.close(each)
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
