"""A watcher operators can trust for months: its metrics file kept current, `--status` saying
what it does, a log file that follows logrotate, a summary that stays small."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_INTERRUPTED
from batchscribe.state.journal_view import peek
from batchscribe.state.watching import WATCH_FILE
from tests.fakeapi import API_KEY, FakeServer
from tests.kit import run_cli, speech, write_config
from tests.test_metrics import samples, value
from tests.test_watch import Watching, wait_for

pytestmark = pytest.mark.slow  # a watcher in a subprocess: left out of the quick loop

#: More empty files than a watcher's summary lists (report.WATCH_LISTED).
EMPTIES = 103


def done_in(metrics: Path) -> float:
    if not metrics.exists():
        return -1
    return value(samples(metrics.read_text()), "batchscribe_files", state="done")


def test_a_watcher_keeps_its_metrics_current_and_status_says_what_is_queued(
    fake: FakeServer, tmp_path: Path
) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    (root / "present.wav").write_bytes(speech("there at the start"))
    for i in range(EMPTIES):
        (root / f"empty-{i:03}.wav").write_bytes(b"")
    config = write_config(
        tmp_path / "c.toml", assemblyai={"poll_interval": 0.05}, watch={"settle": 0.5}
    )
    metrics, log = tmp_path / "batchscribe.prom", tmp_path / "batchscribe.log"
    watching = Watching(
        root, fake, config, "-c", "1", "--metrics-file", str(metrics),
        "--log-file", str(log),
    )  # fmt: skip
    try:
        wait_for(lambda: done_in(metrics) == 1)
        up = samples(metrics.read_text())
        assert value(up, "batchscribe_up") == 1
        assert value(up, "batchscribe_files", state="failed") == EMPTIES
        assert not [name for name, _ in up if name == "batchscribe_last_run_exit_code"]

        # logrotate moves the log away: the next lines go to a new file at the old name.
        log.rename(tmp_path / "batchscribe.log.1")
        # Three arrive at once; with one worker and slow uploads, two wait in the queue.
        fake.api.upload_bytes_per_second = 100_000
        for name in ("a.wav", "b.wav", "c.wav"):
            (root / name).write_bytes(speech(f"arrived {name}") + os.urandom(250_000))
        status: list[str] = []

        def queued() -> bool:
            status[:] = run_cli(str(root), "--status").output.splitlines()
            return any(re.search(r"queued: [12]: .*\.wav", line) for line in status)

        wait_for(queued)
        wait_for(lambda: (root / "c.txt").exists(), timeout=60)
        transcribed = time.monotonic()
        wait_for(lambda: done_in(metrics) == 4, timeout=30)
        latency = time.monotonic() - transcribed
    finally:
        code, _, stderr = watching.stop()

    assert code == EXIT_INTERRUPTED and "Traceback" not in stderr, stderr
    assert latency < 30
    text = "\n".join(status)
    assert re.search(r"running \(pid \d+\) since ", text), text
    assert "watching since " in text and "last file: " in text, text
    assert re.search(r"under way: 1: \S*\.wav \((working|transcribing)\)", text), text
    # The watcher's end: down, with its exit status; its queue file gone with it.
    end = samples(metrics.read_text())
    assert value(end, "batchscribe_up") == 0
    assert value(end, "batchscribe_last_run_exit_code") == EXIT_INTERRUPTED
    # well until it stopped: the 26-hour alert counts from then, not from 1970
    last_up = value(up, "batchscribe_last_success_timestamp_seconds")
    assert value(end, "batchscribe_last_success_timestamp_seconds") >= last_up > 0
    assert value(end, "batchscribe_run_files_total", result="done") == 4
    assert not (root / ".batchscribe" / WATCH_FILE).exists()
    assert API_KEY not in metrics.read_text()
    # Logs: what came after the move is in the new file, what came before in the old one.
    new, old = log.read_text(), (tmp_path / "batchscribe.log.1").read_text()
    assert "a.wav" in new and "c.wav" in new and "present.wav" not in new
    assert "present.wav" in old and "a.wav" not in old
    # The run's summary (in the journal; --json too, when it ends on its own) lists the last
    # failures and counts them all.
    summary = peek(root)[1][-1].summary
    assert summary["failed_count"] == EMPTIES and len(summary["failed"]) == 100
    assert summary["failed"][-1]["path"].endswith(f"empty-{EMPTIES - 1:03}.wav")
