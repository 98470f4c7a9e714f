"""Shared fixtures: an isolated environment, no model hub, the fake API, fast timings. What a
test writes or runs is the kit's (tests/kit.py)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeapi import FakeServer
from tests.kit import write_config


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
    return write_config(tmp_path / "fast.toml")
