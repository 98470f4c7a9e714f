"""faster-whisper's BatchedInferencePipeline behind the WhisperModel face (`[local] batch_size`).

The pipeline cuts a recording at VAD's speech chunks and decodes `batch_size` windows at once:
fast on a GPU, but it does not condition on previous text and may drop segments, so it is
opt-in (BENCHMARKS.md, "Batched decoding").
"""

from __future__ import annotations

from typing import Any


class Batched:
    """A loaded WhisperModel whose `transcribe` goes through the batched pipeline."""

    def __init__(self, model: Any, batch_size: int) -> None:
        from faster_whisper import BatchedInferencePipeline

        #: the CTranslate2 model, as `WhisperModel.model` (the engine reads its `is_multilingual`)
        self.model = model.model
        self._pipeline, self._batch_size = BatchedInferencePipeline(model), batch_size

    def transcribe(self, audio: str, **options: Any) -> tuple[Any, Any]:
        return self._pipeline.transcribe(audio, batch_size=self._batch_size, **options)  # type: ignore[no-any-return]


def batched(model: Any, batch_size: int) -> Batched:
    """`model` decoding `batch_size` windows at once."""
    return Batched(model, batch_size)
