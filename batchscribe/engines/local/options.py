"""What the local engine asks faster-whisper, and how its answer reads as a transcript.

Pure: the language rules (English-only models, `auto`), `WhisperModel.transcribe`'s keyword
arguments for the settings, and its segments in AssemblyAI's field names. No model here.
"""

from __future__ import annotations

from typing import Any

from batchscribe.engines.local.models import choose
from batchscribe.errors import ConfigError
from batchscribe.settings.parts import LocalSettings
from batchscribe.transcript import OUR_KEY

#: 30-second windows a multilingual model listens to before it names the language: one
#: window of a quiet or music-led start decides wrongly; three cost two encoder passes more.
LANGUAGE_DETECTION_WINDOWS = 3


def whisper_language(code: str | None) -> str | None:
    """The language as Whisper names it: `en_us`, `en-US` -> `en`; None, "" or `auto` -> None
    (English-only models hear English, multilingual ones detect it per file)."""
    if code is None or code.strip().lower() in ("", "auto"):
        return None
    return code.strip().lower().replace("-", "_").split("_")[0]


def english_only(model: str | None) -> bool:
    """Whether the model hears only English: tiny.en, or any name or folder ending in `.en`
    (`small.en`, `/models/whisper-medium.en/`). The default (base) hears every language; a
    folder named otherwise is checked once loaded."""
    return choose(model).english_only


def model_label(settings: LocalSettings) -> str:
    """The model as the user knows it: `--model`'s value, or the bundled one's name."""
    return choose(settings.model).label


def multilingual(settings: LocalSettings) -> bool:
    """Whether each 30-second window is decoded in its own language: `[local] multilingual`,
    whose `auto` is on when the language is detected and the model hears every language."""
    if settings.multilingual != "auto":
        return settings.multilingual == "on"
    return whisper_language(settings.language) is None and not english_only(settings.model)


def english_only_error(settings: LocalSettings, code: str) -> ConfigError:
    return ConfigError(
        f"language '{code}' needs a multilingual model, and the model {model_label(settings)} "
        "is English-only: it would write English words for any speech. Use --model with a "
        "multilingual model (e.g. --model small, downloaded when online), or the AssemblyAI "
        "engine (set ASSEMBLYAI_API_KEY), or leave --language unset for English."
    )


def check_language(settings: LocalSettings) -> None:
    """Refuse, before any work, a language the model cannot hear (ConfigError, exit 2): any
    but English with an English-only model, or a code Whisper does not know."""
    language = whisper_language(settings.language)
    if settings.task == "translate" and english_only(settings.model):
        raise ConfigError(
            f"--task translate needs a multilingual model, and {model_label(settings)} is "
            "English-only; leave --model unset (Whisper base) or pass a multilingual one."
        )
    if language is None or language == "en":
        return
    if english_only(settings.model):
        raise english_only_error(settings, language)
    from faster_whisper import tokenizer

    known = getattr(tokenizer, "_LANGUAGE_CODES", None)
    if known is not None and language not in known:
        raise ConfigError(
            f"language '{settings.language}' is not one Whisper knows; give a code such as "
            "en, fr, de, es, or auto to detect it."
        )


def transcribe_options(settings: LocalSettings) -> dict[str, Any]:
    """`WhisperModel.transcribe`'s keyword arguments for these settings."""
    language = whisper_language(settings.language)
    options: dict[str, Any] = {
        "language": language,
        "task": settings.task,
        "beam_size": settings.beam_size,
        "word_timestamps": True,
        "vad_filter": settings.vad_filter,
        "condition_on_previous_text": settings.condition_on_previous_text,
        "compression_ratio_threshold": settings.compression_ratio_threshold,
        "log_prob_threshold": settings.log_prob_threshold,
        "no_speech_threshold": settings.no_speech_threshold,
        "hallucination_silence_threshold": settings.hallucination_silence_threshold or None,
    }
    if settings.vad_filter:
        options["vad_parameters"] = {
            "threshold": settings.vad_threshold,
            "min_silence_duration_ms": settings.vad_min_silence_ms,
            "speech_pad_ms": settings.vad_speech_pad_ms,
        }
    if language is None:
        options["language_detection_segments"] = LANGUAGE_DETECTION_WINDOWS
    if multilingual(settings):
        # A window decoded with the previous one's text as its prompt stays in that text's
        # language: off, or the German half of an English-then-German recording is lost.
        options.update(multilingual=True, condition_on_previous_text=False)
    return options


def to_transcript_data(
    segments: list[Any], info: Any, *, model: str, detected: bool = False, task: str = "transcribe"
) -> dict[str, Any]:
    """faster-whisper's segments in AssemblyAI's field names (times in milliseconds).

    No speech (silence, noise: nothing left after VAD) is a completed transcript with no words
    and an empty text. `language_probability` is the detection's, when the language was
    detected from speech; else None (given, or an English-only model). A translation keeps
    the spoken language in `language_code` and says `"batchscribe": {"task": "translate"}`.
    """
    words: list[dict[str, Any]] = []
    for segment in segments:
        for word in segment.words or []:
            words.append(
                {
                    "text": word.word.strip(),
                    "start": round(word.start * 1000),
                    "end": round(word.end * 1000),
                    "confidence": round(word.probability, 4),
                    "speaker": None,
                }
            )
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    confidence = sum(w["confidence"] for w in words) / len(words) if words else None
    heard = detected and bool(words)  # a language "detected" in silence means nothing
    data: dict[str, Any] = {
        "status": "completed",
        "text": text,
        "words": words,
        "confidence": round(confidence, 4) if confidence is not None else None,
        "language_code": info.language if heard or not detected else None,
        "language_probability": round(info.language_probability, 4) if heard else None,
        "audio_duration": round(info.duration, 3),
        "engine": "local",
        "model": model,
    }
    if task == "translate":
        data[OUR_KEY] = {"task": "translate", "text_language": "en"}
    return data
