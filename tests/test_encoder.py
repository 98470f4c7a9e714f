"""Several CPU workers share one model and run one encoder pass at a time
(engines/local/encoder.py): with the real tiny.en model, two recordings transcribed at once
never encode at the same moment, and each reads as it does alone. The memory this saves is
measured in bench/memory.py clips (BENCHMARKS.md), not here."""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.engines.local.engine import ThreadPlan, Transcriber
from tests.kit import EXAMPLES


@pytest.mark.model
@pytest.mark.timeout(300)
def test_two_workers_never_encode_at_the_same_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    from faster_whisper import WhisperModel

    real_encode = WhisperModel.encode
    guard, inside, most, passes = threading.Lock(), [0], [0], [0]
    # Each thread's first pass waits here for the other's: without the lock both get in
    # (two at once, seen); with it the second cannot, and the first goes on after the timeout.
    meet = threading.Barrier(2, timeout=3)

    def counted(self: Any, features: Any) -> Any:
        with guard:
            inside[0] += 1
            passes[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                meet.wait()
            return real_encode(self, features)
        finally:
            with guard:
                inside[0] -= 1

    monkeypatch.setattr(WhisperModel, "encode", counted)
    clips = json.loads((EXAMPLES / "manifest.json").read_text())["clips"][:2]
    paths = [str(EXAMPLES / clip["path"]) for clip in clips]
    settings = Settings(model="tiny.en", device="cpu")

    shared = Transcriber(settings, ThreadPlan(workers=2, threads=1))
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(shared.transcribe, paths))

    assert passes[0] >= 2 and most[0] == 1
    alone = [Transcriber(settings, ThreadPlan(workers=1, threads=1)).transcribe(p) for p in paths]
    assert [t["text"] for t in together] == [t["text"] for t in alone]
    assert all(t["text"] for t in together)
