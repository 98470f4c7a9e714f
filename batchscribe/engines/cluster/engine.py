"""The local engine on a Ray cluster (--ray): a pool of actors, each holding the model once.

This process stays the coordinator: the walk, the journal, the lock, the store and the outputs
are the pipeline's as ever; Ray only turns audio into a transcript. A file waits for a free
actor (a stop drops it then: nothing has begun), is sent by path (shared storage) or as bytes
(the object store), and comes back as the in-process engine's transcript data.

Faults: an actor or node that dies mid-file costs that attempt only; the file goes to the next
free actor, and a new actor takes the lost one's place. After ATTEMPTS lost actors one file
fails for this run only (retried by the next). A cluster that does not answer is one line
(Unreachable, exit 1), nothing failed; a model that cannot load on the actors stops the run
(ConfigError, exit 2) with their error.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions

from batchscribe.engines.base import Checkpoint, Finished, StillRunning
from batchscribe.engines.cluster.actor import MakeTranscriber, TranscriberActor, default_transcriber
from batchscribe.engines.cluster.plan import PoolPlan, actor_settings, gcs_endpoint, plan_pool
from batchscribe.engines.local.engine import ThreadPlan
from batchscribe.errors import BatchscribeError, ConfigError, FileError, InputError, Unreachable
from batchscribe.recording import Recording
from batchscribe.settings.parts import ClusterSettings
from batchscribe.transcript import Transcript

log = logging.getLogger("batchscribe.ray")

#: Actors one file may lose before it fails for this run (the next run tries it again): a file
#: that kills every actor it meets (out of memory, say) must not take the pool with it.
ATTEMPTS = 3
#: Seconds to open a TCP connection to the head: Ray itself retries an absent head for
#: minutes, printing as it goes, so the head is asked first.
CONNECT_TIMEOUT = 10.0
#: Seconds `ray.init` may take once the head answers.
INIT_TIMEOUT = 120.0
#: Seconds without a single actor ready (none has room on the cluster, or each dies while
#: starting) before the run stops as unreachable; a big model downloading on a node counts.
READY_TIMEOUT = 600.0
#: Seconds given to `ray.shutdown` when the head is gone (it waits for it, a minute or more).
SHUTDOWN_WAIT = 3.0
#: Pause before an actor that died while starting is started again (seconds).
RESTART_DELAY = 2.0


def _line(err: BaseException) -> str:
    text = next((line for line in str(err).splitlines() if line.strip()), "")
    return text.strip()[:300] or type(err).__name__


def _sizes(plan: PoolPlan) -> tuple[int, float, float]:
    return plan.actors, plan.num_cpus, plan.num_gpus


def _unreachable(address: str, cause: str) -> Unreachable:
    return Unreachable(
        f"cannot reach the Ray cluster at {address}: {cause}; nothing was lost: start it or "
        "check --ray, then run the same command again (files under way resume)."
    )


def head_answers(address: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """None when the head at `address` accepts a TCP connection (or Ray alone resolves the
    address: `auto`); else why not, in a few words."""
    endpoint = gcs_endpoint(address)
    if endpoint is None:
        return None
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__


def connect(address: str) -> None:
    """Join the cluster as a driver, or raise Unreachable. `ray.init` runs in a daemon thread:
    Ray then installs no signal handler of its own (Ctrl-C stays ours), and a hung init can
    be left behind when the run stops."""
    why = head_answers(address)
    if why is not None:
        raise _unreachable(address, why)
    outcome: list[BaseException | None] = []

    def init() -> None:
        try:
            ray.init(
                address=address,
                namespace="batchscribe",
                logging_level=logging.ERROR,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=init, name="batchscribe-ray-init", daemon=True)
    thread.start()
    thread.join(INIT_TIMEOUT)
    if not outcome:
        raise _unreachable(address, f"no answer to ray.init within {INIT_TIMEOUT:g} s")
    if outcome[0] is not None:
        raise _unreachable(address, _line(outcome[0]))


@dataclass(frozen=True, slots=True)
class Actor:
    handle: Any
    node: str


class Pool:
    """The actors, and the free ones in a queue. A lost actor is replaced; a fatal trouble
    (the model cannot load, no actor can start) is put in the queue as an error, which the
    next taker raises (it stops the run)."""

    def __init__(
        self, plan: PoolPlan, settings: ClusterSettings, make: MakeTranscriber, where: str
    ):
        self.plan, self.where = plan, where
        actor_class: Any = ray.remote(TranscriberActor)
        remote = actor_class.options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=0)
        threads = ThreadPlan(workers=1, threads=plan.threads)
        given = actor_settings(settings, plan)

        def create() -> Any:
            return remote.remote(given, threads, make)

        self._create = create
        self._free: asyncio.Queue[Actor | BatchscribeError] = asyncio.Queue()
        self._starting: set[asyncio.Task[None]] = set()
        self._handles: set[Any] = set()
        self.ready = 0
        self._none_ready_since = time.monotonic()

    def grow(self, count: int) -> None:
        for _ in range(count):
            task = asyncio.get_running_loop().create_task(self._start_one())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def take(self) -> Actor:
        """A free actor, when there is one. Raises the pool's fatal error, if any."""
        actor = await self._free.get()
        if isinstance(actor, BatchscribeError):
            raise actor  # to one taker: it stops the run, and every other taker with it
        return actor

    def give_back(self, actor: Actor) -> None:
        self._free.put_nowait(actor)

    async def lost(self, actor: Actor) -> None:
        """The actor died (or its node): forget it and start another in its place. Killed in
        a thread: with the head gone, a kill waits on it for a minute."""
        await asyncio.to_thread(self._forget, actor.handle)
        self.ready -= 1
        if not self.ready:
            self._none_ready_since = time.monotonic()
        self.grow(1)

    def fail(self, error: BatchscribeError) -> None:
        self._free.put_nowait(error)

    async def aclose(self) -> None:
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        for handle in list(self._handles):
            self._forget(handle)

    async def _start_one(self) -> None:
        """Start one actor and put it in the queue once its model is loaded; one that dies
        while starting is started again, until no actor has been ready for READY_TIMEOUT."""
        while True:
            handle = self._create()
            self._handles.add(handle)
            try:
                info = await asyncio.wait_for(handle.ready.remote(), self._patience())
            except TimeoutError:
                self._forget(handle)
                if not self.ready:
                    self.fail(self._none_ready(f"no actor started within {READY_TIMEOUT:g} s"))
                    return
                continue  # others work: this one waits its turn for room on the cluster
            except ray.exceptions.RayError as err:
                self._forget(handle)
                if not self.ready and time.monotonic() - self._none_ready_since > READY_TIMEOUT:
                    self.fail(self._none_ready(f"every actor died starting ({_line(err)})"))
                    return
                log.warning("a Ray actor died while starting (%s); starting another", _line(err))
                await asyncio.sleep(RESTART_DELAY)
                continue
            if info["error"] is not None:
                self.fail(ConfigError(f"on Ray node {info['node']}: {info['error']}"))
                return
            self.ready += 1
            self._free.put_nowait(Actor(handle, str(info["node"])))
            return

    def _patience(self) -> float | None:
        """While no actor is ready, the rest of READY_TIMEOUT; else no limit."""
        if self.ready:
            return None
        return max(READY_TIMEOUT - (time.monotonic() - self._none_ready_since), 1.0)

    def _none_ready(self, why: str) -> Unreachable:
        plan = self.plan
        needs = f"{plan.num_cpus:g} CPU" + (f", {plan.num_gpus:g} GPU" if plan.num_gpus else "")
        return _unreachable(self.where, f"{why} (each needs {needs}; see `ray status`)")

    def _forget(self, handle: Any) -> None:
        self._handles.discard(handle)
        try:
            ray.kill(handle, no_restart=True)
        except Exception as err:  # gone already, or the cluster with it
            log.debug("ray.kill: %s", _line(err))


class RayEngine:
    """The Engine for --ray: `start` waits for a free actor, has it transcribe the file and
    returns the finished transcript (the same data the in-process engine makes).

    `make_transcriber` builds what each actor holds (the local engine's `Transcriber`); only
    a bench passes another (a stand-in that sleeps), never a user-facing flag.
    """

    name = "local"
    listing_page = 0

    def __init__(
        self, settings: ClusterSettings, *, make_transcriber: MakeTranscriber = default_transcriber
    ) -> None:
        self._settings, self._address = settings, settings.ray_address
        self._make = make_transcriber
        self._pool: Pool | None = None
        self._opening = asyncio.Lock()

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished:
        size = recording.fingerprint.size
        if size == 0:
            raise InputError("empty file (0 bytes); nothing to transcribe", permanent=True)
        limit = self._settings.ray_max_file_bytes
        if not self._settings.ray_shared_storage and size > limit:
            raise InputError(
                f"{size:,} bytes is over [ray] max_file_bytes ({limit:,}) for Ray's object "
                "store; put the recordings on storage every node sees (shared_storage = true), "
                "or raise max_file_bytes, then run with --retry-failed.",
                permanent=True,
            )
        pool = await self._open()
        last = ""
        for _ in range(ATTEMPTS):
            actor = await pool.take()  # waiting here: nothing begun, a stop drops the file
            checkpoint.transcribing()
            try:
                reply = await self._transcribe(actor, recording)
            except ray.exceptions.RayTaskError as err:  # a bug on the actor: this file only
                pool.give_back(actor)
                raise FileError(f"the Ray actor failed: {_line(err)}") from None
            except ray.exceptions.RayError as err:
                last = _line(err)
                log.warning(
                    "%s: the Ray actor on %s was lost (%s)", recording.path, actor.node, last
                )
                await self._still_reachable()  # the head first: with it gone, Ray blocks
                await pool.lost(actor)
                continue
            except BaseException:
                pool.give_back(actor)  # cancelled: its actor finishes the file and is free
                raise
            pool.give_back(actor)
            return Finished(Transcript(self._data(reply, recording)))
        raise FileError(f"{ATTEMPTS} Ray actors were lost transcribing it (last: {last}); the "
                        "next run tries it again")  # fmt: skip

    async def poll(self, transcript_id: str) -> StillRunning:
        raise AssertionError("the Ray engine finishes in start(); nothing is ever polled")

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        return {}

    async def delete(self, transcript_id: str) -> None:
        return None

    async def aclose(self) -> None:
        """Kill the pool's actors (a stop now cancels their work with them) and leave. With
        the head gone, leave at once: Ray's calls (kill, shutdown, even at exit) would wait a
        minute on it, and its actors are gone with it."""
        if self._pool is None or not ray.is_initialized():
            return
        if await asyncio.to_thread(head_answers, self._address, 2.0) is not None:
            atexit.unregister(ray.shutdown)
            leaving = threading.Thread(target=ray.shutdown, name="batchscribe-ray-bye", daemon=True)
            leaving.start()  # as far as it gets: Ray's C++ side must not be torn down mid-call
            await asyncio.to_thread(leaving.join, SHUTDOWN_WAIT)
            return
        await self._pool.aclose()
        self._pool = None
        ray.shutdown()

    async def _open(self) -> Pool:
        async with self._opening:
            if self._pool is None:
                await asyncio.to_thread(connect, self._address)
                nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
                plan = plan_pool(self._settings, nodes, where=self._address)
                log.info(
                    "Ray: %d actors of %g CPU, %g GPU", plan.actors, plan.num_cpus, plan.num_gpus
                )
                self._pool = Pool(plan, self._settings, self._make, self._address)
                self._pool.grow(plan.actors)
            return self._pool

    async def _transcribe(self, actor: Actor, recording: Recording) -> dict[str, Any]:
        if self._settings.ray_shared_storage:
            audio: str | bytes = str(recording.path.absolute())
        else:
            audio = await asyncio.to_thread(recording.path.read_bytes)
            if len(audio) != recording.fingerprint.size:
                raise InputError("it changed while being read; the next run takes it again")
        ref = actor.handle.transcribe.remote(audio)
        try:
            reply: dict[str, Any] = await ref
        except asyncio.CancelledError:
            ray.cancel(ref)
            raise
        return reply

    async def _still_reachable(self) -> None:
        why = await asyncio.to_thread(head_answers, self._address)
        if why is not None:
            raise _unreachable(self._address, why)

    def _data(self, reply: dict[str, Any], recording: Recording) -> dict[str, Any]:
        if "data" in reply:
            return dict(reply["data"])
        kind, message = reply["error"], str(reply["message"])
        if kind == "config":
            raise ConfigError(f"on the Ray actors: {message}")
        if kind == "missing":
            if recording.path.exists():
                raise ConfigError(
                    f"Ray node {message} does not see {os.path.abspath(recording.path)}: with "
                    "[ray] shared_storage = true (the default) every node must see the "
                    "recordings at the same path; mount them there, or set shared_storage = "
                    "false to send their bytes."
                )
            raise InputError("it is gone (deleted or moved during the run)")
        raise FileError(message, permanent=bool(reply["permanent"]))
