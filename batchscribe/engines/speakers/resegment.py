"""Each turn's edges moved to where the voice changes: a frame-level resegmentation.

The clustering (clustering.py) hears a voice in 1 s windows every 0.5 s, so a turn's first
and last words are judged from windows that also hold the other voice. Here the words'
speakers are refined on 10 ms frames (the encoder's own 40-band mel frames, as log energies
less their mean over the recording): each speaker gets one Gaussian (full covariance) of the
frames of its words, each frame the log-likelihood under each speaker's, averaged over
AVERAGED_FRAMES (200 ms), and a Viterbi pass finds the likeliest speaker per frame where
changing speaker costs SWITCH_PENALTY (free across a pause: a new speech region). Twice, the
Gaussians refitted on the new path; then each word takes the speaker of most of its frames.

Measured (BENCHMARKS.md, issue #27, the last section): quick-fm 4.0% of words wrong -> 0%,
the interview 0.7% -> 0%, every other recording the same; about a second per minute of
two-voice speech, 82 MB traced at most for an hour of it. Only the words' speakers change,
never their count: a speaker left with no word keeps the clustering's labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from batchscribe.engines.speakers.encoder import (
    HOP_SAMPLES,
    MEL_BANDS,
    SAMPLE_RATE,
    Floats,
    Samples,
    loudness_gain,
    mel_spectrogram,
)
from batchscribe.engines.speakers.recording import Recording, as_recording

#: Frames (10 ms each) a frame's log-likelihoods are averaged over: 200 ms. Measured: none
#: cost the interview 1.4% of its words, 100 ms 0.7%, 300-500 ms quick-same-room 16.2%.
AVERAGED_FRAMES = 20
#: What one change of speaker costs, in (averaged) log-likelihood per frame. Measured: 50
#: moved a quick-overlap word the wrong way, 100-200 the same figures.
SWITCH_PENALTY = 100.0
#: Rounds of fitting the speakers' Gaussians and finding the path: one left one word of
#: quick-fm wrong, a third changed nothing.
ROUNDS = 2
#: Added to each covariance's diagonal: far-field frames are nearly collinear.
COVARIANCE_FLOOR = 1e-2
#: Frames scored at once (their differences to a mean are this x 40 float32: 10 MB).
BLOCK_FRAMES = 65536

Labels = npt.NDArray[np.int64]


def frame_features(
    audio: Recording | Samples, regions: Sequence[tuple[int, int]]
) -> tuple[Floats, Labels, npt.NDArray[np.float64]]:
    """The speech regions' 10 ms frames: log mel energies less their mean over the
    recording (float32, (n, 40)), the region of each (n,) and its time in seconds (n,).
    Filled in place, a region at a time: an hour of speech holds 55 MB of frames, once."""
    recording = as_recording(audio)
    gain = np.float32(loudness_gain(recording.spans(regions)))
    sizes = [1 + (end - start) // HOP_SAMPLES for start, end in regions]  # mel_spectrogram's
    features = np.zeros((sum(sizes), MEL_BANDS), dtype=np.float32)
    owner = np.repeat(np.arange(len(regions), dtype=np.int64), sizes)
    times = np.zeros(len(features), dtype=np.float64)
    first = 0
    for (start, _), size, speech in zip(regions, sizes, recording.spans(regions), strict=True):
        frames = mel_spectrogram(speech * gain)[:size]
        features[first : first + len(frames)] = np.log(frames + 1e-6)
        times[first : first + size] = (
            start / SAMPLE_RATE + np.arange(size) * HOP_SAMPLES / SAMPLE_RATE
        )
        first += size
    if len(features):
        features -= features.mean(axis=0)
    return features, owner, times


def log_likelihoods(features: Floats, labels: Labels, speakers: int) -> Floats:
    """(n, speakers): each frame's log-likelihood (less a constant) under a Gaussian fitted
    to each speaker's frames (`labels`, -1 for none)."""
    result = np.zeros((len(features), speakers), dtype=np.float32)
    for s in range(speakers):
        mean, covariance = _moments(features, labels == s)
        covariance += COVARIANCE_FLOOR * np.eye(features.shape[1])
        inverse = np.linalg.inv(covariance).astype(np.float32)
        half_logdet = 0.5 * float(np.linalg.slogdet(covariance)[1])
        for first in range(0, len(features), BLOCK_FRAMES):
            diff = features[first : first + BLOCK_FRAMES] - mean.astype(np.float32)
            mahalanobis = ((diff @ inverse) * diff).sum(axis=1)
            result[first : first + len(diff), s] = -0.5 * mahalanobis - half_logdet
    return result


def _moments(
    features: Floats, chosen: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The mean and covariance of the `chosen` frames, summed a block at a time (no copy of
    them all). The products are float32 (float64 ones took 100x longer on a loaded 2-core
    machine), summed in float64; the features are centred on the recording's mean."""
    size = features.shape[1]
    total, products, count = np.zeros(size), np.zeros((size, size)), 0
    for first in range(0, len(features), BLOCK_FRAMES):
        block = features[first : first + BLOCK_FRAMES][chosen[first : first + BLOCK_FRAMES]]
        total += block.sum(axis=0, dtype=np.float64)
        products += (block.T @ block).astype(np.float64)
        count += len(block)
    mean = total / max(1, count)
    return mean, (products - count * np.outer(mean, mean)) / max(1, count - 1)


def averaged(scores: Floats, frames: int) -> Floats:
    """Each column's moving average over `frames` frames, centred (edges: the part inside)."""
    if frames <= 1 or len(scores) == 0:
        return scores
    kernel = np.ones(frames) / frames
    ones = np.convolve(np.ones(len(scores)), kernel, mode="same")
    columns = [np.convolve(scores[:, s], kernel, mode="same") / ones
               for s in range(scores.shape[1])]  # fmt: skip
    return np.stack(columns, axis=1).astype(np.float32)


def viterbi(scores: Floats, region: Labels, penalty: float) -> Labels:
    """The likeliest speaker per frame given per-frame `scores` (n, k), where a change of
    speaker between two frames of one region costs `penalty` (between regions, nothing)."""
    count, speakers = scores.shape
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    cost, free = penalty * (1 - np.eye(speakers)), np.zeros((speakers, speakers))
    back = np.zeros((count, speakers), dtype=np.int8 if speakers < 128 else np.int64)
    best = scores[0].astype(np.float64)
    columns = np.arange(speakers)
    for t in range(1, count):
        moves = best[:, None] - (cost if region[t] == region[t - 1] else free)
        came = np.argmax(moves, axis=0)
        back[t] = came
        best = moves[came, columns] + scores[t]
    path = np.zeros(count, dtype=np.int64)
    path[-1] = int(np.argmax(best))
    for t in range(count - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def resegment(
    audio: Recording | Samples,
    regions: Sequence[tuple[int, int]],
    times: Sequence[tuple[int, int]],
    speakers: Sequence[int],
) -> list[int]:
    """`speakers` (one per word, 0..k-1; `times` each word's (start ms, end ms)) refined on
    the frames of the speech `regions`: the same speakers, each turn's edges moved to where
    the voice changes. One speaker: unchanged. A path that leaves a speaker without words
    is not taken (with --speakers-expected the count is the user's)."""
    count = max(speakers, default=0) + 1
    if count < 2 or not regions:
        return list(speakers)
    features, region, clock = frame_features(audio, regions)
    starts = np.searchsorted(clock, [start / 1000 for start, _ in times], side="left")
    ends = np.searchsorted(clock, [end / 1000 for _, end in times], side="left")
    path = np.full(len(features), -1, dtype=np.int64)
    for first, last, speaker in zip(starts, ends, speakers, strict=True):
        path[first:last] = speaker
    for _ in range(ROUNDS):
        scores = averaged(log_likelihoods(features, path, count), AVERAGED_FRAMES)
        path = viterbi(scores, region, SWITCH_PENALTY)
    result = [
        int(np.bincount(path[first:last], minlength=count).argmax()) if last > first else old
        for first, last, old in zip(starts, ends, speakers, strict=True)
    ]
    return result if len(set(result)) == count else list(speakers)
