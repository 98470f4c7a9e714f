"""The speakers Whisper's words miss: pyannote's segmentation over 10 s chunks, CAM++ per
local speaker, clustered with a cannot-link inside each chunk.

Far-field meetings are heard mostly in overlap, and Whisper's words cover little of them: the
windows of clustering.py, embedded over the words, show one or two of a meeting's 3-4 people
(BENCHMARKS.md, issue #27). Here the whole recording is looked at, words or not:

1. The recording is cut into 10 s chunks every `STEP_SAMPLES` (`chunk_starts`); pyannote's
   segmentation-3.0 (`data/segmentation.onnx`: a powerset of 3 local speakers, 2 at once, per
   17 ms frame) says who is heard in each frame of each chunk (`Segmenter.heard`).
2. Each local speaker heard alone for `MIN_ALONE_S` (2 s) or more is embedded by CAM++ over all its
   frames alone (only the first 4 or 6 s of them, measured, split the 3-minute podcast in
   two); one heard more briefly founds nothing (a cough, a word at a turn's edge, the next
   voice heard through the last: measured, they over-count the two-person interview).
3. `global_speakers`: average linkage on their cosine similarity, cut at
   `SAME_SPEAKER_SIMILARITY`; then each chunk's local speakers take distinct speakers (the
   nearest by the Hungarian assignment: two voices of one chunk are two people).
4. `word_activity`: how long each global speaker is heard over each word.
5. `with_missed_speakers`: the word labels of clustering.py are kept; a global speaker that
   none of their speakers is (matched one-to-one by the words they share) takes the words
   where it is the most heard. Only a speaker the voices missed is added: the segmentation
   never merges or splits the words' speakers (it loses there: BENCHMARKS.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from batchscribe.engines.speakers.campplus import EMBEDDING_SIZE, SpeakerEncoder
from batchscribe.engines.speakers.encoder import Samples
from batchscribe.engines.speakers.fbank import Floats, fbank
from batchscribe.engines.speakers.onnx import data_path, onnx_session
from batchscribe.engines.speakers.recording import Recording, as_recording
from batchscribe.errors import Stopped

MODEL_FILE = "segmentation.onnx"
#: 10 s: the length the segmentation model was trained on.
CHUNK_SAMPLES = 160_000
#: Chunks every 10 s. Measured against every 5 s: the same speakers and labels on every
#: recording of bench/speakers.py, at half the cost.
STEP_SAMPLES = 160_000
#: The model's frames: 991 samples long, every 270 (the receptive field of its SincNet).
FRAME_STEP, FRAME_LENGTH = 270, 991
FRAME_S = FRAME_STEP / 16_000
#: The powerset classes as local speakers: none, each alone, each pair.
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]],
                    dtype=np.int8)  # fmt: skip
#: A local speaker founds a speaker only when heard this long alone in its chunk: 20% of it,
#: pyannote's own `min_active_ratio`. Measured (0.3-2 s, BENCHMARKS.md): at 0.3 s the clean
#: interview is 3 people; at 0.5 s, the podcast 2 from a similarity of 0.55; from 0.75 s the
#: counts are alike, and at 2 s they stay so for any SAME_SPEAKER_SIMILARITY from 0.45 to 0.7
#: (at 1 s, 0.45-0.5 only).
MIN_ALONE_S = 2.0
#: Two local speakers more alike (CAM++ cosine, average linkage) are one person: the middle
#: of 0.45-0.7, where every count is the same (0.4 merges two-men, 0.75 splits a meeting).
SAME_SPEAKER_SIMILARITY = 0.55
#: The most local speakers linked at once (their distances: 9 MB); over it, a sample.
MAX_LINKED = 1500

Labels = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Heard:
    """Who the segmentation hears: `starts`, each chunk's first sample; `frames`, per chunk
    (frames, 3) who of its 3 local speakers is heard in each frame (0/1); `speakers`, the
    (chunk, local speaker) of each embedded local speaker; `embeddings`, theirs (n, 192)."""

    starts: tuple[int, ...]
    frames: tuple[npt.NDArray[np.int8], ...]
    speakers: tuple[tuple[int, int], ...]
    embeddings: Floats


def chunk_starts(length: int) -> list[int]:
    """The first sample of each chunk of a recording of `length` samples: every STEP_SAMPLES,
    the last one ending with the recording; but a tail under MIN_ALONE_S is a chunk of its
    own, padded with silence (nobody in it can found a speaker, and a chunk ending with the
    recording would hear the one before it again: a 21 s call's third chunk, 11-21 s)."""
    starts = list(range(0, max(1, length - CHUNK_SAMPLES + 1), STEP_SAMPLES))
    tail = length - (starts[-1] + CHUNK_SAMPLES)
    if tail > 0:
        short = tail < MIN_ALONE_S * 16_000
        starts.append(starts[-1] + CHUNK_SAMPLES if short else length - CHUNK_SAMPLES)
    return starts


class Segmenter:
    """pyannote's segmentation-3.0 and CAM++, each in one onnxruntime session on `threads`
    cores. Blocking: when `stopping` is set (the run stops now), it raises Stopped before its
    next chunk."""

    def __init__(self, *, threads: int = 1, stopping: threading.Event | None = None) -> None:
        self._session = onnx_session(data_path(MODEL_FILE), threads)
        self._encoder = SpeakerEncoder(threads=threads)
        self._stopping = stopping or threading.Event()

    def missed_speakers(
        self,
        audio: Recording | Samples,
        times: Sequence[tuple[int, int]],
        per_word: Sequence[int],
        most: int,
    ) -> list[int]:
        """`per_word` (clustering.py's speaker per word, 0, 1, ...) with the speakers it
        missed in `audio` added (`with_missed_speakers`), up to `most` in all."""
        heard = self.heard(audio)
        return with_missed_speakers(per_word, word_activity(heard, global_speakers(heard), times),
                                    most)  # fmt: skip

    def heard(self, audio: Recording | Samples) -> Heard:
        """Who is heard in each chunk of `audio` (16 kHz mono), and the voices of those
        heard alone MIN_ALONE_S or more."""
        recording = as_recording(audio)
        starts = chunk_starts(len(recording))
        frames, speakers, embeddings = [], [], []
        parts = recording.spans([(start, start + CHUNK_SAMPLES) for start in starts])
        for index, part in enumerate(parts):
            if self._stopping.is_set():
                raise Stopped()
            chunk = np.zeros(CHUNK_SAMPLES, np.float32)
            chunk[: len(part)] = part
            scores = self._session.run(None, {"audio": chunk[None, None]})[0][0]
            heard = POWERSET[scores.argmax(axis=-1)]
            frames.append(heard)
            alone = heard * (heard.sum(axis=1, keepdims=True) == 1)
            for local in range(heard.shape[1]):
                if alone[:, local].sum() * FRAME_S < MIN_ALONE_S:
                    continue
                mask = np.zeros(CHUNK_SAMPLES, bool)
                for frame in np.flatnonzero(alone[:, local]):
                    mask[frame * FRAME_STEP : frame * FRAME_STEP + FRAME_LENGTH] = True
                embeddings.append(self._encoder.embed(fbank(chunk[mask])[None])[0])
                speakers.append((index, local))
        return Heard(
            starts=tuple(starts),
            frames=tuple(frames),
            speakers=tuple(speakers),
            embeddings=np.array(embeddings, np.float32).reshape(-1, EMBEDDING_SIZE),
        )


def global_speakers(heard: Heard) -> Labels:
    """A speaker (0, 1, ...) per embedded local speaker: average linkage of their cosine
    similarity cut at SAME_SPEAKER_SIMILARITY (of MAX_LINKED of them at most), then the
    local speakers of each chunk given distinct speakers, the nearest (by the clusters' mean
    voices) as a whole."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.optimize import linear_sum_assignment

    count = len(heard.speakers)
    if count < 2:
        return np.zeros(count, dtype=np.int64)
    vectors = heard.embeddings / np.linalg.norm(heard.embeddings, axis=1, keepdims=True)
    linked = vectors
    if count > MAX_LINKED:  # over ~4 hours: a sample linked (the distances are count²/2);
        # drawn (with a fixed seed), not every n-th: chunks' speakers come in a rhythm
        chosen = np.random.default_rng(0).choice(count, MAX_LINKED, replace=False)
        linked = vectors[np.sort(chosen)]
    tree = linkage(linked, "average", metric="cosine")
    clusters = fcluster(tree, 1 - SAME_SPEAKER_SIMILARITY, "distance") - 1
    centroids = np.stack([linked[clusters == c].mean(axis=0) for c in range(clusters.max() + 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    labels = np.zeros(count, dtype=np.int64)
    chunks = np.array([chunk for chunk, _ in heard.speakers])
    for chunk in np.unique(chunks):
        mine = np.flatnonzero(chunks == chunk)
        rows, cols = linear_sum_assignment(-(vectors[mine] @ centroids.T))
        labels[mine[rows]] = cols
    return labels


def word_activity(
    heard: Heard, labels: Labels, times: Sequence[tuple[int, int]]
) -> npt.NDArray[np.float64]:
    """(words, speakers): the frames in which each global speaker is heard over each word
    ((start ms, end ms)), summed over the chunks that hear it."""
    speakers = int(labels.max()) + 1 if len(labels) else 0
    result = np.zeros((len(times), speakers), dtype=np.float64)
    if not speakers or not times:
        return result
    starts = np.array([start for start, _ in times], dtype=np.float64) / 1000
    ends = np.array([end for _, end in times], dtype=np.float64) / 1000
    for (chunk, local), speaker in zip(heard.speakers, labels.tolist(), strict=True):
        on = heard.frames[chunk][:, local]
        # each frame's centre, in seconds; a word's frames are a range of them (sorted)
        centres = (heard.starts[chunk] + np.arange(len(on)) * FRAME_STEP + FRAME_LENGTH / 2) / (
            16_000
        )
        total = np.concatenate([[0], np.cumsum(on, dtype=np.int64)])
        first, last = np.searchsorted(centres, starts), np.searchsorted(centres, ends)
        result[:, speaker] += total[last] - total[first]
    return result


def with_missed_speakers(
    per_word: Sequence[int], activity: npt.NDArray[np.float64], most: int
) -> list[int]:
    """`per_word` (the words' speakers, 0, 1, ...) with the global speakers none of them is
    added, up to `most` speakers in all: each takes the words where it is the most heard.
    The words' speakers are matched one-to-one to the global speakers by how much each is
    heard over the other's words."""
    from scipy.optimize import linear_sum_assignment

    result = list(per_word)
    if not result or activity.shape[1] == 0:
        return result
    known = max(result) + 1
    shares = activity / np.maximum(activity.sum(axis=1, keepdims=True), 1)
    overlap = np.zeros((known, activity.shape[1]))
    np.add.at(overlap, np.array(result), shares)
    matched = set(linear_sum_assignment(-overlap)[1].tolist())
    loudest = np.where(activity.max(axis=1) > 0, activity.argmax(axis=1), -1)
    added = known
    for speaker in range(activity.shape[1]):
        mine = np.flatnonzero(loudest == speaker)
        if speaker in matched or not len(mine) or added >= most:
            continue
        for index in mine.tolist():
            result[index] = added
        added += 1
    return result
