from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from batchscribe.config import DEFAULT_BASE_URL, Settings, build_settings
from batchscribe.engines.assemblyai.request import DEFAULT_SPEECH_MODELS, to_send, unknown
from batchscribe.engines.factory import check_engine_available
from batchscribe.errors import ConfigError
from batchscribe.settings.request_flags import from_flags
from tests.kit import run_cli


def settings(
    tmp_path: Path,
    *,
    flags: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    config: str | None = None,
) -> Settings:
    config_path = None
    if config is not None:
        config_path = tmp_path / "c.toml"
        config_path.write_text(config)
    return build_settings(
        flags=flags or {}, env=env or {"HOME": str(tmp_path)}, cwd=tmp_path, config_path=config_path
    )


def test_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.concurrency == 5 and s.base_url == DEFAULT_BASE_URL and s.poll_interval == 3.0
    assert "mp3" in s.extensions and "mkv" in s.extensions
    assert s.chosen_engine() == "local"


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    toml = 'concurrency = 7\n[assemblyai]\nbase_url = "https://file"\napi_key = "file-key"\n'
    assert settings(tmp_path, config=toml).base_url == "https://file"
    env = {"ASSEMBLYAI_BASE_URL": "https://env", "ASSEMBLYAI_API_KEY": "env-key"}
    s = settings(tmp_path, config=toml, env=env)
    assert (s.base_url, s.api_key, s.concurrency) == ("https://env", "env-key", 7)
    s = settings(
        tmp_path,
        config=toml,
        env=env,
        flags={"base_url": "https://flag", "concurrency": 2, "quiet": None},
    )
    assert (s.base_url, s.concurrency, s.quiet) == ("https://flag", 2, False)


def test_tutorial_key_name_is_accepted_and_sdk_name_wins(tmp_path: Path) -> None:
    assert settings(tmp_path, env={"ASSEMBLYAI_KEY": "k1"}).api_key == "k1"
    both = {"ASSEMBLYAI_KEY": "k1", "ASSEMBLYAI_API_KEY": "k2"}
    assert settings(tmp_path, env=both).api_key == "k2"
    assert settings(tmp_path, env=both).chosen_engine() == "assemblyai"


def test_working_folder_file_then_user_file(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "batchscribe" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("concurrency = 3\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert build_settings(flags={}, env=env, cwd=tmp_path).concurrency == 3
    (tmp_path / "batchscribe.toml").write_text("concurrency = 4\n")
    assert build_settings(flags={}, env=env, cwd=tmp_path).concurrency == 4


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("concurency = 3\n", "'concurency'"),
        ("[assemblyai]\npoll_intervl = 1\n", "'assemblyai.poll_intervl'"),
        ('concurrency = "five"\n', "'concurrency' must be a int"),
        ("concurrency = true\n", "'concurrency'"),
        ("[local]\nvad_filter = 1\n", "'local.vad_filter'"),
        ("concurrency = \n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, config=toml)
    assert named in str(err.value) and "c.toml" in str(err.value)


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        build_settings(flags={}, env={}, cwd=tmp_path, config_path=tmp_path / "missing.toml")


def test_key_is_not_in_settings_repr(tmp_path: Path) -> None:
    s = settings(tmp_path, env={"ASSEMBLYAI_API_KEY": "super-secret"})
    assert "super-secret" not in repr(s)


def test_engine_assemblyai_without_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ASSEMBLYAI_API_KEY"):
        settings(tmp_path, flags={"engine": "assemblyai"})


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    result = run_cli(str(tmp_path), "--config", str(bad))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "bad.toml" in result.output and "'nonsense'" in result.output


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[watch]\nsettle = nan\n", "watch_settle is nan"),
        ("[assemblyai]\nmax_wait = inf\n", "max_wait is inf"),
        ("[output]\npause_seconds = -nan\n", "pause_seconds is nan"),
        ("[assemblyai.prices]\nbest = nan\n", "[assemblyai.prices] best is nan"),
    ],
)
def test_nan_and_infinity_are_refused_naming_the_setting(
    tmp_path: Path, toml: str, named: str
) -> None:
    with pytest.raises(ConfigError, match="give a finite number") as err:
        settings(tmp_path, config=toml)
    assert named in str(err.value)


def test_cli_nan_seconds_exit_2_in_one_line(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--engine", "local", "--grace", "nan")
    assert result.exit_code == 2 and "grace is nan" in result.output
    assert result.output.strip().count("\n") == 0


def test_an_api_url_with_a_password_is_refused_without_repeating_it(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--api-url", "https://user:s3cr3t@api.example.com")
    assert result.exit_code == 2 and "must not carry a user or password" in result.output
    assert "s3cr3t" not in result.output
    mistyped = run_cli(str(tmp_path), "--api-url", "htps://user:s3cr3t@api.example.com")
    assert mistyped.exit_code == 2 and "must start with http" in mistyped.output
    assert "s3cr3t" not in mistyped.output


def test_cli_bad_ext_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--ext", ",")
    assert result.exit_code == 2 and "--ext" in result.output


def test_example_config_is_valid_and_matches_defaults(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    s = build_settings(flags={}, env={}, cwd=tmp_path, config_path=example)
    assert replace(s, config_path=None) == Settings() and s.config_path == example


def test_request_flags_become_request_fields_and_local_settings(tmp_path: Path) -> None:
    flags = {"language": "fr", "speaker_labels": True, "speech_model": None}
    assert from_flags(flags) == {"language_code": "fr", "speaker_labels": True}

    s = settings(tmp_path, flags=flags)

    assert s.transcript_options == {"language_code": "fr", "speaker_labels": True}
    assert s.language == "fr"  # the local engine's language too
    assert s.speaker_labels is True  # and its speaker labels


def test_request_flags_add_to_the_config_files_transcript_options(tmp_path: Path) -> None:
    toml = "[assemblyai.transcript]\nspeaker_labels = false\npunctuate = false\n"
    s = settings(tmp_path, flags={"speaker_labels": True}, config=toml)
    assert s.transcript_options == {"speaker_labels": True, "punctuate": False}


def test_unknown_transcript_options_are_named_once_each_for_assemblyai_only() -> None:
    options = {"speaker_labels": True, "shiny_new_field": 1, "another": 2}
    assert unknown(options) == ["another", "shiny_new_field"]
    assemblyai = Settings(api_key="k", transcript_options=options)
    assert check_engine_available(assemblyai) == [
        f"batchscribe: warning: [assemblyai.transcript] {name} is not in the API reference; "
        "sending it anyway."
        for name in ("another", "shiny_new_field")
    ]
    assert check_engine_available(Settings(engine="local", transcript_options=options)) == []


def test_a_user_who_sets_nothing_sends_the_default_models_outside_the_fingerprint() -> None:
    s = Settings(api_key="k")
    assert s.engine_options() == {}  # as before speech_models existed: nothing redone
    assert to_send(s.transcript_options) == {"speech_models": list(DEFAULT_SPEECH_MODELS)}
    assert DEFAULT_SPEECH_MODELS == ("universal-3-pro", "universal-2")


def test_speech_model_flag_is_a_list_in_priority_order_and_part_of_the_fingerprint(
    tmp_path: Path,
) -> None:
    env = {"ASSEMBLYAI_API_KEY": "k"}
    several = settings(tmp_path, env=env, flags={"speech_model": "universal-2, universal-3-pro"})
    assert to_send(several.transcript_options) == {
        "speech_models": ["universal-2", "universal-3-pro"]
    }
    assert several.engine_options() == {"speech_models": ["universal-2", "universal-3-pro"]}
    one = settings(tmp_path, env=env, flags={"speech_model": ["universal-2"]})
    assert to_send(one.transcript_options) == {"speech_models": ["universal-2"]}
    # spelled as before the API took a list, so a folder done with it is not redone
    assert one.engine_options() == {"speech_model": "universal-2"}
    assert check_engine_available(one) == []


def test_speech_model_flag_replaces_the_config_files_models(tmp_path: Path) -> None:
    toml = '[assemblyai.transcript]\nspeech_models = ["universal-3-pro"]\nspeech_model = "x"\n'
    s = settings(tmp_path, flags={"speech_model": "universal-2"}, config=toml)
    assert to_send(s.transcript_options)["speech_models"] == ["universal-2"]


def test_config_speech_model_is_sent_as_speech_models_with_one_warning(tmp_path: Path) -> None:
    toml = '[assemblyai]\napi_key = "k"\n[assemblyai.transcript]\nspeech_model = "universal-2"\n'
    s = settings(tmp_path, config=toml)

    assert to_send(s.transcript_options) == {"speech_models": ["universal-2"]}
    assert s.engine_options() == {"speech_model": "universal-2"}  # the fingerprint it had
    assert check_engine_available(s) == [
        f"batchscribe: warning: {tmp_path / 'c.toml'}: [assemblyai.transcript] speech_model is "
        'deprecated; sending speech_models = ["universal-2"] instead; update your config.'
    ]
    assert check_engine_available(replace(s, engine="local")) == []


def test_config_word_boost_becomes_keyterms_prompt_and_boost_param_is_dropped(
    tmp_path: Path,
) -> None:
    toml = (
        '[assemblyai]\napi_key = "k"\n[assemblyai.transcript]\nword_boost = ["Ada", "SQL"]\n'
        'boost_param = "high"\nkeyterms_prompt = ["SQL"]\n'
    )
    s = settings(tmp_path, config=toml)

    assert to_send(s.transcript_options) == {
        "keyterms_prompt": ["SQL", "Ada"],
        "speech_models": list(DEFAULT_SPEECH_MODELS),
    }
    warnings = check_engine_available(s)
    assert len(warnings) == 2 and not any("not in the API reference" in w for w in warnings)
    assert (
        'word_boost is deprecated; sending keyterms_prompt = ["SQL", "Ada"] instead'
        in (warnings[1])
    )
    assert "boost_param is deprecated; dropped" in warnings[0]


@pytest.mark.parametrize(
    ("line", "instead"),
    [
        ("auto_chapters = true", "LLM Gateway"),
        ("summarization = true", "LLM Gateway"),
        ('summary_model = "informative"', "LLM Gateway"),
        ('summary_type = "bullets"', "LLM Gateway"),
        ("custom_topics = true", "iab_categories"),
        ('topics = ["a"]', "iab_categories"),
    ],
)
def test_deprecated_field_without_a_successor_is_refused_naming_what_to_use(
    tmp_path: Path, line: str, instead: str
) -> None:
    with pytest.raises(ConfigError) as err:  # refused before any work, whichever engine
        check_engine_available(settings(tmp_path, config=f"[assemblyai.transcript]\n{line}\n"))
    message = str(err.value)
    assert line.split()[0] in message and instead in message and "c.toml" in message


@pytest.mark.parametrize(
    "line",
    [
        'speech_models = "universal-2"',
        "speech_models = []",
        "speech_models = [1]",
        "speech_model = 3",
        'word_boost = "Ada"',
    ],
)
def test_badly_typed_model_or_keyterm_fields_are_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match=line.split()[0]):
        check_engine_available(settings(tmp_path, config=f"[assemblyai.transcript]\n{line}\n"))


def test_cli_deprecated_config_field_exits_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "old.toml"
    bad.write_text("[assemblyai.transcript]\nauto_chapters = true\n")
    result = run_cli(str(tmp_path), "--config", str(bad))
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "auto_chapters is deprecated" in result.output and "old.toml" in result.output


def test_local_defaults_have_vad_on_the_guards_and_device_auto(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.vad_filter and s.device == "auto" and s.low_confidence == 0.7
    assert (s.vad_threshold, s.vad_min_silence_ms, s.vad_speech_pad_ms) == (0.5, 2000, 400)
    assert s.hallucination_silence_threshold == 0.0 and s.condition_on_previous_text


def test_vad_and_guards_are_read_from_local_and_low_confidence_from_output(
    tmp_path: Path,
) -> None:
    toml = (
        "[output]\nlow_confidence = 0.5\n[local]\nvad_filter = false\nvad_min_silence_ms = 500\n"
        'vad_threshold = 0.6\nhallucination_silence_threshold = 2\ndevice = "cpu"\n'
    )
    s = settings(tmp_path, config=toml)
    assert (s.vad_filter, s.vad_min_silence_ms, s.vad_threshold) == (False, 500, 0.6)
    assert s.hallucination_silence_threshold == 2.0 and isinstance(
        s.hallucination_silence_threshold, float
    )
    assert s.low_confidence == 0.5 and s.device == "cpu"


def test_local_options_fingerprint_counts_vad_and_guards_but_not_the_device(
    tmp_path: Path,
) -> None:
    base = Settings(model="tiny.en").engine_options()  # the default before issue #20
    before_vad = {"model": None, "compute_type": "int8", "beam_size": 5, "language": None,
                  "vad_filter": False}  # fmt: skip
    assert base == {**before_vad, "vad_filter": True}  # upgrading redoes local folders once
    assert Settings(model="tiny.en", vad_filter=False).engine_options() == before_vad
    assert Settings().engine_options() == {**base, "model": "base"}  # the new default: once more
    assert Settings(task="translate").engine_options()["task"] == "translate"
    assert "task" not in Settings(task="transcribe").engine_options()
    tuned = Settings(model="tiny.en", vad_min_silence_ms=500).engine_options()
    assert tuned == {**base, "vad_min_silence_ms": 500}
    assert Settings(model="tiny.en", no_speech_threshold=0.4).engine_options() != base
    assert Settings(model="tiny.en", device="cuda", low_confidence=0.2,
                    workers=3).engine_options() == base  # fmt: skip
    # `-1` in the file is the default -1.0: the same fingerprint, nothing transcribed again
    same = settings(tmp_path, config='[local]\nmodel = "tiny.en"\nlog_prob_threshold = -1\n')
    assert same.engine_options() == base


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[local]\ndevice = "gpu"\n', "device"),
        ("[local]\nvad_threshold = 1.5\n", "vad_threshold"),
        ("[local]\nvad_min_silence_ms = -1\n", "vad_min_silence_ms"),
        ("[local]\nno_speech_threshold = 2\n", "no_speech_threshold"),
        ("[output]\nlow_confidence = 1.5\n", "low_confidence"),
        ('[local]\nvad_filter = "yes"\n', "vad_filter"),
        ('[local]\ncompute_type = "bogus"\n', "compute_type must be one of default, auto, int8"),
    ],
)
def test_bad_local_values_are_refused_naming_them(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        settings(tmp_path, config=toml)


def test_language_auto_asks_assemblyai_to_detect_it_instead_of_sending_auto() -> None:
    assert from_flags({"language": "auto"}) == {"language_detection": True}
    assert from_flags({"language": "fr"}) == {"language_code": "fr"}


NOTEPAD_CONFIG = '[output]\nformats = ["txt", "srt"]\n# Réunions du lundi\n'


def test_a_config_saved_as_utf8_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + NOTEPAD_CONFIG.encode())
    built = build_settings(flags={}, env={}, cwd=tmp_path, config_path=path)
    assert built.formats == ("txt", "srt")


@pytest.mark.parametrize(
    ("encoding", "says"),
    [
        ("latin-1", "not UTF-8 (byte 0xe9 on line 3; Latin-1 or Windows-1252, perhaps)"),
        ("utf-16", "the file is in UTF-16 (little-endian), and TOML must be UTF-8"),
        ("utf-16-be", "not UTF-8 (byte 0xe9 on line 3; UTF-16)"),
    ],
)
def test_a_config_not_in_utf8_is_one_line_naming_the_file_and_encoding(
    tmp_path: Path, encoding: str, says: str
) -> None:
    path = tmp_path / "notepad.toml"
    path.write_bytes(NOTEPAD_CONFIG.encode(encoding))

    result = run_cli(str(tmp_path), "--config", str(path))

    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.output.splitlines()
    assert str(path) in line and says in line and "save it as UTF-8" in line
