from __future__ import annotations

from pathlib import Path

import pytest

from batchscribe.config import (
    DEFAULT_BASE_URL,
    Settings,
    build_settings,
    format_unknown_options,
    request_options,
    unknown_transcript_options,
)
from batchscribe.errors import ConfigError
from tests.conftest import run_cli


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
    toml = 'concurrency = 7\n[assemblyai]\nbase_url = "http://file"\napi_key = "file-key"\n'
    assert settings(tmp_path, config=toml).base_url == "http://file"
    env = {"ASSEMBLYAI_BASE_URL": "http://env", "ASSEMBLYAI_API_KEY": "env-key"}
    s = settings(tmp_path, config=toml, env=env)
    assert (s.base_url, s.api_key, s.concurrency) == ("http://env", "env-key", 7)
    s = settings(
        tmp_path,
        config=toml,
        env=env,
        flags={"base_url": "http://flag", "concurrency": 2, "quiet": None},
    )
    assert (s.base_url, s.concurrency, s.quiet) == ("http://flag", 2, False)


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


def test_cli_bad_ext_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--ext", ",")
    assert result.exit_code == 2 and "--ext" in result.output


def test_example_config_is_valid_and_matches_defaults(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    s = build_settings(flags={}, env={}, cwd=tmp_path, config_path=example)
    assert s == Settings()


def test_request_flags_become_request_fields_and_only_language_a_setting(tmp_path: Path) -> None:
    flags = {"language": "fr", "speaker_labels": True, "speech_model": None}
    assert request_options(flags) == {"language_code": "fr", "speaker_labels": True}

    s = settings(tmp_path, flags=flags)

    assert s.transcript_options == {"language_code": "fr", "speaker_labels": True}
    assert s.language == "fr"  # the local engine's language too


def test_request_flags_add_to_the_config_files_transcript_options(tmp_path: Path) -> None:
    toml = "[assemblyai.transcript]\nspeaker_labels = false\npunctuate = false\n"
    s = settings(tmp_path, flags={"speaker_labels": True}, config=toml)
    assert s.transcript_options == {"speaker_labels": True, "punctuate": False}


def test_unknown_transcript_options_are_named_once_each_for_assemblyai_only() -> None:
    options = {"speaker_labels": True, "shiny_new_field": 1, "another": 2}
    assert unknown_transcript_options(options) == ["another", "shiny_new_field"]
    assemblyai = Settings(api_key="k", transcript_options=options)
    assert format_unknown_options(assemblyai) == [
        f"batchscribe: warning: [assemblyai.transcript] {name} is not in the API reference; "
        "sending it anyway."
        for name in ("another", "shiny_new_field")
    ]
    assert format_unknown_options(Settings(engine="local", transcript_options=options)) == []
