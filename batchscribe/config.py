"""Settings: defaults < TOML config file < environment < flags, built once and passed down.

This is the only module that reads `os.environ` (the CLI hands it over) or a config file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from batchscribe.errors import ConfigError

#: The official API host; EU data residency is `https://api.eu.assemblyai.com`.
DEFAULT_BASE_URL = "https://api.assemblyai.com"
#: Formats the AssemblyAI docs list as supported, plus common containers of them.
DEFAULT_EXTENSIONS = frozenset(
    [
        "mp3",
        "mp4",
        "m4a",
        "wav",
        "flac",
        "ogg",
        "opus",
        "webm",
        "aac",
        "wma",
        "aiff",
        "amr",
        "mov",
        "mkv",
    ]
)
#: Env names for the key: the SDK's, then the tutorial's.
KEY_ENV_NAMES = ("ASSEMBLYAI_API_KEY", "ASSEMBLYAI_KEY")
#: Name looked for in the working folder when no --config is given.
LOCAL_CONFIG_NAME = "batchscribe.toml"
ENGINES = ("auto", "assemblyai", "local")


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
    #: Attempts per request before the file fails (429, 5xx, resets, timeouts).
    retry_attempts: int = 6
    #: First backoff step in seconds; doubles each attempt, with full jitter.
    retry_base_delay: float = 1.0
    #: Ceiling on one backoff step.
    retry_max_delay: float = 60.0
    # -- local engine (faster-whisper)
    model: str | None = None
    compute_type: str = "int8"
    beam_size: int = 5
    language: str | None = None
    vad_filter: bool = False
    device: str = "cpu"
    #: 0: chosen for the machine's cores (see engines/local.py).
    threads: int = 0
    workers: int = 0

    def chosen_engine(self) -> str:
        """`auto` means AssemblyAI when a key is configured, else the local engine."""
        if self.engine != "auto":
            return self.engine
        return "assemblyai" if self.api_key else "local"


# TOML key (section, name) -> (Settings field, accepted type). One table, so the file format,
# config.example.toml and validation cannot drift apart.
_SCHEMA: dict[tuple[str, str], tuple[str, type | tuple[type, ...]]] = {
    ("", "engine"): ("engine", str),
    ("", "concurrency"): ("concurrency", int),
    ("", "extensions"): ("extensions", list),
    ("assemblyai", "api_key"): ("api_key", str),
    ("assemblyai", "base_url"): ("base_url", str),
    ("assemblyai", "poll_interval"): ("poll_interval", (int, float)),
    ("assemblyai", "max_wait"): ("max_wait", (int, float)),
    ("assemblyai", "requests_per_minute"): ("requests_per_minute", int),
    ("assemblyai", "max_upload_bytes"): ("max_upload_bytes", int),
    ("assemblyai", "upload_ttl"): ("upload_ttl", (int, float)),
    ("assemblyai", "retry_attempts"): ("retry_attempts", int),
    ("assemblyai", "retry_base_delay"): ("retry_base_delay", (int, float)),
    ("assemblyai", "retry_max_delay"): ("retry_max_delay", (int, float)),
    ("local", "model"): ("model", str),
    ("local", "compute_type"): ("compute_type", str),
    ("local", "beam_size"): ("beam_size", int),
    ("local", "language"): ("language", str),
    ("local", "vad_filter"): ("vad_filter", bool),
    ("local", "device"): ("device", str),
    ("local", "threads"): ("threads", int),
    ("local", "workers"): ("workers", int),
}
_SECTIONS = {section for section, _ in _SCHEMA if section}


def user_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/batchscribe/config.toml`, defaulting to `~/.config`."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "batchscribe" / "config.toml"


def find_config_file(explicit: Path | None, cwd: Path, env: Mapping[str, str]) -> Path | None:
    """--config if given, else `batchscribe.toml` in the working folder, else the user's file."""
    if explicit is not None:
        return explicit
    for candidate in (cwd / LOCAL_CONFIG_NAME, user_config_path(env)):
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse and validate a TOML config file into Settings field values."""
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror}).") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err}).") from None
    values: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and key in _SECTIONS:
            for sub_key, sub_value in value.items():
                values.update(_field_value(path, key, sub_key, sub_value))
        else:
            values.update(_field_value(path, "", key, value))
    return values


def _field_value(path: Path, section: str, key: str, value: Any) -> dict[str, Any]:
    dotted = f"{section}.{key}" if section else key
    if (section, key) not in _SCHEMA:
        raise ConfigError(f"{path}: unknown key '{dotted}'; see config.example.toml for the keys.")
    name, expected = _SCHEMA[(section, key)]
    # bool is an int in Python; never accept `concurrency = true`.
    wrong_bool = isinstance(value, bool) and expected is not bool
    if wrong_bool or not isinstance(value, expected):
        wanted = expected.__name__ if isinstance(expected, type) else "number"
        raise ConfigError(f"{path}: '{dotted}' must be a {wanted}, not {value!r}.")
    if name == "extensions":
        return {name: _extensions(value, source=f"{path}: '{dotted}'")}
    if name in {"api_key", "model", "language"} and value == "":
        return {name: None}  # TOML has no null; an empty string means "not set"
    return {name: value}


def _extensions(items: Any, *, source: str) -> frozenset[str]:
    if isinstance(items, str):
        items = items.split(",")
    exts = frozenset(str(item).strip().lower().lstrip(".") for item in items)
    exts -= {""}
    if not exts:
        raise ConfigError(f"{source} lists no extensions; give at least one, e.g. mp3,wav.")
    return exts


def parse_extensions(text: str) -> frozenset[str]:
    """`--ext mp3,.WAV` -> {'mp3', 'wav'}."""
    return _extensions(text, source="--ext")


def from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives: the key and the base URL."""
    values: dict[str, Any] = {}
    key = next((env[name] for name in KEY_ENV_NAMES if env.get(name)), None)
    if key:
        values["api_key"] = key
    if env.get("ASSEMBLYAI_BASE_URL"):
        values["base_url"] = env["ASSEMBLYAI_BASE_URL"]
    return values


def build_settings(
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: Path,
    config_path: Path | None = None,
) -> Settings:
    """Merge every source in precedence order and validate the result.

    `flags` holds only what the user gave on the command line (None means not given).
    Raises ConfigError with a line naming the file or key at fault.
    """
    values: dict[str, Any] = {}
    config_file = find_config_file(config_path, cwd, env)
    if config_file is not None:
        values.update(read_config_file(config_file))
    values.update(from_environment(env))
    values.update({name: value for name, value in flags.items() if value is not None})
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:  # a programming error in the CLI, not a user error
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    settings = replace(Settings(), **values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Reject values no run can use, with a line that says what to give instead."""
    if settings.engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not '{settings.engine}'.")
    if settings.concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {settings.concurrency}.")
    if settings.poll_interval <= 0 or settings.max_wait <= 0:
        raise ConfigError("poll_interval and max_wait must be positive numbers of seconds.")
    if settings.requests_per_minute < 10:
        raise ConfigError("requests_per_minute must be at least 10.")
    if settings.retry_attempts < 1 or settings.retry_base_delay < 0 or settings.retry_max_delay < 0:
        raise ConfigError("retry_attempts must be at least 1 and retry delays not negative.")
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"API URL must start with http:// or https://, not '{settings.base_url}'."
        )
    if settings.engine == "assemblyai" and not settings.api_key:
        raise ConfigError(
            "No AssemblyAI key: set ASSEMBLYAI_API_KEY, or [assemblyai] api_key in the config "
            "file, or use --engine local."
        )
    if settings.beam_size < 1 or settings.threads < 0 or settings.workers < 0:
        raise ConfigError("local beam_size must be >= 1, threads and workers >= 0.")
