"""Bad input: each one clear line naming the file, nothing half-written, the run goes on."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from batchscribe.output.atomic import REAL_FILE_OPS, FileOps
from tests.fakeapi import API_KEY, FakeServer
from tests.fakes import disk_full, state_of, transcribe
from tests.kit import api_env, events, run_cli, speech


def failure_lines(output: str, name: str) -> list[str]:
    return [line for line in events(output, "failed") if name in line]


def test_each_bad_file_fails_alone_with_one_line(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "good.mp3").write_bytes(speech("fine"))
    (root / "empty.mp3").write_bytes(b"")
    (root / "text.mp3").write_bytes(b"NOTAUDIO plain text")
    (root / "huge.wav").write_bytes(speech("big") + b"\0" * 5000)
    (root / "mine.mp3").write_bytes(speech("would overwrite"))
    (root / "mine.txt").write_text("my own notes\n")
    os.symlink(root, root / "loop")  # a folder symlink loop is not followed
    config = tmp_path / "c.toml"
    config.write_text(fast_config.read_text() + "max_upload_bytes = 4000\n")

    result = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    assert "Traceback" not in result.output
    for name, cause in [
        ("empty.mp3", "empty file"),
        ("text.mp3", "does not appear to contain"),
        ("huge.wav", "upload limit"),
        ("mine.mp3", "mine.txt already exists"),
    ]:
        lines = failure_lines(result.output, name)
        assert len(lines) == 1 and cause in lines[0], (name, result.output)
    assert (root / "good.txt").read_text() == "fine\n"
    assert (root / "mine.txt").read_text() == "my own notes\n"
    assert not any((root / n).exists() for n in ("empty.txt", "text.txt", "huge.txt"))
    # the too-big file and the one with a foreign output were never uploaded
    assert fake.api.upload_count == 2
    assert "1 done" in result.output and "4 failed" in result.output


def test_unreadable_file_fails_alone(
    fake: FakeServer, tmp_path: Path, fast_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "good.mp3").write_bytes(speech("ok"))
    locked = tmp_path / "locked.mp3"
    locked.write_bytes(speech("secret"))
    locked.chmod(0)
    real_open = open

    def no_access(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(locked):  # root reads anything; refuse as a user's machine would
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_access)
    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    (line,) = failure_lines(result.output, "locked.mp3")
    assert "Permission denied" in line and "permissions" in line
    assert (tmp_path / "good.txt").exists() and not (tmp_path / "locked.txt").exists()


def test_file_changed_during_upload_is_not_kept_and_is_redone_next_run(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    source = tmp_path / "growing.mp3"
    source.write_bytes(speech("first take"))

    def grow(chunk: bytes) -> None:
        if b"first take" in chunk:
            source.write_bytes(speech("second take"))

    fake.api.on_upload = grow
    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    (line,) = failure_lines(result.output, "growing.mp3")
    assert "changed" in line and "next run" in line
    assert not (tmp_path / "growing.txt").exists()
    fake.api.on_upload = None

    again = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert again.exit_code == EXIT_OK
    assert (tmp_path / "growing.txt").read_text() == "second take\n"


def api_settings(fake: FakeServer, root: Path) -> Settings:
    """What `run_cli(root, --config fast_config)` builds, for calling the pipeline directly."""
    return Settings(
        paths=(root,),
        api_key=API_KEY,
        base_url=fake.url,
        poll_interval=0.02,
        retry_base_delay=0.0,
        retry_max_delay=0.0,
    )


async def test_full_disk_leaves_no_temp_file_and_the_next_run_pays_nothing(
    fake: FakeServer, tmp_path: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    source = root / "a.mp3"
    source.write_bytes(content := speech("keep me"))

    _, output = await transcribe(api_settings(fake, root), files=FileOps(fsync=disk_full))

    (line,) = failure_lines(output, "a.mp3")
    assert "No space left on device" in line
    assert sorted(os.listdir(root)) == [".batchscribe", "a.mp3"]
    assert source.read_bytes() == content
    assert state_of(root, "a.mp3") == "submitted"  # paid for: only ever polled again
    fake.api.reset_counters()

    await transcribe(api_settings(fake, root))

    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    assert (root / "a.txt").read_text() == "keep me\n"


async def test_read_only_output_folder_fails_the_file_and_keeps_it_collectable(
    fake: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("read only"))

    def read_only(prefix: str, suffix: str, folder: str) -> tuple[int, str]:
        if Path(folder) == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return REAL_FILE_OPS.mkstemp(prefix, suffix, folder)

    _, output = await transcribe(api_settings(fake, tmp_path), files=FileOps(mkstemp=read_only))

    (line,) = failure_lines(output, "a.txt")
    assert "Permission denied" in line and "permissions" in line
    assert state_of(tmp_path, "a.mp3") == "submitted"


def test_a_foreign_output_is_reported_once_and_waits_for_retry_failed(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "mine.mp3").write_bytes(speech("would overwrite"))
    (tmp_path / "mine.txt").write_text("my own notes\n")
    args = [str(tmp_path), "--quiet", "--config", str(fast_config)]

    night1 = run_cli(*args, env=api_env(fake))
    night2 = run_cli(*args, env=api_env(fake))

    assert night1.exit_code == EXIT_SOME_FAILED
    (line,) = failure_lines(night1.output, "mine.mp3")
    assert "mine.txt already exists" in line and "--retry-failed" in line
    assert night2.exit_code == EXIT_OK and night2.output == ""  # no mail every night
    assert (tmp_path / "mine.txt").read_text() == "my own notes\n"
    assert fake.api.upload_count == 0

    (tmp_path / "mine.txt").rename(tmp_path / "my notes.md")
    fixed = run_cli(*args, "--retry-failed", env=api_env(fake))

    assert fixed.exit_code == EXIT_OK, fixed.output
    assert (tmp_path / "mine.txt").read_text() == "would overwrite\n"


def status_lines(root: Path) -> list[str]:
    """--status without its last line (when the last run was, and how many there were)."""
    result = run_cli(str(root), "--status")
    assert result.exit_code == EXIT_OK
    return result.output.splitlines()[:-1]


def test_naming_every_file_of_a_finished_folder_skips_its_transcripts(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "pod"
    root.mkdir()
    for name in ("one.mp3", "two.ogg"):
        (root / name).write_bytes(speech(f"episode {name}"))
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff picture")
    args = ["--config", str(fast_config), "--formats", "txt,json,srt,vtt"]
    assert run_cli(str(root), *args, env=api_env(fake)).exit_code == EXIT_OK
    before = status_lines(root)
    fake.api.reset_counters()

    named = sorted(str(p) for p in root.iterdir() if not p.name.startswith("."))  # pod/*
    result = run_cli(*named, *args, env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert not events(result.output, "failed") and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if "not recordings" in line]
    assert "skipped 9 named file(s) that are not recordings" in line
    assert "(.jpg, .json, .srt, .txt, .vtt)" in line
    assert "2 up to date" in result.output
    assert fake.api.request_count == 0
    assert status_lines(root) == before


@pytest.mark.parametrize(
    ("named", "says"),
    [
        ("notes.txt", "notes.txt: not a recording; batchscribe takes folders and audio files"),
        ("talk.txt", "talk.txt: this is batchscribe's transcript of talk.mp3, not a recording"),
    ],
)
def test_naming_only_a_file_that_is_not_a_recording_is_a_usage_error(
    tmp_path: Path, named: str, says: str
) -> None:
    (tmp_path / "talk.mp3").write_bytes(speech("talk"))
    (tmp_path / "talk.txt").write_text("talk\n")
    (tmp_path / "notes.txt").write_text("my notes\n")

    result = run_cli(str(tmp_path / named))

    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.output.splitlines()
    assert says in line and ("mp3" in line or "name the recording" in line)
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
    assert not (tmp_path / ".batchscribe").exists()  # nothing tried, nothing recorded


def test_broken_links_and_link_loops_fail_the_first_night_only(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "good.mp3").write_bytes(speech("fine"))
    os.symlink(root / "gone.mp3", root / "dangling.mp3")
    os.symlink(root / "loop.mp3", root / "loop.mp3")
    args = [str(root), "--quiet", "--config", str(fast_config)]

    night1 = run_cli(*args, env=api_env(fake))
    night2 = run_cli(*args, env=api_env(fake))

    assert night1.exit_code == EXIT_SOME_FAILED and "Traceback" not in night1.output
    (dangling,) = failure_lines(night1.output, "dangling.mp3")
    assert "broken symlink" in dangling and "fix or remove the link" in dangling
    (loop,) = failure_lines(night1.output, "loop.mp3")
    assert "symlink loop" in loop and "point the link at a recording" in loop
    assert (night2.exit_code, night2.output) == (EXIT_OK, "")  # cron mails once
    status = run_cli(str(root), "--status").output
    assert "failed  dangling.mp3: broken symlink" in status and "failed  loop.mp3" in status

    (root / "gone.mp3").write_bytes(speech("found again"))  # the link works now
    fixed = run_cli(*args, env=api_env(fake))
    assert fixed.exit_code == EXIT_OK
    assert (root / "dangling.txt").read_text() == "found again\n"


def test_a_name_near_the_disk_limit_is_written_and_a_too_long_one_fails_once(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    # 255-byte names whose .txt is 255 bytes too (legal), and whose .json would be 256
    (root / ("l" * 251 + ".ogg")).write_bytes(speech("just fits"))
    (root / ("t" * 251 + ".m4a")).write_bytes(speech("does not fit"))
    args = [str(root), "--quiet", "--config", str(fast_config)]

    night1 = run_cli(*args, "--formats", "txt", env=api_env(fake))
    assert (root / ("l" * 251 + ".txt")).read_text() == "just fits\n"
    assert (root / ("t" * 251 + ".txt")).read_text() == "does not fit\n"  # no temp name fails
    assert night1.exit_code == EXIT_OK, night1.output
    fake.api.reset_counters()

    night2 = run_cli(*args, env=api_env(fake))  # now with .json: 256 bytes, too long
    night3 = run_cli(*args, env=api_env(fake))

    assert night2.exit_code == EXIT_SOME_FAILED
    for stem in ("llll", "tttt"):
        (line,) = failure_lines(night2.output, stem)
        assert "would be 256 bytes long, over the disk's 255" in line and "rename" in line
        assert "permissions" not in line and "free space" not in line
    assert fake.api.request_count == 0  # refused before anything is asked of the service
    assert (night3.exit_code, night3.output) == (EXIT_OK, "")


def test_every_write_failure_s_advice_fits_its_cause() -> None:
    from batchscribe.errors import write_advice

    def advice(code: int) -> str:
        return write_advice(OSError(code, os.strerror(code)))

    assert "too long" in advice(errno.ENAMETOOLONG) and "permissions" not in advice(
        errno.ENAMETOOLONG
    )
    assert "free some disk space" in advice(errno.ENOSPC)
    assert "read-only" in advice(errno.EROFS) and "--output-dir" in advice(errno.EROFS)
    assert "permissions" in advice(errno.EACCES)


def test_a_name_with_control_characters_stays_on_one_line_everywhere(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "two\nlines.mp3").write_bytes(speech("split"))
    (root / "red\x1b[31m.mp3").write_bytes(speech("colour"))
    (root / "empty\rtoo.mp3").write_bytes(b"")
    log = tmp_path / "run.log"
    args = [str(root), "--config", str(fast_config), "--log-file", str(log), "--json"]

    result = run_cli(*args, env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    lines = result.stderr.splitlines()
    assert all(line.startswith("20") for line in lines), lines  # each a timestamped event
    assert any("two\\nlines.mp3" in line for line in events(result.stderr, "done"))
    assert any("red\\x1b[31m.mp3" in line for line in events(result.stderr, "done"))
    assert "\x1b" not in result.stderr
    (failed,) = events(result.stderr, "failed")
    assert "empty\\rtoo.mp3" in failed
    assert all(line.startswith("20") for line in log.read_text().splitlines())
    (summary,) = result.stdout.splitlines()  # the JSON summary: one line, the name exact
    assert json.loads(summary)["failed"][0]["path"] == str(root / "empty\rtoo.mp3")
    status = run_cli(str(root), "--status").stdout
    assert "failed  empty\\rtoo.mp3: empty file" in status and "\r" not in status
