"""--dry-run's estimate: the rate of the first speech model sent, keyterms prompting, overrides."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from batchscribe.config import LIST_PRICES, Settings, build_settings
from batchscribe.dry_run import Rate, format_rate, rate_for
from batchscribe.engines.assemblyai.request import DEFAULT_SPEECH_MODELS
from batchscribe.errors import EXIT_OK, ConfigError
from tests.fakeapi import FakeServer
from tests.kit import api_env, run_cli, speech


def assemblyai(config: str = "", **flags: object) -> Settings:
    """Settings as the CLI builds them, from a config file's text and flags."""
    path = Path.cwd() / "c.toml"  # the test's own home folder (conftest.isolated_env)
    path.write_text(config)
    env = {"ASSEMBLYAI_API_KEY": "k"}
    return build_settings(flags=flags, env=env, cwd=Path.cwd(), config_path=path)


def long_wav(path: Path, hours: float) -> None:
    """A WAV whose header says `hours` of 8 kHz audio; the bytes themselves are a few dozen."""
    rate, size = 8000, int(8000 * 3600 * hours)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + fmt + b"data"
                     + struct.pack("<I", size) + b"\x80" * 64)  # fmt: skip


def test_every_default_speech_model_has_a_list_price() -> None:
    """A default model without a price would be estimated at the fallback rate, silently."""
    assert set(DEFAULT_SPEECH_MODELS) <= set(LIST_PRICES)
    assert all(price > 0 for price in LIST_PRICES.values())


def test_default_models_are_priced_at_the_first_ones_list_price() -> None:
    assert rate_for(assemblyai()) == Rate("universal-3-pro", 0.21, "list price 2026-03")


def test_the_first_model_named_sets_the_rate() -> None:
    rate = rate_for(assemblyai(speech_model="universal-2,universal-3-pro"))
    assert (rate.model, rate.per_hour, rate.total) == ("universal-2", 0.15, 0.15)


def test_keyterms_prompting_is_added_when_keyterms_are_sent() -> None:
    rate = rate_for(assemblyai('[assemblyai.transcript]\nkeyterms_prompt = ["Ada"]\n'))
    assert rate.keyterms == 0.04 and rate.total == pytest.approx(0.25)
    assert format_rate(rate) == (
        "$0.25/h for universal-3-pro ($0.21/h, list price 2026-03; + $0.04/h keyterms prompting)"
    )
    old_spelling = rate_for(assemblyai('[assemblyai.transcript]\nword_boost = ["Ada"]\n'))
    assert old_spelling.keyterms == 0.04


def test_overrides_per_model_then_price_per_hour_then_the_list() -> None:
    prices = (
        '[assemblyai]\nprice_per_hour = 0.30\n[assemblyai.prices]\n"universal-2" = 0.12\n'
        "keyterms = 0.05\n[assemblyai.transcript]\nkeyterms_prompt = ['Ada']\n"
    )
    own = rate_for(assemblyai(prices, speech_model="universal-2"))
    assert (own.per_hour, own.keyterms, own.source) == (0.12, 0.05, "[assemblyai.prices]")
    every = rate_for(assemblyai(prices, speech_model="universal-3-pro"))
    assert (every.per_hour, every.source) == (0.30, "price_per_hour")


def test_unknown_model_is_priced_at_the_highest_list_price_and_says_so() -> None:
    rate = rate_for(assemblyai(speech_model="slam-9"))
    assert rate.per_hour == max(LIST_PRICES.values())
    assert "not in the price table" in format_rate(rate)
    assert '[assemblyai.prices] "slam-9"' in format_rate(rate)


@pytest.mark.parametrize("value", ["-1", "true", '"cheap"'])
def test_bad_price_is_a_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="universal-2"):
        assemblyai(f'[assemblyai.prices]\n"universal-2" = {value}\n')


def estimate(output: str) -> float:
    total = output.splitlines()[-1]
    found = re.search(r"estimated AssemblyAI cost \$(\d+\.\d\d) at ", total)
    assert found, total
    return float(found.group(1))


def test_dry_run_names_the_model_and_estimates_universal_3_pro_above_universal_2(
    fake: FakeServer, tmp_path: Path
) -> None:
    long_wav(tmp_path / "meeting.wav", hours=10)
    env = api_env(fake)

    pro = run_cli(str(tmp_path), "--dry-run", "--speech-model", "universal-3-pro", env=env)
    two = run_cli(str(tmp_path), "--dry-run", "--speech-model", "universal-2", env=env)
    default = run_cli(str(tmp_path), "--dry-run", env=env)

    assert pro.exit_code == two.exit_code == default.exit_code == EXIT_OK
    assert (estimate(pro.output), estimate(two.output)) == (2.10, 1.50)
    assert "at $0.21/h for universal-3-pro (list price 2026-03)" in pro.output
    assert "at $0.15/h for universal-2 (list price 2026-03)" in two.output
    assert estimate(default.output) == 2.10  # the default's first model
    assert fake.api.request_count == 0


def test_dry_run_lists_a_file_whose_transcript_is_kept_as_a_re_render_at_no_cost(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "talk.mp3").write_bytes(content := speech("kept"))
    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    (root / "copy of talk.mp3").write_bytes(content)  # same bytes, a new name
    fake.api.reset_counters()

    result = run_cli(str(root), "--dry-run", "--formats", "txt,json,srt", env=api_env(fake))

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"would re-render {root / 'talk.mp3'} (outputs missing; transcript kept, no cost)" in (
        lines
    )
    assert f"would re-render {root / 'copy of talk.mp3'} (new; transcript kept, no cost)" in lines
    assert "0 to transcribe (0.00 h of audio)" in lines[-1] and "2 to re-render" in lines[-1]
    assert "estimated AssemblyAI cost $0.00" in lines[-1]
    assert fake.api.request_count == 0
