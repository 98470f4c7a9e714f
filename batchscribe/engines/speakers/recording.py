"""The recording as the labeller reads it: stretches of it (a speech region, a 10 s chunk), in
order, pass after pass.

Each step of the labels reads the recording in one or two ordered passes (the loudness, then
the windows; the frames; the chunks), never at random. So a long recording need not be held:
`Streamed` decodes it again for each pass and keeps only the stretch being read, as
windows.py does for Whisper. A short one is held (`InMemory`, 16-bit: labels.decoded), as
the transcriber holds it whole. Both give the same float32 numbers: decode_audio's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import BinaryIO, Protocol

import numpy as np

from batchscribe.engines.speakers.encoder import Floats, Samples, as_floats
from batchscribe.errors import Stopped

Span = tuple[int, int]


class Recording(Protocol):
    """A recording's samples (16 kHz mono) read as stretches."""

    def __len__(self) -> int: ...

    def spans(self, spans: Sequence[Span]) -> Iterator[Floats]:
        """Each (start, end) sample span's float32 samples, in turn: `spans` sorted by start
        (they may overlap), each cut to the recording."""
        ...


class InMemory:
    """A recording held whole: a test's float32, or labels.decoded's 16-bit samples."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def spans(self, spans: Sequence[Span]) -> Iterator[Floats]:
        for start, end in spans:
            yield as_floats(self.samples[start:end])


class Streamed:
    """A recording decoded again for each pass (windows.py's 16-bit stream), holding only
    from the start of the span being read to its end: memory bounded whatever the length.
    Its length is counted by one pass when made. When `stopping` is set (the run stops now),
    a pass raises Stopped before its next block: ten hours' pass takes 20 s."""

    def __init__(self, audio: str | BinaryIO, stopping: threading.Event | None = None) -> None:
        self._audio = audio
        self._stopping = stopping or threading.Event()
        self._length = sum(len(block) for block in self._blocks())

    def __len__(self) -> int:
        return self._length

    def spans(self, spans: Sequence[Span]) -> Iterator[Floats]:
        blocks = self._blocks()
        held, first = np.zeros(0, dtype=np.int16), 0  # held: samples first .. first + len
        for start, end in spans:
            if start < first:
                raise ValueError("spans are read in order of their start")
            while first + len(held) < end:
                block = next(blocks, None)
                if block is None:
                    break
                held = np.concatenate([held, block])
            drop = min(start - first, len(held))  # what no later span (sorted) needs
            held, first = held[drop:], first + drop
            yield as_floats(held[: max(0, end - first)])

    def _blocks(self) -> Iterator[np.ndarray]:
        from batchscribe.engines.local.windows import stream_16bit

        if not isinstance(self._audio, str):
            self._audio.seek(0)  # a file's bytes (through Ray): each pass from the start
        for block in stream_16bit(self._audio):
            if self._stopping.is_set():
                raise Stopped()
            yield block


def as_recording(audio: Recording | Samples) -> Recording:
    """`audio` as a Recording: an array is held as it is."""
    return InMemory(audio) if isinstance(audio, np.ndarray) else audio
