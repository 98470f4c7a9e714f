"""The single poller: unit tests on a fake engine and a fake clock (no HTTP, no real waiting),
then through the real CLI and the fake API: request economy and max-wait."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.engines.base import Finished, StillRunning
from batchscribe.errors import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    FileError,
    PermanentApiError,
    RetryableApiError,
    TranscriptionFailed,
)
from batchscribe.run.cadence import LIST_FROM
from batchscribe.run.poller import Poller
from batchscribe.transcript import Transcript
from tests.fakeapi import FakeServer
from tests.fakes import journal_states
from tests.kit import api_env, run_cli, speech, write_config

#: Virtual seconds after which a poller still waiting is taken to be stuck.
HORIZON = 24 * 3600.0


class FakeClock:
    """Virtual time for the poller: `wait` lets the other tasks run, then jumps the clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, seconds: float | None) -> None:
        # Polls in flight on the fake engine settle within a few turns of the loop.
        for _ in range(20):
            if event.is_set():
                return
            await asyncio.sleep(0)
        if seconds is None:  # every pending one is being fetched: wait for one to settle
            await event.wait()
            return
        self.now += seconds
        assert self.now < 1000.0 + HORIZON, "the poller never settled what it watches"


@dataclass
class FakeEngine:
    """An in-memory Engine: each transcript finishes at a virtual time, or fails."""

    clock: FakeClock
    listing_page = 200
    ready_at: dict[str, float] = field(default_factory=dict)
    errors: dict[str, FileError] = field(default_factory=dict)
    #: polls of a transcript that fail with a retryable error before one gets through
    flaky: Counter[str] = field(default_factory=Counter)
    listing_error: Exception | None = None
    #: turns of the event loop one fetch of a finished transcript takes
    fetch_turns: int = 0
    polls: Counter[str] = field(default_factory=Counter)
    fetched_at: dict[str, float] = field(default_factory=dict)
    listings: list[float] = field(default_factory=list)
    name: str = "fake"

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        self.polls[transcript_id] += 1
        if transcript_id in self.errors:
            raise self.errors[transcript_id]
        if self.flaky[transcript_id] > 0:
            self.flaky[transcript_id] -= 1
            raise RetryableApiError("503 Service Unavailable", status=503)
        if self.clock() < self.ready_at[transcript_id]:
            return StillRunning()
        self.fetched_at[transcript_id] = self.clock()
        for _ in range(self.fetch_turns):
            await asyncio.sleep(0)
        return Finished(Transcript({"id": transcript_id, "text": transcript_id}))

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        self.listings.append(self.clock())
        if self.listing_error is not None:
            raise self.listing_error
        return {i: self.clock() >= self.ready_at[i] for i in transcript_ids}


@dataclass(frozen=True)
class FakeJob:
    source: Path


@dataclass
class Outcomes:
    finished: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, FileError]] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)

    async def finish(self, job: FakeJob, transcript: Transcript) -> None:
        assert transcript.text == job.source.name
        self.finished[job.source.name] += 1

    async def fail(self, job: FakeJob, error: FileError) -> None:
        self.failed.append((job.source.name, error))

    def give_up(self, job: FakeJob) -> None:
        self.given_up.append(job.source.name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(clock: FakeClock) -> FakeEngine:
    return FakeEngine(clock)


async def watch(
    engine: FakeEngine, clock: FakeClock, ready_in: dict[str, float], *, max_wait: float = 3600.0
) -> Outcomes:
    """Submit one transcript per key of `ready_in` (seconds from now), run the poller to the end."""
    outcomes = Outcomes()
    poller: Poller[FakeJob] = Poller(
        lambda: engine,  # an Engine as far as the poller looks: `poll` and `finished`
        Settings(poll_interval=3.0, requests_per_minute=3000, max_wait=max_wait).assemblyai(),
        finish=outcomes.finish,
        fail=outcomes.fail,
        give_up=outcomes.give_up,
        clock=clock,
        wait=clock.wait,
    )
    for transcript_id, seconds in ready_in.items():
        engine.ready_at[transcript_id] = clock() + seconds
        poller.add(FakeJob(Path(transcript_id)), transcript_id)
    poller.close()
    async with asyncio.timeout(10):  # wall-clock guard: the test itself never sleeps
        await poller.run()
    assert poller.pending == {}
    return outcomes


async def test_a_few_pending_are_polled_each_every_poll_interval(
    engine: FakeEngine, clock: FakeClock
) -> None:
    outcomes = await watch(engine, clock, {"a": 7.0, "b": 1.0})

    assert engine.listings == []
    # first look after 0.25 s, then every 3 s: a at 0.25, 3.25, 6.25, 9.25; b at 0.25, 3.25
    assert engine.polls == {"a": 4, "b": 2}
    assert outcomes.finished == {"a": 1, "b": 1}


async def test_many_pending_are_watched_by_listing_and_each_fetched_once(
    engine: FakeEngine, clock: FakeClock
) -> None:
    # one a second, then the last LIST_FROM together: listing all the way
    ready_in = {f"t{i}": 5.0 + i for i in range(8)} | {f"u{i}": 20.0 for i in range(LIST_FROM)}

    outcomes = await watch(engine, clock, ready_in)

    assert engine.polls == dict.fromkeys(ready_in, 1)
    assert outcomes.finished == dict.fromkeys(ready_in, 1)
    # fast listings while they finish: each fetched within a quarter second of finishing
    lateness = [engine.fetched_at[i] - engine.ready_at[i] for i in ready_in]
    assert max(lateness) <= 0.25 + 1e-9


async def test_a_refused_listing_falls_back_to_polling_one_by_one(
    engine: FakeEngine, clock: FakeClock
) -> None:
    engine.listing_error = PermanentApiError("400: listing not allowed", status=400)
    ready_in = dict.fromkeys(("a", "b", "c", "d", "e"), 4.0)

    outcomes = await watch(engine, clock, ready_in)

    assert len(engine.listings) == 1
    # one by one: polled at 0.25 s (still running), 3.25 s (still running), 6.25 s (finished)
    assert engine.polls == dict.fromkeys(ready_in, 3)
    assert outcomes.finished == dict.fromkeys(ready_in, 1)


async def test_a_failed_listing_is_tried_again_and_meanwhile_each_is_polled(
    engine: FakeEngine, clock: FakeClock
) -> None:
    engine.listing_error = RetryableApiError("503")
    ready_in = dict.fromkeys(("a", "b", "c", "d"), 1.0)

    outcomes = await watch(engine, clock, ready_in)

    assert outcomes.finished == dict.fromkeys(ready_in, 1)
    assert len(engine.listings) >= 1 and sum(engine.polls.values()) >= 4


async def test_max_wait_while_listing_gives_up_and_leaves_the_transcript(
    engine: FakeEngine, clock: FakeClock
) -> None:
    ready_in = {f"t{i}": 3600.0 for i in range(LIST_FROM + 1)}

    outcomes = await watch(engine, clock, ready_in, max_wait=60.0)

    assert sorted(outcomes.given_up) == sorted(ready_in)
    # left submitted for the next run: never failed, never fetched, never finished
    assert outcomes.failed == [] and outcomes.finished == {}
    assert engine.polls == {}
    assert 60.0 < engine.listings[-1] - 1000.0 <= 63.0


async def test_max_wait_while_polling_one_by_one_gives_up(
    engine: FakeEngine, clock: FakeClock
) -> None:
    outcomes = await watch(engine, clock, {"slow": 3600.0}, max_wait=10.0)

    assert outcomes.given_up == ["slow"] and outcomes.failed == []
    assert engine.polls == {"slow": 5}  # 0.25, 3.25, 6.25, 9.25, 12.25 s


async def test_quiet_listings_back_off_to_the_poll_interval(
    engine: FakeEngine, clock: FakeClock
) -> None:
    ready_in = {f"t{i}": 3600.0 for i in range(LIST_FROM)}

    await watch(engine, clock, ready_in, max_wait=120.0)

    # 10 s at 0.25 s (40 listings), doubling to 3 s (5 more), then 3 s for the rest (~35)
    assert 70 <= len(engine.listings) <= 90
    gaps = [b - a for a, b in zip(engine.listings, engine.listings[1:], strict=False)]
    assert gaps[0] == pytest.approx(0.25) and gaps[-1] == pytest.approx(3.0)


async def test_a_finished_transcript_is_finished_once_while_its_fetch_is_slow(
    engine: FakeEngine, clock: FakeClock
) -> None:
    # the fetch outlasts a wait, so listings that see it finished come while it is in flight
    engine.fetch_turns = 100
    ready_in = {"quick": 1.0} | {f"t{i}": 30.0 for i in range(LIST_FROM)}

    outcomes = await watch(engine, clock, ready_in)

    assert outcomes.finished == dict.fromkeys(ready_in, 1)
    assert engine.polls == dict.fromkeys(ready_in, 1)


async def test_an_error_status_fails_the_file_and_nothing_else(
    engine: FakeEngine, clock: FakeClock
) -> None:
    engine.errors["bad"] = TranscriptionFailed("transcription failed: not audio")

    outcomes = await watch(engine, clock, {"bad": 1.0, "good": 1.0})

    assert [(name, str(err)) for name, err in outcomes.failed] == [
        ("bad", "transcription failed: not audio")
    ]
    assert outcomes.finished == {"good": 1} and outcomes.given_up == []
    assert engine.polls["bad"] == 1


async def test_a_retryable_poll_error_is_tried_again_one_interval_later(
    engine: FakeEngine, clock: FakeClock
) -> None:
    engine.flaky["a"] = 2

    outcomes = await watch(engine, clock, {"a": 1.0})

    assert outcomes.finished == {"a": 1} and outcomes.failed == []
    assert engine.polls["a"] == 3
    assert engine.fetched_at["a"] - engine.ready_at["a"] == pytest.approx(6.25 - 1.0)


def requests_by_kind(fake: FakeServer) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for method, path in fake.api.requests:
        kinds[f"{method} {'/v2/transcript/{id}' if path.count('/') == 3 else path}"] += 1
    return kinds


def test_many_pending_are_watched_with_one_listing_not_a_get_each(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.processing_seconds = 0.5
    config = write_config(tmp_path / "c.toml", assemblyai={"poll_interval": 0.1})
    root = tmp_path / "r"
    root.mkdir()
    for i in range(30):
        (root / f"{i}.mp3").write_bytes(speech(f"file {i}"))

    result = run_cli(str(root), "-c", "8", "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    kinds = requests_by_kind(fake)
    # each transcript fetched once, when finished; the waiting is done by listing
    assert kinds["GET /v2/transcript/{id}"] == 30
    assert 1 <= kinds["GET /v2/transcript"] < 30
    assert fake.api.request_count / 30 <= 3.5


def test_a_few_pending_are_polled_one_by_one(fake: FakeServer, tmp_path: Path) -> None:
    fake.api.processing_seconds = 0.3
    config = write_config(tmp_path / "c.toml", assemblyai={"poll_interval": 0.05})
    (tmp_path / "a.mp3").write_bytes(speech("only one"))

    result = run_cli(str(tmp_path / "a.mp3"), "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK
    kinds = requests_by_kind(fake)
    assert kinds["GET /v2/transcript"] == 0 and kinds["GET /v2/transcript/{id}"] >= 2


def test_max_wait_leaves_the_transcript_for_the_next_run_without_paying_again(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.processing_seconds = 3600
    config = write_config(tmp_path / "c.toml", assemblyai={"poll_interval": 0.05})
    root = tmp_path / "r"
    root.mkdir()
    (root / "slow.mp3").write_bytes(speech("worth the wait"))

    result = run_cli(str(root), "--max-wait", "0.2", "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED
    assert "still processing" in result.output
    assert journal_states(root) == {"slow.mp3": "submitted"}

    fake.api.processing_seconds = 0
    fake.api.reset_counters()
    again = run_cli(str(root), "--config", str(config), env=api_env(fake))

    assert again.exit_code == EXIT_OK, again.output
    assert (root / "slow.txt").read_text() == "worth the wait\n"
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
