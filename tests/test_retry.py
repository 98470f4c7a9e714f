from __future__ import annotations

import pytest

from batchscribe.errors import PermanentApiError, RetryableApiError
from batchscribe.retry import list_spacing, poll_spacing, retrying


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


async def test_backoff_is_jittered_and_capped() -> None:
    sleeps = Sleeps()
    await attempt_until(sleeps, [RetryableApiError("500") for _ in range(4)])
    assert len(sleeps.calls) == 4
    assert all(0 <= s <= 8.0 for s in sleeps.calls)


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


def test_poll_spacing_is_the_interval_until_the_budget_binds() -> None:
    assert poll_spacing(1, interval=3.0, requests_per_minute=3000) == 3.0
    assert poll_spacing(50, interval=3.0, requests_per_minute=3000) == 3.0
    # 1,000 pending at 3,000 requests/min (half for polls = 25/s): every 40 s each
    assert poll_spacing(1000, interval=3.0, requests_per_minute=3000) == 40.0


def test_list_spacing_keeps_listings_under_half_the_budget() -> None:
    assert list_spacing(40, every=0.5, requests_per_minute=3000) == 0.5
    assert list_spacing(1000, every=1.0, requests_per_minute=3000) == 1.0  # 6 pages / 25 per s
    # 20,000 pending = 101 pages a listing: one listing every 4.04 s keeps 25 requests/s
    assert list_spacing(20_000, every=1.0, requests_per_minute=3000) == 101 / 25
