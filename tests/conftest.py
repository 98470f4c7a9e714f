"""Shared fixtures: an isolated environment, the fake API, a tree of recordings, the CLI."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchscribe.cli import cli
from tests.fakeapi import API_KEY, FakeServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "recordings"


def copy_recordings(target: Path) -> Path:
    """The example recordings (the manifest's clips) copied under `target`, and nothing else:
    never the transcripts or the `.batchscribe/` a user's quick-start run left next to them."""
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    for clip in manifest["clips"]:
        copy = target / clip["path"]
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLES / clip["path"], copy)
    return target


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole session: the default model's parts are joined once, not once
    per test."""
    return tmp_path_factory.mktemp("cache")


#: The hub for every test: a port on this machine where nothing listens, so no test ever
#: downloads from the real one (tests/fakehub.py serves one where a test needs it). Set
#: before anything imports huggingface_hub, which reads it once, at import.
NO_HUB = "http://127.0.0.1:9"
os.environ["HF_ENDPOINT"] = NO_HUB
_HUB_CACHE = tempfile.mkdtemp(prefix="batchscribe-test-hf-")
os.environ["HF_HOME"] = _HUB_CACHE
atexit.register(shutil.rmtree, _HUB_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_cache: Path) -> None:
    """No test sees the developer's key, config file, caches, hub or working folder."""
    for name in ("ASSEMBLYAI_API_KEY", "ASSEMBLYAI_KEY", "ASSEMBLYAI_BASE_URL", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(model_cache))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))  # for subprocesses
    monkeypatch.setenv("HF_ENDPOINT", NO_HUB)
    monkeypatch.chdir(home)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    """Timings set to zero-ish so tests never wait on purpose."""
    path = tmp_path / "fast.toml"
    path.write_text(
        "[assemblyai]\npoll_interval = 0.02\nretry_base_delay = 0.0\nretry_max_delay = 0.0\n"
    )
    return path


def speech(text: str) -> bytes:
    """File content the fake API "hears" as `text` (see tests/fakeapi.py)."""
    return f"SPEECH:{text}\n".encode() + os.urandom(64)


#: 22 recordings in nested folders, with spaces, non-ASCII names and mixed-case extensions.
TREE_AUDIO = [
    "a.mp3", "b.wav", "LOUD.MP3", "c.flac", "d.ogg", "e.opus", "f.m4a", "g.webm",
    "Sub Folder/meeting 1.mp3", "Sub Folder/meeting 2.mp3", "Sub Folder/deeper/x.aac",
    "Sub Folder/deeper/y.aiff", "Sub Folder/deeper/z.amr", "ünïcödé/café.mp3",
    "ünïcödé/naïve.wav", "日本語/録音.mp3", "日本語/会議.flac", "deep/1/2/3/4/five.mp4",
    "deep/1/2/3/four.mov", "deep/1/2/three.mkv", "deep/1/one.wma", "deep/zero.mp3",
]  # fmt: skip
TREE_OTHER = ["notes.md", "Sub Folder/cover.jpg", "deep/1/data.csv", ".hidden.mp3",
              ".cache/skip.mp3", "README"]  # fmt: skip


def make_tree(root: Path) -> dict[Path, str]:
    """Write the tree; returns each recording with the text the fake will hear in it."""
    spoken: dict[Path, str] = {}
    for i, name in enumerate(TREE_AUDIO):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"recording {i} named {Path(name).stem}"
        path.write_bytes(speech(text))
        spoken[path] = text
    for name in TREE_OTHER:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(speech("not for transcription"))
    return spoken


def events(output: str, kind: str) -> list[str]:
    """The per-file lines of one kind ("failed", "done", ...), without their timestamps."""
    found = []
    for line in output.splitlines():
        stamp, _, rest = line.partition(" ")
        text = rest if stamp[:2] == "20" and "T" in stamp else line
        if text.startswith(kind):
            found.append(text)
    return found


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def api_env(server: FakeServer, key: str = API_KEY) -> dict[str, str]:
    return {"ASSEMBLYAI_API_KEY": key, "ASSEMBLYAI_BASE_URL": server.url}


def start_cli(root: Path, fake: FakeServer, *args: str) -> subprocess.Popen[str]:
    """The CLI in a real subprocess against `fake`, for signals and kill -9."""
    env = {**os.environ, **api_env(fake)}
    return subprocess.Popen(
        [sys.executable, "-m", "batchscribe", str(root), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def three_minutes_of_speech(path: Path, *, lead: float = 0.0) -> float:
    """The example clips read one after another, again and again, with the half-second
    silences of speech read aloud (no long pause), as a 16 kHz WAV: its length in seconds.
    `lead` seconds of silence in front make recordings that differ (each one is decoded)."""
    import wave

    import numpy as np
    from faster_whisper import decode_audio

    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    clips = [decode_audio(str(EXAMPLES / c["path"]), sampling_rate=16000)
             for c in manifest["clips"]]  # fmt: skip
    gap = np.zeros(8000, dtype=np.float32)
    parts: list[Any] = [np.zeros(int(lead * 16000), dtype=np.float32)]
    while sum(len(p) for p in parts) < 180 * 16000:
        parts.extend([clips[len(parts) // 2 % len(clips)], gap])
    audio = np.concatenate(parts)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return len(audio) / 16000
