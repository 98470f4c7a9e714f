"""faster-whisper on this machine: the offline default when no AssemblyAI key is configured.

The model loads once per run, on first use, and inference runs in a thread pool: CTranslate2
releases the GIL, so `workers` transcriptions run truly in parallel, each on `threads` cores.
Silero VAD runs first (silence and noise give no words), and `device = "auto"` uses a GPU when
CTranslate2 sees one, falling back to the CPU when it fails to load or at its first file (a
missing cuDNN only shows then).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from batchscribe.engines.base import DECODING_THREADS, Checkpoint, Finished, StillRunning
from batchscribe.engines.local import windows
from batchscribe.engines.local.batched import batched
from batchscribe.engines.local.decoders import Decoders
from batchscribe.engines.local.models import choose, locate
from batchscribe.engines.local.options import (
    english_only_error,
    model_label,
    to_transcript_data,
    transcribe_options,
    whisper_language,
)
from batchscribe.errors import ConfigError, InputError, Stopped, TranscriptionFailed
from batchscribe.recording import Recording
from batchscribe.settings.parts import LocalSettings
from batchscribe.transcript import Transcript

if TYPE_CHECKING:
    from batchscribe.engines.speakers.labels import SpeakerLabels

log = logging.getLogger("batchscribe.local")

INSTALL_HINT = (
    "The local engine needs faster-whisper: pip install 'batchscribe[local]', "
    "or set ASSEMBLYAI_API_KEY to use AssemblyAI."
)
#: What CTranslate2 says when the GPU, its driver or a CUDA library (cuDNN, cuBLAS) fails.
_DEVICE_FAILURE = re.compile(r"cuda|cudnn|cublas|libcu|gpu|nvidia", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ThreadPlan:
    """How many files are transcribed at once, and with how many cores each."""

    workers: int
    threads: int


def plan_threads(cores: int, *, workers: int = 0, threads: int = 0) -> ThreadPlan:
    """Split the cores between parallel transcriptions; 0 means "choose".

    Measured on a 2-core machine (BENCHMARKS.md): one file per core with one thread each beats
    one file at a time on all cores, because decoding and the beam search do not scale
    linearly with threads. Explicit values are kept as given.
    """
    cores = max(cores, 1)
    chosen_workers = workers or cores
    chosen_threads = threads or max(1, cores // chosen_workers)
    return ThreadPlan(workers=chosen_workers, threads=chosen_threads)


def check_installed() -> None:
    """Raise ConfigError with the install hint when the `local` extra is missing."""
    if importlib.util.find_spec("faster_whisper") is None:
        raise ConfigError(INSTALL_HINT)


def whisper_model(
    model: str | None, *, cache_dir: Path | None = None, batch_size: int = 0, **options: Any
) -> Any:
    """The default model factory: faster-whisper's `WhisperModel` for `--model` (None: the
    default), its files joined, downloaded or found first (engines/local/models.py, ConfigError when
    they cannot be), in faster-whisper's BatchedInferencePipeline with `batch_size`; each
    window encoded once (encode_once.py)."""
    from batchscribe.engines.local.encode_once import EncodeOnceWhisperModel

    folder = locate(choose(model), cache=cache_dir or Path.home() / ".cache")
    loaded = EncodeOnceWhisperModel(folder, **options)
    return batched(loaded, batch_size) if batch_size else loaded


def cuda_device_count() -> int:
    """GPUs CTranslate2 can use; 0 when it cannot tell."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # a broken CUDA install must not stop a CPU run
        return 0


def is_device_failure(err: BaseException) -> bool:
    """An error from the GPU, its driver or a CUDA library, not from the model or the audio."""
    return bool(_DEVICE_FAILURE.search(f"{type(err).__name__} {err}"))


class _DeviceFailed(Exception):
    """The GPU failed while transcribing; the file goes again on the CPU."""


class Transcriber:
    """The model and what it does with one recording, synchronously: `load`, then
    `transcribe(audio)` -> the transcript's data. The in-process engine runs it in threads;
    a Ray actor (engines/cluster/engine.py) holds one, so both transcribe with the very same code.

    `load_model` builds the model (`whisper_model`: faster-whisper's WhisperModel) and
    `cuda_devices` counts GPUs; tests pass fakes to see the CPU fallback without a GPU.
    """

    def __init__(
        self,
        settings: LocalSettings,
        plan: ThreadPlan,
        *,
        load_model: Callable[..., Any] = whisper_model,
        cuda_devices: Callable[[], int] = cuda_device_count,
        decoding: Mapping[str, Any] | None = None,
        window_s: float = windows.WINDOW_S,
        decoders: Decoders | None = None,
    ) -> None:
        self._settings, self._plan, self._window_s = settings, plan, window_s
        self._model_name = model_label(settings)
        # `decoding`: a server request's own options (initial_prompt, temperature)
        self._options = {**transcribe_options(settings), **(decoding or {})}
        self._load_model_with, self._cuda_devices = load_model, cuda_devices
        self._model: Any = None
        #: id() of the model loaded on the GPU, if one was: its failures are the GPU's
        self._gpu_model_id: int | None = None
        self._loading = threading.Lock()
        self._falling_back = threading.Lock()
        #: set when the run stops now: decoding ends at the next segment (raises Stopped)
        self.stopping = threading.Event()
        #: the decoding threads: one per file, the idle ones lent to a long file's windows
        self._decoders = decoders or Decoders(plan.workers)
        #: --speaker-labels: who spoke each word, after Whisper, on the same host (an actor too)
        self._speakers: SpeakerLabels | None = None
        if settings.speaker_labels:  # numpy and the encoder only when asked
            from batchscribe.engines.speakers.labels import SpeakerLabels

            self._speakers = SpeakerLabels.wanted(
                settings, threads=plan.threads, stopping=self.stopping
            )

    def load(self) -> None:
        """Load the model once (later calls return at once). Raises ConfigError when no
        model can be loaded, or when it cannot hear the language asked for."""
        with self._loading:
            if self.stopping.is_set():
                raise Stopped()  # released: never load again for a file still queued
            if self._model is None:
                self._model = self._load_model()

    def release(self) -> None:
        self.stopping.set()
        self._decoders.close()
        self._model = None

    def transcribe(self, audio: str | BinaryIO, heard: Heard | None = None) -> dict[str, Any]:
        """One recording (a path, or its bytes as a file) -> the transcript's data (see
        `to_transcript_data`); `heard(seconds, of)` after each segment. Raises
        TranscriptionFailed for what is not audio."""
        self.load()
        model, heard = self._model, heard or _heard_nothing
        with self._decoders.held(self.stopping):
            try:
                return self._transcribe_on(model, audio, heard)
            except _DeviceFailed as failed:
                if not isinstance(audio, str):
                    audio.seek(0)
                return self._transcribe_on(self._fall_back(model, failed.__cause__), audio, heard)

    def _load_model(self) -> Any:
        """On the GPU when asked (or `auto` and one is seen), else, or when that fails with
        `auto`, on the CPU. Raises ConfigError when no model can be loaded."""
        wanted = self._settings.device
        if wanted == "cuda" or (wanted == "auto" and self._cuda_devices() > 0):
            try:
                model = self._construct("cuda")
                self._gpu_model_id = id(model)
                return model
            except ConfigError:
                raise
            except Exception as err:
                if wanted == "cuda" or not is_device_failure(err):
                    raise self._cannot_load(err, device="cuda") from None
                _say_cpu(err)
        return self._cpu_model()

    def _cpu_model(self) -> Any:
        try:
            return self._construct("cpu")
        except ConfigError:
            raise
        except Exception as err:
            raise self._cannot_load(err, device="cpu") from None

    def _construct(self, device: str) -> Any:
        model = self._load_model_with(
            self._settings.model,
            cache_dir=self._settings.cache_dir,
            batch_size=self._settings.batch_size,
            device=device,
            compute_type=self._settings.compute_type,
            cpu_threads=self._plan.threads,
            num_workers=self._plan.workers,
        )
        language = whisper_language(self._settings.language)
        multilingual = getattr(getattr(model, "model", None), "is_multilingual", True)
        if language not in (None, "en") and not multilingual:  # a folder not named *.en
            raise english_only_error(self._settings, language)
        return model

    def _cannot_load(self, err: BaseException | None, *, device: str) -> ConfigError:
        if device == "cuda" and (err is None or is_device_failure(err)):
            return ConfigError(
                f"cannot use the GPU ({_first_line(err)}); install CUDA 12 and cuDNN 9, or set "
                '[local] device = "auto" (falls back to the CPU) or "cpu".'
            )
        ref = self._settings.model or ""
        if (os.sep in ref or ref.startswith((".", "~"))) and not os.path.isdir(ref):
            return ConfigError(
                f"the model folder {ref} does not exist; pass --model with a faster-whisper "
                "model directory, or a model name (such as small) when online."
            )
        return ConfigError(  # one line: the hub's own errors run over several
            f"cannot load the model '{self._model_name}' ({_first_line(err)}); pass --model "
            "with a faster-whisper model directory, or a model name when online."
        )

    def _transcribe_on(self, model: Any, audio: str | BinaryIO, heard: Heard) -> dict[str, Any]:
        try:
            segments, info = self._segments(model, audio, heard)
        except Stopped:
            raise
        except Exception as err:  # PyAV raises one class per codec problem
            if id(model) == self._gpu_model_id and is_device_failure(err):
                raise _DeviceFailed() from err
            raise TranscriptionFailed(
                f"cannot decode it as audio ({type(err).__name__}: {err}); is it a recording?"
            ) from None
        detected = self._options["language"] is None and bool(
            getattr(info, "all_language_probs", None)
        )
        data = to_transcript_data(
            segments, info, model=self._model_name, detected=detected, task=self._settings.task
        )
        if self._speakers is None:
            return data
        if not isinstance(audio, str):
            audio.seek(0)  # the bytes of a file sent through Ray's object store, read again
        return self._speakers.label(audio, data)

    def _segments(self, model: Any, audio: str | BinaryIO, heard: Heard) -> tuple[list[Any], Any]:
        """All the recording's segments and faster-whisper's info: a recording longer than a
        window (or of unknown length) window by window (windows.py: memory bounded), else whole."""
        length = windows.probe(audio)
        if length is None or length <= self._window_s * 1.1:  # a tenth more: not a tiny tail
            segments, info = model.transcribe(audio, **self._options)
            duration = getattr(info, "duration", None)
            return self._decode(segments, lambda end: heard(end, duration)), info
        of = length if math.isfinite(length) else None
        run = windows.Windowed(model, audio, self._options, self._window_s,
                               decoders=self._decoders, stopping=self.stopping)  # fmt: skip
        # closed when the decoding stops early: its lent decoders end with it, not with the GC
        with contextlib.closing(run.segments()) as windowed:
            segments = self._decode(windowed, lambda end: heard(end, of))
        return segments, run.info  # info is known once every window is heard

    def _fall_back(self, gpu_model: Any, err: BaseException | None) -> Any:
        """The GPU failed at a file (a CUDA library missing shows only then): with `auto`, load
        the model on the CPU once for the run and go on there; with `cuda`, stop the run."""
        with self._falling_back:
            if self._settings.device == "cuda":
                raise self._cannot_load(err, device="cuda")
            if self._model is gpu_model:  # the first thread here; the others reuse its model
                _say_cpu(err)
                self._model = self._cpu_model()
            return self._model

    def _decode(self, segments: Any, heard: Callable[[float], None]) -> list[Any]:
        """Decode segment by segment (faster-whisper decodes while it is iterated), checking
        between two whether the run is stopping now, and saying how far it has heard."""
        decoded = []
        for segment in segments:
            if self.stopping.is_set():
                raise Stopped()
            decoded.append(segment)
            heard(float(segment.end))
        return decoded


class LocalEngine:
    """The Engine for faster-whisper on this machine: `start` transcribes (a `Transcriber`,
    in a thread pool) and returns the finished transcript."""

    name = "local"
    listing_page = 0

    def __init__(
        self,
        settings: LocalSettings,
        *,
        load_model: Callable[..., Any] = whisper_model,
        cuda_devices: Callable[[], int] = cuda_device_count,
        decoding: Mapping[str, Any] | None = None,
        decoders: Decoders | None = None,
    ) -> None:
        check_installed()
        plan = plan_threads(os.cpu_count() or 1, workers=settings.workers, threads=settings.threads)
        self._transcriber = Transcriber(
            settings,
            plan,
            load_model=load_model,
            cuda_devices=cuda_devices,
            decoding=decoding,
            decoders=decoders,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=plan.workers, thread_name_prefix=DECODING_THREADS
        )
        self._loaded = False
        self._loading = asyncio.Lock()
        self._slots = asyncio.Semaphore(plan.workers)

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished:
        if recording.fingerprint.size == 0:
            raise InputError("empty file (0 bytes); nothing to transcribe", permanent=True)
        await self._load()
        loop = asyncio.get_running_loop()
        # One file per decoding thread: a file waiting for one has not begun, so a stop drops
        # it. (A file said to be "transcribing" may still wait, up to one window, for a
        # decoder a lone long file borrowed: decoders.py.)
        async with self._slots:
            checkpoint.transcribing()
            data = await loop.run_in_executor(
                self._executor,
                self._transcriber.transcribe,
                str(recording.path),
                checkpoint.heard,
            )
        return Finished(Transcript(data))

    async def poll(self, transcript_id: str) -> StillRunning:
        raise AssertionError("the local engine finishes in start(); nothing is ever polled")

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        return {}

    async def delete(self, transcript_id: str) -> None:
        return None  # nothing leaves this machine, so nothing to delete

    async def aclose(self) -> None:
        # Never block the event loop on a decode in progress (Ctrl-C must be prompt): the
        # threads stop at their next segment, and the interpreter joins them on exit.
        self._transcriber.release()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _load(self) -> None:
        async with self._loading:
            if not self._loaded:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._transcriber.load)
                self._loaded = True


Heard = Callable[[float, float | None], None]


def _heard_nothing(seconds: float, of: float | None) -> None:
    return None


def _first_line(err: BaseException | None) -> str:
    text = str(err).strip().splitlines()[0] if err is not None and str(err).strip() else ""
    return (text or type(err).__name__)[:200]


def _say_cpu(err: BaseException | None) -> None:
    log.warning("cannot use the GPU (%s); transcribing on the CPU instead", _first_line(err))
