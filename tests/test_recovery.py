"""A damaged or lost journal: moved aside, rebuilt from what is on disk, nothing paid twice.

The journal is batchscribe's memory of what it wrote. When it is truncated, overwritten,
emptied or deleted, the outputs whose bytes are exactly what batchscribe renders from a
transcript kept in `.batchscribe/transcripts/` are recognised as its own and adopted; a file
that is not batchscribe's is still refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchscribe.cli import make_cli
from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from tests.fakeapi import FakeServer
from tests.fakes import FakeEngine
from tests.kit import api_env, events, run_cli, speech

RECORDINGS = ("a.mp3", "b.wav", "sub/c.ogg", "sub/copy of a.mp3")


def damage(journal: Path, how: str) -> None:
    """What a crash, a stray `>` or a cleanup script can do to a journal."""
    data = journal.read_bytes()
    if how == "truncated":
        journal.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        journal.write_bytes(os.urandom(len(data)))
    elif how == "zero bytes":
        journal.write_bytes(b"")
    else:
        journal.unlink()


def recordings(root: Path) -> dict[Path, bytes]:
    made = {}
    for name in RECORDINGS:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        made[path] = speech(f"words of {Path(name).stem}")
    made[root / "sub/copy of a.mp3"] = made[root / "a.mp3"]  # identical bytes
    for path, content in made.items():
        path.write_bytes(content)
    return made


def outputs(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".batchscribe" not in p.parts and p.suffix in (".txt", ".json", ".srt")
    }


@pytest.mark.parametrize("how", ["truncated", "garbage", "zero bytes", "deleted"])
def test_a_damaged_journal_is_rebuilt_and_no_transcript_is_paid_twice(
    fake: FakeServer, tmp_path: Path, fast_config: Path, how: str
) -> None:
    root = tmp_path / "r"
    recordings(root)
    args = [str(root), "--config", str(fast_config), "--formats", "txt,json,srt"]
    first = run_cli(*args, env=api_env(fake))
    assert first.exit_code == EXIT_OK, first.output
    written = outputs(root)
    journal = root / ".batchscribe" / "journal.sqlite3"
    damage(journal, how)
    fake.api.reset_counters()

    again = run_cli(*args, env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    assert "Traceback" not in again.output and not events(again.output, "failed")
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    assert len(events(again.output, "done")) == len(RECORDINGS)
    assert all(" (adopted)" in line for line in events(again.output, "done"))
    assert outputs(root) == written
    aside = sorted(p.name for p in journal.parent.glob("journal.sqlite3.damaged-*"))
    if how in ("truncated", "garbage"):
        (line,) = [line for line in again.output.splitlines() if "moved it aside" in line]
        assert "the journal was damaged" in line and aside[0] in line
    else:  # an empty or missing journal is simply a new one
        assert aside == [] and "moved it aside" not in again.output
    # rebuilt: the next run knows every file again
    third = run_cli(*args, env=api_env(fake))
    assert third.exit_code == EXIT_OK and f"{len(RECORDINGS)} up to date" in third.output
    assert fake.api.request_count == 0


def test_after_a_lost_journal_a_file_that_is_not_ours_is_still_refused(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    recordings(root)
    args = [str(root), "--config", str(fast_config)]
    assert run_cli(*args, env=api_env(fake)).exit_code == EXIT_OK
    (root / "b.txt").write_text("my own edit of the transcript\n")  # the user's now
    (root / ".batchscribe" / "journal.sqlite3").unlink()
    fake.api.reset_counters()

    again = run_cli(*args, env=api_env(fake))

    assert again.exit_code == EXIT_SOME_FAILED
    (line,) = events(again.output, "failed")
    assert "b.wav" in line and "b.txt already exists and was not written by batchscribe" in line
    assert (root / "b.txt").read_text() == "my own edit of the transcript\n"
    assert len(events(again.output, "done")) == len(RECORDINGS) - 1
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0


def test_a_damaged_journal_with_the_local_engine_runs_no_model(tmp_path: Path) -> None:
    root = tmp_path / "r"
    recordings(root)
    engine = FakeEngine()
    cli = make_cli(engine_factory=lambda settings: engine)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, [str(root), *args], catch_exceptions=False)
        return result.exit_code, result.output

    assert run()[0] == EXIT_OK
    made = len(engine.started)
    damage(root / ".batchscribe" / "journal.sqlite3", "garbage")

    code, output = run("--quiet")

    assert code == EXIT_OK and "moved it aside" in output  # said even with --quiet
    assert len(engine.started) == made  # no model run: every transcript came from the store
    assert not events(output, "failed")


def test_status_on_a_damaged_journal_says_the_next_run_rebuilds_it(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    recordings(root)
    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    damage(root / ".batchscribe" / "journal.sqlite3", "garbage")

    status = run_cli(str(root), "--status")

    assert status.exit_code == 2 and "Traceback" not in status.output
    assert "the journal is damaged" in status.output and "next run" in status.output
