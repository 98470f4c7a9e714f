"""Interruptions and concurrent runs, with the CLI in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK
from batchscribe.state.lock import RunLock
from tests.fakeapi import FakeServer
from tests.fakes import journal_states, wait_for
from tests.kit import (
    api_env,
    run_cli,
    spawn_cli,
    speech,
    start_cli,
    three_minutes_of_speech,
    write_config,
)

pytestmark = pytest.mark.slow  # subprocesses: left out of the quick loop


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_and_the_next_run_finishes_without_paying_again(
    fake: FakeServer, tmp_path: Path, sig: signal.Signals
) -> None:
    fake.api.processing_seconds = 3600
    config = write_config(tmp_path / "c.toml", assemblyai={"poll_interval": 0.05})
    root = tmp_path / "r"
    root.mkdir()
    for i in range(6):
        (root / f"{i}.mp3").write_bytes(speech(f"number {i}"))
    proc = start_cli(root, fake, "-c", "2", "--config", str(config), "--grace", "0.5", "--json")
    wait_for(lambda: fake.api.transcript_count == 6)

    proc.send_signal(sig)  # the transcripts get half a second to finish; they will not
    stdout, stderr = proc.communicate(timeout=20)

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "stopping" in stderr and "Traceback" not in stderr
    assert "interrupted with 6 file(s) under way" in stderr
    summary = json.loads(stdout)  # --json: one object, whatever the end
    assert summary["exit_code"] == EXIT_INTERRUPTED and summary["done"] == 0
    # a create cut short may not have its id journaled yet: the next run adopts it from the list
    assert set(journal_states(root).values()) <= {"uploaded", "submitted"}
    fake.api.processing_seconds = 0
    fake.api.reset_counters()

    again = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    assert all((root / f"{i}.txt").read_text() == f"number {i}\n" for i in range(6))


def test_the_first_stop_drops_uploads_in_flight_and_waits_for_created_transcripts(
    fake: FakeServer, tmp_path: Path
) -> None:
    api = fake.api
    api.processing_seconds = 1.5
    api.upload_bytes_per_second = 200_000  # a second per upload
    root = tmp_path / "r"
    root.mkdir()
    for i in range(6):
        (root / f"{i}.mp3").write_bytes(speech(f"number {i}") + os.urandom(200_000))
    config = write_config(tmp_path / "c.toml", assemblyai={"poll_interval": 0.05})
    proc = start_cli(root, fake, "-c", "2", "--config", str(config))
    wait_for(lambda: api.transcript_count == 2 and api.uploads_in_flight == 2)

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert api.transcript_count == 2  # the two uploads in flight were dropped, unpaid
    assert sorted(p.name for p in root.glob("*.txt")) == ["0.txt", "1.txt"]  # collected
    assert "Traceback" not in stderr


def test_a_second_stop_ends_the_run_at_once(fake: FakeServer, tmp_path: Path) -> None:
    fake.api.processing_seconds = 3600
    root = tmp_path / "r"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.mp3").write_bytes(speech(f"number {i}"))
    proc = start_cli(root, fake, "--poll-interval", "0.05")
    wait_for(lambda: fake.api.transcript_count == 3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    began = time.monotonic()

    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)

    assert proc.returncode == EXIT_INTERRUPTED and time.monotonic() - began < 3
    assert "Traceback" not in stderr
    assert set(journal_states(root).values()) == {"submitted"}  # collected by the next run


def test_second_run_on_the_same_folder_exits_3_naming_the_holder(
    fake: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("x"))
    with RunLock(tmp_path):
        result = run_cli(str(tmp_path), env=api_env(fake))
        as_json = spawn_cli(str(tmp_path), "--json", env=api_env(fake))
        stdout, stderr = as_json.communicate(timeout=60)
    assert result.exit_code == EXIT_LOCKED
    assert f"pid {os.getpid()}" in result.output
    assert fake.api.request_count == 0
    assert as_json.returncode == EXIT_LOCKED and f"pid {os.getpid()}" in stderr
    summary = json.loads(stdout)  # a script reading --json still gets one object
    assert summary["exit_code"] == EXIT_LOCKED and f"pid {os.getpid()}" in summary["error"]


def expected_kill_points() -> list[str]:
    return ["mid-upload", "after-submit", "mid-poll", "mid-write"]


@pytest.mark.parametrize("point", expected_kill_points())
def test_kill_9_at_any_point_then_rerun_pays_nothing_twice(
    fake: FakeServer, tmp_path: Path, point: str
) -> None:
    config = write_config(tmp_path / "c.toml", assemblyai={"poll_interval": 0.05})
    root = tmp_path / "r"
    root.mkdir()
    said = {}
    for i in range(8):
        said[root / f"{i}.mp3"] = f"take {i}"
        (root / f"{i}.mp3").write_bytes(speech(f"take {i}") + os.urandom(150_000))
    api = fake.api
    if point == "mid-upload":
        api.upload_bytes_per_second = 300_000  # half a second per upload
        reached = lambda: api.uploads_in_flight > 0 and api.upload_count >= 2  # noqa: E731
    elif point == "after-submit":
        api.processing_seconds = 3600
        reached = lambda: api.transcript_count == 8  # noqa: E731
    elif point == "mid-poll":
        api.processing_seconds = 0.3
        reached = lambda: any(  # noqa: E731
            m == "GET" and p.count("/") == 3 for m, p in list(api.requests)
        )
    else:
        reached = lambda: any(p.suffix == ".txt" for p in root.iterdir())  # noqa: E731
    proc = start_cli(root, fake, "-c", "2", "--config", str(config))
    wait_for(reached)
    proc.kill()
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    api.upload_bytes_per_second = None
    api.processing_seconds = 0

    again = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    for source, text in said.items():
        assert source.with_suffix(".txt").read_text() == text + "\n"
    assert set(api.transcripts_by_digest.values()) == {1}, "a transcript was paid twice"
    duplicate_uploads = sum(n - 1 for n in api.uploads_by_digest.values())
    # Only an upload cut short by the kill is sent again: at most one per worker (-c 2), and
    # none once everything was submitted before the kill.
    assert duplicate_uploads <= (0 if point == "after-submit" else 2)
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_temp_file_left_by_a_killed_write_is_removed(fake: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("x"))
    stale = tmp_path / ".batchscribe-a.txt.k2j3h4g5.tmp"
    stale.write_text("half a transc")
    users_hidden = tmp_path / ".notes.tmp"
    users_hidden.write_text("not ours")
    run_cli(str(tmp_path), "--poll-interval", "0.05", env=api_env(fake))
    assert not stale.exists() and users_hidden.exists()


def sub_folder_done_first(tmp_path: Path, fake: FakeServer) -> dict[str, str]:
    """`a/inner.mp3` transcribed by a run on `a/` (its own journal), `outer.mp3` not yet;
    returns the environment for the next run."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "inner.mp3").write_bytes(speech("inner"))
    (tmp_path / "outer.mp3").write_bytes(speech("outer"))
    env = api_env(fake)
    assert run_cli(str(tmp_path / "a"), "--poll-interval", "0.05", env=env).exit_code == 0
    return env


def test_a_sub_folder_done_first_keeps_its_journal_when_the_parent_runs(
    fake: FakeServer, tmp_path: Path
) -> None:
    env = sub_folder_done_first(tmp_path, fake)
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "--poll-interval", "0.05", env=env)

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.upload_count == 1  # only outer.mp3
    assert "1 done, 1 up to date" in result.output


def test_a_sub_folder_locked_by_another_run_is_skipped_not_shared(
    fake: FakeServer, tmp_path: Path
) -> None:
    env = sub_folder_done_first(tmp_path, fake)
    (tmp_path / "a" / "new.mp3").write_bytes(speech("new inner"))
    fake.api.reset_counters()

    with RunLock(tmp_path / "a"):  # another run is working on the sub-folder
        result = run_cli(str(tmp_path), "--poll-interval", "0.05", env=env)

    assert result.exit_code == 1
    assert fake.api.upload_count == 1 and (tmp_path / "outer.txt").exists()
    assert not (tmp_path / "a" / "new.txt").exists()
    assert "another batchscribe run" in result.output


def three_minute_recordings(root: Path, count: int) -> list[Path]:
    """`count` different 3-minute recordings of speech (each decoded, none a copy)."""
    root.mkdir()
    paths = [root / f"talk {i}.wav" for i in range(count)]
    for i, path in enumerate(paths):
        three_minutes_of_speech(path, lead=0.1 * (i + 1))
    return paths


def start_local(root: Path) -> subprocess.Popen[str]:
    # tiny.en: stopping does not depend on the model, and the test must stay fast; two
    # workers whatever the machine's cores, so that one of three files is still waiting
    config = write_config(root.parent / "local.toml", local={"workers": 2})
    return spawn_cli(str(root), "--engine", "local", "--model", "tiny.en", "--config", str(config))


@pytest.mark.model
@pytest.mark.timeout(300)  # two files finish after the stop, then the next run does the third
def test_local_first_ctrl_c_finishes_the_files_in_progress_and_the_next_run_does_the_rest(
    tmp_path: Path,
) -> None:
    paths = three_minute_recordings(tmp_path / "r", 3)  # 2 under way (one per core), 1 waiting
    proc = start_local(tmp_path / "r")
    time.sleep(6)  # the model is loaded and the first files are being transcribed

    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and "stopping" in stderr
    written = [p for p in paths if p.with_suffix(".txt").exists()]
    assert 1 <= len(written) < len(paths)  # those under way were finished, no more begun
    assert all(len(p.with_suffix(".txt").read_text()) > 1000 for p in written)

    again = run_cli(str(tmp_path / "r"), "--engine", "local", "--model", "tiny.en")

    assert again.exit_code == EXIT_OK, again.output
    assert f"{len(paths) - len(written)} done, {len(written)} up to date" in again.output


@pytest.mark.model
def test_local_second_ctrl_c_exits_within_seconds_without_a_crash(tmp_path: Path) -> None:
    three_minute_recordings(tmp_path / "r", 4)
    proc = start_local(tmp_path / "r")
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    began = time.monotonic()

    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, stderr)  # no abort, no segfault
    assert time.monotonic() - began < 3
    assert "Traceback" not in stderr and "terminate called" not in stderr
