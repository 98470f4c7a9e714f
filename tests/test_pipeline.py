"""The wiring of a run, with an in-memory engine: bounded workers, the poller, copies paid once,
failures injected through the seams (the engine factory, the file-system calls)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.errors import EXIT_LOCKED, EXIT_OK, EXIT_SOME_FAILED, LockHeld
from batchscribe.output.atomic import FileOps
from batchscribe.run.session import session
from batchscribe.state.lock import RunLock
from tests.fakes import FakeEngine, state_of, transcribe
from tests.kit import events, speech


def settings_for(root: Path, **values: object) -> Settings:
    return Settings(paths=(root,), engine="local", poll_interval=0.01, **values)  # type: ignore[arg-type]


def recordings(root: Path, texts: dict[str, str]) -> None:
    for name, text in texts.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(speech(text))


async def test_every_file_is_written_by_at_most_concurrency_workers_at_once(
    tmp_path: Path,
) -> None:
    texts = {f"{folder}/{i}.mp3": f"take {folder} {i}" for folder in "abc" for i in range(4)}
    recordings(tmp_path, texts)
    engine = FakeEngine(delay=0.02)

    reporter, _ = await transcribe(settings_for(tmp_path, concurrency=3), engine)

    assert reporter.summary.done == 12 and not reporter.summary.failed
    assert 2 <= engine.most_running <= 3
    for name, text in texts.items():
        assert (tmp_path / name).with_suffix(".txt").read_text() == text + "\n"


async def test_identical_recordings_are_transcribed_once(tmp_path: Path) -> None:
    content = speech("same bytes")
    for name in ("a.mp3", "b.mp3", "sub/c.mp3"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content)
    engine = FakeEngine(submit=True)

    reporter, _ = await transcribe(settings_for(tmp_path), engine)

    assert len(engine.started) == 1 and reporter.summary.done == 3
    assert (tmp_path / "sub" / "c.txt").read_text() == "same bytes\n"


async def test_submitted_transcripts_are_collected_by_the_poller_and_errors_fail_copies(
    tmp_path: Path,
) -> None:
    recordings(tmp_path, {"good.mp3": "fine", "bad.mp3": "noise"})
    (tmp_path / "bad copy.mp3").write_bytes((tmp_path / "bad.mp3").read_bytes())
    engine = FakeEngine(submit=True, errors={"noise": "not audio"})

    reporter, out = await transcribe(settings_for(tmp_path), engine)

    assert reporter.summary.done == 1 and len(reporter.summary.failed) == 2
    assert len(events(out, "failed")) == 2
    assert state_of(tmp_path, "bad.mp3") == state_of(tmp_path, "bad copy.mp3") == "failed"


async def test_a_second_run_starts_nothing(tmp_path: Path) -> None:
    recordings(tmp_path, {"a.mp3": "once", "b/c.mp3": "only once"})
    await transcribe(settings_for(tmp_path), FakeEngine())
    engine = FakeEngine()

    reporter, _ = await transcribe(settings_for(tmp_path), engine)

    assert engine.started == [] and reporter.summary.skipped == 2


async def test_delete_after_waits_until_every_output_is_written(tmp_path: Path) -> None:
    recordings(tmp_path, {"a.mp3": "keep until written"})

    def read_only(prefix: str, suffix: str, folder: str) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    engine = FakeEngine(submit=True)
    settings = settings_for(tmp_path, delete_after=True)
    await transcribe(settings, engine, files=FileOps(mkstemp=read_only))
    assert engine.deleted == []

    await transcribe(settings, engine)

    assert (tmp_path / "a.txt").exists() and engine.deleted == ["t1"]


async def test_a_folder_locked_by_another_run_is_refused(tmp_path: Path) -> None:
    recordings(tmp_path, {"a.mp3": "busy"})
    engine = FakeEngine()
    with RunLock(tmp_path), pytest.raises(LockHeld):
        await transcribe(settings_for(tmp_path), engine)
    assert engine.started == []


async def test_max_files_leaves_the_rest_for_the_next_run(tmp_path: Path) -> None:
    texts = {f"{i}.mp3": f"file {i}" for i in range(5)}
    recordings(tmp_path, texts)
    settings, tonight, tomorrow = settings_for(tmp_path, max_files=3), FakeEngine(), FakeEngine()

    reporter, _ = await transcribe(settings, tonight)

    assert reporter.summary.done == 3 and reporter.summary.over_budget == 2

    again, _ = await transcribe(settings, tomorrow)

    assert again.summary.done == 2 and again.summary.skipped == 3 and not again.summary.over_budget
    assert sorted(tonight.started + tomorrow.started) == sorted(tmp_path / n for n in texts)
    for name, text in texts.items():
        assert (tmp_path / name).with_suffix(".txt").read_text() == text + "\n"


def test_a_session_returns_the_runs_exit_status_and_prints_its_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run.session` is the whole run a front calls: 0 all done, 1 a file failed, the error's
    own status (3: locked) with its one line on stderr."""
    recordings(tmp_path, {"a.mp3": "fine", "b.mp3": "broken"})
    engine = FakeEngine(errors={"broken": "not audio"})

    assert session(settings_for(tmp_path, quiet=True), lambda settings: engine) == EXIT_SOME_FAILED
    assert session(settings_for(tmp_path, quiet=True), lambda settings: engine) == EXIT_OK
    with RunLock(tmp_path):
        code = session(settings_for(tmp_path, quiet=True), lambda settings: engine)
    assert code == EXIT_LOCKED
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("batchscribe: error: ") and "another" in last.lower(), last
