"""--status: what the journal knows, without walking, transcribing or changing anything."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from batchscribe.config import Settings
from batchscribe.history import peek
from batchscribe.journal import State
from batchscribe.scan import resolve_roots


def format_status(settings: Settings) -> list[str]:
    """Per journal: counts per state, failed files and their last cause, the last run."""
    lines: list[str] = []
    for root in resolve_roots(settings.paths, settings.output_dir):
        records, runs = peek(root.path)
        if not records and not runs:
            lines.append(f"{root.path}: no journal yet; batchscribe has not run here")
            continue
        counts = Counter(record.state for record in records.values())
        listed = ", ".join(f"{counts[state]} {state.value}" for state in State if counts[state])
        lines.append(f"{root.path}: {len(records)} files: {listed or 'none'}")
        for record in sorted(records.values(), key=lambda r: r.key):
            if record.failed:
                hint = " (permanent: --retry-failed to retry)" if record.permanent else ""
                lines.append(f"  failed  {record.key}: {record.error}{hint}")
        if runs:
            last = runs[-1]
            when = (
                datetime.fromtimestamp(last.started_at).astimezone().isoformat(timespec="seconds")
            )
            outcome = last.outcome or "did not finish (killed, or still running)"
            done = last.summary.get("done", "?")
            failed = last.summary.get("failed", [])
            failed_count = len(failed) if isinstance(failed, list) else failed
            lines.append(
                f"  last run {when}: {outcome}; {done} done, {failed_count} failed "
                f"({len(runs)} run(s) in all)"
            )
    return lines
