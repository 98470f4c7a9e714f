"""Formats, request options, --output-dir and --delete-after through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import srt
import webvtt

from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from tests.conftest import EXAMPLES, api_env, events, run_cli, speech
from tests.fakeapi import FakeServer


def test_adding_a_format_later_makes_no_request(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("First sentence here. And a second one."))
    env = api_env(fake)
    first = run_cli(str(tmp_path), "--formats", "txt", "--config", str(fast_config), env=env)
    assert first.exit_code == EXIT_OK
    assert (tmp_path / "a.txt").exists() and not (tmp_path / "a.json").exists()
    fake.api.reset_counters()

    result = run_cli(
        str(tmp_path), "--formats", "txt,srt,vtt", "--config", str(fast_config), env=env
    )

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.request_count == 0
    subs = list(srt.parse((tmp_path / "a.srt").read_text()))
    assert [s.content for s in subs] == ["First sentence here.", "And a second one."]
    assert len(webvtt.read(str(tmp_path / "a.vtt"))) == 2
    assert "outputs missing" in result.output


def test_formats_from_the_config_file(fake: FakeServer, tmp_path: Path, fast_config: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(fast_config.read_text() + '[output]\nformats = ["vtt"]\n')
    (tmp_path / "a.mp3").write_bytes(speech("only subtitles"))

    result = run_cli(str(tmp_path), "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    assert sorted(p.suffix for p in tmp_path.glob("a.*")) == [".mp3", ".vtt"]


def test_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--formats", "txt,docx")
    assert result.exit_code == 2 and "docx" in result.output


def test_request_options_reach_the_api_and_unknown_ones_warn(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        fast_config.read_text()
        + "[assemblyai.transcript]\npunctuate = false\nkeyterms_prompt = ['batchscribe']\n"
        + "brand_new_option = 3\n"
    )
    (tmp_path / "a.mp3").write_bytes(speech("Hi there. Hello back."))

    result = run_cli(
        str(tmp_path),
        "--config",
        str(config),
        "--language",
        "fr",
        "--speaker-labels",
        "--speech-model",
        "universal",
        env=api_env(fake),
    )

    assert result.exit_code == EXIT_OK, result.output
    (body,) = fake.api.create_bodies
    assert body == {"punctuate": False, "keyterms_prompt": ["batchscribe"], "brand_new_option": 3,
                    "language_code": "fr", "speaker_labels": True, "speech_model": "universal",
                    "audio_url": body["audio_url"]}  # fmt: skip
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "brand_new_option" in warnings[0]
    assert (tmp_path / "a.txt").read_text() == "Speaker A: Hi there.\n\nSpeaker B: Hello back.\n"


def test_changed_options_transcribe_again_unless_keep_existing(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("Hi. Bye."))
    env = api_env(fake)
    assert run_cli(str(tmp_path), "--config", str(fast_config), env=env).exit_code == 0
    fake.api.reset_counters()

    kept = run_cli(
        str(tmp_path), "--speaker-labels", "--keep-existing", "--config", str(fast_config), env=env
    )
    assert kept.exit_code == EXIT_OK and fake.api.request_count == 0

    redone = run_cli(str(tmp_path), "--speaker-labels", "--config", str(fast_config), env=env)
    assert redone.exit_code == EXIT_OK
    assert "(options changed)" in redone.output
    assert fake.api.transcript_count == 1 and fake.api.upload_count == 1
    assert (tmp_path / "a.txt").read_text().startswith("Speaker A:")


def test_output_dir_mirrors_the_tree_and_leaves_the_sources_alone(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    archive = tmp_path / "archive"
    (archive / "2024" / "march").mkdir(parents=True)
    (archive / "top.mp3").write_bytes(speech("top"))
    (archive / "2024" / "march" / "deep.wav").write_bytes(speech("deep"))
    before = sorted(p.relative_to(archive) for p in archive.rglob("*"))
    out = tmp_path / "transcripts"

    result = run_cli(
        str(archive), "--output-dir", str(out), "--config", str(fast_config), env=api_env(fake)
    )

    assert result.exit_code == EXIT_OK, result.output
    assert sorted(p.relative_to(archive) for p in archive.rglob("*")) == before
    assert (out / "top.txt").read_text() == "top\n"
    assert (out / "2024" / "march" / "deep.txt").read_text() == "deep\n"
    assert (out / ".batchscribe" / "journal.sqlite3").exists()
    fake.api.reset_counters()
    again = run_cli(
        str(archive), "--output-dir", str(out), "--config", str(fast_config), env=api_env(fake)
    )
    assert again.exit_code == EXIT_OK and fake.api.request_count == 0


def test_delete_after_deletes_each_transcript_once_written(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("private"))

    result = run_cli(
        str(tmp_path), "--delete-after", "--config", str(fast_config), env=api_env(fake)
    )

    assert result.exit_code == EXIT_OK, result.output
    (transcript,) = fake.api.transcripts.values()
    assert transcript.deleted
    assert (tmp_path / "a.txt").read_text() == "private\n"
    assert json.loads((tmp_path / "a.json").read_text())["text"] == "private"


def test_failed_delete_is_reported_and_outputs_are_kept(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.delete_status = 500
    (tmp_path / "a.mp3").write_bytes(speech("still private"))

    result = run_cli(
        str(tmp_path), "--delete-after", "--config", str(fast_config), env=api_env(fake)
    )

    assert result.exit_code == EXIT_SOME_FAILED
    (line,) = events(result.output, "warning")
    assert "could not delete transcript" in line and "outputs are kept" in line
    assert (tmp_path / "a.txt").read_text() == "still private\n"


@pytest.mark.model
def test_local_format_added_later_loads_no_model(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from batchscribe.cli import make_cli
    from batchscribe.config import Settings
    from batchscribe.engines.base import Engine

    shutil.copyfile(EXAMPLES / "voicemail.ogg", tmp_path / "v.ogg")
    assert run_cli(str(tmp_path), "--formats", "txt").exit_code == EXIT_OK

    def no_model(settings: Settings) -> Engine:
        raise AssertionError("the model was loaded")

    cli = make_cli(engine_factory=no_model)
    args = [str(tmp_path), "--formats", "txt,srt"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)

    assert result.exit_code == EXIT_OK, result.output
    subs = list(srt.parse((tmp_path / "v.srt").read_text()))
    assert subs and "invoice" in " ".join(s.content for s in subs)
