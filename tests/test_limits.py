"""The API's real limits, through the real CLI in subprocesses: rate limits shared by two runs,
a dead network, uploads cut off mid-body, and all of it at once. No traceback, ever."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from tests.fakeapi import NOT_AUDIO_ERROR, FakeServer
from tests.kit import api_env, events, run_cli, spawn_cli, speech

pytestmark = pytest.mark.slow  # subprocesses: left out of the quick loop

FAST = "[assemblyai]\npoll_interval = 0.1\nretry_base_delay = 0.05\nretry_max_delay = 0.5\n"


def recordings(root: Path, count: int, *, size: int = 0, tag: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"{i}.mp3").write_bytes(speech(f"{tag} file {i}") + os.urandom(size))


def start(root: Path, env: dict[str, str], config: Path) -> subprocess.Popen[str]:
    return spawn_cli(str(root), "-c", "4", "--config", str(config), env=env)


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr


def test_two_runs_sharing_a_key_under_a_rate_limit_both_finish_paying_once(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.rate_limit, fake.api.retry_after = 15, 1
    config = tmp_path / "c.toml"
    config.write_text(FAST)
    recordings(tmp_path / "one", 14, tag="one")
    recordings(tmp_path / "two", 14, tag="two")

    runs = [start(tmp_path / name, api_env(fake), config) for name in ("one", "two")]
    results = [run.communicate(timeout=120) for run in runs]

    for run, (_, stderr) in zip(runs, results, strict=True):
        assert run.returncode == EXIT_OK, stderr
        no_traceback(stderr)
    assert fake.api.faults["429"] > 0  # the limit did bite
    assert fake.api.transcript_count == 28
    assert set(fake.api.transcripts_by_digest.values()) == {1}
    for name in ("one", "two"):
        assert len(list((tmp_path / name).glob("*.txt"))) == 14


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_api_is_one_line_naming_the_host_and_loses_nothing(
    fake: FakeServer, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(FAST + "unreachable_timeout = 2\n")
    root = tmp_path / "r"
    recordings(root, 40)
    port = closed_port()
    env = {**api_env(fake), "ASSEMBLYAI_BASE_URL": f"http://127.0.0.1:{port}"}

    began = time.monotonic()
    result = run_cli(str(root), "--config", str(config), env=env)

    assert result.exit_code == EXIT_SOME_FAILED
    assert time.monotonic() - began < 15
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 3, result.output
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in result.output
    assert not events(result.output, "failed")  # no file blamed for the network

    again = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    assert len(events(again.output, "done")) == 40
    assert fake.api.upload_count == 40


def test_uploads_cut_off_mid_body_leave_no_traceback(fake: FakeServer, tmp_path: Path) -> None:
    fake.api.cut_upload_rate = 0.5
    config = tmp_path / "c.toml"
    config.write_text(FAST + "retry_attempts = 12\n")
    root = tmp_path / "r"
    # Big enough that the whole body sits in the socket's buffers before the server hangs up.
    recordings(root, 12, size=2 * 1024 * 1024)

    run = start(root, api_env(fake), config)
    _, stderr = run.communicate(timeout=120)

    assert fake.api.faults["cut upload"] > 0
    assert run.returncode == EXIT_OK, stderr
    no_traceback(stderr)


def test_a_fault_mix_ends_with_every_file_done_or_failed_by_the_api(
    fake: FakeServer, tmp_path: Path
) -> None:
    api = fake.api
    api.error_rate, api.cut_upload_rate, api.error_transcript_rate = 0.15, 0.1, 0.1
    api.rate_limit, api.retry_after = 15, 1
    config = tmp_path / "c.toml"
    config.write_text(FAST + "retry_attempts = 12\n")
    root = tmp_path / "r"
    recordings(root, 20, size=300_000)

    run = start(root, api_env(fake), config)
    _, stderr = run.communicate(timeout=180)

    no_traceback(stderr)
    failed = events(stderr, "failed")
    assert all(NOT_AUDIO_ERROR in line for line in failed), failed
    assert len(failed) == api.faults["error transcript"]
    assert run.returncode == (EXIT_SOME_FAILED if failed else EXIT_OK), stderr
    assert len(list(root.glob("*.txt"))) == 20 - len(failed)
