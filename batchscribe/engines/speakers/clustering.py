"""Who spoke each word, offline: voice embeddings over the speech, clustered into speakers.

The local engine's `--speaker-labels`. Pure but for the encoder it is given: audio (16 kHz
mono float32) and the transcript's word timings in, a speaker per word out, and the transcript
in AssemblyAI's shape (`speaker` on each word, `utterances`). Any language works the same: only
the voice is looked at.

1. Speech is where the words are (Whisper's timings after Silero VAD), padded a little and
   joined into one track without the silences between.
2. The voice encoder embeds 1 s windows of that track every 0.5 s (`WINDOW_FRAMES`,
   `HOP_FRAMES`): short enough that a window of a quick exchange holds mostly one voice.
3. The embeddings are clustered (`cluster`: spectral clustering of their pruned cosine
   affinities, refined by k-means on the voices): into `speakers_expected` speakers when
   given, else as many as the Laplacian's widest eigengap says (`eigengap_count`, none under
   MIN_EIGENGAP: one voice), fewer while two speakers sound alike (`SAME_VOICE_SIMILARITY`),
   within --min-speakers/--max-speakers.
4. Each word takes the speaker nearest its voice there: the mean embedding of the windows over
   its midpoint (weighted by how central it is in them) against each speaker's mean.
5. `smooth`: a turn of one or two words (under `SHORT_TURN_MS`) between two turns of one
   speaker goes to that speaker: one word does not flip the speaker inside a turn.
6. `resegment` (resegment.py): each turn's edges moved to where the voice changes, by a
   Viterbi pass over 10 ms frames scored against a Gaussian per speaker.
7. Without a count given, the speakers the words' voices miss (people heard mostly in
   overlap, far from the microphone) added from pyannote's segmentation of the whole
   recording (segmentation.py, `Segmenter.missed_speakers`).
8. Speakers are named A, B, ... in order of first appearance.
"""

from __future__ import annotations

import importlib.util
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from batchscribe.engines.speakers.encoder import (
    HOP_SAMPLES,
    SAMPLE_RATE,
    Floats,
    Samples,
    loudness_gain,
)
from batchscribe.engines.speakers.recording import Recording, as_recording
from batchscribe.engines.speakers.resegment import resegment
from batchscribe.errors import ConfigError

INSTALL_HINT = (
    "--speaker-labels with the local engine needs the speakers extra: "
    "pip install 'batchscribe[speakers]' (or use AssemblyAI: set ASSEMBLYAI_API_KEY)."
)
#: What the extra brings that a run needs: onnxruntime runs the voice encoder, scipy clusters.
REQUIRED_MODULES = ("onnxruntime", "scipy")

#: One embedding describes 1 s of speech, one every 0.5 s: each moment is heard by two
#: windows. Measured (BENCHMARKS.md, issue #27): against 1.6 s every 0.8 s (the encoder's
#: training length), the same on the quick-turn calls and far better on a real meeting
#: (trn04: 5.7% of words wrong, not 22.9%), for about the same cost.
WINDOW_FRAMES = 100
HOP_FRAMES = 50
#: Windows embedded at once: measured, 16 is as fast as 64 and holds 26 MB against 84.
BATCH_WINDOWS = 16
#: Speech kept around each word (ms), and gaps under which two words' speech is one region.
WORD_PAD_MS = 100
JOIN_GAP_MS = 300
#: Two speakers whose mean voices (embeddings) are more alike than this (cosine similarity)
#: are one. Measured on the spectral partition (BENCHMARKS.md, issue #27): two people
#: 0.64-0.86 (0.86: two of one meeting room), one voice split in two 0.91-0.96.
SAME_VOICE_SIMILARITY = 0.88
#: Each window's affinities kept for the spectral clustering: its nearest 30% (the rest 0).
AFFINITY_KEPT = 0.3
KMEANS_ROUNDS = 20
#: The most windows clustered at once (their affinities are this squared, in float32: 9 MB);
#: over it (about 12 minutes of speech), a sample evenly spread.
MAX_CLUSTERED = 1500
#: A widest eigengap under this is no structure: one voice. Measured: two people 0.23-0.46,
#: one voice 0.23-0.47 at k=1 (so one), a real meeting's one long turn 0.09 at most.
MIN_EIGENGAP = 0.15
#: The most speakers a recording is cut into without `speakers_expected`.
MAX_SPEAKERS = 10
#: A cluster of fewer windows than this (under ~2 s of speech) is not a speaker of its own:
#: a cut into more speakers that makes one is not taken (a cough, a laugh, a window across
#: two voices).
MIN_SPEAKER_WINDOWS = 3
#: A speaker heard in fewer words than this, when the count came from the data, is not one:
#: its windows join the nearest speaker. Measured: the clean interview's third "speaker" was 4
#: words, each at a turn's edge or a one-word reply (windows across both voices).
MIN_SPEAKER_WORDS = 5
#: A run of at most this many words, shorter than SHORT_TURN_MS, between two runs of one
#: speaker is that speaker's.
SHORT_TURN_WORDS = 2
SHORT_TURN_MS = 1000

Labels = npt.NDArray[np.int64]
#: The fewest and the most speakers the estimate may find (--min-speakers, --max-speakers).
Bounds = tuple[int, int]


class Encoder(Protocol):
    """A voice encoder: its frames (10 ms apart) of some audio, and one embedding per slice
    of those frames."""

    def features(self, audio: Floats) -> Floats: ...

    def embed(self, partials: Floats) -> Floats: ...


class FindsMissed(Protocol):
    """Adds to a speaker per word (0, 1, ...) the speakers it missed in the audio, up to
    `most` in all (segmentation.Segmenter)."""

    def missed_speakers(
        self,
        audio: Recording,
        times: Sequence[tuple[int, int]],
        per_word: Sequence[int],
        most: int,
    ) -> list[int]: ...


def check_installed() -> None:
    """Raise ConfigError with the install line when the `speakers` extra is missing."""
    if any(importlib.util.find_spec(name) is None for name in REQUIRED_MODULES):
        raise ConfigError(INSTALL_HINT)


def speech_regions(words: Sequence[tuple[int, int]], length: int) -> tuple[tuple[int, int], ...]:
    """The words' (start ms, end ms) as sample regions of a recording of `length` samples,
    each padded by WORD_PAD_MS, those closer than JOIN_GAP_MS joined, in order."""
    per_ms = SAMPLE_RATE // 1000
    regions: list[list[int]] = []
    for start, end in sorted(words):
        lo = max(0, (start - WORD_PAD_MS) * per_ms)
        hi = min(length, (end + WORD_PAD_MS) * per_ms)
        if hi <= lo:
            continue
        if regions and lo - regions[-1][1] < JOIN_GAP_MS * per_ms:
            regions[-1][1] = max(regions[-1][1], hi)
        else:
            regions.append([lo, hi])
    return tuple((lo, hi) for lo, hi in regions)


@dataclass(frozen=True, slots=True)
class Windows:
    """Voice embeddings of windows of speech: `embeddings` (n, 256); `region`, the speech
    region each lies in (n,); `spans`, each one's start and end in the recording, seconds
    (n, 2). A window never spans a pause: a turn that follows a pause is heard alone."""

    embeddings: Floats
    region: npt.NDArray[np.int64]
    spans: npt.NDArray[np.float64]
    #: whether the window is a full WINDOW_FRAMES of speech (not a short region repeated)
    full: npt.NDArray[np.bool_]


def window_embeddings(
    audio: Recording | Samples, regions: tuple[tuple[int, int], ...], encoder: Encoder
) -> Windows:
    """Embeddings of WINDOW_FRAMES windows every HOP_FRAMES inside each region (the last one
    ending with the region); a region shorter than a window is repeated to fill one. The
    speech is raised to Resemblyzer's loudness, all regions by one gain. Two passes over the
    regions; a batch of windows embedded as soon as it is full (an hour's spectrogram is not
    held: 58 MB)."""
    recording = as_recording(audio)
    gain = loudness_gain(recording.spans(regions))
    partials: list[Floats] = []
    batches: list[Floats] = []
    owner, spans, full = [], [], []

    def embed_full_batch() -> None:
        if len(partials) == BATCH_WINDOWS:
            batches.append(encoder.embed(np.stack(partials)))
            partials.clear()

    for index, ((start, end), speech) in enumerate(zip(regions, recording.spans(regions),
                                                       strict=True)):  # fmt: skip
        frames = encoder.features(speech * np.float32(gain))
        if len(frames) == 0:
            continue
        if len(frames) < WINDOW_FRAMES:
            partials.append(np.resize(frames, (WINDOW_FRAMES, frames.shape[1])))
            full.append(False)
            owner.append(index)
            spans.append((start / SAMPLE_RATE, end / SAMPLE_RATE))
            embed_full_batch()
            continue
        offsets = list(range(0, len(frames) - WINDOW_FRAMES + 1, HOP_FRAMES))
        if offsets[-1] + WINDOW_FRAMES < len(frames):
            offsets.append(len(frames) - WINDOW_FRAMES)
        for offset in offsets:
            partials.append(frames[offset : offset + WINDOW_FRAMES])
            full.append(True)
            owner.append(index)
            begin = start / SAMPLE_RATE + offset * HOP_SAMPLES / SAMPLE_RATE
            spans.append((begin, begin + WINDOW_FRAMES * HOP_SAMPLES / SAMPLE_RATE))
            embed_full_batch()
    if partials:  # the windows are views of their region's spectrogram: stacked a batch
        batches.append(encoder.embed(np.stack(partials)))  # at a time
    embeddings = np.concatenate(batches) if batches else np.zeros((0, 1), np.float32)
    return Windows(
        embeddings=embeddings.astype(np.float32),
        region=np.array(owner, dtype=np.int64),
        spans=np.array(spans, dtype=np.float64).reshape(-1, 2),
        full=np.array(full, dtype=bool),
    )


def cluster(
    embeddings: Floats, expected: int | None = None, bounds: Bounds = (1, MAX_SPEAKERS)
) -> Labels:
    """A speaker number (0, 1, ...) per embedding: spectral clustering (`partition`).

    With `expected`, into that many speakers (fewer when there are fewer windows). Else the
    count is the most speakers, within `bounds` (--min-speakers, --max-speakers), that the
    embeddings can be cut into such that every speaker has MIN_SPEAKER_WINDOWS windows and no
    two speakers' mean voices are more alike than SAME_VOICE_SIMILARITY; one voice gives one.
    """
    count = len(embeddings)
    if count < 2 or expected == 1 or (not expected and bounds[1] == 1):
        return np.zeros(count, dtype=np.int64)
    if count <= MAX_CLUSTERED:
        return _cluster(embeddings, expected, bounds)
    # a long recording: every step-th window clustered, then every window given the nearest
    # speaker's mean voice (the affinities are count² numbers)
    step = -(-count // MAX_CLUSTERED)
    chosen = embeddings[::step]
    labels = _cluster(chosen, expected, bounds)
    centroids = _normed(np.stack([chosen[labels == s].mean(axis=0)
                                  for s in range(int(labels.max()) + 1)]))  # fmt: skip
    return _renumber(np.argmax(_normed(embeddings) @ centroids.T, axis=1).astype(np.int64))


def _cluster(embeddings: Floats, expected: int | None, bounds: Bounds) -> Labels:
    low, high = bounds
    count = len(embeddings)
    if expected:
        return partition(embeddings, min(expected, count))
    best = partition(embeddings, min(low, count)) if low > 1 else np.zeros(count, np.int64)
    looked_at = min(count // MIN_SPEAKER_WINDOWS, max(high, MAX_SPEAKERS))
    most = min(high, eigengap_count(embeddings, looked_at))
    for k in range(max(2, low + 1), most + 1):
        labels = partition(embeddings, k)
        sizes = np.bincount(labels, minlength=k)
        if sizes.min() < MIN_SPEAKER_WINDOWS or _most_alike(embeddings, labels) >= (
            SAME_VOICE_SIMILARITY
        ):
            break  # more speakers only split one voice further
        best = labels
    return best


def eigengap_count(embeddings: Floats, most: int) -> int:
    """The number of speakers the affinities' spectrum suggests: where the gap between two
    successive eigenvalues of the Laplacian is widest (k speakers: k near-zero ones)."""
    from scipy.linalg import eigh

    laplacian = _laplacian(embeddings)
    values = eigh(laplacian, eigvals_only=True, subset_by_index=[0, min(most, len(laplacian) - 1)])
    if len(values) < 2 or np.diff(values).max() < MIN_EIGENGAP:
        return 1
    return int(np.argmax(np.diff(values))) + 1


def _laplacian(embeddings: Floats) -> Floats:
    """The normalised Laplacian of the cosine affinities, each row pruned to its nearest
    AFFINITY_KEPT share (so a window across two voices links to neither), symmetrised."""
    vectors = _normed(embeddings)
    count = len(vectors)
    affinity = np.clip(vectors @ vectors.T, 0, None)
    kept = max(2, int(AFFINITY_KEPT * count))
    pruned = affinity.copy()
    np.put_along_axis(pruned, np.argsort(-affinity, axis=1)[:, kept:], 0.0, axis=1)
    pruned = (pruned + pruned.T) / 2
    degree = np.sqrt(np.maximum(pruned.sum(axis=1), 1e-9))
    laplacian: Floats = np.eye(count, dtype=np.float32) - pruned / np.outer(degree, degree)
    return laplacian.astype(np.float32)


def partition(embeddings: Floats, k: int) -> Labels:
    """`embeddings` cut into `k` speakers (0, 1, ... in order of first appearance): spectral
    clustering of their cosine affinities (`_laplacian`), k-means on the Laplacian's
    first k eigenvectors from the farthest points, then refined on the voices themselves."""
    vectors = _normed(embeddings).astype(np.float64)
    from scipy.linalg import eigh

    laplacian = _laplacian(embeddings)
    points = _normed(eigh(laplacian, subset_by_index=[0, min(k, len(laplacian)) - 1])[1])
    seeds = [int(np.argmax(np.linalg.norm(points - points.mean(axis=0), axis=1)))]
    while len(seeds) < k:
        seeds.append(int(np.argmax(np.min([np.linalg.norm(points - points[j], axis=1)
                                           for j in seeds], axis=0))))  # fmt: skip
    labels = _nearest(points, points[seeds])
    labels = _kmeans(points, labels, k)
    return _renumber(_kmeans(vectors, labels, k, cosine=True))


def _nearest(points: npt.NDArray[Any], centres: npt.NDArray[Any]) -> Labels:
    distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
    labels: Labels = np.argmin(distances, axis=1).astype(np.int64)
    return labels


def _kmeans(points: npt.NDArray[Any], labels: Labels, k: int, *, cosine: bool = False) -> Labels:
    """Lloyd's iterations from `labels`; an emptied cluster keeps its last centre."""
    centres = np.zeros((k, points.shape[1]), dtype=np.float32)
    for _ in range(KMEANS_ROUNDS):
        for s in range(k):
            if (labels == s).any():
                centres[s] = points[labels == s].mean(axis=0)
        new = (
            np.argmax(points @ _normed(centres).T, axis=1) if cosine else _nearest(points, centres)
        )
        if np.array_equal(new, labels):
            break
        labels = new.astype(np.int64)
    return labels


def window_speakers(
    windows: Windows, expected: int | None, bounds: Bounds = (1, MAX_SPEAKERS)
) -> Labels:
    """A speaker per window: the full windows clustered (`cluster`), and each window of a
    short region (a word or two alone: too little voice to found a speaker on) given the
    nearest of their speakers. With fewer than two full windows, all are clustered."""
    full = windows.full if int(windows.full.sum()) >= 2 else np.ones_like(windows.full)
    labels = np.zeros(len(full), dtype=np.int64)
    labels[full] = cluster(windows.embeddings[full], expected, bounds)
    speakers = int(labels[full].max()) + 1
    if speakers > 1 and not full.all():
        chosen = windows.embeddings[full]
        centroids = _normed(np.stack([chosen[labels[full] == s].mean(axis=0)
                                      for s in range(speakers)]))  # fmt: skip
        labels[~full] = np.argmax(windows.embeddings[~full] @ centroids.T, axis=1)
    return labels


def _most_alike(embeddings: Floats, labels: Labels) -> float:
    """The highest cosine similarity between two clusters' mean embeddings."""
    centroids = _normed(np.stack([embeddings[labels == label].mean(axis=0)
                                  for label in np.unique(labels)]))  # fmt: skip
    similarity = centroids @ centroids.T
    np.fill_diagonal(similarity, -1.0)
    return float(similarity.max())


def _renumber(labels: Labels) -> Labels:
    """0, 1, ... in order of first appearance."""
    order = {int(label): i for i, label in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[int(label)] for label in labels], dtype=np.int64)


def _normed(vectors: Floats) -> Floats:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1)).astype(np.float32)


def word_scores(
    midpoints: npt.NDArray[np.float64],
    regions: npt.NDArray[np.int64],
    windows: Windows,
    labels: Labels,
) -> npt.NDArray[np.float64]:
    """A speaker per word, from its midpoint (seconds) and its speech region: the mean
    embedding of its region's windows, each weighted by how near its centre the word is (the
    nearest when none is over it), against each speaker's mean embedding."""
    speakers = int(labels.max()) + 1 if len(labels) else 0
    if speakers <= 1:
        return np.ones((len(midpoints), 1), dtype=np.float64)
    embeddings = windows.embeddings
    centroids = _normed(np.stack([embeddings[labels == s].mean(axis=0) for s in range(speakers)]))
    centres = windows.spans.mean(axis=1)
    half = np.maximum((windows.spans[:, 1] - windows.spans[:, 0]) / 2, 1e-3)
    result = np.zeros((len(midpoints), speakers), dtype=np.float64)
    for i, (mid, region) in enumerate(zip(midpoints, regions, strict=True)):
        own = windows.region == region
        if not own.any():
            own = np.ones(len(centres), dtype=bool)
        weights = np.where(own, np.clip(1 - np.abs(centres - mid) / half, 0, None), 0.0)
        if not weights.any():
            weights[int(np.argmin(np.where(own, np.abs(centres - mid), np.inf)))] = 1.0
        voice = _normed((weights[:, None] * embeddings).sum(axis=0))
        result[i] = centroids @ voice
    return result


def smooth(
    speakers: Sequence[int], times: Sequence[tuple[int, int]], regions: Sequence[int]
) -> list[int]:
    """Short runs (at most SHORT_TURN_WORDS words and under SHORT_TURN_MS) between two runs of
    one speaker in the same speech region become that speaker's: one word does not flip the
    speaker inside a turn, but a word said alone between two pauses ("Really?") keeps its own.
    `times` are each word's (start, end) in ms, `regions` its speech region."""
    result = list(speakers)
    runs = _runs(result)
    for k in range(1, len(runs) - 1):
        first, last = runs[k]
        before, after = runs[k - 1][1], runs[k + 1][0]
        inside = regions[before] == regions[first] and regions[last] == regions[after]
        short = last - first + 1 <= SHORT_TURN_WORDS and (
            times[last][1] - times[first][0] < SHORT_TURN_MS
        )
        if inside and short and result[before] == result[after]:
            result[first : last + 1] = [result[before]] * (last - first + 1)
    return result


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """(first, last) index of each run of equal values."""
    runs: list[tuple[int, int]] = []
    for i, value in enumerate(values):
        if runs and values[runs[-1][0]] == value:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def speaker_name(number: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA": AssemblyAI's letters."""
    letters = string.ascii_uppercase
    return letters[number] if number < 26 else speaker_name(number // 26 - 1) + letters[number % 26]


def label_words(
    audio: Recording | Samples,
    times: Sequence[tuple[int, int]],
    encoder: Encoder,
    expected: int | None,
    bounds: Bounds = (1, MAX_SPEAKERS),
    warn: Callable[[str], None] | None = None,
    missed: FindsMissed | None = None,
) -> list[str]:
    """A speaker name per word (A, B, ... in order of first appearance), from the audio
    (16 kHz mono) and the words' (start ms, end ms). `warn` is told when `expected` is more
    speakers than the speech has segments to give them. `missed`, when the count is the
    data's, adds the speakers the words' voices missed."""
    if not times:
        return []
    audio = as_recording(audio)
    regions = speech_regions(times, len(audio))
    windows = window_embeddings(audio, regions, encoder) if regions else None
    if windows is None or len(windows.embeddings) == 0:
        return ["A"] * len(times)
    segments = len(windows.embeddings)
    if expected and expected > segments and warn:
        warn(f"--speakers-expected {expected} is more than the {segments} speech segments "
             f"heard: {segments} speakers at most")  # fmt: skip
    labels = window_speakers(windows, expected, bounds)
    midpoints = np.array([(start + end) / 2000 for start, end in times], dtype=np.float64)
    starts = np.array([start for start, _ in regions], dtype=np.float64) / SAMPLE_RATE
    in_region = np.clip(np.searchsorted(starts, midpoints, side="right") - 1, 0, None)
    while True:
        scores = word_scores(midpoints, in_region, windows, labels)
        per_word = np.argmax(scores, axis=1).tolist()
        smoothed = np.array(smooth(per_word, times, in_region.tolist()), dtype=np.int64)
        at_least = expected or bounds[0]  # a count given is kept
        few = None if labels.max() + 1 <= at_least else _heard_in_few_words(smoothed, labels)
        if few is None:
            break
        labels = _merged_into_nearest(windows.embeddings, labels, few)
    # each turn's edges moved to where the voice changes, on 10 ms frames (resegment.py)
    refined = resegment(audio, regions, times, smoothed.tolist())
    if missed is not None and not expected and max(refined) + 1 < bounds[1]:
        refined = missed.missed_speakers(audio, times, refined, bounds[1])
    return [speaker_name(n) for n in _renumber(np.array(refined, dtype=np.int64)).tolist()]


def _heard_in_few_words(per_word: Labels, labels: Labels) -> int | None:
    """The speaker (of several) given the fewest words, if under MIN_SPEAKER_WORDS."""
    speakers = int(labels.max()) + 1 if len(labels) else 0
    if speakers < 2:
        return None
    words = np.bincount(per_word, minlength=speakers)
    fewest = int(np.argmin(words))
    return fewest if words[fewest] < MIN_SPEAKER_WORDS else None


def _merged_into_nearest(embeddings: Floats, labels: Labels, gone: int) -> Labels:
    """`gone`'s windows given to the speaker whose mean voice is nearest each, then renumbered
    0, 1, ... (so `labels.max() + 1` stays the count)."""
    kept = [s for s in range(int(labels.max()) + 1) if s != gone]
    centroids = _normed(np.stack([embeddings[labels == s].mean(axis=0) for s in kept]))
    result = labels.copy()
    mine = labels == gone
    result[mine] = np.array(kept)[np.argmax(embeddings[mine] @ centroids.T, axis=1)]
    return _renumber(result)


def utterances(words: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """AssemblyAI's `utterances`: one per run of words of one speaker, with its speaker,
    start, end (ms), text, mean confidence and words."""
    turns: list[dict[str, Any]] = []
    for word in words:
        if turns and turns[-1]["speaker"] == word["speaker"]:
            turns[-1]["words"].append(word)
        else:
            turns.append({"speaker": word["speaker"], "words": [word]})
    result = []
    for turn in turns:
        said = turn["words"]
        scores = [w["confidence"] for w in said if isinstance(w.get("confidence"), int | float)]
        result.append(
            {
                "speaker": turn["speaker"],
                "start": said[0]["start"],
                "end": said[-1]["end"],
                "text": " ".join(w["text"] for w in said),
                "confidence": round(sum(scores) / len(scores), 4) if scores else None,
                "words": said,
            }
        )
    return result


def with_speakers(
    data: dict[str, Any], names: Sequence[str], expected: int | None = None
) -> dict[str, Any]:
    """The local transcript `data` with `names[i]` as the speaker of its i-th word, and its
    `utterances`, as AssemblyAI writes them with `speaker_labels` (and `speakers_expected`)."""
    words = [{**w, "speaker": name} for w, name in zip(data.get("words") or [], names, strict=True)]
    labelled = {**data, "words": words, "utterances": utterances(words), "speaker_labels": True}
    if expected:
        labelled["speakers_expected"] = expected
    return labelled
