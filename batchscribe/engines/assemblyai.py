"""AssemblyAI over HTTP: upload (streamed), create transcript, poll, list, delete.

`AssemblyAIClient` is the thin HTTP layer (one request = one method, errors mapped to the
exception tree, the retry policy around each request). `AssemblyAIEngine` is the Engine the
pipeline drives: it resumes from the journal's record and never re-creates a transcript.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import aiofiles
import aiofiles.threadpool
import aiohttp
from aiofiles.threadpool.binary import AsyncBufferedReader
from aiolimiter import AsyncLimiter

from batchscribe import __version__
from batchscribe.config import Settings
from batchscribe.engines.base import Checkpoint, Finished, StillRunning, Submitted
from batchscribe.errors import (
    AuthError,
    InputError,
    PermanentApiError,
    RetryableApiError,
    TranscriptionFailed,
)
from batchscribe.fingerprint import Fingerprint
from batchscribe.retry import Sleep, retrying
from batchscribe.scan import Job
from batchscribe.transcript import Transcript

log = logging.getLogger("batchscribe.assemblyai")

#: Read and send uploads in pieces this big: memory stays flat whatever the file size.
UPLOAD_CHUNK = 1024 * 1024
#: Connect and per-read timeouts: generous for slow links, finite so nothing hangs forever.
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0
#: Uploads get a total timeout that scales with size, assuming at least 64 KiB/s of uplink.
UPLOAD_MIN_BYTES_PER_SECOND = 64 * 1024
#: The `audio_url` of a deleted transcript (DeleteTranscriptResponse in the API reference).
DELETED_AUDIO_URL = "http://deleted_by_user"
#: The list endpoint's largest page.
LIST_PAGE = 200
#: Pages listed beyond those our own pending transcripts fill: room for other clients' jobs.
LIST_EXTRA_PAGES = 2
#: Pages of `GET /v2/transcript` searched when adopting a transcript created before a crash.
ADOPT_SEARCH_PAGES = 5


class Limiter(Protocol):
    """What the client needs of a rate limiter (aiolimiter.AsyncLimiter; a counter in tests)."""

    async def acquire(self, amount: float = 1) -> None: ...


class AssemblyAIClient:
    """One method per endpoint on a session and base URL given from outside (tests use a fake).

    Every request goes through the retry policy; failures come out as ApiError subclasses
    whose messages never contain the key.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        settings: Settings,
        sleep: Sleep = asyncio.sleep,
        limiter: Limiter | None = None,
    ) -> None:
        self._session = session
        # Every request of the run, uploads and polls alike, takes a token: a sustained
        # requests_per_minute, with bursts of up to a minute's worth, so any five minutes stay
        # under the API's 20,000 requests however many files there are.
        self._limiter = limiter or AsyncLimiter(settings.requests_per_minute, 60)
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": api_key, "User-Agent": f"batchscribe/{__version__}"}
        self._settings = settings
        self._sleep = sleep

    async def upload(self, path: Path, size: int) -> str:
        """Stream `path` to `/v2/upload` and return its `upload_url`.

        Each attempt re-opens the file and streams it from the start.
        """
        timeout = aiohttp.ClientTimeout(
            total=READ_TIMEOUT + size / UPLOAD_MIN_BYTES_PER_SECOND,
            sock_connect=CONNECT_TIMEOUT,
        )

        async def send() -> dict[str, Any]:
            # Opened per attempt, synchronously (one syscall): aiofiles.open runs in a thread
            # and leaks the handle if cancelled midway; this one is closed whatever happens.
            with open(path, "rb") as raw:  # noqa: ASYNC230
                fh = aiofiles.threadpool.wrap(raw)
                return await self._once(
                    "POST",
                    "/v2/upload",
                    data=_chunks(fh),
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=timeout,
                )

        body = await self._retrying(send)
        return _field(body, "upload_url", "POST upload")

    async def create_transcript(
        self,
        audio_url: str,
        options: dict[str, Any],
        *,
        recover: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
    ) -> dict[str, Any]:
        """Create a transcript. Creating is billable and not idempotent: before retrying after
        a failure that may have happened after the server acted (a dropped connection, a 5xx),
        `recover` is asked for the transcript that request may have created."""
        body = {**options, "audio_url": audio_url}
        return await self._retrying(
            lambda: self._once("POST", "/v2/transcript", json=body), recover=recover
        )

    async def get_transcript(self, transcript_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v2/transcript/{transcript_id}")

    async def list_transcripts(self, **params: str | int) -> dict[str, Any]:
        return await self._request("GET", "/v2/transcript", params=params)

    async def delete_transcript(self, transcript_id: str) -> dict[str, Any]:
        return await self._request("DELETE", f"/v2/transcript/{transcript_id}")

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return await self._retrying(lambda: self._once(method, path, **kwargs))

    async def _retrying(
        self,
        send: Callable[[], Awaitable[dict[str, Any]]],
        *,
        recover: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
    ) -> dict[str, Any]:
        """Run one request under the retry policy; re-raises the last error."""
        policy = retrying(
            attempts=self._settings.retry_attempts,
            base_delay=self._settings.retry_base_delay,
            max_delay=self._settings.retry_max_delay,
            sleep=self._sleep,
        )
        maybe_acted = False
        async for attempt in policy:
            with attempt:
                if maybe_acted and recover is not None and (found := await recover()):
                    return found
                try:
                    return await send()
                except RetryableApiError as err:
                    # Sticky: once a request may have reached the server, every later attempt
                    # asks `recover` first, even after a plain 429.
                    maybe_acted = maybe_acted or err.status is None or err.status >= 500
                    raise
        raise AssertionError("unreachable: the retry policy re-raises")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,  # noqa: ASYNC109 (aiohttp per-request)
        **kwargs: Any,
    ) -> dict[str, Any]:
        what = f"{method} {path.split('/')[2] if path.count('/') >= 2 else path}"
        if timeout is None:
            timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        await self._limiter.acquire()
        log.debug("%s %s", method, path)
        try:
            async with self._session.request(
                method,
                self._base + path,
                headers={**self._headers, **(headers or {})},
                data=data,
                timeout=timeout,
                **kwargs,
            ) as resp:
                if resp.status == 200:
                    body = await resp.json(content_type=None)
                    if not isinstance(body, dict):
                        raise RetryableApiError(f"{what}: unexpected response from the API")
                    return body
                text = await resp.text()
                raise error_for_status(resp.status, text, resp.headers.get("Retry-After"), what)
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            reason = "timed out" if isinstance(err, asyncio.TimeoutError) else type(err).__name__
            raise RetryableApiError(f"{what}: network error ({reason})") from None


def error_for_status(status: int, body: str, retry_after: str | None, what: str) -> Exception:
    """Map an HTTP error to the exception tree, keeping the API's own `error` text."""
    try:
        detail = str(json.loads(body).get("error") or "").strip()
    except (ValueError, AttributeError):
        detail = ""
    detail = detail or body.strip()[:200] or "no details"
    message = f"{what} failed: HTTP {status} ({detail})"
    if status == 401:
        return AuthError(
            "AssemblyAI rejected the API key (HTTP 401). Check ASSEMBLYAI_API_KEY or "
            "[assemblyai] api_key, and that --api-url points at the right region."
        )
    if status == 429 or status >= 500:
        return RetryableApiError(message, status=status, retry_after=_seconds(retry_after))
    return PermanentApiError(message, status=status)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare here; fall back to our own backoff


async def _chunks(fh: AsyncBufferedReader) -> AsyncIterator[bytes]:
    while chunk := await fh.read(UPLOAD_CHUNK):
        yield chunk


class AssemblyAIEngine:
    """The Engine for AssemblyAI: upload, create, then leave it to the poller."""

    name = "assemblyai"

    def __init__(
        self,
        client: AssemblyAIClient,
        settings: Settings,
        *,
        options: dict[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._options = options or {}
        self._session = session

    async def start(self, job: Job, checkpoint: Checkpoint) -> Submitted:
        record = job.record
        if record is not None and record.fingerprint == job.fingerprint:
            if record.transcript_id:
                return Submitted(record.transcript_id)  # never re-create: only poll it
            if record.upload_url and self._fresh(record.uploaded_at):
                adopted = await self._find_existing(record.upload_url)
                if adopted is not None:
                    checkpoint.submitted(adopted)
                    return Submitted(adopted)
                try:
                    return await self._create(record.upload_url, checkpoint)
                except PermanentApiError as err:
                    log.info("%s: stored upload unusable (%s); uploading again", job.source, err)
        url = await self._upload(job)
        checkpoint.uploaded(url)
        return await self._create(url, checkpoint)

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        body = await self._client.get_transcript(transcript_id)
        status = body.get("status")
        if status == "completed" and body.get("audio_url") == DELETED_AUDIO_URL:
            # What GET returns for a deleted transcript: "Deleted by user.", never a result.
            raise TranscriptionFailed(
                "its transcript was deleted from AssemblyAI before the outputs were written; "
                "it will be transcribed again on the next run",
                permanent=False,
            )
        if status == "completed":
            return Finished(Transcript(body))
        if status == "error":
            raise TranscriptionFailed(f"AssemblyAI could not transcribe it: {body.get('error')}")
        return StillRunning()

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        """Page back through `GET /v2/transcript` (newest first) until every id is seen."""
        seen: dict[str, bool] = {}
        params: dict[str, str | int] = {"limit": LIST_PAGE}
        for _ in range(len(transcript_ids) // LIST_PAGE + LIST_EXTRA_PAGES):
            page = await self._client.list_transcripts(**params)
            items = page.get("transcripts") or []
            for item in items:
                if item.get("id") in transcript_ids:
                    seen[str(item["id"])] = item.get("status") in ("completed", "error")
            if len(seen) == len(transcript_ids) or not items:
                break
            if not (page.get("page_details") or {}).get("prev_url"):
                break
            params = {"limit": LIST_PAGE, "before_id": str(items[-1]["id"])}
        return seen

    async def delete(self, transcript_id: str) -> None:
        await self._client.delete_transcript(transcript_id)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _fresh(self, uploaded_at: float | None) -> bool:
        """Uploads expire on AssemblyAI's side; an old one is uploaded again, not submitted."""
        return uploaded_at is not None and time.time() - uploaded_at < self._settings.upload_ttl

    async def _upload(self, job: Job) -> str:
        size = _check_source(job.source, job.fingerprint, self._settings.max_upload_bytes)
        url = await self._client.upload(job.source, size)
        # The bytes sent must be the bytes fingerprinted, or the transcript belongs to no file.
        try:
            after = Fingerprint.of(os.stat(job.source))
        except OSError:
            after = None
        if after != job.fingerprint:
            raise InputError("changed or disappeared during upload; it will be redone next run")
        return url

    async def _create(self, upload_url: str, checkpoint: Checkpoint) -> Submitted:
        async def adopt() -> dict[str, Any] | None:
            found = await self._find_existing(upload_url)
            return {"id": found} if found else None

        body = await self._client.create_transcript(upload_url, self._options, recover=adopt)
        transcript_id = _field(body, "id", "POST transcript")
        checkpoint.submitted(transcript_id)
        return Submitted(transcript_id)

    async def _find_existing(self, upload_url: str) -> str | None:
        """A transcript created for this upload before a crash kept us from journaling its id.

        Raises RetryableApiError when the list cannot be read: then nobody can tell whether
        one exists, and creating another could pay twice; the file waits for the next run.
        """
        params: dict[str, str | int] = {"limit": LIST_PAGE}
        for _ in range(ADOPT_SEARCH_PAGES):
            try:
                page = await self._client.list_transcripts(**params)
            except PermanentApiError:
                return None  # the service cannot list: no way to adopt, nothing to fear
            for item in page.get("transcripts") or []:
                if item.get("audio_url") == upload_url and item.get("status") != "error":
                    return str(item["id"])
            items = page.get("transcripts") or []
            prev_url = (page.get("page_details") or {}).get("prev_url")
            if not prev_url or not items:
                return None
            params = {"limit": LIST_PAGE, "before_id": str(items[-1]["id"])}
        return None


def _field(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise RetryableApiError(f"{what}: the API's answer has no '{name}'")
    return value


def _check_source(path: Path, expected: Fingerprint, limit: int) -> int:
    """Refuse files that cannot or must not be uploaded, before a byte is sent."""
    try:
        st = os.stat(path)
        with open(path, "rb"):
            pass
    except OSError as err:
        raise InputError(f"cannot read it ({err.strerror}); check its permissions") from None
    if Fingerprint.of(st) != expected:
        raise InputError("changed since it was scanned; it will be redone next run")
    if st.st_size == 0:
        raise InputError("empty file (0 bytes); nothing to transcribe", permanent=True)
    if st.st_size > limit:
        raise InputError(
            f"{st.st_size / 1e9:.2f} GB is over the {limit / 1e9:.2f} GB upload limit "
            "(max_upload_bytes); split or compress it",
            permanent=True,
        )
    return st.st_size


def create_engine(settings: Settings) -> AssemblyAIEngine:
    """The engine with its own session: pooled connections sized for the workers and poller."""
    assert settings.api_key, "config.validate guarantees a key for this engine"
    connector = aiohttp.TCPConnector(limit=settings.concurrency + POLL_CONNECTIONS)
    session = aiohttp.ClientSession(connector=connector)
    client = AssemblyAIClient(
        session, base_url=settings.base_url, api_key=settings.api_key, settings=settings
    )
    return AssemblyAIEngine(client, settings, options=settings.transcript_options, session=session)


#: Connections kept for the poller beside the workers' uploads.
POLL_CONNECTIONS = 8
