"""The run's request gate: one adaptive pace for every request, and whether the API answers.

A 429 is the server asking the whole client to slow down, so it slows every request of the
run: the pace halves (once per burst of 429s), a `Retry-After` pauses everyone, and the pace
creeps back up after quiet spells. A dead network is one problem, not one per file: after a
few requests in a row get no HTTP answer at all, requests wait while one at a time probes;
when nothing answers for `unreachable_timeout`, every waiting request raises `Unreachable`.

`AdaptiveRate` and `Link` are pure (the time is passed in); `Gate` does the waiting, with
clock and sleep injected.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from batchscribe.errors import Unreachable

#: Seconds of sending looked back on to know the pace when the first 429 arrives.
PACE_WINDOW = 5.0
#: Each congestion cuts the pace to this share of what it was (multiplicative decrease).
DECREASE = 0.5
#: After this many seconds without a 429, the pace grows by INCREASE (slow increase: from
#: half back to where it was in about 3 s).
QUIET = 1.0
INCREASE = 1.25
#: Never slower than this (requests per second): a 429 storm still lets work through, and
#: no account's limit is lower.
MIN_RATE = 1.0
#: Requests in a row without an HTTP answer before the API counts as unreachable.
DOWN_AFTER = 3
#: While unreachable, one request goes through as a probe this often (seconds).
PROBE_EVERY = 2.0
#: However long a server asks, never pause the whole run longer than this (seconds).
MAX_PAUSE = 300.0


@dataclass(slots=True)
class AdaptiveRate:
    """The pace the run may send at: free (only the configured ceiling) until the server
    answers 429, then a spacing that halves the pace per congestion and regains it slowly."""

    ceiling: float
    floor: float = MIN_RATE
    #: requests per second while throttled; None: not throttled
    rate: float | None = None
    last_cut: float = -float("inf")
    last_raise: float = -float("inf")
    sent: deque[float] = field(default_factory=deque)

    def sending(self, now: float) -> None:
        self.sent.append(now)
        while self.sent and self.sent[0] < now - PACE_WINDOW:
            self.sent.popleft()

    def throttled(self, now: float, *, sent_at: float) -> None:
        """A 429 for a request sent at `sent_at`. Answers to requests sent before the last
        cut belong to the same congestion and cut nothing more."""
        if sent_at < self.last_cut:
            return
        pace = self.rate if self.rate is not None else self.pace(now)
        self.rate = max(self.floor, min(pace, self.ceiling) * DECREASE)
        self.last_cut = self.last_raise = now

    def answered(self, now: float) -> None:
        """A request went through: after a quiet spell the pace grows back, up to free."""
        if self.rate is None or now - self.last_raise < QUIET:
            return
        self.last_raise = now
        self.rate *= INCREASE
        if self.rate >= self.ceiling:
            self.rate = None

    def pace(self, now: float) -> float:
        """Requests per second sent lately: over the window, or over the run while it is
        younger than that (at least a second, so a first burst is not mistaken for a flood)."""
        recent = [t for t in self.sent if t >= now - PACE_WINDOW]
        if not recent:
            return self.floor
        return len(recent) / max(now - recent[0], 1.0)

    @property
    def spacing(self) -> float:
        """Seconds between two requests now (0: only the ceiling applies)."""
        return 0.0 if self.rate is None else 1.0 / self.rate


@dataclass(slots=True)
class Link:
    """Whether the API answers at all (any HTTP status counts as an answer)."""

    host: str
    unreachable_timeout: float
    failures: int = 0
    #: when the current run of failures began
    first_failure: float | None = None
    cause: str = ""
    down: bool = False
    #: a probe is under way, or when the next may go
    probing: bool = False
    next_probe: float = 0.0

    def no_answer(self, now: float, cause: str) -> None:
        self.failures += 1
        self.cause = cause
        if self.first_failure is None:
            self.first_failure = now
        if self.failures >= DOWN_AFTER:
            self.down = True
        self.probing = False

    def answered(self) -> None:
        self.failures, self.first_failure, self.down, self.probing = 0, None, False, False

    def lost(self, now: float) -> bool:
        """Down for longer than the run waits for it, and no probe is still out asking (a
        probe may be a long upload: its answer decides)."""
        return (
            self.down
            and not self.probing
            and self.first_failure is not None
            and now - self.first_failure >= self.unreachable_timeout
        )

    def probe_over(self) -> None:
        """A request ended without saying anything of the link (reset, timeout, cancelled):
        if it was the probe, the next may go."""
        self.probing = False

    def may_probe(self, now: float) -> bool:
        """While down: True for one request at a time, every PROBE_EVERY seconds."""
        if self.probing or now < self.next_probe:
            return False
        self.probing, self.next_probe = True, now + PROBE_EVERY
        return True

    def verdict(self) -> str:
        return f"cannot reach {self.host}: {self.cause}"


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Gate:
    """Every request of the run passes here before it is sent."""

    def __init__(
        self,
        rate: AdaptiveRate,
        link: Link,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate, self.link = rate, link
        self._clock, self._sleep = clock, sleep
        self._paused_until = 0.0
        self._next_slot = 0.0
        self._turn = asyncio.Lock()

    async def enter(self) -> float:
        """Wait for this request's turn; returns when it is sent. Raises Unreachable."""
        await self._reachable()
        async with self._turn:  # first come, first served while throttled or paused
            while (wait := max(self._paused_until, self._next_slot) - self._clock()) > 0:
                await self._sleep(wait)
            now = self._clock()
            self._next_slot = now + self.rate.spacing
            self.rate.sending(now)
            return now

    async def _reachable(self) -> None:
        while self.link.down:
            now = self._clock()
            if self.link.lost(now):
                raise Unreachable(
                    f"{self.link.verdict()}; nothing was lost: run the same command again "
                    "once it answers (files under way resume without paying twice)."
                )
            if self.link.may_probe(now):
                return
            await self._sleep(min(PROBE_EVERY, max(self.link.next_probe - now, 0.05)))

    def answered(self, status: int, *, sent_at: float, retry_after: float | None) -> None:
        """Any HTTP answer: the link is up; a 429 slows the whole run and pauses it."""
        now = self._clock()
        self.link.answered()
        if status != 429:
            self.rate.answered(now)
            return
        self.rate.throttled(now, sent_at=sent_at)
        if retry_after:
            pause = now + min(max(retry_after, 0.0), MAX_PAUSE)
            self._paused_until = max(self._paused_until, pause)

    def no_answer(self, cause: str) -> None:
        self.link.no_answer(self._clock(), cause)

    def ended(self) -> None:
        """Every request, however it ended: a probe that said nothing frees the next one."""
        if self.link.down:
            self.link.probe_over()
