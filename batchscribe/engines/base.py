"""The `Engine` protocol the pipeline drives, whatever does the transcribing.

An engine either finishes a job while the worker waits (the local model) or submits it and
leaves it to the single poller (AssemblyAI). Billable steps are reported through `Checkpoint`
so that the pipeline can journal each one before the next starts; engines never see the
journal, only a small `Resume` value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from batchscribe.recording import Recording
from batchscribe.transcript import Transcript

#: Name prefix of the threads an engine decodes in on this machine: a second stop exits
#: without waiting for them (`run/stopping.exit_interrupted`).
DECODING_THREADS = "batchscribe-whisper"


def pages_to_list(pending: int, *, page: int) -> int:
    """Pages one listing reads to see `pending` transcripts of ours (newest first, `page` a page).

    One per full page of them and one for the rest: what a listing costs while ours are the
    newest (1,000 pending at 200 a page: 6 pages). The poller's request budget is planned with
    this figure (`run/cadence`); an engine may read a page or two more when other transcripts
    sit between ours, which the shared rate limiter absorbs.
    """
    return pending // page + 1


@dataclass(frozen=True, slots=True)
class Finished:
    """The transcript is ready."""

    transcript: Transcript


@dataclass(frozen=True, slots=True)
class Submitted:
    """The job runs remotely under `transcript_id`; the poller takes it from here."""

    transcript_id: str


@dataclass(frozen=True, slots=True)
class StillRunning:
    """A poll found the transcript queued or processing."""


class Checkpoint(Protocol):
    """Awaited by an engine the moment a billable step has happened, before the next begins.

    Until the first of its calls, a graceful stop may drop the work (an upload in flight is
    not billed); from then on the work runs to its end.
    """

    def transcribing(self) -> None:
        """Transcription began on this machine (a local engine): a stop lets it finish."""

    def heard(self, seconds: float, of: float | None) -> None:
        """Transcribed up to `seconds` of the recording's `of` (a local engine, called from
        its decoding thread after each segment): progress within a long file."""

    async def uploaded(self, upload_url: str) -> None: ...

    async def submitted(self, transcript_id: str) -> None: ...


class Engine(Protocol):
    """What the pipeline needs from an engine. Per-file trouble raises a FileError subclass;
    trouble that dooms the whole run (a bad key) raises FatalApiError."""

    #: shown in reports and saved in the journal
    name: str
    #: transcripts one `finished` request sees (a listing's page); 0: the engine cannot list,
    #: so the poller looks at each transcript on its own
    listing_page: int

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished | Submitted:
        """Begin (and for a local engine, finish) it; carry on from `recording.resume` if set."""
        ...

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        """One look at a submitted job; raises TranscriptionFailed on `status: error`."""
        ...

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        """Which of these have finished (completed or error), learnt in as few requests as
        the engine can; ids it did not see are left out. `{}` when it cannot tell."""
        ...

    async def delete(self, transcript_id: str) -> None:
        """Remove a finished transcript from the service (--delete-after); raises ApiError."""
        ...

    async def aclose(self) -> None:
        """Release sessions, executors and models."""
        ...
