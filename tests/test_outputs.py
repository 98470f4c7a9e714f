"""Formats, request options, --output-dir and --delete-after through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import srt
import webvtt

from batchscribe.engines.assemblyai.request import DEFAULT_SPEECH_MODELS, REFUSED, TRANSLATED
from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
from batchscribe.state.journal_view import peek
from batchscribe.state.store import options_id
from tests.fakeapi import FakeServer
from tests.fakes import journal_path
from tests.kit import EXAMPLES, api_env, events, run_cli, speech


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


def test_a_format_added_or_an_output_deleted_leaves_a_corrected_one_as_it_is(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("Helo there."))
    env = api_env(fake)
    assert run_cli(str(tmp_path), "--config", str(fast_config), env=env).exit_code == EXIT_OK
    (tmp_path / "a.txt").write_text("Hello there.\n")  # the user's correction

    added = run_cli(str(tmp_path), "--formats", "txt,json,srt", "--config", str(fast_config),
                    env=env)  # fmt: skip
    (tmp_path / "a.json").unlink()
    again = run_cli(str(tmp_path), "--config", str(fast_config), env=env)

    assert added.exit_code == again.exit_code == EXIT_OK, added.output + again.output
    assert "outputs missing" in added.output and "outputs missing" in again.output
    assert (tmp_path / "a.txt").read_text() == "Hello there.\n"
    assert (tmp_path / "a.srt").exists()
    assert json.loads((tmp_path / "a.json").read_text())["text"] == "Helo there."


def test_outputs_missing_under_keep_existing_with_other_options_are_all_of_one_transcript(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("Hi. Bye."))
    env = api_env(fake)
    assert run_cli(str(tmp_path), "--config", str(fast_config), env=env).exit_code == EXIT_OK
    (tmp_path / "a.txt").write_text("An edit.\n")
    (tmp_path / "a.json").unlink()

    # other options: the kept transcript is not theirs, so a new one is made and written whole
    result = run_cli(str(tmp_path), "--speaker-labels", "--keep-existing", "--config",
                     str(fast_config), env=env)  # fmt: skip

    assert result.exit_code == EXIT_OK, result.output
    assert json.loads((tmp_path / "a.json").read_text())["utterances"]  # the new one's
    assert (tmp_path / "a.txt").read_text().startswith("Speaker A:")  # and so is the .txt


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
        "universal-2",
        env=api_env(fake),
    )

    assert result.exit_code == EXIT_OK, result.output
    (body,) = fake.api.create_bodies
    assert body == {"punctuate": False, "keyterms_prompt": ["batchscribe"], "brand_new_option": 3,
                    "language_code": "fr", "speaker_labels": True,
                    "speech_models": ["universal-2"], "audio_url": body["audio_url"]}  # fmt: skip
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "brand_new_option" in warnings[0]
    assert (tmp_path / "a.txt").read_text() == "Speaker A: Hi there.\n\nSpeaker B: Hello back.\n"


#: Every field the API reference (2026-03) deprecates or dropped: no request may carry one.
DEPRECATED = TRANSLATED.keys() | REFUSED.keys()


def assert_todays_fields(bodies: list[dict[str, object]]) -> None:
    """Every create carried `speech_models` and no deprecated field."""
    assert bodies
    for body in bodies:
        assert isinstance(body.get("speech_models"), list) and body["speech_models"]
        assert not DEPRECATED & body.keys(), body


def test_speech_model_flag_sends_speech_models_and_the_json_keeps_the_model_used(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    for name in ("a.mp3", "b.wav", "sub/c.flac"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(speech(f"said in {name}"))

    result = run_cli(
        str(tmp_path), "--speech-model", "universal-2", "--config", str(fast_config),
        env=api_env(fake),
    )  # fmt: skip

    assert result.exit_code == EXIT_OK, result.output
    assert_todays_fields(fake.api.create_bodies)
    assert [b["speech_models"] for b in fake.api.create_bodies] == [["universal-2"]] * 3
    for name in ("a.json", "b.json", "sub/c.json"):
        assert json.loads((tmp_path / name).read_text())["speech_model_used"] == "universal-2"
    done = events(result.output, "done")
    assert len(done) == 3 and all(line.endswith(" (universal-2)") for line in done)


def test_speech_model_flag_takes_models_in_priority_order(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("routed"))

    result = run_cli(
        str(tmp_path), "--speech-model", "universal-2, universal-3-pro", "--config",
        str(fast_config), env=api_env(fake),
    )  # fmt: skip

    assert result.exit_code == EXIT_OK, result.output
    (body,) = fake.api.create_bodies
    assert body["speech_models"] == ["universal-2", "universal-3-pro"]


def test_empty_speech_model_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--speech-model", " , ")
    assert result.exit_code == EXIT_USAGE and "--speech-model" in result.output


def test_default_request_sends_recommended_models_and_keeps_the_old_fingerprint(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    """A folder done before speech_models existed recorded options_id({}) for a user who set
    nothing; the default models sent now must not make every file "options changed"."""
    (tmp_path / "a.mp3").write_bytes(speech("done long ago"))
    env = api_env(fake)

    first = run_cli(str(tmp_path), "--config", str(fast_config), env=env)

    assert first.exit_code == EXIT_OK, first.output
    (body,) = fake.api.create_bodies
    assert body["speech_models"] == list(DEFAULT_SPEECH_MODELS)
    assert_todays_fields(fake.api.create_bodies)
    records, _ = peek(tmp_path)
    assert records["a.mp3"].options == options_id({})  # what the version before recorded
    assert events(first.output, "done") == [f"done    {tmp_path / 'a.mp3'} (universal-3-pro)"]
    fake.api.reset_counters()

    again = run_cli(str(tmp_path), "--config", str(fast_config), env=env)

    assert again.exit_code == EXIT_OK and fake.api.request_count == 0


@pytest.mark.parametrize(
    ("flag", "recorded"),
    [
        ([], {"speech_model": "universal-2"}),  # config speech_model = "universal-2"
        (["--speech-model", "universal-2"], {"speech_model": "universal-2"}),
    ],
)
def test_a_single_model_keeps_the_fingerprint_it_had_as_speech_model(
    fake: FakeServer, tmp_path: Path, fast_config: Path, flag: list[str], recorded: dict[str, str]
) -> None:
    config = tmp_path / "c.toml"
    toml = '[assemblyai.transcript]\nspeech_model = "universal-2"\n' if not flag else ""
    config.write_text(fast_config.read_text() + toml)
    (tmp_path / "a.mp3").write_bytes(speech("same options as before"))

    result = run_cli(str(tmp_path), *flag, "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert_todays_fields(fake.api.create_bodies)
    records, _ = peek(tmp_path)
    assert records["a.mp3"].options == options_id(recorded)


def test_config_speech_model_and_word_boost_are_sent_in_todays_words_with_one_warning_each(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        fast_config.read_text()
        + '[assemblyai.transcript]\nspeech_model = "universal-2"\nkeyterms_prompt = ["Ada"]\n'
        + 'word_boost = ["Lovelace", "Ada"]\nboost_param = "high"\n'
    )
    (tmp_path / "a.mp3").write_bytes(speech("old config"))

    result = run_cli(str(tmp_path), "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert_todays_fields(fake.api.create_bodies)
    (body,) = fake.api.create_bodies
    assert body["speech_models"] == ["universal-2"]
    assert body["keyterms_prompt"] == ["Ada", "Lovelace"]
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warnings) == 3 and all("update your config" in line for line in warnings)
    assert any(
        'speech_model is deprecated; sending speech_models = ["universal-2"] instead' in line
        for line in warnings
    )
    assert any('sending keyterms_prompt = ["Ada", "Lovelace"] instead' in w for w in warnings)
    assert any("boost_param is deprecated; dropped" in line for line in warnings)


@pytest.mark.parametrize("field", sorted(REFUSED))
def test_deprecated_field_without_a_successor_stops_the_run_with_exit_2(
    fake: FakeServer, tmp_path: Path, field: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[assemblyai.transcript]\n{field} = true\n")
    (tmp_path / "a.mp3").write_bytes(speech("never sent"))

    result = run_cli(str(tmp_path), "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_USAGE
    assert f"{field} is deprecated" in result.output and "use " in result.output
    assert result.output.strip().count("\n") == 0 and fake.api.request_count == 0


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
    assert "(options changed) (universal-3-pro)" in redone.output  # why, then the model that ran
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
    assert journal_path(out).exists()
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
