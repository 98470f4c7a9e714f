"""The server's work: a queue of stored transcripts and `--concurrency` workers that run them
through the local engine (or the Ray engine with --ray), the same engine as a folder run.

Each set of options a client asks for (language, task, speaker labels) gets its own engine,
made once; with the local engine they all share one loaded model (`SharedModel`), so eight
clients asking for eight languages do not load it eight times. A transcript's end is written
to the store before anyone waiting on it hears of it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batchscribe.config import Settings
from batchscribe.engines.base import Engine, Finished
from batchscribe.errors import BatchscribeError, Stopped
from batchscribe.fingerprint import Fingerprint
from batchscribe.recording import Recording
from batchscribe.serve.store import Job, Status, Store

log = logging.getLogger("batchscribe.serve.jobs")

#: What a request may change of the server's settings; anything else is the server's own.
PER_REQUEST = ("language", "task", "speaker_labels", "speakers_expected")
#: Seconds a client is told to wait (Retry-After) when the queue is full: about one clip.
RETRY_AFTER_S = 5


class _NoCheckpoint:
    """The server journals in its store, not through the engine: nothing to record per step."""

    def transcribing(self) -> None:
        return None

    def heard(self, seconds: float, of: float | None) -> None:
        return None

    async def uploaded(self, upload_url: str) -> None:
        return None

    async def submitted(self, transcript_id: str) -> None:
        return None


class SharedModel:
    """`whisper_model` called once per distinct model arguments, for every engine of the
    server: the engines differ in what they ask the model, not in the model."""

    def __init__(self, load: Callable[..., Any]) -> None:
        self._load, self._models, self._lock = load, dict[str, Any](), threading.Lock()

    def __call__(self, model: str | None, **options: Any) -> Any:
        key = repr((model, sorted(options.items())))
        with self._lock:
            if key not in self._models:
                self._models[key] = self._load(model, **options)
            return self._models[key]


def request_settings(settings: Settings, request: Mapping[str, Any]) -> Settings:
    """The server's settings with what this request asked for (PER_REQUEST only)."""
    return replace(settings, **{k: request[k] for k in PER_REQUEST if k in request})


def engine_key(request: Mapping[str, Any]) -> tuple[Any, ...]:
    decoding = sorted((request.get("decoding") or {}).items())
    return (*(request.get(k) for k in PER_REQUEST), tuple(decoding))


#: An engine for a request's settings and its decoding options (OpenAI's prompt, temperature).
MakeEngine = Callable[[Settings, Mapping[str, Any]], Engine]


@dataclass
class Jobs:
    """The queue and its workers; `run()` until cancelled (every worker in its TaskGroup)."""

    settings: Settings
    store: Store
    make_engine: MakeEngine
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    #: job id -> set once its end is in the store (OpenAI's requests wait on it)
    ended: dict[str, asyncio.Event] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    #: set while nothing is being transcribed (a stop waits for it)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    engines: dict[tuple[Any, ...], Engine] = field(default_factory=dict)
    audio_seconds: float = 0.0
    #: transcripts this process completed / failed (--metrics-file)
    completed: int = 0
    failed: int = 0
    #: the server is stopping: a worker takes no new transcript
    closing: bool = False

    def full(self) -> bool:
        return self.queue.qsize() >= self.settings.serve_max_queue

    def submit(self, job: Job) -> asyncio.Event:
        self.ended[job.id] = event = asyncio.Event()
        self.queue.put_nowait(job.id)
        return event

    def __post_init__(self) -> None:
        self.idle.set()

    async def resume(self) -> int:
        """Queue again what the last server left unfinished (killed, or handed back)."""
        unfinished = await self.store.unfinished()
        for job in unfinished:
            await self.store.requeue(job.id)
            self.submit(job)
        return len(unfinished)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self.settings.concurrency):
                group.create_task(self._worker())

    async def aclose(self) -> None:
        for engine in self.engines.values():
            await engine.aclose()

    async def _worker(self) -> None:
        while not self.closing:
            job_id = await self.queue.get()
            if self.closing:
                return  # left queued in the store: the next start takes it
            job = await self.store.get(job_id)
            if job is None or job.status != Status.queued:
                continue
            self.running.add(job_id)
            self.idle.clear()
            try:
                await self._transcribe(job)
            except (asyncio.CancelledError, Stopped):
                self.store.hand_back(job_id)  # the next start does it
                raise asyncio.CancelledError() from None
            finally:
                self.running.discard(job_id)
                if not self.running:
                    self.idle.set()
            self.ended.pop(job_id, asyncio.Event()).set()

    async def _transcribe(self, job: Job) -> None:
        await self.store.processing(job.id)
        path = self.store.upload_path(job.upload)
        try:
            engine = self._engine(job.request)
            result = await engine.start(_recording(path), _NoCheckpoint())
            if not isinstance(result, Finished):  # the local engines always finish here
                raise BatchscribeError("the engine did not finish the transcript")
        except BatchscribeError as err:
            await self._fail(job, str(err))
            return
        except (FileNotFoundError, PermissionError) as err:
            await self._fail(job, f"the upload cannot be read ({err.strerror}); upload again")
            return
        data = dict(result.transcript.data)
        self.audio_seconds += float(data.get("audio_duration") or 0)
        await self.store.complete(job.id, data)
        self.completed += 1
        log.info("transcript %s completed", job.id)

    async def _fail(self, job: Job, message: str) -> None:
        # the state folder is the server's business, not the client's
        message = message.replace(str(self.store.upload_path(job.upload)), "the upload")
        log.info("transcript %s failed: %s", job.id, message)
        await self.store.fail(job.id, message)
        self.failed += 1

    def _engine(self, request: Mapping[str, Any]) -> Engine:
        key = engine_key(request)
        if key not in self.engines:
            wanted = request_settings(self.settings, request)
            self.engines[key] = self.make_engine(wanted, request.get("decoding") or {})
        return self.engines[key]


def _recording(path: Path) -> Recording:
    return Recording(path=path, fingerprint=Fingerprint.of(path.stat()))
