"""Transcription engines behind one interface (`base.Engine`), and what batchscribe adds to
every engine's transcripts: the low-confidence flag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from batchscribe.config import Settings
from batchscribe.engines.base import (
    Checkpoint,
    Engine,
    Finished,
    Recording,
    StillRunning,
    Submitted,
)
from batchscribe.transcript import Transcript

#: The key batchscribe adds to a transcript's .json for what it says about the transcript.
#: AssemblyAI's objects have no such field, so it cannot be taken for one of theirs.
OUR_KEY = "batchscribe"

Result = TypeVar("Result", bound=Finished | Submitted | StillRunning)


def create_engine(settings: Settings) -> Engine:
    """The engine `settings` asks for (`auto` resolved), its transcripts checked for low
    confidence; imports only the engine in use."""
    if settings.chosen_engine() == "assemblyai":
        from batchscribe.engines.assemblyai import create_engine as create_assemblyai

        return ConfidenceCheck(create_assemblyai(settings), settings.low_confidence)
    from batchscribe.engines.local import LocalEngine
    from batchscribe.engines.local_options import english_only

    return ConfidenceCheck(
        LocalEngine(settings), settings.low_confidence, english_only=english_only(settings.model)
    )


def check_engine_available(settings: Settings) -> None:
    """Fail before any work when the chosen engine cannot run: the `local` extra missing, or a
    language its model cannot hear (`--language fr` with an English-only model)."""
    if settings.chosen_engine() == "local":
        from batchscribe.engines.local import check_installed
        from batchscribe.engines.local_options import check_language

        check_installed()
        check_language(settings)


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
    return {**data, OUR_KEY: ours}


def low_confidence_note(data: Mapping[str, Any]) -> str | None:
    """What the per-file warning says of a transcript `flag_low_confidence` flagged (`low
    confidence 0.31 (under 0.7) — is it in English? ...`), with the likely reason and the fix
    when the model is English-only; None when it is not flagged."""
    ours = data.get(OUR_KEY)
    confidence = data.get("confidence")
    if not isinstance(ours, Mapping) or ours.get("low_confidence") is not True:
        return None
    said = f"low confidence {float(confidence or 0):.2f}"
    if isinstance(ours.get("confidence_threshold"), int | float):
        said += f" (under {ours['confidence_threshold']:g})"
    if ours.get("english_only_model") is True:
        return (
            f"{said} — is it in English? the model is English-only; for other languages use "
            "--model with a multilingual model, or AssemblyAI"
        )
    return f"{said}; check the transcript against the recording"


class ConfidenceCheck:
    """Any engine, its finished transcripts flagged by `flag_low_confidence` before they are
    stored and written: the store, the .json and the per-file line all see the same flag."""

    def __init__(self, engine: Engine, threshold: float, *, english_only: bool = False) -> None:
        self._engine, self._threshold, self._english_only = engine, threshold, english_only
        self.name = engine.name

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
