"""Terminal and cron behaviour: progress, plain lines, --quiet, --json, --dry-run, --status,
budgets, --retry-failed and --log-file."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

from rich.console import Console

from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from batchscribe.report import (
    Recent,
    Reporter,
    exit_code,
    format_summary,
    keep_last,
    summary_json,
)
from batchscribe.state.lock import STATE_DIR
from tests.fakeapi import FakeServer
from tests.fakes import connect_journal, journal_path
from tests.kit import EXAMPLES, api_env, copy_recordings, events, run_cli, speech

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (done|failed)  ")


def drive(reporter: Reporter) -> None:
    with reporter:
        reporter.discovered(3)
        for name in ("a.mp3", "b.mp3", "c.mp3"):
            reporter.started(Path(name))
        reporter.transcribing(Path("b.mp3"))
        reporter.done(Path("a.mp3"), 60.0)
        reporter.failed(Path("c.mp3"), "not audio")
    reporter.finish()


def test_plain_output_is_timestamped_lines_without_control_characters() -> None:
    out = io.StringIO()
    drive(Reporter(console=Console(file=out, force_terminal=False)))
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert STAMP.match(lines[0]) and lines[0].endswith("done    a.mp3")
    assert STAMP.match(lines[1]) and lines[1].endswith("failed  c.mp3: not audio")
    assert "1 done" in lines[2] and "1 failed" in lines[2]


def test_a_dumb_terminal_gets_whole_plain_lines_however_long_the_name() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, _environ={"TERM": "dumb"})
    long_name = "/recordings/" + "a-very-long-folder-name/" * 6 + "call.mp3"
    with Reporter(console=console) as reporter:
        assert reporter._live is None  # it cannot redraw: no progress line
        reporter.done(Path(long_name), 60.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and STAMP.match(lines[0]), lines
    assert lines[0].endswith(f"done    {long_name}")
    assert "\x1b" not in out.getvalue()


def test_terminal_gets_a_progress_display_with_stages() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140)
    reporter = Reporter(console=console)
    with reporter:
        reporter.discovered(4)
        for name in ("a.mp3", "b.mp3", "c.mp3"):
            reporter.started(Path(name))
        reporter.transcribing(Path("b.mp3"))
        reporter.done(Path("a.mp3"), 1800.0)
        assert reporter._live is not None
        reporter._live.refresh()
        screen = ANSI.sub("", out.getvalue())
    assert "━" in screen and "1/4 files" in screen
    assert "1 uploading · 1 transcribing" in screen and "0.50 h audio" in screen
    assert re.search(r"[\d.]+× real time", screen) and "ETA " in screen
    assert "done    a.mp3" in screen


def test_a_long_name_on_a_narrow_terminal_is_one_line_the_terminal_folds() -> None:
    out = io.StringIO()
    long_name = "/recordings/" + "a-long-folder/" * 8 + "call.mp3"
    with Reporter(quiet=True, console=Console(file=out, force_terminal=True, width=40)) as r:
        r.failed(Path(long_name), "not audio")
    assert ANSI.sub("", out.getvalue()).splitlines() == [f"failed  {long_name}: not audio"]


def test_quiet_terminal_shows_no_progress_only_failures() -> None:
    out = io.StringIO()
    drive(Reporter(quiet=True, console=Console(file=out, force_terminal=True, width=100)))
    text = out.getvalue()
    assert "━" not in text and "done    a.mp3" not in text
    assert "failed  c.mp3: not audio" in text


def test_quiet_prints_the_failure_when_something_fails(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "ok.mp3").write_bytes(speech("fine"))
    (tmp_path / "bad.mp3").write_bytes(b"NOTAUDIO")

    result = run_cli(str(tmp_path), "-q", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    assert len(events(result.output, "failed")) == 1 and not events(result.output, "done")


def test_json_summary_on_stdout(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    (tmp_path / "ok.mp3").write_bytes(speech("fine words"))
    (tmp_path / "bad.mp3").write_bytes(b"NOTAUDIO")

    result = run_cli(str(tmp_path), "--json", "--config", str(fast_config), env=api_env(fake))

    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"engine", "exit_code", "done", "up_to_date", "failed", "failed_count",
                            "still_processing", "warnings", "no_speech", "low_confidence",
                            "truncated", "languages", "failed_before", "left_over_budget",
                            "audio_seconds", "wall_seconds"}  # fmt: skip
    assert summary["languages"] == {}  # AssemblyAI was told the language: none detected
    assert summary["engine"] == "assemblyai" and summary["exit_code"] == result.exit_code == 1
    assert summary["done"] == 1 and summary["failed"][0]["path"].endswith("bad.mp3")
    assert "does not appear to contain audio" in summary["failed"][0]["error"]
    assert summary["audio_seconds"] > 0 and summary["wall_seconds"] > 0


def test_no_speech_is_done_said_on_its_line_and_counted() -> None:
    out = io.StringIO()
    reporter = Reporter(console=Console(file=out, force_terminal=False))
    with reporter:
        for name in ("silence.wav", "talk.wav"):
            reporter.started(Path(name))
        reporter.done(Path("silence.wav"), 30.0, " (changed)", no_speech=True)
        reporter.done(Path("talk.wav"), 5.0)
    reporter.finish()

    assert events(out.getvalue(), "done") == ["done    silence.wav (changed) (no speech)",
                                              "done    talk.wav"]  # fmt: skip
    assert "2 done (1 no speech), 0 up to date" in out.getvalue()
    assert summary_json(reporter.summary)["no_speech"] == ["silence.wav"]
    assert exit_code(reporter.summary) == EXIT_OK


def test_low_confidence_is_a_warning_even_when_quiet_and_exits_0() -> None:
    out = io.StringIO()
    reporter = Reporter(quiet=True, console=Console(file=out, force_terminal=False))
    with reporter:
        reporter.started(Path("french.wav"))
        reporter.done(Path("french.wav"), 6.0, low_confidence="low confidence 0.31 (under 0.65)")
    reporter.finish()

    assert not events(out.getvalue(), "done")  # --quiet: no done lines
    assert events(out.getvalue(), "warning") == [
        "warning french.wav: low confidence 0.31 (under 0.65)"
    ]
    assert "1 done (1 low confidence)" in out.getvalue()  # the summary too: cron mails it once
    summary = summary_json(reporter.summary)
    assert summary["low_confidence"] == ["french.wav"] and summary["warnings"] == []
    assert summary["exit_code"] == exit_code(reporter.summary) == EXIT_OK


def test_assemblyai_low_confidence_is_flagged_in_the_json_without_the_model_hint(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("mumbled words"))
    config = fast_config.read_text() + "[output]\nlow_confidence = 0.95\n"  # the fake: 0.93
    fast_config.write_text(config)

    result = run_cli(str(tmp_path), "--json", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["low_confidence"] == [str(tmp_path / "a.mp3")]
    [line] = events(result.output, "warning")
    assert "low confidence 0.93 (under 0.95)" in line and "English" not in line
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["batchscribe"] == {"low_confidence": True, "confidence_threshold": 0.95}
    assert data["confidence"] == 0.93 and data["id"]  # the API's object, one key added


def test_assemblyai_transcripts_above_the_threshold_are_kept_exactly(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("clear words"))

    result = run_cli(str(tmp_path), "--json", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert json.loads(result.stdout.strip().splitlines()[-1])["low_confidence"] == []
    assert "batchscribe" not in json.loads((tmp_path / "a.json").read_text())


def test_dry_run_lists_work_with_duration_and_cost_and_touches_nothing(
    fake: FakeServer, tmp_path: Path
) -> None:
    recordings = copy_recordings(tmp_path / "r")

    result = run_cli(str(recordings), "--dry-run", env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.request_count == 0
    assert not (recordings / STATE_DIR).exists()
    assert len([line for line in result.stdout.splitlines() if "would transcribe" in line]) == 5
    assert "(new, 0.1 min)" in result.stdout
    total = result.stdout.splitlines()[-1]
    assert (
        "5 to transcribe (0.01 h of audio)" in total and "estimated AssemblyAI cost $0.00" in total
    )


def test_dry_run_says_why_and_loads_no_model(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from batchscribe.cli import make_cli
    from batchscribe.config import Settings
    from batchscribe.engines.base import Engine

    shutil.copyfile(EXAMPLES / "voicemail.ogg", tmp_path / "v.ogg")

    def no_model(settings: Settings) -> Engine:
        raise AssertionError("the model was loaded")

    cli = make_cli(engine_factory=no_model)
    result = CliRunner().invoke(cli, [str(tmp_path), "--dry-run"], catch_exceptions=False)

    assert result.exit_code == EXIT_OK
    assert "would transcribe" in result.stdout and "local engine, no cost" in result.stdout


def test_status_after_a_run_with_failures(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "ok.mp3").write_bytes(speech("fine"))
    (tmp_path / "bad.mp3").write_bytes(b"NOTAUDIO")
    run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "--status", env=api_env(fake))

    assert result.exit_code == EXIT_OK and fake.api.request_count == 0
    lines = result.stdout.splitlines()
    assert lines[0].endswith("2 files: 1 done, 1 failed")
    assert "failed  bad.mp3: AssemblyAI could not transcribe it" in lines[1]
    assert "--retry-failed" in lines[1]
    assert "last run" in lines[2] and "completed; 1 done, 1 failed" in lines[2]


def test_permanent_failures_wait_for_retry_failed(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "bad.mp3").write_bytes(b"NOTAUDIO")
    env = api_env(fake)
    assert run_cli(str(tmp_path), "--config", str(fast_config), env=env).exit_code == 1
    fake.api.reset_counters()

    again = run_cli(str(tmp_path), "--config", str(fast_config), env=env)
    # reported by the first run: nothing new, so 0; nothing is paid for again, and the line
    # says how to retry
    assert again.exit_code == EXIT_OK and fake.api.request_count == 0
    assert "1 failed before, not retried (--retry-failed)" in again.output
    quiet = run_cli(str(tmp_path), "-q", "--config", str(fast_config), env=env)
    assert (quiet.exit_code, quiet.output) == (EXIT_OK, "")

    retried = run_cli(str(tmp_path), "--retry-failed", "--config", str(fast_config), env=env)
    assert retried.exit_code == EXIT_SOME_FAILED and fake.api.upload_count == 1


def test_max_files_stops_starting_and_the_next_run_continues(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    for i in range(5):
        (tmp_path / f"{i}.mp3").write_bytes(speech(f"n {i}"))
    env = api_env(fake)

    first = run_cli(
        str(tmp_path), "--max-files", "2", "-c", "1", "--config", str(fast_config), env=env
    )

    assert first.exit_code == EXIT_OK
    assert fake.api.upload_count == 2 and len(list(tmp_path.glob("*.txt"))) == 2
    assert "3 left for the next run (budget reached)" in first.output
    second = run_cli(str(tmp_path), "--config", str(fast_config), env=env)
    assert "3 done, 2 up to date" in second.output


def test_max_audio_hours_counts_real_durations(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    for clip in ("meeting-notes.wav", "podcast-intro.mp3", "voicemail.ogg"):
        shutil.copyfile(EXAMPLES / clip, tmp_path / clip)

    # 14.4 s of budget: the first clip (7.3 s) fits, the second (8 s) starts the overrun
    result = run_cli(
        str(tmp_path),
        "--max-audio-hours",
        "0.004",
        "-c",
        "1",
        "--config",
        str(fast_config),
        env=api_env(fake),
    )

    assert result.exit_code == EXIT_OK
    assert fake.api.upload_count == 2
    assert "1 left for the next run" in result.output


def test_log_file_appends(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("earlier line\n")
    (tmp_path / "a.mp3").write_bytes(speech("logged"))

    result = run_cli(
        str(tmp_path), "-q", "--log-file", str(log), "--config", str(fast_config), env=api_env(fake)
    )

    assert result.exit_code == EXIT_OK and result.output == ""
    text = log.read_text()
    assert text.startswith("earlier line\n") and "done    " in text and "a.mp3" in text
    # the same lines as the plain output (and the README's sample): ISO time, then the text
    done, summary = text.splitlines()[1:]
    assert STAMP.match(done) and done.endswith(f"done    {tmp_path / 'a.mp3'} (universal-3-pro)")
    assert re.match(r"^\S+ batchscribe: 1 done, 0 up to date", summary)


def test_status_reads_a_journal_from_before_the_newer_columns(tmp_path: Path) -> None:
    journal_path(tmp_path).parent.mkdir()
    with connect_journal(tmp_path) as db:  # the first release's schema
        db.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER"
            " NOT NULL, state TEXT NOT NULL, engine TEXT, upload_url TEXT, uploaded_at REAL,"
            " transcript_id TEXT, error TEXT, outputs TEXT, updated_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO files VALUES ('a.mp3', 1, 2, 'done', 'local', NULL, NULL,"
                   " NULL, NULL, '[\"a.txt\"]', 0)")  # fmt: skip

    result = run_cli(str(tmp_path), "--status")

    assert result.exit_code == EXIT_OK, result.output
    assert "1 files: 1 done" in result.stdout


def plain(engine: str) -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    reporter = Reporter(quiet=True, console=Console(file=out, force_terminal=False))
    reporter.summary.engine = engine
    return reporter, out


def test_local_progress_says_transcribing_never_uploading() -> None:
    out = io.StringIO()
    reporter = Reporter(console=Console(file=out, force_terminal=True, width=140))
    reporter.summary.engine = "local"
    with reporter:
        reporter.discovered(3)
        for name in ("a.mp3", "b.mp3"):
            reporter.started(Path(name))
        reporter.transcribing(Path("b.mp3"))
        assert reporter._live is not None
        reporter._live.refresh()
        screen = ANSI.sub("", out.getvalue())
    assert "2 transcribing" in screen and "uploading" not in screen


def test_stopping_is_one_line_even_when_quiet_and_says_what_the_local_engine_finishes() -> None:
    reporter, out = plain("local")
    for name in ("a.wav", "b.wav", "c.wav"):
        reporter.started(Path(name))
    reporter.transcribing(Path("a.wav"))
    reporter.transcribing(Path("b.wav"))

    reporter.stopping(60)

    (line,) = out.getvalue().splitlines()
    assert line.endswith(
        " stopping: finishing 2 file(s) being transcribed (at most 60 s); "
        "press Ctrl-C again to stop now"
    )


def test_stopping_with_assemblyai_waits_for_transcripts_and_uploads_nothing_more() -> None:
    reporter, out = plain("assemblyai")
    for name in ("a.mp3", "b.mp3", "c.mp3", "d.mp3"):
        reporter.started(Path(name))
    for name in ("a.mp3", "b.mp3", "c.mp3"):
        reporter.transcribing(Path(name))

    reporter.stopping(0.5)

    assert (
        out.getvalue()
        .rstrip()
        .endswith(
            " stopping: no new uploads; waiting up to 0.5 s for 3 transcript(s) under way "
            "(the next run collects the rest); press Ctrl-C again to stop now"
        )
    )


def test_interrupted_after_stopping_speaks_of_what_each_engine_keeps() -> None:
    local, local_out = plain("local")
    api, api_out = plain("assemblyai")
    for reporter in (local, api):
        with reporter:
            reporter.started(Path("a.mp3"))
            reporter.started(Path("b.mp3"))
            reporter.transcribing(Path("b.mp3"))
            reporter.stopping(60)
            reporter.done(Path("b.mp3"), 10.0)
        reporter.interrupted()
        reporter.interrupted()  # once is enough: a second call says nothing more

    local_lines = local_out.getvalue().splitlines()
    assert len(local_lines) == 3 and "1 done" in local_lines[1]
    assert "interrupted with 1 file(s) under way; nothing is paid" in local_lines[2]
    assert "transcribed again by the next run" in local_lines[2]
    assert "journal" not in local_lines[2] and "paying twice" not in local_lines[2]
    api_lines = api_out.getvalue().splitlines()
    assert len(api_lines) == 3
    assert (
        "interrupted with 1 file(s) under way; their uploads and transcripts are saved in "
        "the journal" in api_lines[2]
    )
    assert api_lines[2].endswith("Run the same command again to finish without paying twice.")


def test_interrupted_with_nothing_under_way_says_how_to_go_on() -> None:
    reporter, out = plain("local")
    reporter.interrupted()
    line = out.getvalue().rstrip()
    assert line.endswith("batchscribe: interrupted. Run the same command again to do the rest; "
                         "nothing done is done twice.")  # fmt: skip


def test_recent_keeps_the_last_items_and_counts_them_all() -> None:
    recent: Recent[int] = Recent(3)
    assert not recent and len(recent) == 0
    for i in range(10):
        recent.append(i)
    assert list(recent) == [7, 8, 9] and len(recent) == 10 and recent.dropped == 7
    unbounded: Recent[int] = Recent()
    for i in range(1000):
        unbounded.append(i)
    assert len(list(unbounded)) == 1000 and unbounded.dropped == 0


def test_a_file_held_back_by_the_budget_counts_once_and_not_once_started() -> None:
    reporter = Reporter(stream=io.StringIO())
    for _rescan in range(3):  # a watcher offers the waiting files again at every rescan
        reporter.over_budget(Path("a.mp3"))
        reporter.over_budget(Path("b.mp3"))
    assert reporter.summary.over_budget == 2
    reporter.started(Path("a.mp3"))  # the next day's budget admits it
    assert reporter.summary.over_budget == 1


def test_a_watchers_summary_lists_the_last_failures_with_their_count(tmp_path: Path) -> None:
    reporter = Reporter(quiet=True)
    keep_last(reporter.summary, 5)
    for i in range(12):
        reporter.failed(tmp_path / f"{i}.wav", "empty file", started=False)

    summary = summary_json(reporter.summary)

    assert summary["failed_count"] == 12
    assert [f["path"] for f in summary["failed"]] == [
        str(tmp_path / f"{i}.wav") for i in range(7, 12)
    ]
    assert "12 failed" in format_summary(reporter.summary)
    assert summary["exit_code"] == 1


def test_a_runs_summary_lists_every_failure(tmp_path: Path) -> None:
    reporter = Reporter(quiet=True)
    for i in range(300):
        reporter.failed(tmp_path / f"{i}.wav", "empty file", started=False)

    summary = summary_json(reporter.summary)

    assert summary["failed_count"] == 300 and len(summary["failed"]) == 300


def test_a_sigterm_stop_says_to_send_sigterm_again_not_to_press_ctrl_c() -> None:
    reporter, out = plain("local")
    reporter.started(Path("a.wav"))
    reporter.transcribing(Path("a.wav"))

    reporter.stopping(60, "SIGTERM")

    (line,) = out.getvalue().splitlines()
    assert line.endswith("(at most 60 s); send SIGTERM again to stop now")
    assert "Ctrl-C" not in line


def test_stopping_an_idle_watch_does_not_speak_of_the_rest() -> None:
    reporter, out = plain("assemblyai")
    reporter.started(Path("a.mp3"))
    reporter.done(Path("a.mp3"), 5.0)
    reporter.watching(1)  # caught up: waiting for new recordings

    reporter.stopping(60)
    reporter.interrupted()

    lines = out.getvalue().splitlines()
    (stopping,) = [line for line in lines if "stopping:" in line]
    assert stopping.endswith("stopping: nothing under way; press Ctrl-C again to stop now")
    assert lines[-1].endswith("batchscribe: stopped; every recording found is done (or "
                              "reported above).")  # fmt: skip
    assert not any("the rest" in line for line in lines)


async def test_the_stop_line_is_told_which_signal_asked() -> None:
    import os
    import signal

    from batchscribe.run.stopping import Stop, under_stop_signals

    said: list[str] = []

    async def work(stop: Stop) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await stop.event.wait()

    assert await under_stop_signals(work, grace=5, stopping=said.append)
    assert said == ["SIGTERM"]
