"""AssemblyAI's HTTP API, one method a request: streamed uploads, creates, gets, lists, deletes.

Every request takes a token from the run's request budget and goes through the one retry
policy (`retry.py`); failures come out as ApiError subclasses whose messages never contain
the key. The session and base URL come from outside, so tests point it at a fake.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import aiofiles
import aiofiles.threadpool
import aiohttp
from aiofiles.threadpool.binary import AsyncBufferedReader
from aiolimiter import AsyncLimiter

from batchscribe import __version__
from batchscribe.engines.assemblyai.retry import Sleep, retrying
from batchscribe.engines.assemblyai.throttle import AdaptiveRate, Gate, Link
from batchscribe.engines.stats import RequestStats
from batchscribe.errors import (
    AuthError,
    FatalApiError,
    NoAnswer,
    PermanentApiError,
    RetryableApiError,
)
from batchscribe.lines import shown_url
from batchscribe.settings.parts import AssemblyAISettings

log = logging.getLogger("batchscribe.assemblyai")

#: Read and send uploads in pieces this big: memory stays flat whatever the file size.
UPLOAD_CHUNK = 1024 * 1024
#: Connect and per-read timeouts: generous for slow links, finite so nothing hangs forever; a
#: connect is short (a black-holed host is noticed within a few attempts, not minutes).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
#: Uploads get a total timeout that scales with size, assuming at least 64 KiB/s of uplink.
UPLOAD_MIN_BYTES_PER_SECOND = 64 * 1024


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
        settings: AssemblyAISettings,
        sleep: Sleep = asyncio.sleep,
        limiter: Limiter | None = None,
        gate: Gate | None = None,
    ) -> None:
        self._session = session
        # Every request of the run, uploads and polls alike, takes a token: a sustained
        # requests_per_minute, with bursts of up to a minute's worth, so any five minutes stay
        # under the API's 20,000 requests however many files there are.
        self._limiter = limiter or AsyncLimiter(settings.requests_per_minute, 60)
        # Below that ceiling, the pace the server allows (429s) and whether it answers at all.
        self._gate = gate or Gate(
            AdaptiveRate(ceiling=settings.requests_per_minute / 60.0),
            Link(host=_host(base_url), unreachable_timeout=settings.unreachable_timeout),
        )
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": api_key, "User-Agent": f"batchscribe/{__version__}"}
        self._settings = settings
        self._sleep = sleep
        #: requests, 429s and retries of this client, for --metrics-file
        self.stats = RequestStats()

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
                # A known length, not chunked transfer: a chunked body ends with a terminator
                # written after the last byte, and when the server hangs up first, aiohttp's
                # body-writer task fails with nobody to collect it (a traceback in cron mail).
                # Streamed all the same, in UPLOAD_CHUNK pieces; `size` is the fingerprinted one.
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                return await self._once(
                    "POST", "/v2/upload", data=_chunks(fh, size), headers=headers, timeout=timeout
                )

        body = await self._retrying(send)
        return field_of(body, "upload_url", "POST upload")

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
            stats=self.stats,
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
                    # No answer at all means it never reached the server.
                    reached = not isinstance(err, NoAnswer)
                    maybe_acted = maybe_acted or (reached and (err.status or 500) >= 500)
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
        sent_at = await self._gate.enter()
        self.stats.requests += 1
        log.debug("%s %s", method, path)
        try:
            async with self._session.request(
                method,
                self._base + path,
                headers={**self._headers, **(headers or {})},
                data=data,
                timeout=timeout,
                # Never followed: aiohttp would re-send the key (and the upload) to wherever a
                # Location points, another host included.
                allow_redirects=False,
                **kwargs,
            ) as resp:
                retry_after = _seconds(resp.headers.get("Retry-After"))
                self._gate.answered(resp.status, sent_at=sent_at, retry_after=retry_after)
                if resp.status == 429:
                    self.stats.rate_limited += 1
                if 300 <= resp.status < 400:
                    location = resp.headers.get("Location", "")
                    raise redirect_error(resp.status, self._base, location, what)
                if resp.status == 200:
                    body = await resp.json(content_type=None)
                    if not isinstance(body, dict):
                        raise RetryableApiError(f"{what}: unexpected response from the API")
                    return body
                text = await resp.text()
                if resp.status in (404, 405) and (method, path) in FIXED_ENDPOINTS:
                    raise no_such_endpoint(resp.status, self._base, what)
                raise error_for_status(resp.status, text, resp.headers.get("Retry-After"), what)
        except NO_ANSWER as err:
            cause = no_answer_cause(err)
            self._gate.no_answer(cause)
            raise NoAnswer(f"{what}: no answer from the API ({cause})") from None
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            reason = "timed out" if isinstance(err, asyncio.TimeoutError) else type(err).__name__
            raise RetryableApiError(f"{what}: network error ({reason})") from None
        finally:
            self._gate.ended()


#: Failures that mean no HTTP answer at all: the request never reached a server.
NO_ANSWER = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def no_answer_cause(err: BaseException) -> str:
    """A few words on why nothing answered, for the one line a dead network gets."""
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not trusted"
    if isinstance(err, aiohttp.ClientConnectorSSLError):
        return "the TLS handshake failed"
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return "the connection timed out"
    if isinstance(err, aiohttp.ClientConnectorError):
        os_error = err.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return "connection refused"
        return (os_error.strerror or str(os_error)).lower() if os_error else str(err)
    return str(err)


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


#: The requests whose path names no file: a 404 or 405 there says the address is not the
#: API's (a `/v2` too many in --api-url), not that one recording is wrong.
FIXED_ENDPOINTS = frozenset({("POST", "/v2/upload"), ("POST", "/v2/transcript")})


def no_such_endpoint(status: int, base: str, what: str) -> FatalApiError:
    """The whole run refused, not every file failed for good: the next run, at the right
    address, transcribes them."""
    return FatalApiError(
        f"{what}: HTTP {status} from {_host(base)}{urlsplit(base).path}: the AssemblyAI API is "
        "not at that address. Set --api-url to the API's base address, without /v2 (e.g. "
        "https://api.assemblyai.com); no file was transcribed or failed."
    )


def redirect_error(status: int, base: str, location: str, what: str) -> FatalApiError:
    """A redirect, refused for the whole run: the key goes only to the --api-url host. The line
    names where it pointed (scheme and host only: a query could carry a token)."""
    target = urlsplit(urljoin(base + "/", location))
    where = f"{target.scheme}://{target.netloc}" if target.netloc else "(no Location)"
    if target.netloc and (target.scheme, target.netloc) == (urlsplit(base).scheme, _host(base)):
        return FatalApiError(
            f"{what}: the API redirected (HTTP {status}) to {target.path or '/'} on the same "
            "host; not followed. Set --api-url to the API's address, without /v2."
        )
    return FatalApiError(
        f"{what}: the API at {_host(base)} redirected (HTTP {status}) to another host, {where}; "
        "not followed, so the key is never sent there. If that is the API, set --api-url to it."
    )


def _host(base_url: str) -> str:
    """The host (and port) the one "cannot reach" line names (never a user:password@ part)."""
    return urlsplit(shown_url(base_url)).netloc or shown_url(base_url)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare here; fall back to our own backoff


async def _chunks(fh: AsyncBufferedReader, size: int) -> AsyncIterator[bytes]:
    """The first `size` bytes (the Content-Length sent), a thread trip per chunk: none is
    spent reading the end of the file when its length is known."""
    left = size
    while left > 0 and (chunk := await fh.read(min(UPLOAD_CHUNK, left))):
        left -= len(chunk)
        yield chunk


def field_of(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise RetryableApiError(f"{what}: the API's answer has no '{name}'")
    return value
