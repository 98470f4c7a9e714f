"""The producer: walks the roots one folder at a time and yields the files that need work.

The walk and the planning block (scandir, stat), so each folder is planned in a thread; the
generator yields jobs as folders are planned, so workers start while the walk goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from batchscribe.errors import BatchscribeError
from batchscribe.report import Reporter
from batchscribe.run.identical import IdenticalRecordings
from batchscribe.run.walk import Batch, Job, Root, WalkPlan, Wanted
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
                self._report(batch)
                walk_plan.add_roots(await self._enter_nested(batch.nested))
                for job in batch.jobs:
                    yield job

    def _report(self, batch: Batch) -> None:
        if not self._announce:
            return
        self._reporter.skipped(batch.skipped)
        self._reporter.failed_before(batch.failed_before)
        self._reporter.discovered(len(batch.jobs))
        for problem in batch.problems:
            self._reporter.failed(problem.path, f"cannot read it ({problem.reason})", started=False)

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
