from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchscribe.errors import LockHeld
from batchscribe.state.lock import RunLock
from tests.kit import REPO

pytestmark = pytest.mark.slow  # subprocesses: left out of the quick loop

#: A run that takes the lock, says so, and then works until it is killed.
HOLDER = (
    "import sys, time; from pathlib import Path; from batchscribe.state.lock import RunLock\n"
    "RunLock(Path(sys.argv[1])).__enter__(); print('locked', flush=True); time.sleep(60)"
)
#: How long a killed run's lock may take to be free before the test fails (the kernel frees
#: it as the process dies, so any wait at all is slack for a slow machine).
RELEASE_WITHIN_S = 5.0


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the run lock of `tmp_path`; killed at the end at the latest."""
    proc = subprocess.Popen(  # from the repository: it runs the lock under test
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"locked", "the holder never took the lock"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def lock_within(root: Path, seconds: float) -> None:
    """Take and release the run lock of `root`, trying again until `seconds` have passed;
    fails the test, with the last refusal, when it is still held then."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with RunLock(root):
                return
        except LockHeld as err:
            if time.monotonic() >= deadline:
                pytest.fail(f"the lock was still held {seconds} s later: {err}")
        time.sleep(0.01)


def test_second_lock_on_the_same_root_is_refused_with_the_pid(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(LockHeld, match=rf"\(pid {os.getpid()}\)"):
        RunLock(tmp_path).__enter__()
    with RunLock(tmp_path):  # released on exit
        pass


def test_lock_held_by_another_process_is_refused_with_its_pid(
    tmp_path: Path, holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(LockHeld, match=rf"\(pid {holder.pid}\)"):
        RunLock(tmp_path).__enter__()
    assert holder.poll() is None, "the holder died: the refusal proves nothing"


def test_lock_of_a_process_killed_with_sigkill_is_free_at_once(
    tmp_path: Path, holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(LockHeld, match=rf"\(pid {holder.pid}\)"):
        RunLock(tmp_path).__enter__()

    holder.kill()  # SIGKILL: no finally, no atexit; only the kernel can let go of the lock
    assert holder.wait(timeout=RELEASE_WITHIN_S) == -signal.SIGKILL

    lock_within(tmp_path, RELEASE_WITHIN_S)


def test_a_file_whose_journal_is_a_parent_s_names_both_in_the_lock_line(tmp_path: Path) -> None:
    from tests.kit import run_cli, speech

    (tmp_path / ".batchscribe").mkdir()
    (tmp_path / ".batchscribe" / "journal.sqlite3").write_bytes(b"")  # ran here before
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.mp3").write_bytes(speech("new"))

    with RunLock(tmp_path):
        result = run_cli(str(tmp_path / "sub" / "new.mp3"))

    assert result.exit_code == 3
    (line,) = result.output.splitlines()
    assert line.startswith(f"batchscribe: error: {tmp_path}: another batchscribe run")
    assert f"its journal is the one for {tmp_path / 'sub' / 'new.mp3'}" in line
    assert "nearest folder above it with a journal" in line
    assert not (tmp_path / "sub" / ".batchscribe").exists()


def test_a_read_only_folder_of_recordings_is_pointed_at_output_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from tests.kit import run_cli, speech

    (tmp_path / "a.mp3").write_bytes(speech("archived"))

    def read_only(path: Path) -> None:  # root writes anywhere: refuse as a user's disk would
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("batchscribe.state.lock.private_mkdir", read_only)
    result = run_cli(str(tmp_path))

    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert "cannot create the lock file (Permission denied)" in line and "--output-dir" in line
