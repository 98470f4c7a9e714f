"""A small aiohttp server that behaves like the AssemblyAI API, for tests and benchmarks.

Built from `assemblyai-openapi.yml`, not from our client: `/v2/upload`, `/v2/transcript`
(create, list with `limit`/`before_id`/`status`), `/v2/transcript/{id}` (get, delete); the
`Authorization` header is checked; errors are `{"error": ...}`; 429 carries `Retry-After`.

The transcript text depends on the uploaded bytes, so a test can tell whose transcript it got:
a file whose content starts with `SPEECH:` is "heard" as the rest of its first line; other
content as `audio <sha256 prefix>`; content starting with `NOTAUDIO` ends in `status: error`.

Knobs (attributes of `FakeAssemblyAI`) inject delays and faults; counters record what it saw.
Run standalone for benchmarks: `python -m tests.fakeapi --port 8765 --processing 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

API_KEY = "test-key-5f3c9a"
NOT_AUDIO_ERROR = (
    "Transcoding failed. File does not appear to contain audio. File type is text/plain."
)


@dataclass
class FakeTranscript:
    id: str
    audio_url: str
    digest: str
    created: float
    options: dict[str, Any]
    deleted: bool = False


@dataclass
class FakeAssemblyAI:
    api_key: str = API_KEY
    #: seconds from create to `completed` (queued for the first half, processing after)
    processing_seconds: float = 0.0
    #: fraction of requests answered 500 / 429 / with a dropped connection (before any effect)
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    reset_rate: float = 0.0
    retry_after: int = 0
    #: fraction of creates that succeed but whose response is lost (connection dropped)
    lose_create_response_rate: float = 0.0
    #: fraction of uploads cut off mid-body: the server reads part of it, then hangs up
    cut_upload_rate: float = 0.0
    #: requests per second the account allows, all clients together (a sliding second);
    #: over it: 429 with `Retry-After: retry_after` (None: no limit)
    rate_limit: float | None = None
    #: fraction of uploaded contents whose transcripts end in `status: error`
    error_transcript_rate: float = 0.0
    #: called with the upload's first bytes while it streams (a test can change the file)
    on_upload: Any = None
    #: answer every DELETE with this status (None: delete normally)
    delete_status: int | None = None
    #: answer every listing (GET /v2/transcript) with this status (None: list normally)
    list_status: int | None = None
    #: answer every request with this redirect status and `Location: redirect_to` (None: off),
    #: before looking at the key, as a proxy or a moved host would
    redirect_status: int | None = None
    redirect_to: str = ""
    #: the `Authorization` header of every request, as received (None: none sent)
    keys_seen: list[str | None] = field(default_factory=list)
    #: delay before answering any request (a slow API)
    response_delay: float = 0.0
    #: cap on upload speed in bytes per second, per upload (None: as fast as loopback goes)
    upload_bytes_per_second: float | None = None
    #: cap on all uploads together, bytes per second: the account's uplink (None: no cap)
    total_upload_bytes_per_second: float | None = None
    seed: int = 1234
    # -- what it saw
    requests: list[tuple[str, str]] = field(default_factory=list)
    uploads_by_digest: Counter[str] = field(default_factory=Counter)
    transcripts_by_digest: Counter[str] = field(default_factory=Counter)
    create_bodies: list[dict[str, Any]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    upload_transfer_encodings: Counter[str] = field(default_factory=Counter)
    uploads_in_flight: int = 0
    peak_uploads_in_flight: int = 0
    uploads: dict[str, str] = field(default_factory=dict)  # upload id -> digest
    upload_text: dict[str, str] = field(default_factory=dict)  # digest -> heard text / marker
    transcripts: dict[str, FakeTranscript] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.base_url = ""
        self._link_free_at = 0.0
        self._answered: deque[float] = deque()

    def _reserve_bandwidth(self, size: int) -> float:
        """Seconds to wait so that all uploads together stay within the shared bandwidth."""
        assert self.total_upload_bytes_per_second
        now = time.monotonic()
        self._link_free_at = (
            max(now, self._link_free_at) + size / self.total_upload_bytes_per_second
        )
        return self._link_free_at - now

    def _over_rate_limit(self) -> bool:
        """The account's limit: requests answered in the last second, over all clients."""
        assert self.rate_limit is not None
        now = time.monotonic()
        while self._answered and self._answered[0] < now - 1.0:
            self._answered.popleft()
        if len(self._answered) >= self.rate_limit:
            return True
        self._answered.append(now)
        return False

    # -- counters for assertions
    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def upload_count(self) -> int:
        return sum(self.uploads_by_digest.values())

    @property
    def transcript_count(self) -> int:
        return sum(self.transcripts_by_digest.values())

    def reset_counters(self) -> None:
        self.requests.clear()
        self.uploads_by_digest.clear()
        self.transcripts_by_digest.clear()
        self.create_bodies.clear()
        self.faults.clear()
        self.peak_uploads_in_flight = 0

    # -- the app
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**4)
        app.router.add_post("/v2/upload", self._upload)
        app.router.add_post("/v2/transcript", self._create)
        app.router.add_get("/v2/transcript", self._list)
        app.router.add_get("/v2/transcript/{id}", self._get)
        app.router.add_delete("/v2/transcript/{id}", self._delete)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        self.keys_seen.append(request.headers.get("Authorization"))
        if self.redirect_status is not None:
            return web.Response(status=self.redirect_status, headers={"Location": self.redirect_to})
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if request.headers.get("Authorization") != self.api_key:
            return _error(401, "Authentication error, API token missing/invalid")
        if self.rate_limit is not None and self._over_rate_limit():
            self.faults["429"] += 1
            return _error(429, "Too Many Requests", {"Retry-After": str(self.retry_after)})
        roll = self._random.random()
        if roll < self.error_rate:
            self.faults["500"] += 1
            return _error(500, "Internal Server Error")
        roll -= self.error_rate
        if roll < self.throttle_rate:
            self.faults["429"] += 1
            return _error(429, "Too Many Requests", {"Retry-After": str(self.retry_after)})
        roll -= self.throttle_rate
        if roll < self.reset_rate:
            self.faults["reset"] += 1
            if request.can_read_body:
                await request.content.read(1024)  # part of the body, then hang up
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPInternalServerError()  # never reaches the client
        return await handler(request)  # type: ignore[no-any-return]

    async def _upload(self, request: web.Request) -> web.Response:
        self.upload_transfer_encodings[request.headers.get("Transfer-Encoding", "")] += 1
        self.uploads_in_flight += 1
        self.peak_uploads_in_flight = max(self.peak_uploads_in_flight, self.uploads_in_flight)
        cut_after = 256 * 1024 if self._random.random() < self.cut_upload_rate else None
        try:
            digest = hashlib.sha256()
            head = b""
            received = 0
            async for chunk in request.content.iter_chunked(256 * 1024):
                received += len(chunk)
                if cut_after is not None and received >= cut_after:
                    self.faults["cut upload"] += 1
                    assert request.transport is not None
                    request.transport.abort()
                    raise web.HTTPInternalServerError()  # never reaches the client
                if self.on_upload is not None:
                    self.on_upload(chunk)
                digest.update(chunk)
                if len(head) < 512:
                    head += chunk[: 512 - len(head)]
                if self.upload_bytes_per_second:
                    await asyncio.sleep(len(chunk) / self.upload_bytes_per_second)
                if self.total_upload_bytes_per_second:
                    await asyncio.sleep(self._reserve_bandwidth(len(chunk)))
        finally:
            self.uploads_in_flight -= 1
        if not head:
            return _error(400, "Upload failed: the request body is empty")
        hexdigest = digest.hexdigest()
        upload_id = str(uuid.uuid4())
        self.uploads[upload_id] = hexdigest
        self.uploads_by_digest[hexdigest] += 1
        self.upload_text[hexdigest] = heard_text(head, hexdigest)
        if self._random.random() < self.error_transcript_rate:
            self.faults["error transcript"] += 1
            self.upload_text[hexdigest] = NOT_AUDIO_ERROR
        return web.json_response({"upload_url": f"{self.base_url}/cdn/upload/{upload_id}"})

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(body, dict) or not isinstance(body.get("audio_url"), str):
            return _error(400, "audio_url is required")
        self.create_bodies.append(body)
        # TranscriptOptionalParams (2026-03): `speech_models` is required; deprecated fields, and
        # `word_boost`/`boost_param` (gone, replaced by `keyterms_prompt`), are refused.
        successors = {"speech_model": "speech_models", "word_boost": "keyterms_prompt",
                      "boost_param": "keyterms_prompt", "auto_chapters": None,
                      "summarization": None, "summary_model": None, "summary_type": None,
                      "custom_topics": None, "topics": None}  # fmt: skip
        for name, successor in successors.items():
            if name in body:
                instead = f" Use '{successor}' instead" if successor else ""
                return _error(400, f"{name} is deprecated.{instead}")
        models = body.get("speech_models")
        if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)):
            return _error(400, "speech_models is required: a list of speech models, best first")
        upload_id = body["audio_url"].rsplit("/", 1)[-1]
        if upload_id not in self.uploads:
            return _error(403, "Cannot access uploaded file")
        digest = self.uploads[upload_id]
        transcript = FakeTranscript(
            id=str(uuid.uuid4()),
            audio_url=body["audio_url"],
            digest=digest,
            created=time.monotonic(),
            options={k: v for k, v in body.items() if k != "audio_url"},
        )
        self.transcripts[transcript.id] = transcript
        self.transcripts_by_digest[digest] += 1
        if self._random.random() < self.lose_create_response_rate:
            self.faults["lost create"] += 1
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPInternalServerError()  # never reaches the client
        return web.json_response(self._object(transcript))

    async def _get(self, request: web.Request) -> web.Response:
        transcript = self.transcripts.get(request.match_info["id"])
        if transcript is None:
            return _error(404, "Transcript not found")
        return web.json_response(self._object(transcript))

    async def _delete(self, request: web.Request) -> web.Response:
        if self.delete_status is not None:
            return _error(self.delete_status, "Internal Server Error")
        transcript = self.transcripts.get(request.match_info["id"])
        if transcript is None:
            return _error(404, "Transcript not found")
        transcript.deleted = True
        return web.json_response(self._object(transcript))

    async def _list(self, request: web.Request) -> web.Response:
        if self.list_status is not None:
            return _error(self.list_status, "Not found")
        limit = min(int(request.query.get("limit", 10)), 200)
        wanted_status = request.query.get("status")
        newest_first = sorted(self.transcripts.values(), key=lambda t: t.created, reverse=True)
        if "before_id" in request.query and request.query["before_id"] in self.transcripts:
            cutoff = self.transcripts[request.query["before_id"]].created
            newest_first = [t for t in newest_first if t.created < cutoff]
        items = [self._list_item(t) for t in newest_first]
        if wanted_status:
            items = [i for i in items if i["status"] == wanted_status]
        page = items[:limit]
        prev_url = (
            f"{self.base_url}/v2/transcript?limit={limit}&before_id={page[-1]['id']}"
            if len(items) > limit
            else None
        )
        return web.json_response(
            {
                "page_details": {
                    "limit": limit,
                    "result_count": len(page),
                    "current_url": str(request.url),
                    "prev_url": prev_url,
                    "next_url": None,
                },
                "transcripts": page,
            }
        )

    def _status(self, transcript: FakeTranscript) -> str:
        elapsed = time.monotonic() - transcript.created
        if elapsed < self.processing_seconds / 2:
            return "queued"
        if elapsed < self.processing_seconds:
            return "processing"
        if self.upload_text[transcript.digest] == NOT_AUDIO_ERROR:
            return "error"
        return "completed"

    def _list_item(self, transcript: FakeTranscript) -> dict[str, Any]:
        status = self._status(transcript)
        return {
            "id": transcript.id,
            "resource_url": f"{self.base_url}/v2/transcript/{transcript.id}",
            "status": status,
            "created": "2026-11-28T10:00:00.000000",
            "completed": "2026-11-28T10:00:02.000000" if status == "completed" else None,
            "audio_url": transcript.audio_url,
            "error": NOT_AUDIO_ERROR if status == "error" else None,
        }

    def _object(self, transcript: FakeTranscript) -> dict[str, Any]:
        status = self._status(transcript)
        done = status == "completed"
        text = "Deleted by user." if transcript.deleted else self.upload_text[transcript.digest]
        labelled = bool(transcript.options.get("speaker_labels"))
        words = fake_words(text, labelled) if done and not transcript.deleted else None
        return {
            "id": transcript.id,
            "status": status,
            "audio_url": "http://deleted_by_user" if transcript.deleted else transcript.audio_url,
            "text": text if done else None,
            "words": words,
            "utterances": fake_utterances(words) if words and labelled else None,
            "confidence": 0.93 if done else None,
            "audio_duration": (words[-1]["end"] // 1000 + 1) if words else None,
            "language_code": transcript.options.get("language_code", "en_us"),
            "punctuate": transcript.options.get("punctuate", True),
            "format_text": transcript.options.get("format_text", True),
            "speaker_labels": transcript.options.get("speaker_labels"),
            "speech_models": transcript.options["speech_models"],
            # the service routes to the first model of the list that takes the audio
            "speech_model_used": transcript.options["speech_models"][0],
            "error": NOT_AUDIO_ERROR if status == "error" else None,
            "webhook_url": None,
        }


def heard_text(head: bytes, hexdigest: str) -> str:
    """What the fake "hears" in a file: deterministic, and different for different bytes."""
    if head.startswith(b"NOTAUDIO"):
        return NOT_AUDIO_ERROR
    if head.startswith(b"SPEECH:"):
        return head[7:].split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    return f"audio {hexdigest[:16]}"


def fake_words(text: str, labelled: bool = False) -> list[dict[str, Any]]:
    """Words 400 ms apart; with speaker labels, speakers A and B take turns by sentence."""
    words, speaker = [], "A"
    for i, w in enumerate(text.split()):
        words.append(
            {
                "text": w,
                "start": i * 400,
                "end": i * 400 + 350,
                "confidence": 0.9,
                "speaker": speaker if labelled else None,
            }
        )
        if w.endswith((".", "?", "!")):
            speaker = "B" if speaker == "A" else "A"
    return words


def fake_utterances(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for word in words:
        if not turns or turns[-1]["speaker"] != word["speaker"]:
            turns.append({"speaker": word["speaker"], "start": word["start"], "words": []})
        turns[-1]["words"].append(word)
        turns[-1]["end"] = word["end"]
    for turn in turns:
        turn["text"] = " ".join(w["text"] for w in turn["words"])
        turn["confidence"] = 0.9
    return turns


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class ThreadedServer:
    """An aiohttp app (`app()`) on 127.0.0.1 in a thread of its own, so sync tests can run the
    real CLI against it; `url` once entered. The fake API and the fake hub are two of these."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        host, bound_port = server.sockets[0].getsockname()[:2]  # type: ignore[attr-defined]
        self.url = f"http://{host}:{bound_port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Keep-alive handlers may outlive cleanup; end them here so none is destroyed pending.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


class FakeServer(ThreadedServer):
    """Runs a FakeAssemblyAI on 127.0.0.1 in a thread, so sync tests can run the real CLI."""

    def __init__(self, api: FakeAssemblyAI | None = None) -> None:
        super().__init__()
        self.api = api or FakeAssemblyAI()

    def app(self) -> web.Application:
        return self.api.app()

    async def _start(self, port: int = 0) -> None:
        await super()._start(port)
        self.api.base_url = self.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--processing", type=float, default=2.0)
    parser.add_argument("--key", default=API_KEY)
    args = parser.parse_args()
    api = FakeAssemblyAI(api_key=args.key, processing_seconds=args.processing)
    api.base_url = f"http://127.0.0.1:{args.port}"
    web.run_app(api.app(), host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
