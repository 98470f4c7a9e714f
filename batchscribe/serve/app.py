"""`batchscribe serve`: the aiohttp application (both faces, the key check) and its life: the
state folder opened, unfinished transcripts queued again, the socket bound, and on SIGTERM
the work under way finished or handed back within `STOP_WITHIN_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from aiohttp import web

from batchscribe.config import Settings
from batchscribe.engines.local.options import model_label
from batchscribe.errors import ConfigError, LockHeld
from batchscribe.run.metrics import Figures, write_metrics
from batchscribe.serve import assemblyai_face, openai_face
from batchscribe.serve.auth import key_required
from batchscribe.serve.context import Context
from batchscribe.serve.jobs import Jobs, MakeEngine, SharedModel
from batchscribe.serve.store import Store
from batchscribe.state.lock import RunLock, lock_holder

log = logging.getLogger("batchscribe.serve")

#: SIGTERM to exit: transcripts under way get this long to finish, then are handed back
#: (queued again in the store); well inside systemd's 90 s, and the 10 s the issue promises.
STOP_WITHIN_S = 8.0
#: --metrics-file rewritten this often while serving (and once at the end).
METRICS_EVERY_S = 15.0


def state_folder(settings: Settings) -> Path:
    """`[serve] state_dir`, else `$XDG_STATE_HOME/batchscribe/serve` (~/.local/state)."""
    if settings.serve_state_dir is not None:
        return settings.serve_state_dir
    return (settings.state_home or Path.home() / ".local" / "state") / "batchscribe" / "serve"


def engine_factory(settings: Settings) -> MakeEngine:
    """The engines of a folder run: Ray's with --ray (no decoding options: Context.refuse
    turns them away), else faster-whisper here, every option set sharing one loaded model."""
    if settings.ray_address is not None:
        from batchscribe.engines.factory import create_engine

        return lambda wanted, decoding: create_engine(wanted)
    from batchscribe.engines.local.decoders import Decoders
    from batchscribe.engines.local.engine import LocalEngine, plan_threads, whisper_model

    shared = SharedModel(whisper_model)
    # one set of decoding threads for every engine: a long request lends only what no other
    # request uses
    plan = plan_threads(os.cpu_count() or 1, workers=settings.workers, threads=settings.threads)
    decoders = Decoders(plan.workers)
    return lambda wanted, decoding: LocalEngine(
        wanted.local(), load_model=shared, decoding=decoding, decoders=decoders
    )


def build_app(context: Context) -> web.Application:
    # client_max_size bounds what aiohttp buffers (JSON bodies); uploads are streamed and
    # capped by [serve] max_upload_mb instead.
    app = web.Application(middlewares=[key_required(context.settings.server_key)])
    app.add_routes(assemblyai_face.routes(context))
    app.add_routes(openai_face.routes(context))
    app.router.add_get("/health", _health)
    return app


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve(
    settings: Settings,
    *,
    make_engine: MakeEngine | None = None,
    ready: Callable[[str], None] = lambda line: None,
) -> None:
    """Serve until SIGTERM or SIGINT (a second one stops at once). Raises ConfigError when
    the state folder or the port cannot be had, LockHeld when another server has the folder."""
    folder = state_folder(settings)
    with one_server(folder):
        try:
            store = Store(folder)
        except OSError as err:
            raise ConfigError(
                f"cannot use the state folder {folder} ({err.strerror}); pass --state-dir"
            ) from None
        await _serve(settings, store, folder, make_engine, ready)


@contextlib.contextmanager
def one_server(folder: Path) -> Iterator[None]:
    """One server per state folder: a second would queue the first's unfinished transcripts
    again and hear them twice. Raises LockHeld (exit 3) naming the holder's pid."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot use the state folder {folder} ({err.strerror}); pass --state-dir"
        ) from None
    lock = RunLock(folder)
    try:
        lock.__enter__()
    except LockHeld:
        raise LockHeld(
            f"{folder}: another batchscribe server (pid {lock_holder(folder)}) keeps its "
            "transcripts here; stop it, or pass another --state-dir."
        ) from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


async def _serve(
    settings: Settings,
    store: Store,
    folder: Path,
    make_engine: MakeEngine | None,
    ready: Callable[[str], None],
) -> None:
    jobs = Jobs(settings, store, make_engine or engine_factory(settings))
    resumed = await jobs.resume()
    runner = web.AppRunner(build_app(Context(settings, store, jobs)), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.serve_host, settings.serve_port)
        await site.start()
    except OSError as err:
        await runner.cleanup()
        store.close()
        raise ConfigError(
            f"cannot listen on {settings.serve_host}:{settings.serve_port} ({err.strerror}); "
            "is another server there? Pass another --port."
        ) from None
    ready(
        f"batchscribe: serving on http://{settings.serve_host}:{settings.serve_port} "
        f"(state: {folder}; {resumed} unfinished transcript(s) queued again)"
    )
    try:
        await _until_stopped(settings, jobs, site)
    finally:
        await runner.cleanup()
        await jobs.aclose()
        await _write_metrics(settings, jobs, up=False)
        store.close()


async def _until_stopped(settings: Settings, jobs: Jobs, site: web.TCPSite) -> None:
    stop, now = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def signalled() -> None:
        (now if stop.is_set() else stop).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled)
    try:
        async with asyncio.TaskGroup() as group:
            workers = group.create_task(jobs.run())
            metrics = group.create_task(_keep_metrics(settings, jobs))
            await stop.wait()
            log.info("stopping: no new requests; %d transcript(s) under way", len(jobs.running))
            await site.stop()
            jobs.closing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_drained(jobs, now), STOP_WITHIN_S)
            workers.cancel()  # what is still running is handed back (queued again)
            metrics.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _drained(jobs: Jobs, now: asyncio.Event) -> None:
    """Until nothing is being transcribed, or a second signal."""
    async with asyncio.TaskGroup() as group:
        waits = [group.create_task(jobs.idle.wait()), group.create_task(now.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()


async def _keep_metrics(settings: Settings, jobs: Jobs) -> None:
    if settings.metrics_file is None:
        return
    while True:
        await _write_metrics(settings, jobs, up=True)
        await asyncio.sleep(METRICS_EVERY_S)


async def _write_metrics(settings: Settings, jobs: Jobs, *, up: bool) -> None:
    if settings.metrics_file is None:
        return
    counts = await jobs.store.counts()
    figures = Figures(
        states={"pending": counts.get("queued", 0) + counts.get("processing", 0),
                "done": counts.get("completed", 0), "failed": counts.get("error", 0)},
        results={"done": jobs.completed, "failed": jobs.failed},
        audio_seconds=jobs.audio_seconds,
        timestamp=time.time(),
        last_success=time.time() if up else 0.0,
        exit_code=None if up else 0,
        up=up,
        engine="local",
        model=model_label(settings.local()),
    )  # fmt: skip
    write_metrics(settings.metrics_file, figures)
