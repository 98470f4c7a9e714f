"""Why the meetings' quiet, far-off people get no words: the VAD's speech probability over their
turns against room noise, and Whisper's words with the VAD as the engine runs it and without.

    python bench/far_field.py

For each meeting excerpt of the shared corpus-speakers set, corpus-hard's room-noise and
silence: silero's (faster-whisper's VAD) highest speech probability in each second, as heard,
10x louder and levelled per half second; then Whisper base's word count and text with the
engine's options, with the VAD at 0.35 and 0.2, and without the VAD. BENCHMARKS.md, issue #27.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from faster_whisper.audio import decode_audio  # noqa: E402
from faster_whisper.vad import get_vad_model  # noqa: E402

from batchscribe.config import Settings  # noqa: E402
from batchscribe.engines.local.engine import whisper_model  # noqa: E402
from batchscribe.engines.local.options import transcribe_options  # noqa: E402
from bench.speakers import SHARED  # noqa: E402

RATE = 16_000
FRAME = 512  # silero's frame at 16 kHz; 31 frames are about a second
PER_SECOND = 31


def levelled(audio: np.ndarray, block: int = RATE // 2, target_db: float = -20.0) -> np.ndarray:
    """Each half second brought to `target_db` RMS (at most 30 dB more): quiet turns as loud as
    near ones, to see whether the VAD misses them for their level."""
    out = audio.copy()
    for start in range(0, len(audio), block):
        part = audio[start : start + block]
        gain = min(10 ** (target_db / 20) / (np.sqrt((part**2).mean()) + 1e-9), 10**1.5)
        out[start : start + block] = np.clip(part * gain, -1, 1)
    return out


def per_second(vad: Any, audio: np.ndarray) -> str:
    frames = len(audio) // FRAME * FRAME
    probability = np.asarray(vad(audio[:frames])).ravel()
    seconds = probability[: len(probability) // PER_SECOND * PER_SECOND]
    return " ".join(f"{p:.2f}" for p in seconds.reshape(-1, PER_SECOND).max(axis=1))


def main() -> None:
    vad = get_vad_model()
    model = whisper_model(None, device="cpu", compute_type="int8", cpu_threads=1)
    engine = transcribe_options(Settings().local())
    variants: dict[str, dict[str, Any]] = {
        "engine (VAD 0.5)": {},
        "VAD 0.35": {"vad_parameters": {**engine["vad_parameters"], "threshold": 0.35}},
        "VAD 0.2": {"vad_parameters": {**engine["vad_parameters"], "threshold": 0.2}},
        "no VAD": {"vad_filter": False},
    }
    meetings = sorted((SHARED / "corpus-speakers").glob("trn*.wav"))
    hard = [SHARED / "corpus-hard" / "room-noise.wav", SHARED / "corpus-hard" / "silence.wav"]
    for path in meetings + hard:
        audio = decode_audio(str(path))
        print(f"## {path.name}")
        print(f"silero, highest per second, as heard: {per_second(vad, audio)}")
        louder = np.clip(audio * 10, -1, 1)
        print(f"10x louder:                           {per_second(vad, louder)}")
        print(f"levelled per half second:             {per_second(vad, levelled(audio))}")
        for name, changed in variants.items():
            segments, _info = model.transcribe(audio, **{**engine, **changed})
            heard = list(segments)
            words = sum(len(s.words or []) for s in heard)
            text = " ".join(s.text.strip() for s in heard)
            spans = ", ".join(f"{s.start:.1f}-{s.end:.1f}" for s in heard)
            print(f"- {name}: {words} words [{spans}] {text[:120]}")
        print()


if __name__ == "__main__":
    main()
