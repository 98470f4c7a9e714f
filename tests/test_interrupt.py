"""Interruptions and concurrent runs, with the CLI in a real subprocess."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK
from batchscribe.journal import RunLock
from tests.conftest import api_env, run_cli, speech
from tests.fakeapi import FakeServer


def start_cli(root: Path, fake: FakeServer, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **api_env(fake)}
    return subprocess.Popen(
        [sys.executable, "-m", "batchscribe", str(root), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def journal_states(root: Path) -> list[str]:
    with sqlite3.connect(root / ".batchscribe" / "journal.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT state FROM files ORDER BY path")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_and_the_next_run_finishes_without_paying_again(
    fake: FakeServer, tmp_path: Path, sig: signal.Signals
) -> None:
    fake.api.processing_seconds = 3600
    config = tmp_path / "c.toml"
    config.write_text("[assemblyai]\npoll_interval = 0.05\n")
    root = tmp_path / "r"
    root.mkdir()
    for i in range(6):
        (root / f"{i}.mp3").write_bytes(speech(f"number {i}"))
    proc = start_cli(root, fake, "-c", "2", "--config", str(config))
    wait_for(lambda: fake.api.transcript_count == 6)

    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=20)

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert journal_states(root) == ["submitted"] * 6
    fake.api.processing_seconds = 0
    fake.api.reset_counters()

    again = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    assert all((root / f"{i}.txt").read_text() == f"number {i}\n" for i in range(6))


def test_second_run_on_the_same_folder_exits_3_naming_the_holder(
    fake: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("x"))
    with RunLock(tmp_path):
        result = run_cli(str(tmp_path), env=api_env(fake))
    assert result.exit_code == EXIT_LOCKED
    assert f"pid {os.getpid()}" in result.output
    assert fake.api.request_count == 0
