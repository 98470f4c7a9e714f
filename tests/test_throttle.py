"""The request gate: a pace that halves on 429s and creeps back, pauses, and a dead network
noticed once."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import pytest

from batchscribe.engines.assemblyai.throttle import (
    DECREASE,
    DOWN_AFTER,
    INCREASE,
    MIN_RATE,
    PROBE_EVERY,
    QUIET,
    AdaptiveRate,
    Gate,
    Link,
)
from batchscribe.errors import Unreachable
from tests.fakes import VirtualClock


def sent(rate: AdaptiveRate, count: int, *, start: float, every: float) -> float:
    for i in range(count):
        rate.sending(start + i * every)
    return start + (count - 1) * every


def test_a_young_run_s_pace_is_taken_over_at_least_a_second() -> None:
    rate = AdaptiveRate(ceiling=50.0)
    assert rate.pace(10.0) == MIN_RATE  # nothing sent yet
    sent(rate, 8, start=10.0, every=0.01)
    assert rate.pace(10.1) == 8.0  # a first burst of 8 in 0.07 s
    sent(rate, 20, start=100.0, every=1.0)
    assert rate.pace(119.0) == pytest.approx(6 / 5.0)  # only the window counts


def test_the_first_429_halves_the_pace_the_run_was_sending_at() -> None:
    rate = AdaptiveRate(ceiling=50.0)
    now = sent(rate, 40, start=0.0, every=0.1)  # 10 requests a second

    rate.throttled(now, sent_at=now)

    assert rate.rate == pytest.approx(40 / 3.9 * DECREASE)  # 40 requests in their 3.9 s
    assert rate.spacing == pytest.approx(1 / rate.rate)


def test_a_burst_of_429s_cuts_once_and_later_congestion_cuts_again() -> None:
    rate = AdaptiveRate(ceiling=50.0, rate=4.0)
    rate.throttled(10.0, sent_at=9.0)
    assert rate.rate == 2.0
    rate.throttled(10.5, sent_at=9.5)  # sent before the cut: the same congestion
    assert rate.rate == 2.0
    rate.throttled(12.0, sent_at=11.0)
    assert rate.rate == 1.0


def test_the_pace_never_drops_below_the_floor() -> None:
    rate = AdaptiveRate(ceiling=50.0, rate=MIN_RATE)
    rate.throttled(10.0, sent_at=10.0)
    assert rate.rate == MIN_RATE


def test_the_pace_grows_back_after_quiet_spells_until_free() -> None:
    rate = AdaptiveRate(ceiling=3.0, rate=2.0, last_raise=100.0)
    rate.answered(100.0 + QUIET - 0.1)
    assert rate.rate == 2.0  # not quiet long enough
    rate.answered(100.0 + QUIET)
    assert rate.rate == pytest.approx(2.0 * INCREASE)
    steps = 1
    while rate.rate is not None:
        steps += 1
        rate.answered(100.0 + steps * QUIET)
    assert 2.0 * INCREASE ** (steps - 1) < 3.0 <= 2.0 * INCREASE**steps  # free past the ceiling
    assert rate.spacing == 0.0


def test_the_pace_is_free_again_once_it_reaches_the_ceiling_exactly() -> None:
    rate = AdaptiveRate(ceiling=2.5, rate=2.0, last_raise=0.0)
    rate.answered(QUIET)  # 2.0 * 1.25 == 2.5
    assert rate.rate is None


def test_an_unthrottled_pace_stays_free() -> None:
    rate = AdaptiveRate(ceiling=3.0)
    rate.answered(5000.0)
    assert rate.rate is None


def test_the_link_is_down_after_a_few_unanswered_requests_and_lost_after_the_timeout() -> None:
    link = Link(host="api.example:443", unreachable_timeout=30.0)
    for i in range(DOWN_AFTER - 1):
        link.no_answer(10.0 + i, "connection refused")
    assert not link.down
    link.no_answer(12.0, "connection refused")
    assert link.down and not link.lost(39.9)
    assert link.lost(40.0)
    assert link.verdict() == "cannot reach api.example:443: connection refused"
    link.answered()
    assert not link.down and not link.lost(100.0)


def test_after_an_answer_the_link_needs_down_after_new_failures_to_go_down() -> None:
    link = Link(host="h", unreachable_timeout=30.0)
    for i in range(DOWN_AFTER):
        link.no_answer(float(i), "refused")
    link.answered()
    for i in range(DOWN_AFTER - 1):
        link.no_answer(10.0 + i, "refused")
    assert not link.down
    link.no_answer(20.0, "refused")
    assert link.down


def test_a_probe_still_out_holds_the_next_even_once_it_is_due() -> None:
    link = Link(host="h", unreachable_timeout=30.0, down=True, first_failure=0.0)
    assert link.may_probe(1.0)
    assert not link.may_probe(1.0 + 10 * PROBE_EVERY)  # a long upload: one probe at a time
    link.probe_over()
    assert link.may_probe(1.0 + 10 * PROBE_EVERY)


def test_while_down_one_probe_goes_at_a_time() -> None:
    link = Link(host="h", unreachable_timeout=30.0, down=True, first_failure=0.0)
    assert link.may_probe(1.0)
    assert not link.may_probe(1.5)  # one under way
    link.no_answer(1.6, "refused")
    assert not link.may_probe(1.7)  # the next one only after PROBE_EVERY
    assert link.may_probe(1.0 + PROBE_EVERY)


def gate(
    clock: VirtualClock,
    *,
    rate: float | None = None,
    timeout: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Gate:
    return Gate(
        AdaptiveRate(ceiling=50.0, rate=rate),
        Link(host="127.0.0.1:9", unreachable_timeout=timeout),
        clock=clock,
        sleep=sleep or clock.sleep,
    )


async def test_a_retry_after_pauses_every_request_of_the_run() -> None:
    clock = VirtualClock()
    g = gate(clock)
    sent_at = await g.enter()
    g.answered(429, sent_at=sent_at, retry_after=2.0)

    assert await g.enter() == pytest.approx(sent_at + 2.0)
    assert g.rate.rate is not None  # and slower from now on


async def test_a_throttled_gate_spaces_requests() -> None:
    clock = VirtualClock()
    g = gate(clock, rate=2.0)
    times = [await g.enter() for _ in range(3)]
    assert [b - a for a, b in itertools.pairwise(times)] == [0.5, 0.5]


async def test_an_answer_of_any_status_brings_the_link_back() -> None:
    clock = VirtualClock()
    g = gate(clock)
    for _ in range(DOWN_AFTER):
        g.no_answer("connection refused")
    assert g.link.down
    await g.enter()  # the probe
    g.answered(500, sent_at=clock.now, retry_after=None)
    assert not g.link.down


async def test_requests_wait_while_down_and_give_up_with_one_verdict() -> None:
    clock = VirtualClock()
    g = gate(clock, timeout=10.0)
    for _ in range(DOWN_AFTER):
        g.no_answer("connection refused")
    await g.enter()  # the probe goes through...
    g.no_answer("connection refused")  # ...and gets no answer either
    with pytest.raises(
        Unreachable,
        match=r"^cannot reach 127\.0\.0\.1:9: connection refused; nothing was lost: run the "
        r"same command again once it answers \(files under way resume without paying twice\)\.$",
    ):
        while True:
            await g.enter()
            g.no_answer("connection refused")
    assert clock.now - 1000.0 == pytest.approx(10.0, abs=PROBE_EVERY)


def test_a_probe_still_out_keeps_the_link_from_being_declared_lost() -> None:
    link = Link(host="h", unreachable_timeout=10.0, down=True, first_failure=0.0)
    assert link.may_probe(1.0)  # a long upload goes out as the probe
    assert not link.lost(60.0)  # its answer decides, however long it takes
    link.probe_over()  # it ended without an answer either way (a reset)
    assert link.lost(60.0)


async def test_a_probe_that_ends_without_an_answer_lets_the_next_one_go() -> None:
    clock = VirtualClock()
    g = gate(clock)
    for _ in range(DOWN_AFTER):
        g.no_answer("connection refused")
    await g.enter()  # the probe...
    g.ended()  # ...ended by a reset or a cancel: it said nothing about the link
    clock.now += PROBE_EVERY
    await g.enter()  # the next probe is not blocked forever
    assert g.link.probing


async def test_the_first_request_goes_at_once_even_at_time_zero() -> None:
    clock = VirtualClock()
    clock.now = 0.0
    g = gate(clock)
    assert await g.enter() == 0.0
    assert clock.slept == []


async def test_a_short_retry_after_pauses_the_run_that_long() -> None:
    clock = VirtualClock()
    g = gate(clock)
    for _ in range(40):  # 40 requests at once: the pace halves to 20 a second
        sent_at = await g.enter()
    g.answered(429, sent_at=sent_at, retry_after=0.5)

    assert await g.enter() == pytest.approx(sent_at + 0.5)


async def test_a_throttled_gate_speeds_up_again_after_quiet_answers() -> None:
    clock = VirtualClock()
    g = gate(clock, rate=2.0)
    g.rate.last_raise = clock.now
    clock.now += QUIET
    g.answered(200, sent_at=clock.now, retry_after=None)
    assert g.rate.rate == pytest.approx(2.0 * INCREASE)


def down_gate(clock: VirtualClock, sleep: Callable[[float], Awaitable[None]] | None = None) -> Gate:
    """A gate whose link went down: the next request is its first probe."""
    g = gate(clock, sleep=sleep)
    for _ in range(DOWN_AFTER):
        g.no_answer("connection refused")
    return g


async def test_a_request_waits_while_down_until_the_next_probe_is_due() -> None:
    clock = VirtualClock()
    g = down_gate(clock)
    await g.enter()  # the probe, at 1000: the next may go at 1000 + PROBE_EVERY
    g.no_answer("connection refused")
    clock.now += 0.5

    await g.enter()

    assert clock.slept == [PROBE_EVERY - 0.5]


async def test_a_request_checks_often_while_a_late_probe_is_still_out() -> None:
    clock = VirtualClock()

    async def sleep_until_the_probe_answers(seconds: float) -> None:
        await clock.sleep(seconds)
        g.answered(200, sent_at=clock.now, retry_after=None)

    g = down_gate(clock, sleep_until_the_probe_answers)
    await g.enter()  # the probe, still out when the next is due
    clock.now += PROBE_EVERY + 1.0

    await g.enter()

    assert clock.slept == [0.05]
