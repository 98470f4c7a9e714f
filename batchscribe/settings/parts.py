"""The settings split by part: each engine, the poller and the output and watch stages get the
small frozen value of their own part, never the whole `Settings` (config.py builds that once,
from defaults, file, environment and flags, and cuts these parts from it).

A part has no defaults of its own: `Settings` is the one place a default lives, and a part is
only ever cut from it (`Settings.assemblyai()`, `.local()`, ...), field by field, by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchscribe.output.subtitles import CueLimits


@dataclass(frozen=True, slots=True)
class AssemblyAISettings:
    """What the AssemblyAI engine and the poller need: the service, its limits, the request."""

    api_key: str | None = field(repr=False)
    base_url: str
    #: files under way: the connection pool is sized for them
    concurrency: int
    #: the request fields as the user gave them (the fingerprint); the body is the engine's
    #: to build (engines/assemblyai/request.to_send)
    transcript_options: dict[str, Any]
    #: the config file's own [assemblyai.transcript] table and the file it came from: its
    #: deprecated fields are warned about there, in the user's words
    file_transcript_options: dict[str, Any]
    config_path: Path | None
    poll_interval: float
    max_wait: float
    requests_per_minute: int
    max_upload_bytes: int
    upload_ttl: float
    delete_after: bool
    retry_attempts: int
    retry_base_delay: float
    retry_max_delay: float
    unreachable_timeout: float


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """What faster-whisper on one machine needs: the model, decoding, VAD, guards, speakers."""

    model: str | None
    cache_dir: Path | None
    task: str
    multilingual: str
    batch_size: int
    compute_type: str
    beam_size: int
    language: str | None
    vad_filter: bool
    vad_threshold: float
    vad_min_silence_ms: int
    vad_speech_pad_ms: int
    condition_on_previous_text: bool
    compression_ratio_threshold: float
    log_prob_threshold: float
    no_speech_threshold: float
    hallucination_silence_threshold: float
    speaker_labels: bool
    speakers_expected: int | None
    min_speakers: int | None
    max_speakers: int | None
    device: str
    threads: int
    workers: int


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """The local engine on a Ray cluster: the pool's shape, and what each actor is given
    (`local`: the model's settings only; no key, no paths, no file of this machine)."""

    ray_address: str
    ray_actors: int
    ray_num_cpus: float
    ray_num_gpus: float | None
    ray_shared_storage: bool
    ray_max_file_bytes: int
    local: LocalSettings


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """What is written for each transcript, and where."""

    formats: tuple[str, ...]
    output_dir: Path | None
    keep_existing: bool
    max_line_chars: int
    max_lines: int
    max_cue_seconds: float
    pause_seconds: float

    def cue_limits(self) -> CueLimits:
        return CueLimits(
            max_chars=self.max_line_chars,
            max_lines=self.max_lines,
            max_seconds=self.max_cue_seconds,
            pause=self.pause_seconds,
        )


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """--watch: how arrivals are seen and when a file is taken."""

    watch: bool
    watch_poll: bool
    watch_settle: float
    watch_rescan: float
