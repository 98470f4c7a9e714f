"""The real CLI against the fake AssemblyAI API on 127.0.0.1: the contract end to end."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from batchscribe.cli import make_cli
from batchscribe.config import Settings
from batchscribe.engines.base import Checkpoint, Engine, Finished, Submitted
from batchscribe.errors import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    ConfigError,
    InputError,
    RetryableApiError,
)
from batchscribe.recording import Recording
from batchscribe.state.lock import LOCK_NAME
from tests.fakeapi import API_KEY, FakeServer
from tests.fakes import FakeEngine, heard, journal_path, journal_rows
from tests.kit import TREE_AUDIO, api_env, make_tree, run_cli, speech


def test_folder_is_transcribed_with_every_output_next_to_its_own_source(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "recordings"
    spoken = make_tree(root)

    result = run_cli(
        str(root), "--concurrency", "3", "--config", str(fast_config), env=api_env(fake)
    )

    assert result.exit_code == EXIT_OK, result.output
    assert len(spoken) == len(TREE_AUDIO) >= 20
    for source, text in spoken.items():
        assert source.with_suffix(".txt").read_text(encoding="utf-8") == text + "\n"
        data = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
        assert data["status"] == "completed" and data["text"] == text
    assert fake.api.upload_count == len(spoken)
    assert fake.api.transcript_count == len(spoken)
    assert max(fake.api.uploads_by_digest.values()) == 1
    assert 1 <= fake.api.peak_uploads_in_flight <= 3
    # non-audio and hidden files are left alone
    assert not (root / ".hidden.txt").exists() and not (root / "notes.txt").exists()
    assert not (root / ".cache" / "skip.txt").exists()
    assert f"{len(spoken)} done" in result.output


def test_peak_concurrent_uploads_never_exceed_concurrency(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.upload_bytes_per_second = 2_000_000  # slow uploads so they overlap
    root = tmp_path / "r"
    root.mkdir()
    for i in range(12):
        (root / f"{i}.wav").write_bytes(speech(f"n {i}") + os.urandom(100_000))

    result = run_cli(str(root), "-c", "4", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.peak_uploads_in_flight == 4
    # streamed with its length known up front (not chunked: see AssemblyAIClient.upload)
    assert fake.api.upload_transfer_encodings == {"": 12}


def test_rerun_makes_no_request_when_outputs_are_current(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "recordings"
    make_tree(root)
    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    fake.api.reset_counters()

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert fake.api.request_count == 0
    assert f"0 done, {len(TREE_AUDIO)} up to date" in result.output


def test_touched_file_is_redone_alone(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    root = tmp_path / "recordings"
    make_tree(root)
    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    fake.api.reset_counters()
    changed = root / "Sub Folder" / "meeting 2.mp3"
    changed.write_bytes(speech("the new take"))

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert fake.api.upload_count == 1 and fake.api.transcript_count == 1
    assert changed.with_suffix(".txt").read_text() == "the new take\n"


def test_deleted_output_is_redone(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.mp3").write_bytes(speech("alpha"))
    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    (root / "a.json").unlink()

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert json.loads((root / "a.json").read_text())["text"] == "alpha"


def test_stem_clash_uses_full_names(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "talk.mp3").write_bytes(speech("from the mp3"))
    (root / "talk.wav").write_bytes(speech("from the wav"))
    (root / "solo.mp3").write_bytes(speech("alone"))

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert (root / "talk.mp3.txt").read_text() == "from the mp3\n"
    assert (root / "talk.wav.txt").read_text() == "from the wav\n"
    assert (root / "solo.txt").read_text() == "alone\n"
    assert not (root / "talk.txt").exists()


def test_a_stem_that_is_another_recordings_full_name_gets_its_own_outputs(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.ogg").write_bytes(speech("from the ogg"))
    (root / "a.mp3").write_bytes(speech("from the mp3"))
    (root / "a.ogg.wav").write_bytes(speech("from the wav"))

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    for name, said in (("a.ogg", "from the ogg"), ("a.mp3", "from the mp3"),
                       ("a.ogg.wav", "from the wav")):  # fmt: skip
        assert (root / f"{name}.txt").read_text() == f"{said}\n"
        assert json.loads((root / f"{name}.json").read_text())["text"] == said
    again = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))
    assert "3 up to date" in again.output and fake.api.transcript_count == 3


def test_single_file_argument(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    (tmp_path / "one.mp3").write_bytes(speech("just one"))
    (tmp_path / "two.mp3").write_bytes(speech("not this"))

    result = run_cli(str(tmp_path / "one.mp3"), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert (tmp_path / "one.txt").read_text() == "just one\n"
    assert not (tmp_path / "two.txt").exists()


def test_not_audio_fails_alone_with_the_api_error(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "good.mp3").write_bytes(speech("fine"))
    (root / "bad.mp3").write_bytes(b"NOTAUDIO this is a text file")

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    assert (root / "good.txt").read_text() == "fine\n"
    assert not (root / "bad.txt").exists() and not (root / "bad.json").exists()
    failure = [line for line in result.output.splitlines() if "bad.mp3" in line]
    assert len(failure) == 1 and "does not appear to contain audio" in failure[0]
    assert "1 done" in result.output and "1 failed" in result.output


def test_bad_key_stops_at_once_with_one_line_and_exit_2(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    make_tree(root)

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake, "wrong-key"))

    assert result.exit_code == EXIT_USAGE
    assert result.output.count("HTTP 401") == 1
    assert "Traceback" not in result.output
    # stopped at once: not one request per file
    assert fake.api.request_count < len(TREE_AUDIO)


def test_an_api_url_with_v2_stops_the_run_and_the_next_run_at_the_right_one_does_them(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    make_tree(root)
    env = {**api_env(fake), "ASSEMBLYAI_BASE_URL": fake.url + "/v2"}  # an easy slip

    wrong = run_cli(str(root), "--config", str(fast_config), env=env)

    assert wrong.exit_code == EXIT_USAGE, wrong.output
    line = [text for text in wrong.output.splitlines() if "HTTP 404" in text]
    assert len(line) == 1 and "without /v2" in line[0] and "Traceback" not in wrong.output
    assert fake.api.request_count < len(TREE_AUDIO)  # stopped at once, not file by file
    right = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))
    assert right.exit_code == EXIT_OK, right.output
    assert f"{len(TREE_AUDIO)} done" in right.output  # none failed for good


def test_key_never_appears_in_output_outputs_or_journal(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.mp3").write_bytes(speech("secret-free"))
    (root / "bad.mp3").write_bytes(b"NOTAUDIO")

    result = run_cli(str(root), "-v", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    assert API_KEY not in result.output
    for path in root.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_journal_and_lock_are_private(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "a.mp3").write_bytes(speech("x"))
    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    state = journal_path(root).parent
    assert state.stat().st_mode & 0o077 == 0
    for path in (journal_path(root), state / LOCK_NAME):
        assert path.stat().st_mode & 0o077 == 0
    rows = journal_rows(root, "path, state, transcript_id")
    assert rows[0][:2] == ("a.mp3", "done") and rows[0][2]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "nope"))
    assert result.exit_code == EXIT_USAGE
    assert "nope" in result.output and "Traceback" not in result.output


def test_help_lists_every_flag_and_examples() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for flag in ("--concurrency", "--engine", "--api-url", "--config", "--poll-interval",
                 "--ext", "--quiet", "--verbose", "--model", "Examples:"):  # fmt: skip
        assert flag in result.output


def test_ext_flag_limits_the_extensions(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("mp3"))
    (tmp_path / "b.WAV").write_bytes(speech("wav"))

    result = run_cli(
        str(tmp_path), "--ext", ".wav", "--config", str(fast_config), env=api_env(fake)
    )

    assert result.exit_code == EXIT_OK
    assert (tmp_path / "b.txt").exists() and not (tmp_path / "a.txt").exists()


def test_quiet_prints_nothing_on_success(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("shh"))

    result = run_cli(str(tmp_path), "-q", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert result.output == ""


def test_engines_come_from_the_factory_the_command_is_made_with(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("never sent"))
    made: list[Settings] = []

    def refuse(settings: Settings) -> Engine:
        made.append(settings)
        raise ConfigError("no engine in this test; use --engine local to try the other one.")

    cli = make_cli(engine_factory=refuse)
    args = [str(tmp_path), "--config", str(fast_config)]
    result = CliRunner().invoke(cli, args, env=api_env(fake), catch_exceptions=False)

    assert made and made[0].chosen_engine() == "assemblyai"
    assert result.exit_code == EXIT_USAGE and "no engine in this test" in result.output
    assert fake.api.request_count == 0


def test_unknown_request_option_is_warned_about_and_sent_anyway(
    fake: FakeServer, tmp_path: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("hello"))
    config = tmp_path / "c.toml"
    config.write_text(
        "[assemblyai]\npoll_interval = 0.02\n[assemblyai.transcript]\nshiny_new_field = 1\n"
    )

    result = run_cli(str(tmp_path), "--config", str(config), env=api_env(fake))
    quiet = run_cli(str(tmp_path), "-q", "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert result.stderr.startswith(
        "batchscribe: warning: [assemblyai.transcript] shiny_new_field is not in the API "
        "reference; sending it anyway.\n"
    )
    assert quiet.output == ""


class RefusesEmptyFiles(FakeEngine):
    """The fake, failing a zero-byte file as both real engines do (permanent: it cannot
    get better by trying again), and `flaky` texts as a network failure would (transient)."""

    flaky: tuple[str, ...] = ()

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished | Submitted:
        if recording.fingerprint.size == 0:
            raise InputError("empty file (0 bytes); nothing to transcribe", permanent=True)
        if heard(recording.path) in self.flaky:
            raise RetryableApiError("connection reset by peer; the next run tries again")
        return await super().start(recording, checkpoint)


def nightly(engine: FakeEngine) -> Callable[..., Result]:
    """`batchscribe FOLDER ...` with `engine`, as cron runs it (no key: the local engine)."""
    cli = make_cli(engine_factory=lambda settings: engine)

    def night(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return night


def test_nightly_quiet_runs_mail_a_file_that_fails_for_good_once(tmp_path: Path) -> None:
    (tmp_path / "monday.mp3").write_bytes(speech("monday"))
    (tmp_path / "tuesday.mp3").write_bytes(speech("tuesday"))
    (tmp_path / "empty.mp3").write_bytes(b"")
    night = nightly(RefusesEmptyFiles())

    first = night(str(tmp_path), "--quiet")
    second = night(str(tmp_path), "--quiet")
    (tmp_path / "wednesday.mp3").write_bytes(speech("wednesday"))
    third = night(str(tmp_path), "--quiet")

    assert first.exit_code == EXIT_SOME_FAILED
    assert "failed  " in first.output and "empty.mp3: empty file (0 bytes)" in first.output
    assert "2 done" in first.output and "1 failed" in first.output
    assert (second.exit_code, second.output) == (EXIT_OK, "")
    assert (third.exit_code, third.output) == (EXIT_OK, "")
    assert (tmp_path / "wednesday.txt").read_text() == "wednesday\n"
    # not quiet: the summary names it; --status lists it
    shown = night(str(tmp_path), "--json")
    assert shown.exit_code == EXIT_OK
    assert "1 failed before, not retried (--retry-failed)" in shown.stderr
    summary = json.loads(shown.stdout.splitlines()[-1])
    assert summary["exit_code"] == 0 and summary["failed_before"] == 1 and not summary["failed"]
    status = night(str(tmp_path), "--status")
    assert "failed  empty.mp3: empty file (0 bytes)" in status.stdout
    assert "--retry-failed to retry" in status.stdout


def test_a_transient_failure_that_still_fails_exits_1_every_run(tmp_path: Path) -> None:
    (tmp_path / "ok.mp3").write_bytes(speech("fine"))
    (tmp_path / "flaky.mp3").write_bytes(speech("flaky"))
    engine = RefusesEmptyFiles()
    engine.flaky = ("flaky",)
    night = nightly(engine)

    first, second = night(str(tmp_path), "--quiet"), night(str(tmp_path), "--quiet")

    for result in (first, second):
        assert result.exit_code == EXIT_SOME_FAILED
        assert "flaky.mp3: connection reset by peer" in result.output
    assert "failed before" not in second.output
    engine.flaky = ()
    assert night(str(tmp_path), "--quiet").exit_code == EXIT_OK


class CannotLoad(FakeEngine):
    """An engine whose model fails to load at the first file, as a wrong --model does."""

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished | Submitted:
        raise ConfigError("cannot load the model 'broken'")


def test_a_model_that_cannot_load_leaves_finished_files_done_not_unfinished(
    tmp_path: Path,
) -> None:
    (tmp_path / "done.mp3").write_bytes(speech("finished"))
    engine = FakeEngine()
    cli = make_cli(engine_factory=lambda s: CannotLoad() if s.model == "broken" else engine)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(tmp_path), *args], catch_exceptions=False)

    assert run().exit_code == EXIT_OK
    assert run("--model", "broken").exit_code == 2  # options changed, then the load fails

    assert "1 files: 1 done" in run("--status").output
    again = run()
    assert again.exit_code == EXIT_OK and "1 up to date" in again.output
    assert len(engine.started) == 1


def test_help_says_how_to_name_a_file_that_starts_with_a_dash(tmp_path: Path) -> None:
    shown = " ".join(run_cli("--help").output.split())  # as wrapped for any width
    assert "A name that starts with '-' goes after '--'" in shown
    assert "batchscribe -- -interview.mp3" in shown
    (tmp_path / "-take1.mp3").write_bytes(speech("take one"))
    engine = FakeEngine()
    cli = make_cli(engine_factory=lambda settings: engine)
    os.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--", "-take1.mp3"], catch_exceptions=False)
    assert result.exit_code == EXIT_OK and (tmp_path / "-take1.txt").read_text() == "take one\n"
