from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest

from batchscribe.engines.assemblyai.engine import LIST_PAGE
from batchscribe.engines.assemblyai.retry import MAX_RETRY_AFTER, retrying
from batchscribe.engines.base import pages_to_list
from batchscribe.engines.stats import RequestStats
from batchscribe.errors import NoAnswer, PermanentApiError, RetryableApiError
from batchscribe.run.cadence import POLL_SHARE, list_spacing, poll_budget, poll_spacing


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def attempt_until(policy_sleep: Sleeps, errors: list[Exception], attempts: int = 5) -> int:
    tries = 0
    async for attempt in retrying(
        attempts=attempts, base_delay=1.0, max_delay=8.0, sleep=policy_sleep
    ):
        with attempt:
            tries += 1
            if errors:
                raise errors.pop(0)
    return tries


async def test_retry_after_is_obeyed_exactly() -> None:
    sleeps = Sleeps()
    tries = await attempt_until(sleeps, [RetryableApiError("429", status=429, retry_after=7)])
    assert tries == 2 and sleeps.calls == [7.0]


async def test_retry_after_is_obeyed_beyond_the_backoff_ceiling_but_capped() -> None:
    sleeps = Sleeps()
    errors: list[Exception] = [
        RetryableApiError("429", status=429, retry_after=30),  # above max_delay (8)
        RetryableApiError("429", status=429, retry_after=MAX_RETRY_AFTER * 10),
        RetryableApiError("429", status=429, retry_after=-5),
    ]
    await attempt_until(sleeps, errors)
    assert sleeps.calls == [30.0, MAX_RETRY_AFTER, 0.0]


@pytest.fixture
def jitter_windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Records each jitter window drawn from, and waits its upper end."""
    windows: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        windows.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    return windows


async def test_backoff_draws_from_a_doubling_window_up_to_max_delay(
    jitter_windows: list[tuple[float, float]],
) -> None:
    sleeps = Sleeps()
    await attempt_until(sleeps, [RetryableApiError("500") for _ in range(5)], attempts=6)
    # full jitter: attempt n waits a random time in [0, min(max_delay, base * 2**(n-1))]
    assert jitter_windows == [(0, 1.0), (0, 2.0), (0, 4.0), (0, 8.0), (0, 8.0)]
    assert sleeps.calls == [1.0, 2.0, 4.0, 8.0, 8.0]


async def test_backoff_windows_start_from_base_delay(
    jitter_windows: list[tuple[float, float]],
) -> None:
    sleeps = Sleeps()
    async for attempt in retrying(attempts=4, base_delay=0.25, max_delay=8.0, sleep=sleeps):
        with attempt:
            if len(jitter_windows) < 3:
                raise RetryableApiError("500")
    assert jitter_windows == [(0, 0.25), (0, 0.5), (0, 1.0)]


async def test_backoff_waits_are_random_within_the_window() -> None:
    sleeps = Sleeps()
    await attempt_until(sleeps, [RetryableApiError("500") for _ in range(4)])
    assert all(0 <= s <= high for s, high in zip(sleeps.calls, [1, 2, 4, 8], strict=True))
    assert len(set(sleeps.calls)) == 4 and sum(sleeps.calls) > 0


async def test_gives_up_after_attempts_with_the_last_error() -> None:
    sleeps = Sleeps()
    with pytest.raises(RetryableApiError, match="last"):
        await attempt_until(
            sleeps, [RetryableApiError("first"), RetryableApiError("last")], attempts=2
        )


async def test_permanent_errors_are_not_retried() -> None:
    sleeps = Sleeps()
    with pytest.raises(PermanentApiError):
        await attempt_until(sleeps, [PermanentApiError("400")])
    assert sleeps.calls == []


def test_polls_and_listings_get_half_the_request_budget() -> None:
    assert POLL_SHARE == 0.5
    assert poll_budget(3000) == 25.0  # requests per second


def test_pages_to_list_is_one_per_full_page_and_one_for_the_rest() -> None:
    assert LIST_PAGE == 200
    pending = (0, 1, 199, 200, 1000, 20_000)
    assert [pages_to_list(n, page=LIST_PAGE) for n in pending] == [1, 1, 1, 2, 6, 101]
    assert pages_to_list(250, page=100) == 3


def test_poll_spacing_is_the_interval_until_the_budget_binds() -> None:
    assert poll_spacing(1, interval=3.0, requests_per_minute=3000) == 3.0
    assert poll_spacing(50, interval=3.0, requests_per_minute=3000) == 3.0
    # 1,000 pending at 3,000 requests/min (half for polls = 25/s): every 40 s each
    assert poll_spacing(1000, interval=3.0, requests_per_minute=3000) == 40.0


def test_list_spacing_keeps_listings_under_half_the_budget() -> None:
    assert list_spacing(40, every=0.5, requests_per_minute=3000, page=LIST_PAGE) == 0.5
    # pages of 100: 250 pending = 3 pages, at 25 requests/s
    assert list_spacing(250, every=0.0, requests_per_minute=3000, page=100) == 3 / 25
    # 6 pages / 25 per s
    assert list_spacing(1000, every=1.0, requests_per_minute=3000, page=LIST_PAGE) == 1.0
    # 20,000 pending = 101 pages a listing: one listing every 4.04 s keeps 25 requests/s
    assert list_spacing(20_000, every=1.0, requests_per_minute=3000, page=LIST_PAGE) == 101 / 25


async def test_429s_and_unanswered_requests_do_not_use_up_attempts() -> None:
    sleeps = Sleeps()
    slow_down = [RetryableApiError("429", status=429, retry_after=1.0) for _ in range(10)]
    nobody = [NoAnswer("connection refused") for _ in range(10)]
    errors: list[Exception] = [*slow_down, *nobody, RetryableApiError("503", status=503)]

    tries = await attempt_until(sleeps, errors, attempts=2)

    assert tries == 22  # 20 that do not count, one 503 and the success
    assert sleeps.calls[:10] == [1.0] * 10  # each 429 waits what the server said
    assert sleeps.calls[10:20] == [0.0] * 10  # the gate paces requests nobody answers


async def test_a_429_without_retry_after_backs_off_and_still_does_not_count() -> None:
    sleeps = Sleeps()
    errors: list[Exception] = [RetryableApiError("429", status=429) for _ in range(6)]
    with pytest.raises(RetryableApiError, match="503"):
        await attempt_until(sleeps, [*errors, RetryableApiError("503", status=503)], attempts=1)
    assert len(sleeps.calls) == 6 and all(0 <= wait <= 8.0 for wait in sleeps.calls)


@pytest.fixture
def retry_log() -> Iterator[list[logging.LogRecord]]:
    """What the retry policy logs at INFO, whatever the run's logging setup left behind."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("batchscribe.engines.assemblyai.retry")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_each_retry_is_logged_with_its_attempt_wait_and_error(
    retry_log: list[logging.LogRecord],
) -> None:
    sleeps = Sleeps()
    errors: list[Exception] = [RetryableApiError("503 busy", status=503, retry_after=7)]
    await attempt_until(sleeps, errors)
    assert [r.getMessage() for r in retry_log] == ["retry 1 in 7.0s after: 503 busy"]


async def test_each_retry_is_counted_in_the_request_stats_once() -> None:
    stats = RequestStats()
    errors: list[Exception] = [
        RetryableApiError("429", status=429, retry_after=1),
        RetryableApiError("503", status=503, retry_after=1),
    ]
    async for attempt in retrying(
        attempts=5, base_delay=1.0, max_delay=8.0, sleep=Sleeps(), stats=stats
    ):
        with attempt:
            if errors:
                raise errors.pop(0)
    assert stats.retries == 2


async def test_a_request_that_succeeds_at_once_counts_no_retry() -> None:
    stats = RequestStats()
    async for attempt in retrying(
        attempts=5, base_delay=1.0, max_delay=8.0, sleep=Sleeps(), stats=stats
    ):
        with attempt:
            pass
    assert stats.retries == 0
