"""One-off: export Resemblyzer's GE2E voice encoder to ONNX, with reference embeddings.

The speaker labels of the local engine (`batchscribe/engines/speakers/`) run Resemblyzer's
pretrained voice encoder (`resemblyzer/pretrained.pt`, Apache-2.0, Corentin Jemine /
Resemble AI) with onnxruntime, so that a run needs neither torch nor Resemblyzer. This script
made `batchscribe/engines/speakers/data/voice_encoder.onnx` once; run it again only to remake it. It
needs torch and Resemblyzer, in a throwaway virtual environment (a CPU build of torch):

    python3 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.13.0 onnx onnxruntime librosa webrtcvad \
        'setuptools<81' && /tmp/export-venv/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/export-venv/bin/python bench/export_voice_encoder.py

It also writes `tests/data/speakers/voice_encoder_reference.npz`: a clip, and the partial
embeddings Resemblyzer's own code (librosa's mel spectrogram, the torch model) gives for it,
which tests/test_speakers.py checks the numpy + onnxruntime path against.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "batchscribe" / "engines" / "speakers" / "data" / "voice_encoder.onnx"
REFERENCE = REPO / "tests" / "data" / "speakers" / "voice_encoder_reference.npz"
#: Three seconds of the two-voice conversation: enough for several partials.
REFERENCE_CLIP = REPO / "tests" / "data" / "speakers" / "interview.wav"


def export() -> None:
    import torch
    from resemblyzer import VoiceEncoder

    encoder = VoiceEncoder(device="cpu", verbose=False).eval()
    mels = torch.zeros(2, 160, 40)
    torch.onnx.export(
        encoder,
        (mels,),
        str(MODEL),
        input_names=["mels"],
        output_names=["embeddings"],
        dynamic_axes={"mels": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    print(f"wrote {MODEL} ({MODEL.stat().st_size / 1e6:.1f} MB)")


def reference() -> None:
    import librosa
    import onnxruntime
    import torch
    from resemblyzer import VoiceEncoder, audio

    encoder = VoiceEncoder(device="cpu", verbose=False).eval()
    wav, _ = librosa.load(str(REFERENCE_CLIP), sr=16000)
    clip = wav[16000 * 2 : 16000 * 5].astype(np.float32)
    normalized = audio.normalize_volume(clip, -30, increase_only=True).astype(np.float32)
    _, partials, slices = encoder.embed_utterance(normalized, return_partials=True)
    mel = audio.wav_to_mel_spectrogram(normalized)
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    starts = np.array([s.start // 160 for s in slices])
    batch = np.stack([np.pad(mel, ((0, 400), (0, 0)))[i : i + 160] for i in starts])
    onnx_out = session.run(None, {"mels": batch})[0]
    with torch.no_grad():
        torch_out = encoder(torch.from_numpy(batch)).numpy()
    print("onnx vs torch, max abs difference:", float(np.abs(onnx_out - torch_out).max()))
    print("partials:", len(partials), "frames of mel:", mel.shape)
    np.savez_compressed(
        REFERENCE,
        clip=clip,
        mel=mel,
        partial_starts=starts,
        partial_embeddings=partials.astype(np.float32),
    )
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    if "--reference-only" not in sys.argv:
        export()
    reference()
