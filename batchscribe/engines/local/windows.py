"""A long recording heard window by window, so memory stays bounded whatever its length.

faster-whisper decodes a whole file to float32 before VAD (2 hours: 460 MB, and its
spectrogram several times that). Here the file is decoded as a stream (PyAV, resampled as
faster-whisper's `decode_audio` does, so the samples are the same), cut into windows of about
`seconds` at the quietest 100 ms of the window's last `QUIET_SEARCH_S` (a pause, not a word),
and each window is transcribed on its own; segment and word times are shifted by the window's
offset and kept inside it, so they stay in order and never overlap. The language is detected
once, in the first window with speech, and then given to the others (unless each 30-second
window is decoded in its own language: `multilingual`). A recording alone in the run has its
later windows heard by the decoders no other file holds (decoders.py).

`quiet_cut` is pure; `probe` and `Windowed` do the I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any, BinaryIO

import numpy as np

from batchscribe.engines.local.decoders import STOP_CHECK_S, Decoders
from batchscribe.errors import Stopped

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


@dataclasses.dataclass(slots=True)
class _Window:
    """A window read and not yet given out: its samples until it is heard (`unstarted`), the
    borrowed decoder's work (`lent`), or its segments and info once heard (`heard`)."""

    offset: int
    length: int
    unstarted: np.ndarray | None = None
    lent: Future[tuple[list[Any], Any]] | None = None
    heard: tuple[list[Any], Any] | None = None


class Windowed:
    """`model.transcribe` over the windows of one recording: iterate `segments()` (lazily, as
    faster-whisper's own), then `info` is the first speech window's, with the whole duration.

    With `decoders` (decoders.py), later windows go to the decoders no file holds, while this
    thread hears the next one not lent; the segments still come in order. Windows are lent only
    once none waits for the language (a given language, or each window's own: `multilingual`).
    `stopping`: the run stops now, and a window heard apart ends at its next segment."""

    def __init__(
        self,
        model: Any,
        audio: str | BinaryIO,
        options: dict[str, Any],
        seconds: float,
        *,
        decoders: Decoders | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self._model, self._audio, self._seconds = model, audio, seconds
        self._options = dict(options)
        self._decoders, self._stopping = decoders, stopping or threading.Event()
        self._abandoned = threading.Event()  # this recording's own end (a failure, a stop)
        self.info: Any = None
        self._first: Any = None
        self._total = 0

    def segments(self) -> Iterator[Any]:
        source = windows(stream(self._audio), self._seconds)
        read: deque[_Window] = deque()  # in the recording's order
        try:
            while True:
                if not read and not self._take(source, read):
                    break
                self._lend(source, read)
                head = read[0]
                if head.unstarted is not None:  # heard here, lazily: the caller sees each segment
                    read.popleft()
                    segments, info = self._model.transcribe(head.unstarted, **self._options)
                    yield from self._took(head, segments, info)
                elif head.lent is None or head.lent.done() or not self._hear_later(source, read):
                    read.popleft()
                    yield from self._took(head, *self._result(head))
        finally:
            self._abandoned.set()
            for window in read:
                if window.lent is not None:
                    window.lent.cancel()
        chosen = self.info if self.info is not None else self._first
        self.info = dataclasses.replace(chosen, duration=self._total / RATE) if chosen else None

    def _take(self, source: Iterator[tuple[int, np.ndarray]], read: deque[_Window]) -> bool:
        window = next(source, None)
        if window is None:
            return False
        read.append(_Window(window[0], len(window[1]), unstarted=window[1]))
        return True

    def _lend(self, source: Iterator[tuple[int, np.ndarray]], read: deque[_Window]) -> None:
        """Past the next window (this thread's, heard segment by segment), read on while a
        decoder can be borrowed for the window read; one read that none could take is kept
        for this thread too (only one: each holds its samples)."""
        independent = self._options.get("multilingual") or self._options.get("language")
        if self._decoders is None or not independent:
            return
        while not any(w.unstarted is not None for w in list(read)[1:]) and self._take(source, read):
            window = read[-1]
            samples, options = window.unstarted, dict(self._options)
            assert samples is not None
            lent = self._decoders.borrow(functools.partial(self._whole, samples, options))
            if lent is None:
                return
            window.unstarted, window.lent = None, lent

    def _hear_later(self, source: Iterator[tuple[int, np.ndarray]], read: deque[_Window]) -> bool:
        """While the head is on a borrowed decoder, hear the first later window nobody has
        here (False: none is left to hear)."""
        later = next((w for w in read if w.unstarted is not None), None)
        if later is None and self._take(source, read):
            later = read[-1]
        if later is None:
            return False
        samples, later.unstarted = later.unstarted, None
        assert samples is not None
        later.heard = self._whole(samples, self._options)
        return True

    def _whole(self, samples: np.ndarray, options: dict[str, Any]) -> tuple[list[Any], Any]:
        """One window heard to its end, here or on a borrowed decoder; ends at the next segment
        when the run stops now or this recording is given up."""
        segments, info = self._model.transcribe(samples, **options)
        heard = []
        for segment in segments:
            if self._stopping.is_set() or self._abandoned.is_set():
                raise Stopped()
            heard.append(segment)
        return heard, info

    def _result(self, window: _Window) -> tuple[list[Any], Any]:
        if window.heard is not None:
            return window.heard
        assert window.lent is not None
        while True:
            try:
                return window.lent.result(timeout=STOP_CHECK_S)
            except TimeoutError:
                if self._stopping.is_set():
                    raise Stopped() from None

    def _took(self, window: _Window, segments: Iterable[Any], info: Any) -> Iterator[Any]:
        """A window's segments in the recording's time, in order; the first speech window's
        info (and language, unless each window detects its own) kept."""
        start, end = window.offset / RATE, (window.offset + window.length) / RATE
        spoke = False
        for segment in segments:
            spoke = True
            yield _shifted(segment, start, end)
        self._first = self._first or info
        if spoke and self.info is None:
            self.info = info
            if not self._options.get("multilingual"):
                self._options["language"] = info.language  # detected once
        self._total = window.offset + window.length


def _shifted(segment: Any, start: float, end: float) -> Any:
    """A window's segment in the recording's time: shifted by the window's start, inside it."""

    def at(t: float) -> float:
        return min(max(start + t, start), end)

    words = [dataclasses.replace(w, start=at(w.start), end=at(w.end)) for w in segment.words or []]
    return dataclasses.replace(
        segment, start=at(segment.start), end=at(segment.end), words=words or segment.words
    )
