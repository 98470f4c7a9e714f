"""A probe: the speaker count from pyannote's segmentation and CAM++, clustered without
constraints (what a run does, with a cannot-link and local speakers heard alone 1 s, is
engines/speakers/segmentation.py; BENCHMARKS.md, issue #27).

    python bench/speaker_count.py [--step 5] FILE...

Issue #27's meetings are heard mostly in overlap, so Whisper's words show at most 1-2 of their
3-4 speakers (BENCHMARKS.md). Here the whole recording is cut into 10 s chunks every `--step`
seconds; the segmentation model (data/segmentation.onnx: powerset of 3 local speakers, 2 at
once) says who is heard in each frame of each chunk; each local speaker heard 0.4 s or more is
embedded by CAM++ (data/campplus.onnx) over its frames alone (all its frames if under 0.5 s
alone); the embeddings are clustered (average linkage on the cosine similarity) at several
thresholds. It prints, per file and threshold, the speakers found, and those heard 1 s alone.
Words are not labelled.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchscribe.engines.speakers.campplus import SpeakerEncoder
from batchscribe.engines.speakers.fbank import fbank
from batchscribe.engines.speakers.onnx import data_path, onnx_session
from batchscribe.engines.speakers.segmentation import CHUNK_SAMPLES as CHUNK
from batchscribe.engines.speakers.segmentation import FRAME_LENGTH, FRAME_S, FRAME_STEP, POWERSET


def local_speakers(audio: np.ndarray, step_s: float) -> tuple[np.ndarray, list[float]]:
    """CAM++ embeddings of every chunk's local speakers, and how long each is heard alone."""
    session, encoder = onnx_session(data_path("segmentation.onnx"), 1), SpeakerEncoder()
    step = int(step_s * 16000)
    starts = list(range(0, max(1, len(audio) - CHUNK) + 1, step))
    if starts[-1] + CHUNK < len(audio):
        starts.append(len(audio) - CHUNK)
    embeddings, alone_s = [], []
    for start in starts:
        chunk = np.zeros(CHUNK, np.float32)
        part = audio[start : start + CHUNK]
        chunk[: len(part)] = part
        heard = POWERSET[session.run(None, {"audio": chunk[None, None]})[0][0].argmax(-1)]
        alone = heard * (heard.sum(axis=1, keepdims=True) == 1)
        for k in range(3):
            if heard[:, k].sum() * FRAME_S < 0.4:
                continue
            frames = np.flatnonzero(
                alone[:, k] if alone[:, k].sum() * FRAME_S >= 0.5 else heard[:, k]
            )
            mask = np.zeros(CHUNK, bool)
            for f in frames:
                mask[f * FRAME_STEP : f * FRAME_STEP + FRAME_LENGTH] = True
            features = fbank(chunk[mask])
            if len(features) >= 20:
                embeddings.append(encoder.embed(features[None])[0])
                alone_s.append(float(alone[:, k].sum() * FRAME_S))
    return np.array(embeddings).reshape(-1, 192), alone_s


def main() -> None:
    from faster_whisper import decode_audio
    from scipy.cluster.hierarchy import fcluster, linkage

    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--step", type=float, default=5.0, help="seconds between chunks")
    args = parser.parse_args()
    print("| file | local speakers | seconds | found at 0.4 / 0.5 / 0.6 (heard 1 s alone) |")
    print("| --- | ---: | ---: | --- |")
    for path in args.files:
        began = time.perf_counter()
        embeddings, alone = local_speakers(decode_audio(str(path), sampling_rate=16000), args.step)
        found = []
        for threshold in (0.4, 0.5, 0.6):
            tree = linkage(embeddings, "average", metric="cosine") if len(embeddings) > 1 else None
            labels = (fcluster(tree, 1 - threshold, "distance") if tree is not None
                      else np.ones(len(embeddings)))  # fmt: skip
            solo = {label for label, s in zip(labels, alone, strict=True) if s >= 1.0}
            found.append(f"{len(set(labels))} ({len(solo)})")
        print(f"| {path.name} | {len(embeddings)} | {time.perf_counter() - began:.1f} | "
              f"{' / '.join(found)} |")  # fmt: skip


if __name__ == "__main__":
    main()
