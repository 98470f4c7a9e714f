"""The poller's cadence as plain numbers: listing or not, the listing back-off, what is due."""

from __future__ import annotations

import math

from batchscribe.run.cadence import LIST_FAST, LIST_FROM, QUIET_AFTER, Cadence


def cadence(now: float = 0.0, *, poll_interval: float = 3.0, rpm: int = 3000) -> Cadence:
    return Cadence(poll_interval=poll_interval, requests_per_minute=rpm, now=now, page=200)


def quiet_waits(c: Cadence, *, start: float, listings: int, pending: int = 10) -> list[float]:
    """The listing spacing after each of `listings` empty listings, one spacing apart."""
    now, waits = start, []
    for _ in range(listings):
        c.listed(now, finished_any=False)
        waits.append(c.list_every(pending))
        now += waits[-1]
    return waits


def test_lists_from_list_from_pending_until_the_service_refuses() -> None:
    c = cadence()
    assert c.lists(LIST_FROM - 1) is False
    assert c.lists(LIST_FROM) is True
    c.listing_refused()
    assert c.lists(1000) is False


def test_a_new_transcript_is_first_due_after_one_fast_listing_period() -> None:
    assert cadence().added(100.0) == 100.0 + LIST_FAST
    # a poll interval shorter than the fast period wins
    assert cadence(poll_interval=0.1).added(100.0) == 100.1


def test_listings_stay_fast_for_quiet_after_seconds() -> None:
    c = cadence()
    c.added(0.0)
    c.listed(QUIET_AFTER, finished_any=False)  # not yet *more* than QUIET_AFTER
    assert c.list_every(10) == LIST_FAST


def test_empty_listings_double_the_wait_after_quiet_after_up_to_the_poll_interval() -> None:
    c = cadence()
    c.added(0.0)
    assert quiet_waits(c, start=QUIET_AFTER + 1, listings=6) == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_listing_that_finds_one_finished_goes_back_to_fast() -> None:
    c = cadence()
    c.added(0.0)
    quiet_waits(c, start=20.0, listings=4)
    assert c.list_every(10) == 3.0

    c.listed(40.0, finished_any=True)

    assert c.list_every(10) == LIST_FAST
    # and the quiet period starts again from that listing
    c.listed(40.0 + QUIET_AFTER, finished_any=False)
    assert c.list_every(10) == LIST_FAST


def test_new_work_resets_the_listing_to_fast() -> None:
    c = cadence()
    c.added(0.0)
    quiet_waits(c, start=20.0, listings=4)

    c.added(60.0)

    assert c.list_every(10) == LIST_FAST
    assert quiet_waits(c, start=61.0, listings=2) == [LIST_FAST, LIST_FAST]


def test_listing_spacing_is_stretched_by_the_request_budget_for_many_pending() -> None:
    c = cadence()
    # 20,000 pending = 101 pages a listing; half of 3,000/min is 25 requests/s
    assert c.list_every(20_000) == 101 / 25
    assert cadence(rpm=600).list_every(1000) == 6 / 5


def test_poll_spacing_is_the_interval_until_the_budget_binds() -> None:
    c = cadence()
    assert c.poll_every(3) == 3.0
    assert c.poll_every(1000) == 40.0


def test_next_look_one_by_one_is_the_earliest_due() -> None:
    c = cadence()
    assert c.next_look([5.0, 2.0, 9.0], pending=3) == 2.0
    assert c.next_look([], pending=3) == math.inf


def test_next_look_while_listing_waits_for_the_next_listing() -> None:
    c = cadence()
    c.listed(10.0, finished_any=False)
    # due at 10.1, but the next listing is not due before 10.25
    assert c.next_look([10.1] * 5, pending=5) == 10.0 + LIST_FAST
    # a later due time is kept
    assert c.next_look([12.0] * 5, pending=5) == 12.0
    # the first listing is due at once
    assert cadence().next_look([1.0] * 5, pending=5) == 1.0


def test_next_look_one_by_one_ignores_the_listing_schedule() -> None:
    c = cadence()
    c.listed(10.0, finished_any=False)
    # fewer than LIST_FROM pending are polled one by one: the next listing does not hold them
    assert c.next_look([10.1] * 3, pending=LIST_FROM - 1) == 10.1
    c.listing_refused()
    assert c.next_look([10.1] * 5, pending=5) == 10.1
