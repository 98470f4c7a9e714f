"""--status reads the journal a run is writing: a run going on shows what it has committed so
far, a run that never ended is told apart by the folder's lock (held: running; free: killed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.errors import EXIT_OK
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal import Journal
from batchscribe.state.lock import STATE_DIR, RunLock, lock_holder
from batchscribe.state.watching import LISTED, Watching, write_watching
from batchscribe.status import format_status
from tests.fakes import connect_journal
from tests.kit import run_cli

FP = Fingerprint(100, 123456789)
SINCE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def half_done_run(root: Path) -> None:
    """A journal as a run leaves it while it works: two files done by an earlier run, then
    this run's two done, one uploading, one failed."""
    journal = Journal(root)
    for key in ("old-1.mp3", "old-2.mp3"):
        journal.start(key, FP, "assemblyai", [])
        journal.done(key)
    journal.close()
    with connect_journal(root) as db:
        db.execute("UPDATE files SET updated_at = updated_at - 3600")  # an hour before
    journal = Journal(root)
    journal.begin_run()
    for key in ("a.mp3", "b.mp3", "c.mp3", "d.mp3"):
        journal.start(key, FP, "assemblyai", [])
    journal.done("a.mp3")
    journal.done("b.mp3")
    journal.uploaded("c.mp3", "https://cdn/upload/c")
    journal.failed("d.mp3", "not audio", permanent=True)
    journal.close()


def last_line(root: Path) -> str:
    return format_status(Settings(paths=(root,)))[-1]


def test_a_run_holding_the_lock_shows_what_it_has_committed_so_far(tmp_path: Path) -> None:
    half_done_run(tmp_path)

    with RunLock(tmp_path):
        line = last_line(tmp_path)

    assert re.fullmatch(
        rf"  running \(pid {os.getpid()}\) since {SINCE}: 2 done, 1 in progress, 1 failed so far"
        r" \(1 run\(s\) in all\)",
        line,
    ), line


def test_a_run_that_never_ended_and_holds_no_lock_was_killed(tmp_path: Path) -> None:
    half_done_run(tmp_path)

    line = last_line(tmp_path)

    assert "killed before it finished" in line and "running" not in line
    assert "by then 2 done, 1 in progress, 1 failed" in line


def test_an_ended_run_shows_its_outcome_and_summary(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    run = journal.begin_run()
    journal.end_run(run, "completed", {"done": 3, "failed": [{"path": "x", "error": "e"}]})
    journal.close()

    assert re.fullmatch(
        rf"  last run {SINCE}: completed; 3 done, 1 failed \(1 run\(s\) in all\)",
        last_line(tmp_path),
    )


def test_probing_the_lock_neither_takes_it_nor_creates_it(tmp_path: Path) -> None:
    assert lock_holder(tmp_path) is None
    assert not (tmp_path / STATE_DIR).exists()
    with RunLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path):  # the probe let go of it: a run can take it
        pass


def test_status_on_the_command_line_during_a_run(tmp_path: Path) -> None:
    half_done_run(tmp_path)

    with RunLock(tmp_path):
        result = run_cli(str(tmp_path), "--status")

    assert result.exit_code == EXIT_OK, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("6 files: 1 uploaded, 4 done, 1 failed")
    assert "failed  d.mp3: not audio (permanent" in lines[1]
    assert "running (pid" in lines[2] and "2 done, 1 in progress, 1 failed so far" in lines[2]
    assert "did not finish" not in result.stdout and "?" not in result.stdout


def test_a_running_watcher_says_since_when_its_last_file_and_its_queue(tmp_path: Path) -> None:
    half_done_run(tmp_path)
    queue = Watching(
        pid=os.getpid(), since=1_796_000_000.0, updated=1_796_000_100.0,
        under_way=[("/in/e.mp3", "transcribing")], under_way_count=1,
        queued=[f"/in/q{i}.mp3" for i in range(LISTED)], queued_count=LISTED + 2,
    )  # fmt: skip
    write_watching(tmp_path, queue)

    with RunLock(tmp_path):
        lines = format_status(Settings(paths=(tmp_path,)))
    unlocked = format_status(Settings(paths=(tmp_path,)))

    last, since, under_way, queued = lines[-4:]
    assert re.fullmatch(rf"  watching since {SINCE}; last file: d.mp3 \(failed {SINCE}\)", since)
    assert "running (pid" in last
    assert under_way == "  under way: 1: /in/e.mp3 (transcribing)"
    assert queued.startswith("  queued: 12: /in/q0.mp3, /in/q1.mp3") and queued.endswith(
        ", and 2 more"
    )
    # No lock held: the watcher is gone (killed), and its file says nothing any more.
    assert not any("watching since" in line for line in unlocked)
