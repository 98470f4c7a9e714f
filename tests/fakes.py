"""An in-memory Engine for wiring tests: no HTTP, no model, every call counted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from batchscribe.engines.base import Checkpoint, Finished, StillRunning, Submitted
from batchscribe.errors import TranscriptionFailed
from batchscribe.recording import Recording
from batchscribe.transcript import Transcript


def heard(path: Path) -> str:
    """What the fake "hears": the text `tests.conftest.speech` wrote into the file."""
    return path.read_bytes().split(b"\n")[0].removeprefix(b"SPEECH:").decode()


@dataclass
class FakeEngine:
    """Finishes at once like the local engine, or with `submit`, uploads, submits and is polled
    like AssemblyAI (each transcript finished at its first poll)."""

    name: str = "local"
    submit: bool = False
    #: seconds each start takes (to watch concurrency)
    delay: float = 0.0
    #: content heard -> error the transcription ends with
    errors: dict[str, str] = field(default_factory=dict)
    #: called with each recording as it starts (a test can stop the run there)
    on_start: Callable[[Recording], None] | None = None
    started: list[Path] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    _texts: dict[str, str] = field(default_factory=dict)

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished | Submitted:
        self.started.append(recording.path)
        if self.on_start is not None:
            self.on_start(recording)
        transcript_id = f"t{len(self.started)}"  # before any await: ids stay unique
        if not self.submit:
            checkpoint.transcribing()  # like the local engine: the work (the delay) begins
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        text = heard(recording.path)
        if not self.submit:
            if text in self.errors:
                raise TranscriptionFailed(self.errors[text])
            return Finished(Transcript({"status": "completed", "text": text}))
        await checkpoint.uploaded(f"upload-{transcript_id}")
        await checkpoint.submitted(transcript_id)
        self._texts[transcript_id] = text
        return Submitted(transcript_id)

    @property
    def submitted_ids(self) -> list[str]:
        """Transcripts this fake created: what a real service would bill."""
        return list(self._texts)

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        text = self._texts[transcript_id]
        if text in self.errors:
            raise TranscriptionFailed(self.errors[text])
        data = {"id": transcript_id, "status": "completed", "text": text}
        return Finished(Transcript(data))

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        return {}

    async def delete(self, transcript_id: str) -> None:
        self.deleted.append(transcript_id)

    async def aclose(self) -> None:
        return None


class VirtualClock:
    """A clock and a sleep in virtual time: sleeping moves the clock on at once, so waits
    are measured (`slept`), never waited."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
