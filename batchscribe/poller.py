"""The one poller: watches every submitted transcript on its own schedule, no task per file.

With a few transcripts pending it polls each (`GET /v2/transcript/{id}`: one request that also
returns the finished transcript). With more, one listing (`GET /v2/transcript`, 200 a page)
tells which have finished, and only those are fetched: the request rate stays flat however
many are pending, and finished ones are still collected within one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from batchscribe.config import Settings
from batchscribe.engines.base import Engine, Finished
from batchscribe.errors import ApiError, FileError, RetryableApiError
from batchscribe.retry import list_spacing, poll_spacing
from batchscribe.scan import Job
from batchscribe.transcript import Transcript

log = logging.getLogger("batchscribe.poller")

#: From this many pending, one listing is cheaper than a GET each.
LIST_FROM = 4
#: Seconds between listings while transcripts are arriving or finishing. A listing costs one
#: request however many are pending, so finished work is collected within a quarter second.
LIST_FAST = 0.25
#: After this many seconds with nothing added or finished, each empty listing doubles the
#: wait, up to the poll interval: a long quiet wait costs 20 listings a minute at 3 s.
QUIET_AFTER = 10.0
#: Requests in flight at once for polls and fetches: keeps up, stays polite.
MAX_PARALLEL_POLLS = 8


@dataclass(slots=True)
class Pending:
    """A submitted transcript the poller is watching."""

    job: Job
    transcript_id: str
    submitted_at: float
    due: float
    #: a poll or fetch of it is under way
    busy: bool = False


class Poller:
    """Collects submitted transcripts; `finish`, `fail` and `give_up` are the pipeline's."""

    def __init__(
        self,
        engine: Callable[[], Engine],
        settings: Settings,
        *,
        finish: Callable[[Job, Transcript], Awaitable[None]],
        fail: Callable[[Job, FileError], None],
        give_up: Callable[[Job], None],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._finish, self._fail, self._give_up = finish, fail, give_up
        self.pending: dict[str, Pending] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._last_list = -float("inf")
        self._list_wait = LIST_FAST
        self._last_event = time.monotonic()
        self._slots = asyncio.Semaphore(MAX_PARALLEL_POLLS)
        #: False once the service refused a listing: poll one by one for the rest of the run
        self._can_list = True

    def add(self, job: Job, transcript_id: str) -> None:
        now = time.monotonic()
        # Nothing finishes the moment it is created; the first look comes after one listing
        # period (or one poll interval, while few are pending).
        due = now + min(LIST_FAST, self._settings.poll_interval)
        self._list_wait, self._last_event = LIST_FAST, now  # new work: look often again
        self.pending[transcript_id] = Pending(job, transcript_id, now, due)
        self._wakeup.set()

    def close(self) -> None:
        """No more transcripts will be added: `run` returns once the pending ones are settled."""
        self._closed = True
        self._wakeup.set()

    async def run(self) -> None:
        # Polls and fetches run as tasks of this group: a slow one (a retried GET, a big
        # output) never holds up the others, and cancellation reaches every one of them.
        async with asyncio.TaskGroup() as polls:
            while self.pending or not self._closed:
                now = time.monotonic()
                next_tick = self._next_tick()
                if next_tick <= now:
                    for pending in await self._tick(now):
                        pending.busy = True
                        polls.create_task(self._poll_one(pending))
                    continue
                self._wakeup.clear()
                wait = None if next_tick == float("inf") else next_tick - now
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wakeup.wait()

    def _listing(self) -> bool:
        return self._can_list and len(self.pending) >= LIST_FROM

    def _next_tick(self) -> float:
        idle = [p.due for p in self.pending.values() if not p.busy]
        if not idle:
            return float("inf")
        if self._listing():
            return max(min(idle), self._last_list + self._list_every())
        return min(idle)

    async def _tick(self, now: float) -> list[Pending]:
        """Decide what to poll now (listing first, when many are pending)."""
        if self._listing():
            self._last_list = now
            seen = await self._list_statuses()
            if any(seen.values()):
                self._list_wait, self._last_event = LIST_FAST, now
            elif now - self._last_event > QUIET_AFTER:
                self._list_wait = min(self._list_wait * 2, self._settings.poll_interval)
            for transcript_id, finished in seen.items():
                pending = self.pending.get(transcript_id)
                if pending is None or pending.busy:  # settled or being fetched meanwhile
                    continue
                if finished:
                    pending.due = now  # fetch it now
                elif now - pending.submitted_at > self._settings.max_wait:
                    del self.pending[transcript_id]
                    self._give_up(pending.job)
                else:
                    pending.due = now + self._list_every()
        return [p for p in self.pending.values() if p.due <= now and not p.busy]

    async def _list_statuses(self) -> dict[str, bool]:
        try:
            return await self._engine().finished(set(self.pending))
        except RetryableApiError as err:
            log.info("listing transcripts failed (%s); polling one by one", err)
            return {}
        except ApiError as err:
            log.warning("the service refused to list transcripts (%s); polling each", err)
            self._can_list = False
            return {}

    def _list_every(self) -> float:
        return list_spacing(
            len(self.pending),
            every=min(self._list_wait, self._settings.poll_interval),
            requests_per_minute=self._settings.requests_per_minute,
        )

    def _spacing(self) -> float:
        return poll_spacing(
            len(self.pending),
            interval=self._settings.poll_interval,
            requests_per_minute=self._settings.requests_per_minute,
        )

    async def _poll_one(self, pending: Pending) -> None:
        try:
            await self._poll_and_settle(pending)
        finally:
            pending.busy = False
            self._wakeup.set()

    async def _poll_and_settle(self, pending: Pending) -> None:
        job = pending.job
        try:
            async with self._slots:
                result = await self._engine().poll(pending.transcript_id)
        except RetryableApiError as err:
            log.info("%s: poll failed (%s); trying again later", job.source, err)
            result = None
        except FileError as err:
            del self.pending[pending.transcript_id]
            self._fail(job, err)
            return
        if isinstance(result, Finished):
            del self.pending[pending.transcript_id]
            await self._finish(job, result.transcript)
        elif time.monotonic() - pending.submitted_at > self._settings.max_wait:
            # Left `submitted` in the journal: the next run polls it, never re-creates it.
            del self.pending[pending.transcript_id]
            self._give_up(job)
        else:
            pending.due = time.monotonic() + self._spacing()
