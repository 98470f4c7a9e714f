"""The test kit: recordings to write, the CLI to run (in this process, or in a real one of its
own), and config files with fast timings. Fixtures are conftest.py's; everything a test makes
or spawns is made here, once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    return spawn_cli(str(root), *args, env=api_env(fake))


def three_minutes_of_speech(path: Path, *, lead: float = 0.0) -> float:
    """The example clips read one after another, again and again, with the half-second
    silences of speech read aloud (no long pause), as a 16 kHz WAV: its length in seconds.
    `lead` seconds of silence in front make recordings that differ (each one is decoded)."""
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
    write_wav(path, audio)
    return len(audio) / 16000


def write_wav(path: Path, samples: Any) -> Path:
    """Float samples in [-1, 1] as a 16 kHz mono 16-bit WAV."""
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


#: What every config file a test writes starts from: nobody waits on purpose.
FAST_TIMINGS: dict[str, dict[str, object]] = {
    "assemblyai": {"poll_interval": 0.02, "retry_base_delay": 0.0, "retry_max_delay": 0.0},
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def write_config(path: Path, top: Mapping[str, object] | None = None, **sections: Any) -> Path:
    """A config file: the fast timings, overridden or added to by `sections` (a table each,
    `assemblyai={"poll_interval": 0.1}`, `watch={"settle": 0.5}`) and `top`-level keys."""
    tables: dict[str, dict[str, object]] = {name: dict(keys) for name, keys in FAST_TIMINGS.items()}
    for name, keys in sections.items():
        tables.setdefault(name.replace("__", "."), {}).update(keys)
    lines = [f"{key} = {_toml_value(value)}" for key, value in (top or {}).items()]
    for name, keys in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spawn_cli(
    *args: str, env: Mapping[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """`python -m batchscribe ARGS` in a real process of its own (signals, kill -9, locks),
    `env` over this one's; stdout and stderr piped unless `popen` says otherwise."""
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen(
        [sys.executable, "-m", "batchscribe", *args],
        env={**os.environ, **(env or {})},
        text=True,
        **options,
    )


def cli_process(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The CLI in a real process, its output captured, stopped after `timeout` seconds."""
    return subprocess.run(
        [sys.executable, "-m", "batchscribe", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


#: Python that defines `mapped_after_a_big_free()`: a 20 MB buffer freed, then another held,
#: and how many more bytes glibc has mapped on their own while it is (mallinfo2's hblkhd).
#: glibc's own threshold rises to the first one's size, so the second lands in the heap (kept
#: there once freed); batchscribe's fixed one (settings/malloc.py) maps it. Source, for a
#: process of its own.
MAPPED_AFTER_A_BIG_FREE = """
def mapped_after_a_big_free():
    import ctypes
    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Info
    first = bytearray(20_000_000)
    del first
    before = libc.mallinfo2().hblkhd
    second = bytearray(20_000_000)
    held = libc.mallinfo2().hblkhd - before
    del second
    return held
"""
