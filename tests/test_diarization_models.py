"""The diarization's models as batchscribe runs them (numpy features, onnxruntime) against
the torch models they were exported from: references saved by
bench/export_diarization_models.py (tests/data/speakers/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchscribe.engines.speakers.campplus import SpeakerEncoder
from batchscribe.engines.speakers.fbank import fbank
from batchscribe.engines.speakers.onnx import data_path, onnx_session

DATA = Path(__file__).resolve().parent / "data" / "speakers"


def test_fbank_equals_torchaudios_kaldi_fbank_as_3d_speaker_calls_it() -> None:
    ref = np.load(DATA / "campplus_reference.npz")
    frames = [fbank(ref["clip"][start:end]) for start, end in ref["spans"]]
    centred = np.concatenate([f - f.mean(axis=0) for f in frames])
    assert centred.shape == ref["fbank"].shape
    np.testing.assert_allclose(centred, ref["fbank"], atol=2e-3)


def test_campplus_in_onnx_gives_the_torch_models_embeddings() -> None:
    ref = np.load(DATA / "campplus_reference.npz")
    encoder = SpeakerEncoder()
    got = [encoder.embed(fbank(ref["clip"][start:end])[None])[0] for start, end in ref["spans"]]
    expected = ref["embeddings"] / np.linalg.norm(ref["embeddings"], axis=1, keepdims=True)
    cosines = np.sum(np.stack(got) * expected, axis=1)
    assert cosines.min() > 0.9999, cosines
    # four windows of two people: not all alike (a model that says one thing would pass above)
    assert (np.stack(got) @ np.stack(got).T).min() < 0.8


def test_segmentation_in_onnx_gives_the_torch_models_powerset_scores() -> None:
    ref = np.load(DATA / "segmentation_reference.npz")
    session = onnx_session(data_path("segmentation.onnx"), threads=1)
    got = session.run(None, {"audio": ref["chunks"]})[0]
    assert got.shape == ref["log_probabilities"].shape == (2, 589, 7)
    np.testing.assert_allclose(got, ref["log_probabilities"], atol=1e-3)
    assert len(set(got.argmax(axis=-1).ravel().tolist())) >= 3  # silence, speakers, overlap
