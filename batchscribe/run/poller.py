"""The one poller: watches every submitted transcript on its own schedule, no task per file.

With a few transcripts pending it polls each (`GET /v2/transcript/{id}`: one request that also
returns the finished transcript). With more, one listing (`GET /v2/transcript`, 200 a page)
tells which have finished, and only those are fetched: the request rate stays flat however
many are pending, and finished ones are still collected within one poll interval. When to
look is the `Cadence`'s (cadence.py); the clock and the waiting are injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from batchscribe.engines.base import Engine, Finished
from batchscribe.errors import ApiError, FileError, RetryableApiError
from batchscribe.run.cadence import Cadence
from batchscribe.settings.parts import AssemblyAISettings
from batchscribe.transcript import Transcript

log = logging.getLogger("batchscribe.run.poller")

#: Requests in flight at once for polls and fetches: keeps up, stays polite.
MAX_PARALLEL_POLLS = 8

Clock = Callable[[], float]
#: Return once the event is set or the seconds given (None: no limit) have passed.
Wait = Callable[[asyncio.Event, float | None], Awaitable[None]]


class Watched(Protocol):
    """What the poller reads of a job: nothing but its source, for log lines."""

    @property
    def source(self) -> Path: ...


J = TypeVar("J", bound=Watched)


async def wait_for_wakeup(event: asyncio.Event, seconds: float | None) -> None:
    """The poller's default `wait`: until `event` is set or `seconds` have passed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


@dataclass(slots=True)
class Pending(Generic[J]):
    """A submitted transcript the poller is watching."""

    job: J
    transcript_id: str
    submitted_at: float
    due: float
    #: a poll or fetch of it is under way
    busy: bool = False


class Poller(Generic[J]):
    """Collects submitted transcripts; `finish`, `fail` and `give_up` are the pipeline's.

    A transcript unfinished after `settings.max_wait` is handed to `give_up` and dropped: it
    stays submitted on the service, and the next run polls it instead of paying again.
    """

    def __init__(
        self,
        engine_getter: Callable[[], Engine],
        settings: AssemblyAISettings,
        *,
        finish: Callable[[J, Transcript], Awaitable[None]],
        fail: Callable[[J, FileError], Awaitable[None]],
        give_up: Callable[[J], None],
        clock: Clock = time.monotonic,
        wait: Wait = wait_for_wakeup,
    ) -> None:
        self._engine = engine_getter
        self._settings = settings
        self._finish, self._fail, self._give_up = finish, fail, give_up
        self._clock, self._wait = clock, wait
        self.pending: dict[str, Pending[J]] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._cadence = Cadence(
            poll_interval=settings.poll_interval,
            requests_per_minute=settings.requests_per_minute,
            now=clock(),
        )
        self._slots = asyncio.Semaphore(MAX_PARALLEL_POLLS)

    def add(self, job: J, transcript_id: str) -> None:
        """Watch `transcript_id` for `job` from now on."""
        now = self._clock()
        # A transcript was submitted, so the engine exists: its page is known from now on.
        self._cadence.page = self._engine().listing_page
        due = self._cadence.added(now)
        self.pending[transcript_id] = Pending(job, transcript_id, now, due)
        self._wakeup.set()

    def close(self) -> None:
        """No more transcripts will be added: `run` returns once the pending ones are settled."""
        self._closed = True
        self._wakeup.set()

    async def run(self) -> None:
        """Poll until closed and nothing is pending; cancellation stops every poll in flight."""
        # Polls and fetches run as tasks of this group: a slow one (a retried GET, a big
        # output) never holds up the others, and cancellation reaches every one of them.
        async with asyncio.TaskGroup() as polls:
            while self.pending or not self._closed:
                now = self._clock()
                idle = [p.due for p in self.pending.values() if not p.busy]
                next_look = self._cadence.next_look(idle, pending=len(self.pending))
                if next_look <= now:
                    for pending in await self._tick(now):
                        pending.busy = True
                        polls.create_task(self._poll_one(pending))
                    continue
                self._wakeup.clear()
                await self._wait(
                    self._wakeup, None if next_look == float("inf") else next_look - now
                )

    async def _tick(self, now: float) -> list[Pending[J]]:
        """Decide what to poll now (listing first, when many are pending)."""
        if self._cadence.lists(len(self.pending)):
            seen = await self._list_statuses()
            self._cadence.listed(now, finished_any=any(seen.values()))
            for transcript_id, finished in seen.items():
                pending = self.pending.get(transcript_id)
                if pending is None or pending.busy:  # settled or being fetched meanwhile
                    continue
                if finished:
                    pending.due = now  # fetch it now
                elif self._overdue(pending, now):
                    del self.pending[transcript_id]
                    self._give_up(pending.job)
                else:
                    pending.due = now + self._cadence.list_every(len(self.pending))
        return [p for p in self.pending.values() if p.due <= now and not p.busy]

    async def _list_statuses(self) -> dict[str, bool]:
        try:
            return await self._engine().finished(set(self.pending))
        except RetryableApiError as err:
            log.info("listing transcripts failed (%s); polling one by one", err)
            return {}
        except ApiError as err:
            log.info("the service refused to list transcripts (%s); polling each", err)
            self._cadence.listing_refused()
            return {}

    def _overdue(self, pending: Pending[J], now: float) -> bool:
        return now - pending.submitted_at > self._settings.max_wait

    async def _poll_one(self, pending: Pending[J]) -> None:
        try:
            await self._poll_and_settle(pending)
        finally:
            pending.busy = False
            self._wakeup.set()

    async def _poll_and_settle(self, pending: Pending[J]) -> None:
        job = pending.job
        try:
            async with self._slots:
                result = await self._engine().poll(pending.transcript_id)
        except RetryableApiError as err:
            log.info("%s: poll failed (%s); trying again later", job.source, err)
            result = None
        except FileError as err:
            del self.pending[pending.transcript_id]
            await self._fail(job, err)
            return
        now = self._clock()
        if isinstance(result, Finished):
            del self.pending[pending.transcript_id]
            await self._finish(job, result.transcript)
        elif self._overdue(pending, now):
            # Left `submitted` in the journal: the next run polls it, never re-creates it.
            del self.pending[pending.transcript_id]
            self._give_up(job)
        else:
            pending.due = now + self._cadence.poll_every(len(self.pending))
