"""The producer: walks the roots one folder at a time and yields the files that need work.

The walk and the planning block (scandir, stat), so each folder is planned in a thread; the
generator yields jobs as folders are planned, so workers start while the walk goes on.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from batchscribe.errors import BatchscribeError
from batchscribe.fingerprint import Fingerprint
from batchscribe.report import Reporter
from batchscribe.run.durations import audio_seconds
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.job import Job, Root, Wanted
from batchscribe.run.walk import Batch, Unreadable, WalkPlan, key_of
from batchscribe.state.journal import Record
from batchscribe.state.state_dirs import StateDirs


class Producer:
    """Finds the work of a run; reports what is current, failed before, or unreadable."""

    def __init__(
        self,
        state_dirs: StateDirs,
        identical: IdenticalRecordings,
        reporter: Reporter,
        *,
        wanted: Wanted,
        extensions: frozenset[str],
        own_tree: bool,
        announce: bool = True,
    ) -> None:
        self._state_dirs, self._identical, self._reporter = state_dirs, identical, reporter
        self._wanted, self._extensions = wanted, extensions
        #: outputs go next to the sources (no --output-dir): a sub-folder's own journal counts
        self._own_tree = own_tree
        #: report what the walk finds (counts, unreadable files); not for --watch's rescans,
        #: which would repeat them every few minutes
        self._announce = announce

    async def jobs(self, roots: list[Root]) -> AsyncIterator[Job]:
        """Every file under `roots` that needs work, in walk order."""
        walk_plan = WalkPlan(roots, self._wanted, self._extensions, nested=self._own_tree)
        journals_read: dict[Path, dict[str, Record]] = {}
        while (root := walk_plan.next_root()) is not None:
            if root.path not in journals_read:  # once per journal, however many roots share it
                records = await self._state_dirs[root.path].journal.records()
                journals_read[root.path] = records
                self._expect_resumed_copies(root.path, records)
            walk_plan.start(root, journals_read[root.path])
            while (batch := await asyncio.to_thread(walk_plan.next_batch)) is not None:
                await self._report(batch, root)
                walk_plan.add_roots(await self._enter_nested(batch.nested))
                for job in batch.jobs:
                    yield job

    async def _report(self, batch: Batch, root: Root) -> None:
        if not self._announce:
            return
        self._reporter.skipped(batch.skipped)
        self._reporter.failed_before(batch.failed_before)
        lengths = None
        if self._reporter.wants_lengths:  # the live line's ETA: one header read per file
            lengths = await asyncio.to_thread(_lengths, batch.jobs)
        self._reporter.discovered(len(batch.jobs), lengths)
        for problem in batch.problems:
            if problem.link is not None:
                await self._remember(problem, problem.link, root)
            self._reporter.failed(problem.path, f"cannot read it ({problem.reason})", started=False)

    async def _remember(self, problem: Unreadable, link: os.stat_result, root: Root) -> None:
        """A failure no retry can cure (a broken link): kept in the journal, claiming no
        output, so later runs count it as failed before until the link changes."""
        journal = self._state_dirs[root.path].journal
        key, wanted = key_of(problem.path, root), self._wanted
        await journal.start(key, Fingerprint.of(link), wanted.engine, [], wanted.options, None)
        await journal.failed(key, problem.reason, permanent=True, transient=False)

    async def _enter_nested(self, folders: list[Path]) -> list[Root]:
        """Sub-folders with their own journal: walked under their own lock and journal."""
        roots = []
        for folder in folders:
            try:
                await self._state_dirs.open(folder)
            except BatchscribeError as err:  # locked by another run, or its journal unusable
                self._reporter.failed(folder, f"skipped: {err}", started=False)
                continue
            roots.append(Root(path=folder, walk_from=folder, base=folder))
        return roots

    def _expect_resumed_copies(self, state_root: Path, records: dict[str, Record]) -> None:
        """Content already uploaded or submitted by an interrupted run: a file with the same
        bytes must wait for that transcript, even if the walk reaches it first. The
        reservation names its owner, which takes it over when it arrives."""
        for record in records.values():
            if record.digest and record.continues(self._wanted.engine, self._wanted.options):
                self._identical.reserve(record.digest, state_root, record)


def _lengths(jobs: list[Job]) -> dict[Path, float | None]:
    """Each job's audio seconds from its header (blocking: run in a thread)."""
    return {job.source: audio_seconds(job.source) for job in jobs}
