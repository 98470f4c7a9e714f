"""The hostile trial of issue #28, case by case (docs/TRIAL.md lists them): hostile counts,
URLs, redirects, links, special files, odd recordings and terminals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchscribe.config_file import RANGES, config_key
from batchscribe.errors import EXIT_INTERRUPTED, EXIT_USAGE
from tests.conftest import REPO, run_cli, speech, start_cli
from tests.fakeapi import FakeServer
from tests.fakes import wait_for


def cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The CLI in a real subprocess, its output captured, stopped after `timeout` seconds."""
    return subprocess.run(
        [sys.executable, "-m", "batchscribe", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- 1. counts: every one has a range, checked before any work ------------------------------


def test_a_hundred_million_workers_is_one_line_and_exit_2_at_once(tmp_path: Path) -> None:
    """It once made 100 million tasks (23.8 GB within 4 minutes) and ignored SIGTERM."""
    config = tmp_path / "c.toml"
    config.write_text("concurrency = 100000000\n")
    (tmp_path / "r").mkdir()

    done = cli_process(str(tmp_path / "r"), "--config", str(config), timeout=30)

    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "batchscribe: error: --concurrency (config: concurrency) must be from 1 to 256 "
        "(files under way at once), not 100,000,000."
    ]


@pytest.mark.parametrize(
    ("config", "flags", "said"),
    [
        ("", ["--concurrency", "257"], "--concurrency (config: concurrency) must be from 1 to"),
        ("", ["--concurrency", "0"], "--concurrency (config: concurrency) must be from 1 to"),
        ("", ["--max-files", "0"], "--max-files must be from 1 to"),
        ("[local]\nspeakers_expected = 100000\n", [], "speakers_expected) must be from 1 to 32"),
        ("", ["--speakers-expected", "0"], "--speakers-expected (config: [local] speakers"),
        ("[local]\nbatch_size = 100000\n", [], "[local] batch_size must be from 0 to 64"),
        ("[local]\nworkers = 100000\n", [], "[local] workers must be from 0 to 64"),
        ("[local]\nbeam_size = 100000\n", [], "[local] beam_size must be from 1 to 20"),
        ("[ray]\nactors = 1000000\n", [], "[ray] actors must be from 0 to 128"),
        ("[ray]\nmax_file_bytes = 100000000000\n", [], "[ray] max_file_bytes must be"),
        ("[assemblyai]\nrequests_per_minute = 1000000000\n", [], "requests_per_minute must"),
        ("[assemblyai]\nretry_attempts = 100000\n", [], "retry_attempts must be from 1 to 100"),
        ("[output]\nmax_line_chars = 0\n", [], "[output] max_line_chars must be from 1"),
    ],
)
def test_every_count_out_of_its_range_is_one_line_and_exit_2(
    tmp_path: Path, config: str, flags: list[str], said: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config)
    (tmp_path / "r").mkdir()

    result = run_cli(str(tmp_path / "r"), "--config", str(path), *flags)

    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("batchscribe: error: ") and said in line


def test_every_range_is_documented_in_the_readme_and_the_example_config() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / "config.example.toml").read_text()
    for name, allowed in RANGES.items():
        where = ", ".join(f"`{n}`" for n in (allowed.flag, config_key(name)) if n)
        row = f"| {where} | {allowed.low:,} to {allowed.high:,} |"
        assert row in readme, row
        key = config_key(name)
        if key is not None:
            assert f"{key.split()[-1]}: {allowed.low:,} to {allowed.high:,}" in example, name


@pytest.mark.slow
def test_sigterm_stops_a_run_at_the_highest_concurrency_within_its_grace(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.processing_seconds = 3600  # nothing finishes: the grace time runs out
    root = tmp_path / "r"
    root.mkdir()
    for i in range(300):
        (root / f"{i}.mp3").write_bytes(speech(f"number {i}"))
    config = tmp_path / "c.toml"
    config.write_text("concurrency = 256\n[assemblyai]\npoll_interval = 0.05\n")
    proc = start_cli(root, fake, "--config", str(config), "--grace", "2")
    wait_for(lambda: fake.api.transcript_count >= 64)

    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert took < 2 + 8, took  # the grace, and the journal closed and the process gone
    assert "Traceback" not in stderr
