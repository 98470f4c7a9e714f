from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchscribe.errors import JournalError, LockHeld
from batchscribe.fingerprint import Fingerprint
from batchscribe.journal import Journal, State
from batchscribe.lock import RunLock

FP = Fingerprint(100, 123456789)


def test_states_survive_reopening(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", ["a.txt"])
    journal.uploaded("a.mp3", "https://cdn/upload/1")
    journal.submitted("a.mp3", "t-1")
    journal.close()
    record = Journal(tmp_path).get("a.mp3")
    assert record is not None
    assert record.state is State.SUBMITTED
    assert (record.upload_url, record.transcript_id, record.fingerprint) == (
        "https://cdn/upload/1",
        "t-1",
        FP,
    )


def test_restart_forgets_the_old_upload_but_keeps_our_outputs(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", ["a.txt", "a.json"])
    journal.uploaded("a.mp3", "u")
    journal.submitted("a.mp3", "t")
    journal.done("a.mp3")
    journal.start("a.mp3", Fingerprint(5, 6), "assemblyai", ["a.mp3.txt"])
    record = journal.get("a.mp3")
    assert record is not None and record.state is State.PENDING
    assert record.upload_url is None and record.transcript_id is None
    assert record.outputs == ("a.json", "a.mp3.txt", "a.txt")


def test_second_lock_on_the_same_root_is_refused_with_the_pid(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(LockHeld, match=str(os.getpid())), RunLock(tmp_path):
        pass
    with RunLock(tmp_path):  # released on exit
        pass


def test_lock_of_a_killed_process_never_blocks(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from batchscribe.lock import RunLock\n"
        "RunLock(Path(sys.argv[1])).__enter__(); print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
        with pytest.raises(LockHeld):
            RunLock(tmp_path).__enter__()
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    deadline = time.monotonic() + 5
    with RunLock(tmp_path):
        assert time.monotonic() < deadline


def test_a_journal_that_cannot_be_written_stops_with_one_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal._db.close()  # as good as a full disk: every write now fails
    with pytest.raises(JournalError, match="cannot write the journal") as err:
        journal.start("a.mp3", FP, "assemblyai", [])
    assert err.value.exit_code == 2
