"""Settings: defaults < TOML config file < environment < flags, built once and passed down.

This is the only module that reads `os.environ` (the CLI hands it over) or a config file.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from batchscribe.config_file import (
    LOCAL_CONFIG_NAME,
    RANGES,
    check_ranges,
    find_config_file,
    parse_extensions,
    parse_formats,
    read_config_file,
    user_config_path,
)
from batchscribe.errors import ConfigError
from batchscribe.lines import shown_url
from batchscribe.settings.parts import (
    AssemblyAISettings,
    ClusterSettings,
    LocalSettings,
    OutputSettings,
    WatchSettings,
)
from batchscribe.settings.request_flags import (
    REQUEST_FLAGS,
    SPEAKER_COUNTS,
    file_counts_replaced,
    from_flags,
    merge,
)

__all__ = [
    "LOCAL_CONFIG_NAME",
    "Settings",
    "build_settings",
    "find_config_file",
    "parse_extensions",
    "parse_formats",
    "read_config_file",
    "user_config_path",
]

#: The official API host; EU data residency is `https://api.eu.assemblyai.com`.
DEFAULT_BASE_URL = "https://api.assemblyai.com"
#: Formats the AssemblyAI docs list as supported, plus common containers of them.
DEFAULT_EXTENSIONS = frozenset(["mp3", "mp4", "m4a", "wav", "flac", "ogg", "opus", "webm", "aac",
                                "wma", "aiff", "amr", "mov", "mkv"])  # fmt: skip
#: Env names for the key: the SDK's, then the tutorial's.
KEY_ENV_NAMES = ("ASSEMBLYAI_API_KEY", "ASSEMBLYAI_KEY")
ENGINES = ("auto", "assemblyai", "local")
#: AssemblyAI's list prices in USD per audio hour, for --dry-run's estimate, as published in
#: 2026 (LIST_PRICES_DATE); accounts' default model changes in December 2026. `keyterms` is
#: added when keyterms_prompt is set. Each can be overridden in [assemblyai.prices].
LIST_PRICES_DATE = "2026-03"
LIST_PRICES = {"universal-3-pro": 0.21, "universal-2": 0.15, "keyterms": 0.04}
#: "auto": CUDA when CTranslate2 reports a GPU, else (or when the GPU fails) the CPU.
DEVICES = ("auto", "cpu", "cuda")
#: CTranslate2's compute types (`default` and `auto` let it choose for the device).
COMPUTE_TYPES = ("default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
                 "int16", "float16", "bfloat16", "float32")  # fmt: skip
#: Files under way with --ray and a pool the cluster sizes: workers waiting for an actor cost
#: a coroutine each, and a pool larger than half of this wants --concurrency raised.
RAY_CONCURRENCY = 256
#: The local model when none is named (engines/local/models.py): Whisper base, since issue #20.
DEFAULT_MODEL = "base"
#: The default before it, English-only, whose fingerprint is still None (see model_fingerprint).
TINY_EN = "tiny.en"
#: The local engine's settings that decide a transcript: its options fingerprint.
LOCAL_OPTIONS = ("model", "compute_type", "beam_size", "language", "vad_filter")
#: More of them, counted only when not at their default. The defaults are faster-whisper's,
#: what every version before them (issue #14) used: a folder done then, with `vad_filter =
#: false`, keeps its fingerprint. Change a default here and such folders are done again.
LOCAL_TUNING = ("task", "multilingual", "batch_size", "vad_threshold", "vad_min_silence_ms",
                "vad_speech_pad_ms", "condition_on_previous_text", "compression_ratio_threshold",
                "log_prob_threshold", "no_speech_threshold",
                "hallucination_silence_threshold")  # fmt: skip

#: A part of the settings (settings/parts.py).
Part = TypeVar("Part")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs; frozen so no module can change it behind another's back."""

    paths: tuple[Path, ...] = ()
    engine: str = "auto"
    #: Five parallel uploads saturate a typical uplink without tripping rate limits.
    concurrency: int = 5
    extensions: frozenset[str] = DEFAULT_EXTENSIONS
    quiet: bool = False
    verbose: bool = False
    #: print one machine-readable summary object on stdout at the end
    json: bool = False
    #: list what would be done and why; no request, no model, nothing written
    dry_run: bool = False
    #: also retry files whose last failure was permanent (not audio, empty, too big)
    retry_failed: bool = False
    #: stop starting new files after this many (the rest waits for the next run)
    max_files: int | None = None
    #: stop starting new files once this much audio (hours) has been started
    max_audio_hours: float | None = None
    #: append log lines (what --verbose shows) to this file
    log_file: Path | None = None
    #: node_exporter textfile metrics, written at the end of the run (--watch: kept current)
    metrics_file: Path | None = None
    #: seconds the first Ctrl-C or SIGTERM waits for files under way before stopping anyway:
    #: well inside systemd's default 90 s stop timeout (TimeoutStopSec)
    grace: float = 60.0
    #: --watch: after the run, keep transcribing files as they arrive, until stopped
    watch: bool = False
    #: poll the folders instead of file events (network mounts, where events don't work)
    watch_poll: bool = False
    #: a file is taken once its size and mtime stayed the same this many seconds
    watch_settle: float = 2.0
    #: a full rescan this often (seconds): a missed event costs minutes, not forever
    watch_rescan: float = 600.0
    # -- outputs
    formats: tuple[str, ...] = ("txt", "json")
    #: Write outputs (and the journal) here, mirroring each file's path, not next to sources.
    output_dir: Path | None = None
    #: Keep transcripts made with other options instead of transcribing again.
    keep_existing: bool = False
    #: Subtitle cues: characters per line, lines per cue, seconds per cue, pause that splits.
    max_line_chars: int = 42
    max_lines: int = 2
    max_cue_seconds: float = 6.0
    pause_seconds: float = 0.8
    # -- AssemblyAI
    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    #: Seconds between two polls of one transcript; AssemblyAI's docs poll every 3 s.
    poll_interval: float = 3.0
    #: A transcript still unfinished after this many seconds is left for the next run.
    max_wait: float = 6 * 3600.0
    #: Ceiling on requests per minute for the whole run; the API allows 4,000 (20,000 / 5 min).
    requests_per_minute: int = 3000
    #: /v2/upload refuses files above 2.2 GB; larger files fail before a byte is sent.
    max_upload_bytes: int = 2_200_000_000
    #: AssemblyAI deletes uploads after about a day; an older one is uploaded again.
    upload_ttl: float = 23 * 3600.0
    #: For --dry-run's estimate, USD per audio hour: [assemblyai.prices] per model (and
    #: `keyterms`), over `price_per_hour` for every model, over LIST_PRICES.
    prices: dict[str, float] = field(default_factory=dict)
    price_per_hour: float | None = None
    #: `POST /v2/transcript` fields as the user gave them (speaker_labels, language_code, ...):
    #: the options fingerprint. What is sent is the engine's (engines/assemblyai/request).
    transcript_options: dict[str, Any] = field(default_factory=dict)
    #: The config file's [assemblyai.transcript] as written, and the file read (if any): its
    #: deprecated fields are warned about in its own words, naming it.
    file_transcript_options: dict[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    #: Delete each transcript from AssemblyAI once its outputs are safely written.
    delete_after: bool = False
    #: Attempts per request before the file fails (429, 5xx, resets, timeouts).
    retry_attempts: int = 6
    #: First backoff step in seconds; doubles each attempt, with full jitter.
    retry_base_delay: float = 1.0
    #: Ceiling on one backoff step.
    retry_max_delay: float = 60.0
    #: With no answer at all from the API (refused, DNS, TLS, connect timeouts) for this many
    #: seconds, the run stops with one line; every file is left for the next run.
    unreachable_timeout: float = 30.0
    #: A transcript whose mean word confidence is under this is flagged (a line, the --json
    #: summary, the .json); both engines. With the bundled model English speech measured
    #: 0.80-0.89, French and German 0.15-0.64 (temperature fallback samples, so they vary from
    #: run to run): the middle of the gap (BENCHMARKS.md). 0: never flag.
    low_confidence: float = 0.7
    # -- local engine (faster-whisper); the fields in LOCAL_OPTIONS decide its transcripts
    #: None: the bundled Whisper base (engines/local/models.py says what each value means)
    model: str | None = None
    #: Where the bundled model's parts are joined: `$XDG_CACHE_HOME/batchscribe/models/`
    #: (default `~/.cache`); None: `~/.cache`.
    cache_dir: Path | None = None
    #: "transcribe", or "translate": English text from speech in any language.
    task: str = "transcribe"
    #: Decode each 30-second window in its own language (faster-whisper's `multilingual`,
    #: with `condition_on_previous_text` off), so a recording that switches language keeps
    #: every part. "auto": on when the language is detected (not given) and the model is
    #: multilingual; it cost nothing measurable on one-language recordings (BENCHMARKS.md).
    multilingual: str = "auto"
    #: faster-whisper's BatchedInferencePipeline with this many windows at once; 0: off
    #: (sequential decoding, which kept more words on our recordings; BENCHMARKS.md).
    batch_size: int = 0
    compute_type: str = "int8"
    beam_size: int = 5
    #: None (or "auto"): English with an English-only model, else detected per file
    language: str | None = None
    #: Silero VAD before decoding: silence and noise give no words instead of invented ones.
    #: The three VAD values are faster-whisper's defaults (a shorter min silence did better on
    #: one of our long recordings and worse on the other; see BENCHMARKS.md).
    vad_filter: bool = True
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 2000
    vad_speech_pad_ms: int = 400
    #: Whisper's guards against invented text, at faster-whisper's defaults: measured, none of
    #: the alternatives did better (BENCHMARKS.md). hallucination_silence_threshold 0 is off:
    #: with VAD it never helped, and it dropped real (foreign) speech entirely.
    condition_on_previous_text: bool = True
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    hallucination_silence_threshold: float = 0.0
    #: Who spoke each word (the `speakers` extra; engines/speakers/), and how many speakers
    #: there are when known (None: estimated). Counted in the options only when on.
    speaker_labels: bool = False
    speakers_expected: int | None = None
    #: bounds on the estimated count (AssemblyAI's speaker_options); None: unbounded
    min_speakers: int | None = None
    max_speakers: int | None = None
    #: "auto": CUDA when CTranslate2 sees a GPU, with the CPU as fallback; "cpu"; "cuda"
    device: str = "auto"
    #: 0: chosen for the machine's cores (see engines/local/engine.py).
    threads: int = 0
    workers: int = 0
    # -- the local engine on a Ray cluster (--ray; engines/cluster/engine.py)
    #: the head's host:port, `auto` (RAY_ADDRESS, else the cluster `ray start` began here) or
    #: ray://host:10001 (Ray Client); None: transcribe in this process
    ray_address: str | None = None
    #: actors in the pool, each holding the model once; 0: one per GPU when the cluster has
    #: GPUs, else one per `ray_num_cpus` CPU slots of the cluster
    ray_actors: int = 0
    #: CPU slots per actor: its decoding threads (one is what in-process decoding measured best)
    ray_num_cpus: float = 1.0
    #: GPUs per actor; None: 1 when the cluster has GPUs (and device is not "cpu"), else 0
    ray_num_gpus: float | None = None
    #: every node sees the recordings at the same path: actors read them there; else the
    #: coordinator sends their bytes through Ray's object store
    ray_shared_storage: bool = True
    #: with ray_shared_storage false, a larger file fails (not sent): each file in flight is
    #: held in the coordinator's memory and the object store, once per actor at work
    ray_max_file_bytes: int = 1 << 30
    # -- `batchscribe serve` (batchscribe/serve/)
    #: loopback: nothing off this machine reaches it unless the user binds wider, with a key
    serve_host: str = "127.0.0.1"
    serve_port: int = 8765
    #: uploads and transcripts kept across restarts; None: `$XDG_STATE_HOME/batchscribe/serve`
    serve_state_dir: Path | None = None
    #: where the state folder defaults to (`$XDG_STATE_HOME`, else `~/.local/state`)
    state_home: Path | None = None
    #: AssemblyAI's own cap is 2.2 GB; a local disk deserves a smaller default
    serve_max_upload_mb: int = 1024
    #: transcripts waiting for a worker; more get 429 with Retry-After
    serve_max_queue: int = 100
    #: env BATCHSCRIBE_SERVER_KEY: what clients send as Authorization; None: no key asked
    server_key: str | None = field(default=None, repr=False)

    def engine_options(self) -> dict[str, Any]:
        """What, besides the audio, decides the transcript: a change means transcribe again.

        VAD is on by default since issue #14: a folder the local engine did before is done
        again once, with it ("options changed"; `vad_filter = false` or --keep-existing keeps
        it). The VAD and guard values count only when changed (LOCAL_TUNING); the device never
        does: a GPU appearing is no reason to transcribe again.
        """
        if self.chosen_engine() == "assemblyai":  # as given: the default models never count
            return dict(sorted(self.transcript_options.items()))
        options = {name: getattr(self, name) for name in LOCAL_OPTIONS}
        options["model"] = model_fingerprint(self.model)
        defaults = {f.name: f.default for f in fields(self)}
        options.update(
            {n: getattr(self, n) for n in LOCAL_TUNING if getattr(self, n) != defaults[n]}
        )
        if self.speaker_labels:  # a folder done without them keeps its fingerprint
            options["speaker_labels"] = True
            options.update({n: getattr(self, n) for n in SPEAKER_COUNTS if getattr(self, n)})
        return options

    def assemblyai(self) -> AssemblyAISettings:
        """The AssemblyAI engine's and the poller's part."""
        return _cut(AssemblyAISettings, self)

    def local(self) -> LocalSettings:
        """The local engine's part (model, decoding, VAD, guards, speakers, device)."""
        return _cut(LocalSettings, self)

    def cluster(self) -> ClusterSettings:
        """--ray's part: the pool's shape and the local part its actors are given."""
        assert self.ray_address is not None, "only with --ray"
        return _cut(ClusterSettings, self, local=self.local())

    def output(self) -> OutputSettings:
        return _cut(OutputSettings, self)

    def watching(self) -> WatchSettings:
        return _cut(WatchSettings, self)

    def chosen_engine(self) -> str:
        """`auto` means AssemblyAI when a key is configured, else the local engine."""
        if self.engine != "auto":
            return self.engine
        return "assemblyai" if self.api_key else "local"


def from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives: the key, the base URL and the cache folder."""
    values: dict[str, Any] = {}
    key = next((env[name] for name in KEY_ENV_NAMES if env.get(name)), None)
    if key:
        values["api_key"] = key
    if env.get("ASSEMBLYAI_BASE_URL"):
        values["base_url"] = env["ASSEMBLYAI_BASE_URL"]
    if env.get("XDG_CACHE_HOME"):  # where the default model is joined (engines/local/models.py)
        values["cache_dir"] = Path(env["XDG_CACHE_HOME"])
    elif env.get("HOME"):
        values["cache_dir"] = Path(env["HOME"]) / ".cache"
    if env.get("BATCHSCRIBE_SERVER_KEY"):
        values["server_key"] = env["BATCHSCRIBE_SERVER_KEY"]
    if env.get("XDG_STATE_HOME"):
        values["state_home"] = Path(env["XDG_STATE_HOME"])
    elif env.get("HOME"):
        values["state_home"] = Path(env["HOME"]) / ".local" / "state"
    return values


def ray_address(given: str, env: Mapping[str, str]) -> str:
    """`--ray auto` is RAY_ADDRESS when set, as `ray.init` reads it; an explicit address wins
    over it (as in `ray.init`). RAY_ADDRESS alone never turns --ray on."""
    if given.strip().lower() == "auto" and env.get("RAY_ADDRESS"):
        return env["RAY_ADDRESS"]
    return given.strip()


def ray_concurrency(actors: int) -> int:
    """Files under way with --ray when --concurrency is not given: twice the pool, so an actor
    that finishes finds the next file hashed and waiting; RAY_CONCURRENCY when the cluster
    chooses the pool's size."""
    return 2 * actors if actors else RAY_CONCURRENCY


def build_settings(
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: Path,
    config_path: Path | None = None,
    transcript_options: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge every source in precedence order and validate the result.

    `flags` holds only what the user gave on the command line (None means not given), and may
    include the request flags (REQUEST_FLAGS: --language, --speaker-labels, --speech-model);
    `transcript_options` are further request fields, over those the flags set.
    Raises ConfigError with a line naming the file or key at fault.
    """
    transcript_options = {**from_flags(flags), **(transcript_options or {})}
    settable = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    config_file = find_config_file(config_path, cwd, env)
    if config_file is not None:
        values.update(read_config_file(config_file), config_path=config_file)
    values.update(from_environment(env))
    for name in file_counts_replaced(flags):  # a count flag replaces the file's range, and back
        values.pop(name, None)
    request_only = REQUEST_FLAGS.keys() - settable  # --speaker-labels, --speech-model
    values.update({n: v for n, v in flags.items() if v is not None and n not in request_only})
    if transcript_options:  # flags add to [assemblyai.transcript] rather than replace it
        from_file = values.get("transcript_options", {})
        values["transcript_options"] = merge(from_file, transcript_options)
    if values.get("ray_address"):
        values["ray_address"] = ray_address(values["ray_address"], env)
        values.setdefault("concurrency", ray_concurrency(values.get("ray_actors", 0)))
    unknown = set(values) - settable
    if unknown:  # a programming error in the CLI, not a user error
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    settings = replace(Settings(), **values)
    validate(settings)
    return settings


def check_finite(settings: Settings) -> None:
    """Refuse nan and infinity, which a flag or TOML may give as a number: every comparison
    with nan is false, so it passes each range check and then never ends a wait."""
    numbers = [(f.name, getattr(settings, f.name)) for f in fields(settings)]
    numbers += [(f"[assemblyai.prices] {model}", price) for model, price in settings.prices.items()]
    for name, value in numbers:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} is {value}: give a finite number.")


def validate(settings: Settings) -> None:
    """Reject values no run can use, with a line that says what to give instead."""
    if settings.engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not '{settings.engine}'.")
    check_finite(settings)
    check_ranges({name: getattr(settings, name) for name in RANGES})
    if min(settings.poll_interval, settings.max_wait, settings.grace) <= 0:
        raise ConfigError("poll_interval, max_wait and grace must be positive numbers of seconds.")
    if settings.watch_settle < 0 or settings.watch_rescan <= 0:
        raise ConfigError("[watch] settle must not be negative and rescan must be positive.")
    if settings.retry_base_delay < 0 or settings.retry_max_delay < 0:
        raise ConfigError("retry_base_delay and retry_max_delay must not be negative.")
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"API URL must start with http:// or https://, not '{shown_url(settings.base_url)}'."
        )
    if settings.chosen_engine() == "assemblyai" and not _key_travels_safely(settings.base_url):
        raise ConfigError(
            f"API URL {shown_url(settings.base_url)} is plain http to another machine: the API key "
            "would travel in clear. Use https://, or plain http only to this machine (localhost, "
            "127.0.0.1, ::1)."
        )
    if "@" in urlsplit(settings.base_url).netloc:  # never echoed: it may hold the key
        raise ConfigError(
            "API URL must not carry a user or password (user:secret@host): give the key in "
            "ASSEMBLYAI_API_KEY and the URL as https://host."
        )
    if settings.engine == "assemblyai" and not settings.api_key:
        raise ConfigError(
            "No AssemblyAI key: set ASSEMBLYAI_API_KEY, or [assemblyai] api_key in the config "
            "file, or use --engine local."
        )
    if settings.max_audio_hours is not None and settings.max_audio_hours <= 0:
        raise ConfigError("--max-audio-hours must be positive.")
    if settings.max_cue_seconds <= 0:
        raise ConfigError("[output] max_cue_seconds must be positive.")
    validate_local(settings)
    if not 0 <= settings.low_confidence <= 1:
        raise ConfigError(
            f"[output] low_confidence must be between 0 and 1 (0: never), "
            f"not {settings.low_confidence}."
        )
    _validate_local(settings)
    _validate_serve(settings)


def _validate_serve(settings: Settings) -> None:
    if not 1 <= settings.serve_port <= 65535:
        raise ConfigError(f"[serve] port must be between 1 and 65535, not {settings.serve_port}.")
    if settings.serve_max_upload_mb < 1 or settings.serve_max_queue < 1:
        raise ConfigError("[serve] max_upload_mb and max_queue must be at least 1.")


def _key_travels_safely(base_url: str) -> bool:
    """https anywhere, plain http only to a loopback address: every request carries the key in
    its Authorization header. Decided from the URL alone, before any lookup or connection."""
    parts = urlsplit(base_url)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it could resolve anywhere


def _validate_speaker_count(settings: Settings) -> None:
    given = [n for n in SPEAKER_COUNTS if getattr(settings, n) is not None]
    flags = " / ".join(f"--{n.replace('_', '-')} ({n})" for n in given)
    if given and not settings.speaker_labels:
        # AssemblyAI would take the count silently and label nothing: say so instead
        raise ConfigError(f"{flags} needs --speaker-labels: add it, or drop the count.")
    low, high = settings.min_speakers, settings.max_speakers
    if low is not None and high is not None and low > high:
        raise ConfigError(f"--min-speakers ({low}) is above --max-speakers ({high}).")
    if settings.speakers_expected is not None and (low is not None or high is not None):
        # AssemblyAI's docs: a count, or a range, not both
        raise ConfigError(f"{flags}: give either the count or a range, not both.")


def _validate_local(settings: Settings) -> None:
    """The [local] values faster-whisper would reject, or misread, mid-run."""
    _validate_speaker_count(settings)
    if settings.device not in DEVICES:
        raise ConfigError(
            f"[local] device must be one of {', '.join(DEVICES)}, not '{settings.device}'."
        )
    if settings.compute_type not in COMPUTE_TYPES:
        raise ConfigError(
            f"[local] compute_type must be one of {', '.join(COMPUTE_TYPES)}, not "
            f"'{settings.compute_type}'."
        )
    if not 0 < settings.vad_threshold < 1:
        raise ConfigError("[local] vad_threshold must be between 0 and 1.")
    if (
        not 0 <= settings.no_speech_threshold <= 1
        or min(settings.compression_ratio_threshold, settings.hallucination_silence_threshold) < 0
    ):
        raise ConfigError(
            "[local] no_speech_threshold must be between 0 and 1, compression_ratio_threshold "
            "and hallucination_silence_threshold (0: off) not negative."
        )


def model_fingerprint(model: str | None) -> str | None:
    """`model` as the options fingerprint has it: the default is `base`, so a folder done with
    tiny.en (then the default, `None`) is done again once; `tiny.en` keeps `None`, so passing
    it keeps those transcripts."""
    name = (model or "").strip() or DEFAULT_MODEL
    return None if name == TINY_EN else name


def validate_local(settings: Settings) -> None:
    """The local engine's choices: `--task`, `[local] multilingual` and `batch_size`."""
    if settings.task not in ("transcribe", "translate"):
        raise ConfigError(f"--task must be transcribe or translate, not '{settings.task}'.")
    if settings.multilingual not in ("auto", "on", "off"):
        raise ConfigError(
            f"[local] multilingual must be auto, on or off, not '{settings.multilingual}'."
        )
    if settings.task == "translate" and settings.chosen_engine() == "assemblyai":
        raise ConfigError("--task translate is the local engine's (Whisper translates to English); "
                          "use --engine local, or leave --task unset with AssemblyAI.")  # fmt: skip


def _cut(part: type[Part], settings: Settings, **given: Any) -> Part:
    """The part of `settings` whose fields `part` names (same names, same values)."""
    names = (f.name for f in fields(part) if f.name not in given)  # type: ignore[arg-type]
    return part(**{name: getattr(settings, name) for name in names}, **given)
