"""When the poller looks: one-by-one or listing, the listing back-off, when each look is due.

Pure state over numbers: every method is given `now` and nothing here reads a clock, sleeps or
makes a request. The poller owns the clock and the waiting; tests drive a `Cadence` with plain
numbers (`cadence.listed(20.0, finished_any=False)`) and assert on what it says next.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from batchscribe.engines.base import pages_to_list

#: From this many pending, one listing is cheaper than a GET each.
LIST_FROM = 4
#: Seconds between listings while transcripts are arriving or finishing. A listing costs one
#: request however many are pending, so finished work is collected within a quarter second.
LIST_FAST = 0.25
#: After this many seconds with nothing added or finished, each empty listing doubles the
#: wait, up to the poll interval: a long quiet wait costs 20 listings a minute at 3 s.
QUIET_AFTER = 10.0
#: Share of the request budget that polls and listings may use: the other half is left for
#: uploads, creates and result downloads, so watching 1,000 transcripts never starves new work.
POLL_SHARE = 0.5


def poll_budget(requests_per_minute: int) -> float:
    """Requests per second that polls and listings may spend: POLL_SHARE of the budget."""
    return requests_per_minute / 60.0 * POLL_SHARE


def poll_spacing(pending: int, *, interval: float, requests_per_minute: int) -> float:
    """Seconds between two polls of one transcript with `pending` of them outstanding.

    Each transcript is polled every `interval` seconds until that would exceed the poll share of
    the request budget (POLL_SHARE); then the spacing grows with the number pending, so the
    request rate stays flat.
    """
    return max(interval, pending / poll_budget(requests_per_minute))


def list_spacing(pending: int, *, every: float, requests_per_minute: int, page: int) -> float:
    """Seconds between two listings of `pending` transcripts (`page` to a request).

    A listing every `every` seconds until its pages (`pages_to_list`) would exceed the poll
    share of the request budget; then listings spread out so the rate stays flat.
    """
    return max(every, pages_to_list(pending, page=page) / poll_budget(requests_per_minute))


class Cadence:
    """The poller's schedule for `pending` transcripts, updated on what happens.

    With fewer than LIST_FROM pending (or once the service refused a listing) each transcript
    is polled every `poll_interval`. With more, listings run every LIST_FAST seconds while
    transcripts are added or found finished; after QUIET_AFTER seconds of neither, each empty
    listing doubles the wait up to `poll_interval`. Both spacings stretch with the number
    pending once they would pass the poll share of the request budget (POLL_SHARE).
    """

    def __init__(
        self, *, poll_interval: float, requests_per_minute: int, now: float, page: int = 0
    ) -> None:
        self.poll_interval = poll_interval
        self.requests_per_minute = requests_per_minute
        #: transcripts a listing request sees (the engine's `listing_page`); 0: no listings
        self.page = page
        #: the wait between listings, before the request budget stretches it
        self.list_wait = LIST_FAST
        #: when a transcript was last added or a listing last found one finished
        self.last_event = now
        #: when the last listing was made
        self.last_list = -math.inf
        #: False once the service refused a listing: one by one for the rest of the run
        self.can_list = True

    def lists(self, pending: int) -> bool:
        """Whether `pending` transcripts are watched by listing rather than a GET each."""
        return self.can_list and self.page > 0 and pending >= LIST_FROM

    def added(self, now: float) -> float:
        """A transcript was submitted: look often again. Returns when it is first due.

        Nothing finishes the moment it is created; the first look comes after one fast
        listing period (or one poll interval, when that is shorter).
        """
        self.list_wait, self.last_event = LIST_FAST, now
        return now + min(LIST_FAST, self.poll_interval)

    def listed(self, now: float, *, finished_any: bool) -> None:
        """A listing was made at `now`; `finished_any`: it found at least one finished.

        Finished work means more may follow: back to fast listings. An empty listing (or one
        that failed) doubles the wait, up to `poll_interval`, once nothing has happened for
        QUIET_AFTER seconds.
        """
        self.last_list = now
        if finished_any:
            self.list_wait, self.last_event = LIST_FAST, now
        elif now - self.last_event > QUIET_AFTER:
            self.list_wait = min(self.list_wait * 2, self.poll_interval)

    def listing_refused(self) -> None:
        """The service will not list transcripts: poll one by one from now on."""
        self.can_list = False

    def list_every(self, pending: int) -> float:
        """Seconds from one listing of `pending` transcripts to the next."""
        return list_spacing(
            pending,
            every=min(self.list_wait, self.poll_interval),
            requests_per_minute=self.requests_per_minute,
            page=self.page,
        )

    def poll_every(self, pending: int) -> float:
        """Seconds from one poll of a transcript to its next, with `pending` outstanding."""
        return poll_spacing(
            pending, interval=self.poll_interval, requests_per_minute=self.requests_per_minute
        )

    def next_look(self, idle_dues: Iterable[float], *, pending: int) -> float:
        """When the poller next has something to do: `math.inf` for nothing until woken.

        `idle_dues` are the due times of the transcripts not being polled right now. While
        listing, nothing is done before the next listing is due, however early one falls due.
        """
        earliest = min(idle_dues, default=math.inf)
        if earliest == math.inf or not self.lists(pending):
            return earliest
        return max(earliest, self.last_list + self.list_every(pending))
