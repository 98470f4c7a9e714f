"""The one retry policy for AssemblyAI requests: a pure schedule, sleeping injected.

Retries: exponential backoff with full jitter (AWS's "full jitter" keeps many clients from
retrying in lock-step), except that a `Retry-After` from the server is obeyed as given.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from batchscribe.engines.stats import RequestStats
from batchscribe.errors import ApiError, NoAnswer, RetryableApiError

Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger("batchscribe.engines.assemblyai.retry")

#: However many attempts are allowed, give up on one request after this long (seconds).
MAX_TOTAL_RETRY_TIME = 15 * 60.0
#: Never wait longer than this for one Retry-After, whatever the server says.
MAX_RETRY_AFTER = 300.0


class wait_retry_after(wait_base):
    """Wait what the server's Retry-After says; otherwise fall back to `fallback`."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, NoAnswer):
            return 0.0  # the gate paces requests while nothing answers (throttle.py)
        if isinstance(error, ApiError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), MAX_RETRY_AFTER)
        return float(self.fallback(retry_state))


def counts_as_attempt(error: BaseException | None) -> bool:
    """Whether a failure says something about the request itself. A 429 (the server asking
    the whole client to slow down) and no answer at all (the network) do not: time and the
    run's gate bound those, so they never use up a file's attempts."""
    if isinstance(error, NoAnswer):
        return False
    return not (isinstance(error, ApiError) and error.status == 429)


class stop_after_failures(stop_base):
    """Stop after `attempts` attempts that `counts_as_attempt`; one instance per request."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self.failures = 0

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if counts_as_attempt(outcome.exception() if outcome is not None else None):
            self.failures += 1
        return self.failures >= self.attempts


def backoff(*, base: float, maximum: float) -> wait_base:
    """Full-jitter exponential backoff: a random wait in [0, min(maximum, base * 2**n)]."""
    return wait_retry_after(wait_random_exponential(multiplier=base, max=maximum))


def retrying(
    *,
    attempts: int,
    base_delay: float,
    max_delay: float,
    sleep: Sleep,
    stats: RequestStats | None = None,
) -> AsyncRetrying:
    """A fresh policy for one request: retry RetryableApiError only, then re-raise the last one.

    Use one per request (`async for attempt in retrying(...)`): the attempt count is per request.
    Each retry is counted in `stats` (for --metrics-file) as it is decided.
    """

    def before_sleep(state: RetryCallState) -> None:
        if stats is not None:
            stats.retries += 1
        _log_retry(state)

    return AsyncRetrying(
        stop=stop_after_failures(attempts) | stop_after_delay(MAX_TOTAL_RETRY_TIME),
        wait=backoff(base=base_delay, maximum=max_delay),
        retry=retry_if_exception_type(RetryableApiError),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("retry %d in %.1fs after: %s", state.attempt_number, wait, error)
