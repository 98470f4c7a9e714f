"""A long recording heard window by window, so memory stays bounded whatever its length.

faster-whisper decodes a whole file to float32 before VAD (2 hours: 460 MB, and its
spectrogram several times that). Here the file is decoded as a stream (PyAV, resampled as
faster-whisper's `decode_audio` does, so the samples are the same), cut into windows of about
`seconds` at the quietest 100 ms of the window's last `QUIET_SEARCH_S` (a pause, not a word),
and each window is transcribed on its own; segment and word times are shifted by the window's
offset and kept inside it, so they stay in order and never overlap. The language is detected
once, in the first window with speech, and then given to the others (unless each 30-second
window is decoded in its own language: `multilingual`).

`quiet_cut` is pure; `probe` and `Windowed` do the I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

RATE = 16000
#: Window length: 5 minutes of float32 is 19 MB, and faster-whisper's spectrogram (its STFT
#: frames) several times that at its peak; 10-minute windows peaked higher (BENCHMARKS.md).
WINDOW_S = 300.0
#: Where a window may end: the quietest frame of its last seconds.
QUIET_SEARCH_S = 10.0
QUIET_FRAME = RATE // 10
#: 16-bit samples over this are float32 in [-1, 1), as faster-whisper's `decode_audio` makes them.
FULL_SCALE = 32768.0


def probe(audio: str | BinaryIO) -> float | None:
    """The recording's length in seconds as its container says (math.inf when it does not
    say), or None when PyAV cannot open it as audio (the model then says why, as before)."""
    import av

    try:
        with av.open(audio, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if container.duration:
                return float(container.duration) / 1_000_000
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return math.inf
    except Exception:  # PyAV raises one class per container problem
        return None
    finally:
        if not isinstance(audio, str):
            audio.seek(0)


def quiet_cut(samples: np.ndarray, end: int, search: int, frame: int = QUIET_FRAME) -> int:
    """Where to end a window that should end near `end`: the middle of the quietest `frame`
    (least energy) among those in `samples[end - search:end]`. Pure."""
    start = max(0, end - search)
    count = (end - start) // frame
    if count < 1:
        return end
    frames = samples[start : start + count * frame].reshape(count, frame)
    quietest = int(np.argmin(np.square(frames, dtype=np.float64).sum(axis=1)))
    return start + quietest * frame + frame // 2


def stream(audio: str | BinaryIO, chunk: int = 500_000) -> Iterator[np.ndarray]:
    """The recording as 16 kHz mono float32 blocks of about `chunk` samples."""
    for block in stream_16bit(audio, chunk):
        yield block.astype(np.float32) / FULL_SCALE


def stream_16bit(audio: str | BinaryIO, chunk: int = 500_000) -> Iterator[np.ndarray]:
    """The recording as 16 kHz mono 16-bit blocks of about `chunk` samples: what
    faster-whisper's `decode_audio` divides by FULL_SCALE."""
    import av
    from faster_whisper import audio as fw_audio

    # faster-whisper's own frame helpers, so the samples equal decode_audio's
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(audio, mode="r", metadata_errors="ignore") as container:
        frames = fw_audio._ignore_invalid_frames(container.decode(audio=0))
        frames = fw_audio._group_frames(frames, chunk)
        for frame in fw_audio._resample_frames(frames, resampler):
            yield frame.to_ndarray().reshape(-1)


def windows(blocks: Iterator[np.ndarray], seconds: float) -> Iterator[tuple[int, np.ndarray]]:
    """(offset in samples, samples) of consecutive windows of about `seconds`, each ending at a
    quiet point; together they are the whole recording, once."""
    size, search = int(seconds * RATE), int(min(QUIET_SEARCH_S, seconds / 4) * RATE)
    held: list[np.ndarray] = []
    count = offset = 0
    for block in blocks:
        held.append(block)
        count += len(block)
        while count >= size + search:  # enough past the target to choose where to cut
            samples = np.concatenate(held)
            cut = quiet_cut(samples, size, search)
            yield offset, samples[:cut]
            rest = samples[cut:].copy()
            held, count, offset = [rest], len(rest), offset + cut
    if count:
        yield offset, np.concatenate(held)


class Windowed:
    """`model.transcribe` over the windows of one recording: iterate `segments()` (lazily, as
    faster-whisper's own), then `info` is the first speech window's, with the whole duration."""

    def __init__(
        self, model: Any, audio: str | BinaryIO, options: dict[str, Any], seconds: float
    ) -> None:
        self._model, self._audio, self._seconds = model, audio, seconds
        self._options = dict(options)
        self.info: Any = None

    def segments(self) -> Iterator[Any]:
        first: Any = None
        total = 0
        for offset, samples in windows(stream(self._audio), self._seconds):
            segments, info = self._model.transcribe(samples, **self._options)
            start, end = offset / RATE, (offset + len(samples)) / RATE
            spoke = False
            for segment in segments:
                spoke = True
                yield _shifted(segment, start, end)
            first = first or info
            if spoke and self.info is None:
                self.info = info
                if not self._options.get("multilingual"):
                    self._options["language"] = info.language  # detected once
            total = offset + len(samples)
        chosen = self.info if self.info is not None else first
        self.info = dataclasses.replace(chosen, duration=total / RATE) if chosen else None


def _shifted(segment: Any, start: float, end: float) -> Any:
    """A window's segment in the recording's time: shifted by the window's start, inside it."""

    def at(t: float) -> float:
        return min(max(start + t, start), end)

    words = [dataclasses.replace(w, start=at(w.start), end=at(w.end)) for w in segment.words or []]
    return dataclasses.replace(
        segment, start=at(segment.start), end=at(segment.end), words=words or segment.words
    )
