"""The single poller, through the real CLI and the fake API: request economy and max-wait."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from tests.conftest import api_env, run_cli, speech
from tests.fakeapi import FakeServer


def requests_by_kind(fake: FakeServer) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for method, path in fake.api.requests:
        kinds[f"{method} {'/v2/transcript/{id}' if path.count('/') == 3 else path}"] += 1
    return kinds


def test_many_pending_are_watched_with_one_listing_not_a_get_each(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.processing_seconds = 0.5
    config = tmp_path / "c.toml"
    config.write_text("[assemblyai]\npoll_interval = 0.1\n")
    root = tmp_path / "r"
    root.mkdir()
    for i in range(30):
        (root / f"{i}.mp3").write_bytes(speech(f"file {i}"))

    result = run_cli(str(root), "-c", "8", "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    kinds = requests_by_kind(fake)
    # each transcript fetched once, when finished; the waiting is done by listing
    assert kinds["GET /v2/transcript/{id}"] == 30
    assert 1 <= kinds["GET /v2/transcript"] < 30
    assert fake.api.request_count / 30 <= 3.5


def test_a_few_pending_are_polled_one_by_one(fake: FakeServer, tmp_path: Path) -> None:
    fake.api.processing_seconds = 0.3
    config = tmp_path / "c.toml"
    config.write_text("[assemblyai]\npoll_interval = 0.05\n")
    (tmp_path / "a.mp3").write_bytes(speech("only one"))

    result = run_cli(str(tmp_path / "a.mp3"), "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    kinds = requests_by_kind(fake)
    assert kinds["GET /v2/transcript"] == 0 and kinds["GET /v2/transcript/{id}"] >= 2


def test_max_wait_leaves_the_transcript_for_the_next_run_without_paying_again(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.processing_seconds = 3600
    config = tmp_path / "c.toml"
    config.write_text("[assemblyai]\npoll_interval = 0.05\n")
    root = tmp_path / "r"
    root.mkdir()
    (root / "slow.mp3").write_bytes(speech("worth the wait"))

    result = run_cli(str(root), "--max-wait", "0.2", "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    assert "still processing" in result.output
    with sqlite3.connect(root / ".batchscribe" / "journal.sqlite3") as db:
        assert db.execute("SELECT state FROM files").fetchone() == ("submitted",)

    fake.api.processing_seconds = 0
    fake.api.reset_counters()
    again = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    assert (root / "slow.txt").read_text() == "worth the wait\n"
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
