"""What a worker does with one file: check, hash, decide where to start, then hand it on.

Nothing billable happens before the journal knows the attempt: a fresh one is recorded as
such (its `run/attempt.Attempt` holds the start back until its first record), an interrupted
one carries on from where the journal says (`journal.resume_point`).
The engine either finishes (local: straight to the writer) or submits (to the poller).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from batchscribe.engines.base import Engine, Finished, Submitted
from batchscribe.errors import FileError, ForeignOutput, InputError, Stopped, read_advice
from batchscribe.fingerprint import Interrupted, content_digest
from batchscribe.output.names import name_too_long
from batchscribe.recording import Recording, Resume
from batchscribe.report import Reporter
from batchscribe.run.adopt import first_foreign
from batchscribe.run.attempt import Attempt, Attempts
from batchscribe.run.budget import RunBudget
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.job import Job, Wanted
from batchscribe.run.stopping import Stop
from batchscribe.run.writer import Writer
from batchscribe.state.journal import Start, resume_point
from batchscribe.state.state_dirs import StateDirs


class Worker:
    """Starts files; shared by the run's workers (all its state is in the identical and budget)."""

    def __init__(
        self,
        *,
        state_dirs: StateDirs,
        identical: IdenticalRecordings,
        writer: Writer,
        attempts: Attempts,
        reporter: Reporter,
        engine: Callable[[], Engine],
        budget: RunBudget,
        wanted: Wanted,
        upload_ttl: float,
        submitted: Callable[[Job, str], None],
        stop: Stop,
    ) -> None:
        self._state_dirs, self._identical, self._writer = state_dirs, identical, writer
        self._attempts = attempts
        self._reporter, self._engine, self._budget = reporter, engine, budget
        self._wanted, self._upload_ttl = wanted, upload_ttl
        #: where a submitted transcript goes: the poller
        self._submitted = submitted
        self._stop = stop

    async def start(self, job: Job) -> None:
        """Take one file as far as this worker goes; per-file trouble is reported, not raised."""
        # A copy started again after its original never came was counted when it first started.
        if job.key not in self._identical.requeued and not await self._budget.admits(job.source):
            self._reporter.over_budget(job.source)
            return
        attempt = self._attempts.open(job)
        begun = False  # the journal knows this attempt (`_attempt` recorded it)
        try:
            digest, adopted = await asyncio.to_thread(
                _checked_digest, job, self._stop.now, self._first_foreign
            )
            job = replace(job, digest=digest, reason="adopted" if adopted else job.reason)
            begun = True
            result = await self._attempt(job, attempt)
        except FileError as err:
            record = job.record
            fresh = record is None or record.fingerprint != job.fingerprint
            if not begun and err.permanent and fresh:
                await attempt.failed_unbegun(job, self._wanted)
            await self._writer.fail_together(job, err)
            return
        except Stopped:
            self._writer.left_for_next_run(job)
            return
        if result is not None:
            self._reporter.transcribing(job.source)
            self._submitted(job, result.transcript_id)

    async def _attempt(self, job: Job, attempt: Attempt) -> Submitted | None:
        """Carry on or start afresh; None when the file was settled here (or waits for the
        file with the same content): only a submitted transcript goes on, to the poller."""
        assert job.digest is not None
        owner = self._identical.take_over(job)
        wanted = self._wanted
        resume = resume_point(
            job.record,
            job.fingerprint,
            engine=wanted.engine,
            options=wanted.options,
            now=time.time(),
            upload_ttl=self._upload_ttl,
        )
        if (adopted := self._identical.adopted.pop(job.key, None)) is not None:
            await attempt.adopt(adopted)
        if resume is None:
            names = tuple(path.name for path in job.outputs.values())
            attempt.hold(
                Start(job.key, job.fingerprint, wanted.engine, names, wanted.options, job.digest)
            )
        # Another file is making these very bytes' transcript (a copy, or a second row of one
        # interrupted transcript): wait for it rather than pay or watch it twice. Its writer
        # writes this file's outputs once it waits, so they are claimed first.
        if self._identical.waits(job, owner=owner):
            await attempt.begin()
        if self._identical.claim(job, owner=owner):
            return None
        # Kept already (collected before a crash kept it from being written, or made for a
        # copy): render it, unpaid. Only this attempt's own transcript is deleted remotely.
        if await self._from_store(job, remote=resume is not None):
            return None
        if self._stop.requested:
            await attempt.begin()  # the next run does it, as after any stop
            raise Stopped()  # not begun: nothing to finish
        return await self._transcribe(job, resume, attempt)

    async def _transcribe(
        self, job: Job, resume: Resume | None, attempt: Attempt
    ) -> Submitted | None:
        """The engine's part: a local transcript goes straight to the writer."""
        attempt.reached = resume is not None and bool(resume.upload_url or resume.transcript_id)
        # Anything else ends the run before the attempt began (the model cannot load, and the
        # workers it cancels): its start, still held back, is never written, so a finished
        # file stays done and is not called unfinished by the next run.
        try:
            engine = self._engine()
            work = engine.start(Recording(job.source, job.fingerprint, resume), attempt)
            result = await self._stop.unless_stopped(work, droppable=lambda: not attempt.reached)
        except FileError as err:
            await self._writer.fail_together(job, err)
            return None
        except Stopped:
            await attempt.begin()  # the next run does it
            raise
        if isinstance(result, Finished):
            await self._writer.finish(job, result.transcript)
            return None
        # Submitted without a step recorded (an engine that reports none): before polling.
        await attempt.begin()
        return result

    def _first_foreign(self, job: Job, digest: str, existing: dict[str, Path]) -> Path | None:
        """Of outputs the journal does not know, the first batchscribe did not write (blocking):
        the others are adopted (see `adopt.py`)."""
        kept = self._state_dirs[job.state_root].store.load(digest, self._wanted.options)
        return first_foreign(existing, kept, self._writer.limits)

    async def _from_store(self, job: Job, *, remote: bool) -> bool:
        """Same bytes and options as a transcript already kept: render from it, unpaid."""
        assert job.digest is not None
        store = self._state_dirs[job.state_root].store
        kept = await asyncio.to_thread(store.load, job.digest, self._wanted.options)
        if kept is None:
            return False
        await self._writer.settle(job, kept, remote=remote)
        return True


def _checked_digest(
    job: Job,
    stop: threading.Event,
    first_foreign: Callable[[Job, str, dict[str, Path]], Path | None],
) -> tuple[str, bool]:
    """The content's sha256, once no foreign output stands in the way, and whether outputs the
    journal did not know were adopted. Blocking (stats and a read of the whole file): one trip
    to a thread per file for all of it."""
    unknown = _unclaimed_outputs(job)
    try:
        digest = content_digest(job.source, stop)
    except Interrupted:
        raise Stopped() from None
    except OSError as err:
        raise InputError(f"cannot read it {read_advice(err)}") from None
    if not unknown:
        return digest, False
    foreign = first_foreign(job, digest, unknown)
    if foreign is not None:
        # Never overwrite a file batchscribe did not write (checked before anything is paid).
        what = "is a symbolic link" if os.path.islink(foreign) else "already exists"
        raise ForeignOutput(
            f"{foreign.name} {what} and was not written by batchscribe; kept it. "
            "Move or delete it, then run with --retry-failed to transcribe this file.",
        )
    return digest, True


def _unclaimed_outputs(job: Job) -> dict[str, Path]:
    """Outputs that exist but that the journal does not say are ours (format -> path).
    Raises InputError (for good) when an output's name is longer than its disk allows."""
    ours = set(job.record.outputs) if job.record else set()
    unknown = {}
    for fmt, path in job.outputs.items():
        too_long = name_too_long(path)
        if too_long:
            raise InputError(too_long, permanent=True)
        # A link is never ours, claimed or not: writing would replace the user's link.
        if os.path.islink(path) or (path.name not in ours and os.path.lexists(path)):
            unknown[fmt] = path
    return unknown
