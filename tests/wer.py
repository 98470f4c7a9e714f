"""Word error rate, for comparing the model's output with what was said (never by equality)."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, in any alphabet: "Hi, Sam's" -> ["hi", "sam's"],
    "Über Straße" -> ["über", "straße"]."""
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", text.lower())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Errors over all reference words, pooled across the clips."""
    errors = sum(
        edit_distance(words(r), words(h)) for r, h in zip(references, hypotheses, strict=True)
    )
    total = sum(len(words(r)) for r in references)
    return errors / total
