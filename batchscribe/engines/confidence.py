"""What batchscribe adds to every engine's transcripts: the low-confidence flag, under
`OUR_KEY`, before a transcript is stored and written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from batchscribe.engines.base import (
    Checkpoint,
    Engine,
    Finished,
    StillRunning,
    Submitted,
)
from batchscribe.engines.stats import request_stats
from batchscribe.recording import Recording
from batchscribe.transcript import OUR_KEY, Transcript

Result = TypeVar("Result", bound=Finished | Submitted | StillRunning)


def flag_low_confidence(
    data: Mapping[str, Any], threshold: float, *, english_only: bool = False
) -> Mapping[str, Any]:
    """`data` with `"batchscribe": {"low_confidence": true, ...}` added when its mean word
    confidence (`confidence`) is under `threshold`; else `data` itself, untouched.

    A transcript with no words (no speech) has no confidence and is never flagged; nor is one
    whose engine gave none. `english_only`: the model hears only English, which is the likely
    reason (said in the warning line).
    """
    confidence = data.get("confidence")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool):
        return data
    if confidence >= threshold:
        return data
    ours: dict[str, Any] = {"low_confidence": True, "confidence_threshold": threshold}
    if english_only:
        ours["english_only_model"] = True
    said = data.get(OUR_KEY)  # the engine's own word (a translation) is kept
    return {**data, OUR_KEY: {**(said if isinstance(said, Mapping) else {}), **ours}}


class ConfidenceCheck:
    """Any engine, its finished transcripts flagged by `flag_low_confidence` before they are
    stored and written: the store, the .json and the per-file line all see the same flag."""

    def __init__(self, engine: Engine, threshold: float, *, english_only: bool = False) -> None:
        self._engine, self._threshold, self._english_only = engine, threshold, english_only
        self.name = engine.name
        self.listing_page = engine.listing_page
        self.stats = request_stats(engine)

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished | Submitted:
        return self._checked(await self._engine.start(recording, checkpoint))

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        return self._checked(await self._engine.poll(transcript_id))

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        return await self._engine.finished(transcript_ids)

    async def delete(self, transcript_id: str) -> None:
        await self._engine.delete(transcript_id)

    async def aclose(self) -> None:
        await self._engine.aclose()

    def _checked(self, result: Result) -> Result:
        if not isinstance(result, Finished) or not self._threshold:
            return result
        data = result.transcript.data
        flagged = flag_low_confidence(data, self._threshold, english_only=self._english_only)
        return result if flagged is data else cast(Result, Finished(Transcript(flagged)))
