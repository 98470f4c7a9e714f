"""Engines by family: a run imports the family it uses and no other (engines/factory.py).

An offline run never loads aiohttp (nor the AssemblyAI engine); an AssemblyAI run never loads
faster-whisper or CTranslate2; neither loads Ray or the voice encoder unasked. Checked in a
fresh interpreter, after a real run, against the modules it holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakeapi import FakeServer
from tests.kit import EXAMPLES, api_env, speech

#: Runs the command line on argv[1:] in this interpreter, then prints the modules it loaded.
RUN_AND_LIST = (
    "import sys\n"
    "from batchscribe.cli import cli\n"
    "try: cli(sys.argv[1:])\n"
    "except SystemExit as stop: assert stop.code == 0, f'exited {stop.code}'\n"
    "print('\\n'.join(sorted(sys.modules)))\n"
)

ASSEMBLYAI_FAMILY = {"aiohttp", "aiolimiter", "batchscribe.engines.assemblyai.engine"}
LOCAL_FAMILY = {"faster_whisper", "ctranslate2", "batchscribe.engines.local.engine"}
OTHER_FAMILIES = {
    "ray",
    "batchscribe.engines.cluster.engine",
    "batchscribe.engines.speakers.encoder",
}


def _modules_after(*args: str, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.model
def test_an_offline_run_loads_only_the_local_family(tmp_path: Path) -> None:
    shutil.copyfile(EXAMPLES / "meeting-notes.wav", tmp_path / "meeting-notes.wav")

    loaded = _modules_after(str(tmp_path), "--engine", "local", "--model", "tiny.en", "-q")

    assert (tmp_path / "meeting-notes.txt").exists()
    assert loaded >= LOCAL_FAMILY
    assert not (ASSEMBLYAI_FAMILY | OTHER_FAMILIES) & loaded


def test_an_assemblyai_run_loads_only_its_family(tmp_path: Path, fake: FakeServer) -> None:
    (tmp_path / "call.mp3").write_bytes(speech("hello from the service"))

    loaded = _modules_after(str(tmp_path), "-q", env=api_env(fake))

    assert (tmp_path / "call.txt").read_text().strip()
    assert loaded >= ASSEMBLYAI_FAMILY
    assert not (LOCAL_FAMILY | OTHER_FAMILIES) & loaded
