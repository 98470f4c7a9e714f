"""What the local engine asks of a Ray cluster (--ray): the pool's size and each actor's
resources, device and threads, from the settings and the cluster's nodes. Pure: no Ray here.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from batchscribe.errors import ConfigError
from batchscribe.settings.parts import ClusterSettings, LocalSettings

INSTALL_HINT = "--ray needs Ray on this machine: pip install 'batchscribe[ray]'."


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """How many actors, and what each one asks of its node."""

    actors: int
    num_cpus: float
    num_gpus: float
    #: the actor's decoding threads (CTranslate2's cpu_threads)
    threads: int
    #: "cpu", or the [local] device ("auto", "cuda") for an actor holding a GPU
    device: str


def check_ray(settings: ClusterSettings) -> None:
    """Refuse --ray before any work (ConfigError, exit 2): Ray missing, or [ray] values no
    pool can have."""
    gpus = settings.ray_num_gpus
    if settings.ray_actors < 0 or settings.ray_num_cpus <= 0 or (gpus is not None and gpus < 0):
        raise ConfigError(
            "[ray] actors must be >= 0 (0: one per CPU slot or GPU), num_cpus > 0, num_gpus >= 0."
        )
    if settings.ray_max_file_bytes < 1:
        raise ConfigError("[ray] max_file_bytes must be at least 1.")
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(INSTALL_HINT)


def plan_pool(
    settings: ClusterSettings, nodes: Sequence[Mapping[str, Any]], *, where: str
) -> PoolPlan:
    """The pool for these settings on the cluster whose alive nodes' resources are `nodes`
    (`ray.nodes()`'s "Resources": {"CPU": 16.0, "GPU": 2.0, ...}).

    Default size: one actor per GPU when the cluster has GPUs (and [local] device is not
    "cpu"), else one per `num_cpus` CPU slots. Raises ConfigError when no node could ever
    hold one actor (`num_gpus = 1` on a cluster without GPUs): it would wait forever.
    """
    cpus = sum(float(node.get("CPU", 0)) for node in nodes)
    gpus = sum(float(node.get("GPU", 0)) for node in nodes)
    num_gpus = settings.ray_num_gpus
    if num_gpus is None:
        num_gpus = 1.0 if gpus > 0 and settings.local.device != "cpu" else 0.0
    num_cpus = settings.ray_num_cpus
    fits = any(
        float(node.get("CPU", 0)) >= num_cpus and float(node.get("GPU", 0)) >= num_gpus
        for node in nodes
    )
    if not fits:
        raise ConfigError(
            f"no node of the Ray cluster at {where} has {num_cpus:g} CPU"
            + (f" and {num_gpus:g} GPU" if num_gpus else "")
            + f" for an actor (the cluster has {cpus:g} CPU, {gpus:g} GPU): lower [ray] "
            "num_cpus or num_gpus, or add a node."
        )
    chosen = settings.ray_actors
    if not chosen:
        chosen = math.floor(gpus / num_gpus) if num_gpus else math.floor(cpus / num_cpus)
    return PoolPlan(
        actors=max(chosen, 1),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        threads=settings.local.threads or max(1, math.floor(num_cpus)),
        device=settings.local.device if num_gpus else "cpu",
    )


def actor_settings(settings: ClusterSettings, plan: PoolPlan) -> LocalSettings:
    """What an actor is given: the model settings as they are (model, VAD, guards, language,
    task) and its device; the local part holds no API key, paths or files of this machine."""
    return replace(settings.local, device=plan.device, threads=plan.threads, workers=1)


def gcs_endpoint(address: str) -> tuple[str, int] | None:
    """host and port of `host:port` or `ray://host:port` (IPv6 in brackets); None for what
    only Ray itself resolves (`auto`, `local`)."""
    rest = address.split("://", 1)[-1].strip().rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)
