"""The HTTP client and engine against aioresponses: requests, error shapes, status transitions."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from batchscribe.config import Settings
from batchscribe.engines.assemblyai.engine import AssemblyAIClient, AssemblyAIEngine
from batchscribe.engines.assemblyai.throttle import AdaptiveRate, Gate, Link
from batchscribe.engines.base import Finished, StillRunning, Submitted
from batchscribe.errors import (
    AuthError,
    InputError,
    PermanentApiError,
    RetryableApiError,
    TranscriptionFailed,
)
from batchscribe.fingerprint import Fingerprint
from batchscribe.recording import Recording, Resume
from tests.fakes import VirtualClock

BASE = "https://api.example.test"
KEY = "unit-key"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Checkpoints:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def transcribing(self) -> None:
        self.events.append(("transcribing", ""))

    def heard(self, seconds: float, of: float | None) -> None:
        self.events.append(("heard", f"{seconds}/{of}"))

    async def uploaded(self, upload_url: str) -> None:
        self.events.append(("uploaded", upload_url))

    async def submitted(self, transcript_id: str) -> None:
        self.events.append(("submitted", transcript_id))


class _FinishedUpload:
    output_size = 0


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 requires `stream_writer`, which aioresponses 0.7.x does not pass
    (pnuckowski/aioresponses#289); supply a finished one until a fixed release exists."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _FinishedUpload())
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Any:
    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr("aioresponses.core.ClientResponse", _CompatResponse)
    with aioresponses() as m:
        yield m


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def gate_time() -> VirtualClock:
    return VirtualClock(now=0.0)


@pytest.fixture
def client(
    session: aiohttp.ClientSession, sleeps: Sleeps, gate_time: VirtualClock
) -> AssemblyAIClient:
    gate = Gate(
        AdaptiveRate(ceiling=50.0),
        Link(host="api.example.test", unreachable_timeout=30.0),
        clock=gate_time,
        sleep=gate_time.sleep,
    )
    settings = Settings(retry_attempts=3).assemblyai()
    return AssemblyAIClient(
        session, base_url=BASE + "/", api_key=KEY, settings=settings, sleep=sleeps, gate=gate
    )


def recording(path: Path, resume: Resume | None = None) -> Recording:
    return Recording(path, Fingerprint.of(path.stat()), resume)


async def test_upload_streams_the_file_with_the_key(
    mocked: Any, client: AssemblyAIClient, tmp_path: Path
) -> None:
    audio = tmp_path / "a.mp3"
    audio.write_bytes(b"x" * (3 * 1024 * 1024 + 5))
    seen: dict[str, Any] = {}

    async def capture(url: Any, **kwargs: Any) -> CallbackResult:
        seen["headers"] = kwargs["headers"]
        data = kwargs["data"]  # aioresponses drains the stream into bytes before calling back
        seen["bytes"] = data if isinstance(data, bytes) else b"".join([c async for c in data])
        return CallbackResult(payload={"upload_url": "https://cdn/up/1"})

    mocked.post(f"{BASE}/v2/upload", callback=capture)
    assert await client.upload(audio, audio.stat().st_size) == "https://cdn/up/1"
    assert seen["headers"]["Authorization"] == KEY
    assert seen["bytes"] == audio.read_bytes()


async def test_create_sends_audio_url_and_options(mocked: Any, client: AssemblyAIClient) -> None:
    mocked.post(f"{BASE}/v2/transcript", payload={"id": "t1", "status": "queued"})
    body = await client.create_transcript("https://cdn/up/1", {"speaker_labels": True})
    assert body["id"] == "t1"
    ((_, call),) = [(k, v[0]) for k, v in mocked.requests.items()]
    assert call.kwargs["json"] == {"speaker_labels": True, "audio_url": "https://cdn/up/1"}


@pytest.mark.parametrize("status", ["queued", "processing"])
async def test_poll_unfinished_is_still_running(
    mocked: Any, client: AssemblyAIClient, status: str
) -> None:
    mocked.get(f"{BASE}/v2/transcript/t1", payload={"id": "t1", "status": status})
    assert isinstance(
        await AssemblyAIEngine(client, Settings().assemblyai()).poll("t1"), StillRunning
    )


async def test_poll_completed_returns_the_whole_object(
    mocked: Any, client: AssemblyAIClient
) -> None:
    obj = {"id": "t1", "status": "completed", "text": "hi", "words": [], "extra": {"a": 1}}
    mocked.get(f"{BASE}/v2/transcript/t1", payload=obj)
    result = await AssemblyAIEngine(client, Settings().assemblyai()).poll("t1")
    assert isinstance(result, Finished) and dict(result.transcript.data) == obj


async def test_poll_error_fails_with_the_api_text(mocked: Any, client: AssemblyAIClient) -> None:
    mocked.get(
        f"{BASE}/v2/transcript/t1",
        payload={"id": "t1", "status": "error", "error": "Transcoding failed."},
    )
    with pytest.raises(TranscriptionFailed, match="Transcoding failed"):
        await AssemblyAIEngine(client, Settings().assemblyai()).poll("t1")


async def test_401_is_an_auth_error_without_the_key(mocked: Any, client: AssemblyAIClient) -> None:
    mocked.get(
        f"{BASE}/v2/transcript/t1",
        status=401,
        payload={"error": "Authentication error, API token missing/invalid"},
    )
    with pytest.raises(AuthError) as err:
        await client.get_transcript("t1")
    assert KEY not in str(err.value) and "401" in str(err.value)


async def test_400_keeps_the_api_message_and_is_not_retried(
    mocked: Any, client: AssemblyAIClient, sleeps: Sleeps
) -> None:
    mocked.post(
        f"{BASE}/v2/transcript", status=400, payload={"error": "format_text must be a Boolean"}
    )
    with pytest.raises(PermanentApiError, match="format_text must be a Boolean"):
        await client.create_transcript("u", {})
    assert sleeps.calls == []


async def test_429_waits_retry_after_then_succeeds(
    mocked: Any, client: AssemblyAIClient, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{BASE}/v2/transcript/t1",
        status=429,
        headers={"Retry-After": "4"},
        payload={"error": "Too Many Requests"},
    )
    mocked.get(f"{BASE}/v2/transcript/t1", payload={"id": "t1", "status": "queued"})
    assert (await client.get_transcript("t1"))["status"] == "queued"
    assert sleeps.calls == [4.0]


async def test_5xx_and_resets_are_retried_then_give_up(
    mocked: Any, client: AssemblyAIClient, sleeps: Sleeps
) -> None:
    mocked.get(f"{BASE}/v2/transcript/t1", status=503, body="")
    mocked.get(f"{BASE}/v2/transcript/t1", exception=aiohttp.ServerDisconnectedError())
    mocked.get(f"{BASE}/v2/transcript/t1", status=500, payload={"error": "Internal"})
    with pytest.raises(RetryableApiError, match="HTTP 500"):
        await client.get_transcript("t1")
    assert len(sleeps.calls) == 2


async def test_start_uploads_then_creates_and_checkpoints_each_step(
    mocked: Any, client: AssemblyAIClient, tmp_path: Path
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF....")
    mocked.post(f"{BASE}/v2/upload", payload={"upload_url": "https://cdn/up/9"})
    mocked.post(f"{BASE}/v2/transcript", payload={"id": "t9", "status": "queued"})
    checkpoints = Checkpoints()
    result = await AssemblyAIEngine(client, Settings().assemblyai()).start(
        recording(audio), checkpoints
    )
    assert result == Submitted("t9")
    assert checkpoints.events == [("uploaded", "https://cdn/up/9"), ("submitted", "t9")]


async def test_resume_with_transcript_id_makes_no_request(
    mocked: Any, client: AssemblyAIClient, tmp_path: Path
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    resume = Resume(transcript_id="t5")
    result = await AssemblyAIEngine(client, Settings().assemblyai()).start(
        recording(audio, resume), Checkpoints()
    )
    assert result == Submitted("t5") and not mocked.requests


async def test_empty_file_fails_before_any_request(
    mocked: Any, client: AssemblyAIClient, tmp_path: Path
) -> None:
    audio = tmp_path / "empty.mp3"
    audio.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        await AssemblyAIEngine(client, Settings().assemblyai()).start(
            recording(audio), Checkpoints()
        )
    assert not mocked.requests


class CountingLimiter:
    def __init__(self) -> None:
        self.taken = 0

    async def acquire(self, amount: float = 1) -> None:
        self.taken += 1


async def test_every_request_and_retry_takes_a_token_of_the_budget(
    mocked: Any, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    limiter = CountingLimiter()
    client = AssemblyAIClient(
        session,
        base_url=BASE,
        api_key=KEY,
        settings=Settings(retry_attempts=3).assemblyai(),
        sleep=sleeps,
        limiter=limiter,
    )
    mocked.get(f"{BASE}/v2/transcript/t1", status=500, payload={"error": "x"})
    mocked.get(f"{BASE}/v2/transcript/t1", payload={"id": "t1", "status": "queued"})
    mocked.post(f"{BASE}/v2/transcript", payload={"id": "t2", "status": "queued"})
    await client.get_transcript("t1")
    await client.create_transcript("u", {})
    assert limiter.taken == 3
