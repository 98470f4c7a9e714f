"""The share of words given to the wrong speaker (word diarization error), as the README of
tests/data/speakers (and the shared corpus-speakers set) defines it; used by tests and the bench."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    start: float  # seconds
    end: float


def read_rttm(path: Path) -> dict[str, list[Turn]]:
    """`SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> ...` lines, by file name."""
    turns: dict[str, list[Turn]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns[fields[1]].append(Turn(fields[7], start, start + duration))
    return dict(turns)


@dataclass(frozen=True, slots=True)
class Score:
    #: words scored: with a found speaker, and exactly one reference speaker at their midpoint
    scored: int
    #: of those, given to the wrong speaker under the best one-to-one naming
    wrong: int
    #: words with a speaker, of all words
    labelled: int
    words: int
    #: distinct speakers found
    found: int
    #: reference speakers alone at the midpoint of a scored word: the most a transcript's
    #: words can show (a person Whisper wrote no word of, or only words said over someone
    #: else, is in no scored word)
    speaking: int

    @property
    def error(self) -> float:
        return self.wrong / self.scored if self.scored else 0.0


def score(words: Sequence[Mapping[str, Any]], reference: Iterable[Turn]) -> Score:
    """Word diarization error of `words` (AssemblyAI's shape: start/end in ms, speaker)."""
    turns = list(reference)
    pairs: list[tuple[str, str]] = []
    for word in words:
        if not word.get("speaker"):
            continue
        mid = (word["start"] + word["end"]) / 2000
        talking = {t.speaker for t in turns if t.start <= mid < t.end}
        if len(talking) == 1:
            pairs.append((str(word["speaker"]), talking.pop()))
    found = sorted({f for f, _ in pairs})
    truth = sorted({r for _, r in pairs})
    counts = np.zeros((len(found), len(truth)))
    for f, r in pairs:
        counts[found.index(f), truth.index(r)] += 1
    rows, cols = linear_sum_assignment(-counts) if pairs else ([], [])
    right = int(sum(counts[i, j] for i, j in zip(rows, cols, strict=True)))
    return Score(
        scored=len(pairs),
        wrong=len(pairs) - right,
        labelled=sum(1 for w in words if w.get("speaker")),
        words=len(words),
        found=len({w["speaker"] for w in words if w.get("speaker")}),
        speaking=len(truth),
    )
