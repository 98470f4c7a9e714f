"""The engine-neutral transcript: what every engine returns and every renderer reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times in milliseconds, as AssemblyAI gives them."""

    text: str
    start: int
    end: int
    confidence: float | None = None
    speaker: str | None = None


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
