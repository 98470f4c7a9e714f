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
from batchscribe.state.watching import Watching, read_watching


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
        watching = read_watching(root.path) if holder is not None else None
        if watching is not None and watching.pid == holder:  # else a killed watcher's
            lines.extend(format_watching(watching, found))
    return lines


def format_watching(watching: Watching, found: Snapshot) -> list[str]:
    """A running watcher: since when, the last file it finished, what is under way and what
    waits in its queue (from the file it keeps, `state/watching.py`)."""
    last = found.runs[-1] if found.runs else None
    finished = [
        (found.updated.get(r.key, 0.0), r)
        for r in (found.changed_since(last.started_at) if last else [])
        if r.done or r.failed
    ]
    if finished:
        at, record = max(finished, key=lambda pair: pair[0])
        said = "done" if record.done else "failed"
        last_file = f"{record.key} ({said} {_iso(at)})"
    else:
        last_file = "none yet"
    under_way = [f"{path} ({stage})" for path, stage in watching.under_way]
    return [
        f"  watching since {_iso(watching.since)}; last file: {last_file}",
        f"  under way: {_listed(watching.under_way_count, under_way)}",
        f"  queued: {_listed(watching.queued_count, watching.queued)}",
    ]


def _listed(count: int, names: list[str]) -> str:
    if not count:
        return "nothing"
    more = f", and {count - len(names)} more" if count > len(names) else ""
    return f"{count}: {', '.join(names)}{more}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


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
    failed = last.summary.get("failed_count", last.summary.get("failed", []))
    failed_count = len(failed) if isinstance(failed, list) else failed
    return f"last run {_when(last)}: {last.outcome}; {done} done, {failed_count} failed"


def _when(run: Run) -> str:
    return _iso(run.started_at)


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
