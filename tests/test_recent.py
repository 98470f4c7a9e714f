"""A watcher's summary stays small for months: the last few of each list, every one counted."""

from __future__ import annotations

from pathlib import Path

from batchscribe.report import Reporter, format_summary, summary_json
from batchscribe.run.recent import Recent, keep_last


def test_recent_keeps_the_last_items_and_counts_them_all() -> None:
    recent: Recent[int] = Recent(3)
    assert not recent and len(recent) == 0
    for i in range(10):
        recent.append(i)
    assert list(recent) == [7, 8, 9] and len(recent) == 10 and recent.dropped == 7
    unbounded: Recent[int] = Recent()
    for i in range(1000):
        unbounded.append(i)
    assert len(list(unbounded)) == 1000 and unbounded.dropped == 0


def test_a_watchers_summary_lists_the_last_failures_with_their_count(tmp_path: Path) -> None:
    reporter = Reporter(quiet=True)
    keep_last(reporter.summary, 5)
    for i in range(12):
        reporter.failed(tmp_path / f"{i}.wav", "empty file", started=False)

    summary = summary_json(reporter.summary)

    assert summary["failed_count"] == 12
    assert [f["path"] for f in summary["failed"]] == [
        str(tmp_path / f"{i}.wav") for i in range(7, 12)
    ]
    assert "12 failed" in format_summary(reporter.summary)
    assert summary["exit_code"] == 1


def test_a_runs_summary_lists_every_failure(tmp_path: Path) -> None:
    reporter = Reporter(quiet=True)
    for i in range(300):
        reporter.failed(tmp_path / f"{i}.wav", "empty file", started=False)

    summary = summary_json(reporter.summary)

    assert summary["failed_count"] == 300 and len(summary["failed"]) == 300
