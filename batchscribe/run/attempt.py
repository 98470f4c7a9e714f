"""One file's attempt, the only writer of its journal records, and the run's attempts in flight.

An attempt's `Start` is held back, not written, until the attempt's first record: the upload, a
failure, or `done` goes to the journal in one commit with it, so nothing billable and no output
it claims comes before the journal knows the attempt, and a run that ends before the attempt
began (the model cannot load) leaves a finished file done. Each write below says which record
it makes; none of them is made anywhere else.

`Attempts` holds the attempts of the files in flight (started, not yet ended): the run's own
record of what is under way, so --watch never queues a file twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from batchscribe.errors import FileError, OutputError, RetryableApiError
from batchscribe.report import Reporter
from batchscribe.run.job import Job, Wanted
from batchscribe.state.journal import Start
from batchscribe.state.state_dirs import RunJournal, StateDirs


class Attempt:
    """One file's attempt: its held-back start, its billable steps (it is the `Checkpoint` the
    engine is given), and how it ends in the journal."""

    def __init__(
        self,
        job: Job,
        journal: RunJournal,
        *,
        on_transcribing: Callable[[], None] = lambda: None,
        on_heard: Callable[[float, float | None], None] = lambda seconds, of: None,
    ) -> None:
        self.key, self.journal = job.key, journal
        self._start: Start | None = None
        #: a step was reached (or is resumed): from here a stop lets the attempt finish
        self.reached = False
        self._on_transcribing, self.heard = on_transcribing, on_heard

    def hold(self, start: Start) -> None:
        """A fresh attempt: its start is written with the attempt's first record."""
        self._start = start

    def _taken(self) -> Start | None:
        """The held-back start, if no record has written it yet; whoever takes it writes it."""
        start, self._start = self._start, None
        return start

    # The engine's checkpoint (engines/base.Checkpoint)

    def transcribing(self) -> None:
        self.reached = True
        self._on_transcribing()

    async def uploaded(self, upload_url: str) -> None:
        self.reached = True
        await self.journal.uploaded(self.key, upload_url, start=self._taken())

    async def submitted(self, transcript_id: str) -> None:
        self.reached = True
        await self.journal.submitted(self.key, transcript_id, start=self._taken())

    # The run's records

    async def begin(self) -> None:
        """The held-back start written on its own: before waiting on another file, before a
        stop hands the file to the next run, before the poller takes a submitted transcript."""
        await self.journal.begin(self._taken())

    async def claim(self, job: Job) -> None:
        """Outputs are about to be written: a held-back start that claims outputs the journal
        does not give this file yet is written first; else it waits for `done`."""
        if self._start is not None and self._start.claims_beyond(job.record):
            await self.begin()

    async def adopt(self, transcript_id: str) -> None:
        """A copy collecting its never-reached original's transcript: journaled before anything
        else, so a crash from here on polls it again instead of paying."""
        await self.journal.submitted(self.key, transcript_id)

    async def failed(self, err: FileError) -> None:
        """The file failed. Transient trouble after a billable step keeps that step: an upload
        is submitted, a transcript polled, on the next run; never paid for again."""
        transient = isinstance(err, OutputError | RetryableApiError)
        await self.journal.failed(
            self.key, err.message, permanent=err.permanent, transient=transient, start=self._taken()
        )

    async def failed_unbegun(self, job: Job, wanted: Wanted) -> None:
        """It failed for good before the journal knew the attempt (a foreign output, a name
        the disk refuses): remembered, claiming no output, so it is reported once."""
        await self.journal.start(job.key, job.fingerprint, wanted.engine, [], wanted.options, None)

    @staticmethod
    async def done_together(attempts: Iterable[Attempt]) -> None:
        """Files written with one transcript (a file and its copies) recorded `done`: one
        commit per journal, with the held-back start of the attempt that has one."""
        by_journal: dict[int, list[Attempt]] = {}
        for attempt in attempts:
            by_journal.setdefault(id(attempt.journal), []).append(attempt)
        for group in by_journal.values():
            starts = [start for each in group if (start := each._taken()) is not None]
            assert len(starts) <= 1, "only the file that made the transcript holds a start"
            keys = (each.key for each in group)
            await group[0].journal.done(*keys, start=starts[0] if starts else None)


class Attempts:
    """The attempts of the files in flight, by source: opened when a file starts, closed by
    whichever of its ends comes (done, failed, given up, left for the next run)."""

    def __init__(self, state_dirs: StateDirs, reporter: Reporter) -> None:
        self._state_dirs, self._reporter = state_dirs, reporter
        self._open: dict[Path, Attempt] = {}

    def open(self, job: Job) -> Attempt:
        """`job` starts: a new attempt, in flight until `close`."""
        source = job.source
        attempt = Attempt(
            job,
            self._state_dirs[job.state_root].journal,
            on_transcribing=lambda: self._reporter.transcribing(source),
            on_heard=lambda seconds, of: self._reporter.heard(source, seconds, of),
        )
        self._open[source] = attempt
        self._reporter.started(source)
        return attempt

    def of(self, job: Job) -> Attempt:
        """The attempt of `job` (one with nothing held back if it never opened one here)."""
        found = self._open.get(job.source)
        return (
            found if found is not None else Attempt(job, self._state_dirs[job.state_root].journal)
        )

    def close(self, job: Job) -> None:
        self._open.pop(job.source, None)

    def __contains__(self, source: Path) -> bool:
        return source in self._open
