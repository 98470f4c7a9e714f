"""SRT and WebVTT from a transcript's words: pure functions, no subtitle API calls.

Cues follow the usual broadcast rules: at most `max_chars` per line and `max_lines` lines, at
most `max_seconds` on screen, and a new cue at a sentence end, a pause or a change of speaker.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchscribe.transcript import Transcript, Word

#: Words ending with these close a sentence: the natural place for a cue to end.
SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True, slots=True)
class CueLimits:
    """How big a cue may grow. Defaults follow common subtitle guidelines (BBC, Netflix)."""

    max_chars: int = 42
    max_lines: int = 2
    max_seconds: float = 6.0
    #: a silence this long (seconds) between two words starts a new cue
    pause: float = 0.8


DEFAULT_LIMITS = CueLimits()


@dataclass(frozen=True, slots=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: str | None = None


def wrap(words: list[str], max_chars: int) -> list[str]:
    """Greedy line wrap; a word longer than a line gets a line of its own, never split."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def cues(transcript: Transcript, limits: CueLimits = DEFAULT_LIMITS) -> list[Cue]:
    """Group the words into cues; a transcript without word timings gets one cue for its text."""
    words = [w for w in transcript.words if w.text.strip()]
    if not words:
        text = transcript.text.strip()
        duration_ms = int((transcript.audio_duration or 0) * 1000)
        if not text:
            return []
        return [Cue(0, max(duration_ms, 1000), tuple(wrap(text.split(), limits.max_chars)))]
    result: list[Cue] = []
    current: list[Word] = []
    for word in words:
        if current and _breaks(current, word, limits):
            result.append(_cue(current, limits))
            current = []
        current.append(word)
    result.append(_cue(current, limits))
    return result


def _breaks(current: list[Word], word: Word, limits: CueLimits) -> bool:
    last = current[-1]
    if word.speaker != last.speaker:
        return True
    if last.text.rstrip('"”’)').endswith(SENTENCE_END):
        return True
    if word.start - last.end >= limits.pause * 1000:
        return True
    if word.end - current[0].start > limits.max_seconds * 1000:
        return True
    candidate = [w.text for w in current] + [word.text]
    return len(wrap(candidate, limits.max_chars)) > limits.max_lines


def _cue(words: list[Word], limits: CueLimits) -> Cue:
    lines = tuple(wrap([w.text for w in words], limits.max_chars))
    end = max(words[-1].end, words[0].start + 1)
    return Cue(words[0].start, end, lines, words[0].speaker)


def timestamp(ms: int, *, separator: str) -> str:
    """`HH:MM:SS,mmm` (SRT, separator ",") or `HH:MM:SS.mmm` (WebVTT, "."); hours grow past 99."""
    ms = max(ms, 0)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def render_srt(transcript: Transcript, limits: CueLimits = DEFAULT_LIMITS) -> str:
    blocks = []
    for number, cue in enumerate(cues(transcript, limits), 1):
        lines = list(cue.lines)
        if cue.speaker:
            lines[0] = f"Speaker {cue.speaker}: {lines[0]}"
        start = timestamp(cue.start_ms, separator=",")
        end = timestamp(cue.end_ms, separator=",")
        blocks.append(f"{number}\n{start} --> {end}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def render_vtt(transcript: Transcript, limits: CueLimits = DEFAULT_LIMITS) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues(transcript, limits):
        lines = [_vtt_escape(line) for line in cue.lines]
        if cue.speaker:
            lines[0] = f"<v Speaker {_vtt_escape(cue.speaker)}>{lines[0]}"
        start = timestamp(cue.start_ms, separator=".")
        end = timestamp(cue.end_ms, separator=".")
        blocks.append(f"{start} --> {end}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # "-->" and markup characters must not reach a cue payload unescaped.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
