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
from collections.abc import Generator, Iterable, Iterator
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Window:
    """A window as a decoder takes it: its place in the recording's order, and its samples."""

    index: int
    offset: int
    samples: np.ndarray


#: A window heard apart: its segments and info, or what its decoding raised.
_Heard = tuple[int, int, list[Any], Any] | BaseException


class Windowed:
    """`model.transcribe` over the windows of one recording: iterate `segments()` (lazily, as
    faster-whisper's own), then `info` is the first speech window's, with the whole duration.

    With `decoders` (decoders.py), the decoders no file holds take the next windows too, each
    window after window until none is left or a file wants its decoder back; this thread hears
    the window due next segment by segment (the caller sees each), any other it takes whole,
    and the segments come in the recording's order. Windows are lent only once none waits for
    the language (a given language, or each window's own: `multilingual`). `stopping`: the run
    stops now, and every window ends at its next segment."""

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
        self._source: Iterator[tuple[int, np.ndarray]] = iter(())
        self._taken = 0  # windows taken so far, by any decoder
        self._exhausted = False
        self._heard: dict[int, _Heard] = {}  # by index, until their turn
        self._changed = threading.Condition()  # guards the four above
        self.info: Any = None
        self._first: Any = None
        self._total = 0

    def segments(self) -> Generator[Any, None, None]:
        self._source = windows(stream(self._audio), self._seconds)
        due = 0  # the next window to give out
        try:
            while True:
                if self._stopping.is_set():  # no window more, here or lent
                    raise Stopped()
                self._lend()
                with self._changed:
                    heard = self._heard.pop(due, None)
                if heard is not None:
                    yield from self._took(*self._unpacked(heard))
                    due += 1
                    continue
                window = self._take()
                if window is None:
                    if not self._wait_for(due):
                        break
                elif window.index == due:  # heard here, lazily: the caller sees each segment
                    segments, info = self._model.transcribe(window.samples, **self._options)
                    yield from self._took(window.offset, len(window.samples), segments, info)
                    due += 1
                else:
                    heard = self._whole(window, self._options)
                    with self._changed:
                        self._heard[window.index] = heard
        finally:
            self._abandoned.set()
        chosen = self.info if self.info is not None else self._first
        self.info = dataclasses.replace(chosen, duration=self._total / RATE) if chosen else None

    def _take(self) -> _Window | None:
        """The next window of the recording, read from the stream, for whichever decoder asks."""
        with self._changed:
            if self._exhausted:
                return None
            try:
                window = next(self._source, None)
            except Exception as err:  # the stream's own (a damaged file): raised in its turn
                self._heard[self._taken] = err
                self._taken += 1
                window = None
            if window is None:
                self._exhausted = True
                self._changed.notify_all()
                return None
            self._taken += 1
            return _Window(self._taken - 1, window[0], window[1])

    def _wait_for(self, due: int) -> bool:
        """Wait until window `due`, taken by a borrowed decoder, is heard (False: every window
        was given out). Raises Stopped when the run stops now."""
        with self._changed:
            while due not in self._heard:
                if due >= self._taken and self._exhausted:
                    return False
                if self._stopping.is_set():
                    raise Stopped()
                self._changed.wait(STOP_CHECK_S)
            return True

    def _lend(self) -> None:
        """Every idle decoder takes windows too, once none waits for the language."""
        independent = self._options.get("multilingual") or self._options.get("language")
        if self._decoders is None or not independent or self._exhausted:
            return
        options = dict(self._options)
        while self._decoders.borrow(functools.partial(self._help, options)) is not None:
            pass

    def _help(self, options: dict[str, Any]) -> None:
        """A borrowed decoder's work: window after window, until none is left, the recording
        is given up, or a file waits for a decoder."""
        assert self._decoders is not None
        while not self._ended() and not self._decoders.wanted():
            window = self._take()
            if window is None:
                return
            heard = self._whole(window, options)
            with self._changed:
                self._heard[window.index] = heard
                self._changed.notify_all()

    def _whole(self, window: _Window, options: dict[str, Any]) -> _Heard:
        """One window heard to its end, or what that raised; ends at the next segment when the
        run stops now or this recording is given up."""
        try:
            if self._ended():
                raise Stopped()
            segments, info = self._model.transcribe(window.samples, **options)
            heard = []
            for segment in segments:
                if self._ended():
                    raise Stopped()
                heard.append(segment)
        except BaseException as err:  # raised where the segments are given out, in order
            return err
        return window.offset, len(window.samples), heard, info

    def _ended(self) -> bool:
        """The run stops now, or this recording was given up."""
        return self._stopping.is_set() or self._abandoned.is_set()

    @staticmethod
    def _unpacked(heard: _Heard) -> tuple[int, int, list[Any], Any]:
        if isinstance(heard, BaseException):
            raise heard
        return heard

    def _took(self, offset: int, length: int, segments: Iterable[Any], info: Any) -> Iterator[Any]:
        """A window's segments in the recording's time, in order; the first speech window's
        info (and language, unless each window detects its own) kept."""
        start, end = offset / RATE, (offset + length) / RATE
        spoke = False
        for segment in segments:
            spoke = True
            yield _shifted(segment, start, end)
        self._first = self._first or info
        if spoke and self.info is None:
            self.info = info
            if not self._options.get("multilingual"):
                self._options["language"] = info.language  # detected once
        self._total = offset + length


def _shifted(segment: Any, start: float, end: float) -> Any:
    """A window's segment in the recording's time: shifted by the window's start, inside it."""

    def at(t: float) -> float:
        return min(max(start + t, start), end)

    words = [dataclasses.replace(w, start=at(w.start), end=at(w.end)) for w in segment.words or []]
    return dataclasses.replace(
        segment, start=at(segment.start), end=at(segment.end), words=words or segment.words
    )
