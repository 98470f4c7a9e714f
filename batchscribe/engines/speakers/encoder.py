"""Who a voice is: Resemblyzer's GE2E voice encoder, run with onnxruntime on numpy features.

The model is Resemblyzer's pretrained encoder (`pretrained.pt`, Apache-2.0, see
`data/VOICE_ENCODER_NOTICE`), exported once to `data/voice_encoder.onnx` by
`bench/export_voice_encoder.py`: a run needs neither torch nor Resemblyzer. Its input is
Resemblyzer's features, reproduced here in numpy: a 40-band mel power spectrogram (not log) of
16 kHz audio, 25 ms windows every 10 ms, as librosa computes it; its output is one L2-normed
256-value embedding per 160 frames (1.6 s). tests/test_speakers.py checks both against
embeddings Resemblyzer's own code gave.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from batchscribe.engines.local.windows import FULL_SCALE
from batchscribe.engines.speakers.onnx import data_path, onnx_session

Floats = npt.NDArray[np.float32]
#: A recording as the labeller holds it: 16-bit samples (half of float32's memory: an hour is
#: 115 MB), or float32 in [-1, 1) (a test's, a window's); `as_floats` reads either.
Samples = npt.NDArray[np.float32] | npt.NDArray[np.int16]

SAMPLE_RATE = 16000
#: Resemblyzer's hyperparameters (`resemblyzer/hparams.py`): what the model was trained on.
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms: one frame
MEL_BANDS = 40
PARTIAL_FRAMES = 160  # 1.6 s: the length of audio one embedding describes
#: Resemblyzer raises quiet audio to this loudness before embedding it (never lowers it).
TARGET_DBFS = -30.0
EMBEDDING_SIZE = 256
MODEL_FILE = "voice_encoder.onnx"
#: Frames of the spectrum computed at once: about 3 MB of float64 spectrum.
MEL_BLOCK_FRAMES = 2048


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mel[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    hz = mel * (200.0 / 3)
    log_part = mel >= 15.0
    hz[log_part] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_part] - 15.0))
    return hz


@lru_cache(maxsize=1)
def mel_filterbank() -> Floats:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): Slaney-normalised triangles,
    shape (40, 201)."""
    bins = np.linspace(0, SAMPLE_RATE / 2, 1 + WINDOW_SAMPLES // 2)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0],
                    MEL_BANDS + 2)
    )  # fmt: skip
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_spectrogram(wav: Floats) -> Floats:
    """Frames x 40 mel power spectrogram, as `resemblyzer.audio.wav_to_mel_spectrogram`:
    librosa's centred STFT (zero padding), periodic Hann window, power 2. Computed
    MEL_BLOCK_FRAMES at a time: an hour of speech never holds its whole spectrum in memory."""
    padded = np.pad(wav.astype(np.float32), WINDOW_SAMPLES // 2)
    count = 1 + (len(padded) - WINDOW_SAMPLES) // HOP_SAMPLES
    if count <= 0:
        return np.zeros((0, MEL_BANDS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)[::HOP_SAMPLES]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SAMPLES) / WINDOW_SAMPLES)).astype(
        np.float32
    )
    mel = np.empty((count, MEL_BANDS), dtype=np.float32)
    for first in range(0, count, MEL_BLOCK_FRAMES):
        block = frames[first : min(first + MEL_BLOCK_FRAMES, count)] * window
        power = np.abs(np.fft.rfft(block, axis=1)) ** 2
        mel[first : first + len(block)] = power.astype(np.float32) @ mel_filterbank().T
    return mel


def as_floats(samples: Samples) -> Floats:
    """float32 in [-1, 1): 16-bit samples over FULL_SCALE, as faster-whisper's `decode_audio`
    scales them (so the same numbers); float32 as it is, not copied."""
    if samples.dtype == np.int16:
        floats: Floats = samples.astype(np.float32) / np.float32(FULL_SCALE)
        return floats
    return samples.astype(np.float32, copy=False)


def loudness_gain(parts: Iterable[Samples]) -> float:
    """The gain that raises quiet audio (all `parts` together) to TARGET_DBFS, as Resemblyzer
    does before embedding; 1 for audio at or above it (never lowered), or silent. One part
    at a time: each 16-bit part is made float32 only while it is summed."""
    samples, energy = 0, 0.0
    for part in parts:
        samples += len(part)
        energy += float(np.sum(np.square(as_floats(part), dtype=np.float64)))
    if samples == 0 or energy <= 0:
        return 1.0
    change = TARGET_DBFS - 10 * np.log10(energy / samples)
    return float(10 ** (change / 20)) if change > 0 else 1.0


def normalize_volume(wav: Floats) -> Floats:
    """`resemblyzer.audio.normalize_volume(wav, -30, increase_only=True)`."""
    return (wav * loudness_gain([wav])).astype(np.float32)


class VoiceEncoder:
    """The ONNX voice encoder in one onnxruntime session, on `threads` cores.

    Blocking: call `embed` in a worker thread. onnxruntime's sessions may be used from several
    threads at once.
    """

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        self._session: Any = onnx_session(path or data_path(MODEL_FILE), threads)

    @staticmethod
    def features(audio: Floats) -> Floats:
        """The frames `embed` takes, 10 ms apart: (frames, 40) mel power spectrogram."""
        return mel_spectrogram(audio)

    def embed(self, partials: Floats, *, batch: int = 16) -> Floats:
        """One embedding per (160, 40) mel slice of `partials` (n, 160, 40): shape (n, 256)."""
        if len(partials) == 0:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        out = [
            self._session.run(None, {"mels": np.ascontiguousarray(partials[i : i + batch])})[0]
            for i in range(0, len(partials), batch)
        ]
        return np.concatenate(out).astype(np.float32)
