"""The local engine's `--speaker-labels`: its transcript's words given speakers, after
Whisper, from the same recording (see engines/speakers/clustering.py for how)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from batchscribe.engines.speakers.clustering import MAX_SPEAKERS, label_words, with_speakers
from batchscribe.engines.speakers.encoder import Floats, Samples, VoiceEncoder
from batchscribe.engines.speakers.recording import InMemory, Recording, Streamed
from batchscribe.engines.speakers.segmentation import Segmenter
from batchscribe.errors import Stopped
from batchscribe.settings.parts import LocalSettings

log = logging.getLogger(__name__)

#: The most a container's length may reserve before a sample is decoded: an hour (115 MB).
#: A header can say anything (a broken MP3 frame count: 77 million seconds, 2 TiB); longer
#: recordings grow as they are decoded.
MOST_RESERVED_S = 3600
#: Reserved over what the container says (an MP3's length is a guess from its bit rate: a
#: share and a second more), and when it says nothing; kept unless the samples fill under 90%.
MARGIN_SHARE, MARGIN_S, UNKNOWN_S, KEPT_FILLED = 0.01, 1.0, 60.0, 0.9


class SpeakerLabels:
    """Labels the speakers of finished local transcripts; the voice encoder (and the
    segmentation that finds the speakers it misses) loads once, on first use, and is shared
    by the decoding threads (onnxruntime sessions are thread-safe).

    Blocking: call `label` in the engine's decoding thread, after Whisper. When `stopping` is
    set (the run stops now), it raises Stopped before its next batch of windows or chunk of
    the segmentation: an hour of speech does not hold up the exit.
    """

    def __init__(
        self,
        *,
        expected: int | None,
        threads: int,
        stopping: threading.Event | None = None,
        bounds: tuple[int | None, int | None] = (None, None),
    ) -> None:
        self._expected, self._threads = expected, threads
        self._bounds = (bounds[0] or 1, bounds[1] or MAX_SPEAKERS)
        self._stopping = stopping or threading.Event()
        self._encoder: VoiceEncoder | None = None
        self._segmenter: Segmenter | None = None
        self._loading = threading.Lock()

    @classmethod
    def wanted(
        cls, settings: LocalSettings, *, threads: int, stopping: threading.Event | None = None
    ) -> SpeakerLabels | None:
        """The labeller `settings` ask for; None without `speaker_labels`."""
        if not settings.speaker_labels:
            return None
        return cls(expected=settings.speakers_expected, threads=threads, stopping=stopping,
                   bounds=(settings.min_speakers, settings.max_speakers))  # fmt: skip

    @staticmethod
    def features(audio: Floats) -> Floats:
        """The encoder's frames of `audio` (an `Encoder` for label_words)."""
        return VoiceEncoder.features(audio)

    def embed(self, partials: Floats) -> Floats:
        """The encoder's embeddings (an `Encoder` for label_words), unless the run stops."""
        if self._stopping.is_set():
            raise Stopped()
        return self._load().embed(partials)

    def missed_speakers(
        self,
        audio: Recording | Samples,
        times: Sequence[tuple[int, int]],
        per_word: Sequence[int],
        most: int,
    ) -> list[int]:
        """The speakers the voices missed, added (a `FindsMissed` for label_words)."""
        with self._loading:
            if self._segmenter is None:
                self._segmenter = Segmenter(threads=self._threads, stopping=self._stopping)
        return self._segmenter.missed_speakers(audio, times, per_word, most)

    def label(self, audio: str | Path | BinaryIO, data: dict[str, Any]) -> dict[str, Any]:
        """`data` (to_transcript_data's) with speakers. The audio is decoded again, at 16 kHz
        (a fraction of a percent of Whisper's time); with no words, not at all."""
        words = data.get("words") or []
        names: list[str] = []
        if words:
            recorded = recording(
                audio if not isinstance(audio, Path) else str(audio), self._stopping
            )
            times = [(int(w["start"]), int(w["end"])) for w in words]
            name = getattr(audio, "name", audio)

            def warn(line: str) -> None:
                log.warning("%s: %s", name, line)

            names = label_words(recorded, times, self, self._expected, self._bounds, warn, self)
        return with_speakers(data, names, self._expected)

    def _load(self) -> VoiceEncoder:
        with self._loading:
            if self._encoder is None:
                self._encoder = VoiceEncoder(threads=self._threads)
            return self._encoder


def recording(audio: str | BinaryIO, stopping: threading.Event | None = None) -> Recording:
    """What the labels read: a recording of up to a window of Whisper's (windows.py, 5
    minutes) held as 16-bit samples (`decoded`); a longer one, or one of unknown length,
    decoded again for each pass (recording.Streamed), as the transcriber streams it: an
    hour's labelling held 393 MB with its samples in memory (BENCHMARKS.md, issue #27)."""
    import math

    from batchscribe.engines.local.windows import WINDOW_S, probe

    said = probe(audio)
    if said is not None and math.isfinite(said) and said <= WINDOW_S:
        return InMemory(decoded(audio, said))
    return Streamed(audio, stopping)


def decoded(audio: str | BinaryIO, said: float | None = None) -> Samples:
    """The whole recording, 16 kHz mono, as 16-bit samples (faster-whisper's `decode_audio`'s,
    before it divides them by FULL_SCALE), filled into one array sized by the container's length:
    an hour is 115 MB. decode_audio peaked at 570 MB more for an hour (its buffer, its bytes
    and their float32 copy; BENCHMARKS.md, issue #27)."""
    import math

    import numpy as np

    from batchscribe.engines.local.windows import RATE, probe, stream_16bit

    if said is None:  # the container's length, unless the caller has it already
        said = probe(audio)  # a guess: grown when short, cut when long
    seconds = UNKNOWN_S
    if said is not None and math.isfinite(said) and said > 0:
        seconds = min(said * (1 + MARGIN_SHARE) + MARGIN_S, MOST_RESERVED_S)
    samples, filled = np.empty(int(seconds * RATE), dtype=np.int16), 0
    for block in stream_16bit(audio):
        if filled + len(block) > len(samples):
            grown = np.empty(max(2 * len(samples), filled + len(block)), dtype=np.int16)
            grown[:filled] = samples[:filled]
            samples = grown
        samples[filled : filled + len(block)] = block
        filled += len(block)
    if filled >= KEPT_FILLED * len(samples):
        return samples[:filled]
    return samples[:filled].copy()  # a guess far too long: the room given back
