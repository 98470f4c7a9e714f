"""--status: what the journal knows, without walking, transcribing or changing anything.

A run commits every step as it happens, so --status during a run shows what that run has done
so far; the folder's lock tells a run still going from one that was killed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from batchscribe.config import Settings
from batchscribe.run.walk import resolve_roots
from batchscribe.state.journal import Record, State
from batchscribe.state.journal_view import Run, Snapshot, snapshot
from batchscribe.state.lock import UNKNOWN_PID, lock_holder


def format_status(settings: Settings) -> list[str]:
    """Per journal: counts per state, failed files and their last cause, the last run (or the
    run going on now, with what it has committed so far)."""
    lines: list[str] = []
    for root in resolve_roots(settings.paths, settings.output_dir):
        found = snapshot(root.path)
        holder = lock_holder(root.path)
        if not found.records and not found.runs and holder is None:
            lines.append(f"{root.path}: no journal yet; batchscribe has not run here")
            continue
        records = found.records
        counts = Counter(record.state for record in records.values())
        listed = ", ".join(f"{counts[state]} {state.value}" for state in State if counts[state])
        lines.append(f"{root.path}: {len(records)} files: {listed or 'none'}")
        for record in sorted(records.values(), key=lambda r: r.key):
            if record.failed:
                hint = " (permanent: --retry-failed to retry)" if record.permanent else ""
                lines.append(f"  failed  {record.key}: {record.error}{hint}")
        lines.append(f"  {format_run(found, holder)} ({len(found.runs)} run(s) in all)")
    return lines


def format_run(found: Snapshot, holder: int | None) -> str:
    """The last run: how it ended; or, while one holds the lock, what it has done so far; or,
    when it never ended and nothing holds the lock, that it was killed and what it had done."""
    last = found.runs[-1] if found.runs else None
    if holder is not None:
        pid = f"pid {holder}" if holder != UNKNOWN_PID else "pid unknown"
        if last is None or last.ended_at is not None:
            return f"running ({pid}): starting"
        return f"running ({pid}) since {_when(last)}: {_so_far(found, last)} so far"
    if last is None:
        return "no run recorded"
    if last.outcome is None:
        return (
            f"last run {_when(last)}: killed before it finished (no lock held); by then "
            f"{_so_far(found, last)}. Run the same command again to finish"
        )
    done = last.summary.get("done", "?")
    failed = last.summary.get("failed", [])
    failed_count = len(failed) if isinstance(failed, list) else failed
    return f"last run {_when(last)}: {last.outcome}; {done} done, {failed_count} failed"


def _when(run: Run) -> str:
    return datetime.fromtimestamp(run.started_at).astimezone().isoformat(timespec="seconds")


def _so_far(found: Snapshot, run: Run) -> str:
    """`2 done, 1 in progress, 1 failed`: the rows this run wrote, by state."""
    done, in_progress, failed = _tally(found.changed_since(run.started_at))
    return f"{done} done, {in_progress} in progress, {failed} failed"


def _tally(records: Iterable[Record]) -> tuple[int, int, int]:
    done = in_progress = failed = 0
    for record in records:
        if record.done:
            done += 1
        elif record.failed:
            failed += 1
        else:
            in_progress += 1
    return done, in_progress, failed
