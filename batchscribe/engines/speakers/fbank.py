"""The features CAM++ was trained on: Kaldi's 80-band log mel filterbank, by kaldi-native-fbank.

3D-Speaker computes them with `torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80,
dither=0)` on float samples in [-1, 1] (25 ms povey windows every 10 ms, pre-emphasis 0.97,
DC removed, edges snipped), then subtracts each segment's mean. kaldi-native-fbank (a small
C++ wheel, Apache-2.0) computes the same without torch; tests/test_diarization_models.py checks
it against torchaudio's numbers, saved by bench/export_diarization_models.py.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]

SAMPLE_RATE = 16000
FBANK_BANDS = 80
#: Kaldi's frame: 25 ms windows every 10 ms, the first starting at the first sample.
FRAME_SAMPLES = 400
HOP_SAMPLES = 160


def fbank(samples: Floats) -> Floats:
    """(frames, 80) log mel energies of 16 kHz float `samples`, not mean-normalised; no frame
    when shorter than one 25 ms window."""
    import kaldi_native_fbank

    options = kaldi_native_fbank.FbankOptions()
    options.frame_opts.dither = 0.0  # the library's default adds noise: results would vary
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = FBANK_BANDS
    computer = kaldi_native_fbank.OnlineFbank(options)
    computer.accept_waveform(SAMPLE_RATE, np.ascontiguousarray(samples, dtype=np.float32))
    computer.input_finished()
    count = computer.num_frames_ready
    if count == 0:
        return np.zeros((0, FBANK_BANDS), dtype=np.float32)
    frames: Floats = np.stack([computer.get_frame(i) for i in range(count)]).astype(np.float32)
    return frames
