"""The engine-neutral transcript: what every engine returns and every renderer reads."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: How far past the last word found (in characters) the next word is looked for in `text`:
#: a word the text spells differently is skipped, not searched for across the whole text.
_SEARCH_WINDOW = 100
#: A single space between two non-spaces: where `text` may be cut and joined back exactly.
_CUT = re.compile(r"(?<=\S) (?=\S)")
#: The key batchscribe adds to a transcript's .json for what it says about the transcript.
#: AssemblyAI's objects have no such field, so it cannot be taken for one of theirs.
OUR_KEY = "batchscribe"


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times in milliseconds, as AssemblyAI gives them."""

    text: str
    start: int
    end: int
    confidence: float | None = None
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of the transcript's text between two single spaces (a word as `text` spells
    it), timed by the recognised words found in it; None where no word was found."""

    text: str
    start: int | None = None
    end: int | None = None
    speaker: str | None = None


def spans_of(text: str, words: Sequence[Word] = ()) -> list[Span]:
    """`text` cut at its single spaces, each piece timed by the `words` found in it, in order.

    Joining the pieces with single spaces gives `text.strip()` back exactly, whatever the words
    say: they only lend their times and speakers. A word that `text` spells differently (a
    word split in two, a number written out) is skipped; its piece keeps the others' times.
    """
    text = text.strip()
    if not text:
        return []
    pieces = _CUT.split(text)
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece) + 1
    found: list[list[Word]] = [[] for _ in pieces]
    cursor = index = 0
    for word in words:
        needle = word.text.strip()
        where = text.find(needle, cursor, cursor + len(needle) + _SEARCH_WINDOW) if needle else -1
        if where < 0:
            continue
        while index + 1 < len(pieces) and offsets[index + 1] <= where:
            index += 1
        found[index].append(word)
        cursor = where + len(needle)
    return [
        Span(piece, timed[0].start, timed[-1].end, timed[0].speaker) if timed else Span(piece)
        for piece, timed in zip(pieces, found, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Transcript:
    """`data` is the object saved as `.json`: for AssemblyAI exactly what the API returned."""

    data: Mapping[str, Any]

    @property
    def text(self) -> str:
        return str(self.data.get("text") or "")

    @property
    def words(self) -> list[Word]:
        return [
            Word(
                text=str(w.get("text", "")),
                start=int(w.get("start") or 0),
                end=int(w.get("end") or 0),
                confidence=w.get("confidence"),
                speaker=w.get("speaker"),
            )
            for w in self.data.get("words") or []
        ]

    def spans(self) -> list[Span]:
        """`text` in pieces timed by `words` (see `spans_of`): what paragraphs are cut from."""
        return spans_of(self.text, self.words)

    @property
    def utterances(self) -> list[tuple[str, str]]:
        """(speaker, text) per turn, when the engine labelled speakers; else empty."""
        return [
            (str(u.get("speaker") or "?"), str(u.get("text") or "").strip())
            for u in self.data.get("utterances") or []
        ]

    @property
    def audio_duration(self) -> float | None:
        value = self.data.get("audio_duration")
        return float(value) if value is not None else None

    @property
    def transcript_id(self) -> str | None:
        """The engine's id for it (AssemblyAI's `id`); None for a local transcript."""
        value = self.data.get("id")
        return str(value) if value is not None else None

    @property
    def model_used(self) -> str | None:
        """The model the service says it ran (AssemblyAI's `speech_model_used`, worth naming
        when it picks from a list); None for the local engine, whose model the user chose."""
        value = self.data.get("speech_model_used")
        return str(value) if value is not None else None
