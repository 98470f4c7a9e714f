"""One Whisper encoder pass at a time between a model's CPU workers; the decoders in parallel.

The workers share one model's weights (CTranslate2 shares them between CPU replicas), but not
their working memory. The encoder's pass over a 30-second window is a transcription's largest
transient: about 90-150 MB with base (self-attention over 1,500 frames), where the beam search
and the word alignment take a few tens. Two passes at once held two of them: the 2 x 1 plan
peaked about 130 MB over 1 x 2 on 20 clips. The encoder is about a third of a window's time, so
while one worker encodes the other mostly decodes: the lock costs little time. Both measured in
BENCHMARKS.md ("Issue #30: one encoder at a time").
"""

from __future__ import annotations

import threading
from typing import Any


def one_encoder_at_a_time(model: Any) -> Any:
    """`model` (faster-whisper's WhisperModel) with its `encode` under one lock: every encoder
    pass goes through it (transcription, language detection, the batched pipeline)."""
    encode, lock = model.encode, threading.Lock()

    def encode_alone(features: Any) -> Any:
        with lock:
            return encode(features)

    model.encode = encode_alone
    return model
