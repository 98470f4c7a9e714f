"""A transcript's words cut into sentences and paragraphs (AssemblyAI's /sentences and
/paragraphs, OpenAI's segments): pure, with the same sentence and paragraph rules as the .txt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchscribe.output.paragraphs import ends_sentence, paragraph_starts
from batchscribe.transcript import Span

Word = Mapping[str, Any]


def sentence_starts(words: Sequence[Word]) -> list[int]:
    """Indexes of the words that begin a sentence (after one that ends it)."""
    texts = [str(w.get("text") or "") for w in words]
    starts = [0] if words else []
    for i in range(1, len(words)):
        if ends_sentence(texts[i - 1], texts[i]):
            starts.append(i)
    return starts


def paragraph_word_starts(words: Sequence[Word]) -> list[int]:
    """Indexes of the words that begin a paragraph, by `output/paragraphs.paragraph_starts`."""
    spans = [
        Span(str(w.get("text") or ""), int(w.get("start") or 0), int(w.get("end") or 0),
             w.get("speaker"))
        for w in words
    ]  # fmt: skip
    return paragraph_starts(spans)


def cut(words: Sequence[Word], starts: list[int]) -> list[dict[str, Any]]:
    """The words in pieces at `starts`, each as AssemblyAI writes a sentence or paragraph;
    none for a transcript without words (silence)."""
    if not words or not starts:
        return []
    ends = [*starts[1:], len(words)]
    return [section(words[a:b]) for a, b in zip(starts, ends, strict=True) if b > a]


def section(words: Sequence[Word]) -> dict[str, Any]:
    scores = [float(w["confidence"]) for w in words if w.get("confidence") is not None]
    return {
        "text": " ".join(str(w.get("text") or "") for w in words),
        "start": int(words[0].get("start") or 0),
        "end": int(words[-1].get("end") or 0),
        "confidence": round(sum(scores) / len(scores), 4) if scores else 0.0,
        "speaker": words[0].get("speaker"),
        "words": [dict(w) for w in words],
    }
