"""One actor of the Ray pool (engines/cluster/engine.py): it holds the model once and turns one
recording at a time into a transcript's data, with the in-process engine's own `Transcriber`.

Runs on the cluster's nodes, which need batchscribe with the `local` extra (the same version
as the coordinator). Ray is not imported here: the coordinator makes this class remote.
Replies are plain dicts, so an expected failure comes back as one line, never a traceback.
"""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol

from batchscribe import __version__
from batchscribe.engines.local.engine import ThreadPlan, Transcriber
from batchscribe.errors import BatchscribeError, ConfigError, FileError
from batchscribe.settings.malloc import tune_malloc
from batchscribe.settings.parts import LocalSettings


class Transcribes(Protocol):
    """What an actor holds: the local engine's `Transcriber`, or a bench's stand-in."""

    def load(self) -> None: ...

    def transcribe(self, audio: Any) -> dict[str, Any]: ...


MakeTranscriber = Callable[[LocalSettings, ThreadPlan], Transcribes]


def default_transcriber(settings: LocalSettings, plan: ThreadPlan) -> Transcribes:
    return Transcriber(settings, plan)


class TranscriberActor:
    """Loads the model when created; `ready()` says how that went, `transcribe` does a file.

    `audio` is an absolute path every node sees (shared storage) or the file's bytes.
    A reply is {"data": ...}, or {"error": kind, "message": line, "permanent": bool} where
    kind is "config" (the model cannot load: the run stops), "file" (this file failed) or
    "missing" (no such path on this node).
    """

    def __init__(self, settings: LocalSettings, plan: ThreadPlan, make: MakeTranscriber) -> None:
        # Ray sets OMP_NUM_THREADS to the actor's num_cpus; CTranslate2's arithmetic (and so,
        # on a borderline word, the text) follows it. The node's defaults, as in-process.
        os.environ.pop("OMP_NUM_THREADS", None)
        tune_malloc()  # as a run does: Ray started this process, not batchscribe
        self._node = socket.gethostname()
        self._load_error: str | None = None
        self._transcriber = make(settings, plan)
        try:
            self._transcriber.load()
        except BatchscribeError as err:
            self._load_error = str(err)
        except Exception as err:  # a broken install on this node: said, not a traceback
            self._load_error = f"{type(err).__name__}: {err}"

    def ready(self) -> dict[str, Any]:
        return {
            "node": self._node,
            "pid": os.getpid(),
            "version": __version__,
            "error": self._load_error,
        }

    def transcribe(self, audio: str | bytes) -> dict[str, Any]:
        if self._load_error is not None:
            return {"error": "config", "message": self._load_error, "permanent": False}
        if isinstance(audio, str) and not os.path.exists(audio):
            return {"error": "missing", "message": self._node, "permanent": False}
        try:
            source = audio if isinstance(audio, str) else io.BytesIO(audio)
            return {"data": self._transcriber.transcribe(source)}
        except ConfigError as err:  # the GPU failed with device = "cuda": the run stops
            return {"error": "config", "message": str(err), "permanent": False}
        except FileError as err:
            return {"error": "file", "message": err.message, "permanent": err.permanent}
