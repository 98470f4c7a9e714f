"""The audio the memory benchmark (bench/memory.py) transcribes, made at bench time.

- `twenty_distinct`: 20 different recordings, no two alike (so no copy is skipped as identical):
  examples/recordings (5 English clips), examples/languages (fr, de, es, it and
  english-then-german), tests/data/hard (silence, room noise, French, German), tests/data/speakers
  (interview, two-men, monologue, meeting-pair, monologue-real: the first 60 s of the podcast),
  and the podcast's last minute (/work/shared/corpus-real/fsp-orm.mp3 from 120 s, as a 16 kHz WAV).
  Each comes with the sentences its manifest says were spoken, or None (no reference).
- `looped`: the podcast repeated to a given length (2 hours), as one 16 kHz mono WAV written
  block by block (never held whole in memory). Not committed: 230 MB.
"""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PODCAST = Path("/work/shared/corpus-real/fsp-orm.mp3")
RATE = 16000


def _manifest(folder: Path) -> list[tuple[Path, str | None]]:
    clips = json.loads((folder / "manifest.json").read_text())["clips"]
    return [(folder / c["path"], c.get("text") or None) for c in clips]


def _write_wav(path: Path, samples: object) -> None:
    import numpy as np

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


def twenty_distinct(folder: Path) -> list[tuple[Path, str | None]]:
    """Copy the 20 recordings flat into `folder` (names prefixed by their origin)."""
    from faster_whisper import decode_audio

    folder.mkdir(parents=True, exist_ok=True)
    sources = _manifest(REPO / "examples" / "recordings")
    sources += _manifest(REPO / "examples" / "languages")
    sources.append((REPO / "examples" / "languages" / "english-then-german.ogg", None))
    sources += _manifest(REPO / "tests" / "data" / "hard")
    speakers = REPO / "tests" / "data" / "speakers"
    for name in ("interview.wav", "two-men.wav", "monologue.wav", "meeting-pair.wav",
                 "monologue-real.mp3"):  # fmt: skip
        sources.append((speakers / name, None))
    clips = []
    for source, text in sources:
        target = folder / f"{source.parent.name}-{source.name}"
        shutil.copyfile(source, target)
        clips.append((target, text))
    last_minute = folder / "podcast-last-minute.wav"
    _write_wav(last_minute, decode_audio(str(PODCAST), sampling_rate=RATE)[120 * RATE :])
    clips.append((last_minute, None))
    assert len(clips) == 20, len(clips)
    return clips


def looped(path: Path, seconds: float, source: Path = PODCAST) -> Path:
    """`source` repeated until `seconds` long, as a 16 kHz mono WAV at `path`."""
    from faster_whisper import decode_audio

    block = (decode_audio(str(source), sampling_rate=RATE).clip(-1, 1) * 32767).astype("<i2")
    frames = int(seconds * RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        while frames > 0:
            out.writeframes(block[:frames].tobytes())
            frames -= len(block)
    return path
