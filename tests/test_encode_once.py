"""engines/local/encode_once.py on the real default model (Whisper base, multilingual): the
window the language detection encodes is not encoded again, and the transcript is exactly
faster-whisper's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.engines.local.models import choose, locate
from batchscribe.engines.local.options import transcribe_options

LANGUAGES = Path(__file__).resolve().parent.parent / "examples" / "languages"


def _transcribed(model: Any, path: Path) -> tuple[str, list[tuple[str, float, float]]]:
    segments, info = model.transcribe(str(path), **transcribe_options(Settings().local()))
    return info.language, [(w.word, w.start, w.end) for s in segments for w in s.words]


@pytest.mark.model
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("name", "saved"),
    [("fr.ogg", 1), ("english-then-german.ogg", 1)],  # 9 s: one window; 36 s: two
)
def test_the_detected_window_is_encoded_once_and_the_transcript_is_faster_whispers(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch, name: str, saved: int
) -> None:
    from faster_whisper import WhisperModel

    from batchscribe.engines.local.encode_once import EncodeOnceWhisperModel

    folder = locate(choose(None), cache=model_cache)
    passes: list[int] = []
    encode = WhisperModel.encode

    def counted(self: Any, features: Any) -> Any:
        passes.append(1)
        return encode(self, features)

    monkeypatch.setattr(WhisperModel, "encode", counted)
    options = {"device": "cpu", "compute_type": "int8", "cpu_threads": 1}
    stock = _transcribed(WhisperModel(folder, **options), LANGUAGES / name)
    stock_passes, passes[:] = len(passes), []
    once = _transcribed(EncodeOnceWhisperModel(folder, **options), LANGUAGES / name)

    assert stock[1], "the clip has words"
    assert once == stock  # language, words and their times, to the last digit
    assert len(passes) == stock_passes - saved


@pytest.mark.model
def test_every_engine_s_model_encodes_once(model_cache: Path) -> None:
    """The engine's factory (runs, `serve` and Ray actors all load through it)."""
    from batchscribe.engines.local.encode_once import EncodeOnceWhisperModel
    from batchscribe.engines.local.engine import whisper_model

    model = whisper_model(None, cache_dir=model_cache, device="cpu", compute_type="int8")
    assert isinstance(model, EncodeOnceWhisperModel)
