"""faster-whisper's WhisperModel that runs the encoder once per 30-second window.

faster-whisper 1.2 encodes a recording's first window twice when it detects the language:
`detect_language` encodes it to name the language and throws the result away, then
`generate_segments` encodes the same window again to transcribe it. On a recording under 30 s
that is twice the encoder's work, and the encoder over a padded 30-s window is most of a short
clip's cost (BENCHMARKS.md, "Issue #30: the encoder once per window").

Here the windows the detection encodes are kept (per decoding thread) until the transcription
asks for the same input, exactly, and then handed over instead of encoded again. For that the
detection is given the content frames only: faster-whisper's features end with one frame of
its own padding, which the transcription's first window replaces by zeros; without it both
encode the very same array, so the transcript is what faster-whisper writes without this.

Imports faster-whisper: load it only where the `local` extra is known to be installed.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from faster_whisper import WhisperModel


class EncodeOnceWhisperModel(WhisperModel):  # type: ignore[misc]  # faster-whisper has no types
    """A WhisperModel (same arguments) whose language detection's encodings are reused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept = threading.local()  # one model serves every decoding thread

    def detect_language(self, audio: Any = None, features: Any = None, **options: Any) -> Any:
        kept: list[tuple[np.ndarray[Any, Any], Any]] = []
        self._kept.windows, self._kept.keeping = kept, True  # a file's own, not the last file's
        if audio is None and features is not None and features.shape[-1] > 1:
            features = features[..., :-1]  # what generate_segments treats as content
        try:
            return super().detect_language(audio=audio, features=features, **options)
        finally:
            self._kept.keeping = False

    def encode(self, features: np.ndarray[Any, Any]) -> Any:
        windows: list[tuple[np.ndarray[Any, Any], Any]] = getattr(self._kept, "windows", [])
        if getattr(self._kept, "keeping", False):
            encoded = super().encode(features)
            windows.append((np.array(features), encoded))  # a copy: not a view of the file's
            return encoded
        for i, (seen, encoded) in enumerate(windows):
            if seen.shape == features.shape and np.array_equal(seen, features):
                del windows[i]  # each handed over once: nothing held past its use
                return encoded
        return super().encode(features)
