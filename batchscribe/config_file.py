"""The TOML config file: where it is looked for, its keys and types (one table), and the
values it gives the Settings. Also the list parsers the flags share (--ext, --formats).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from batchscribe.errors import ConfigError
from batchscribe.output.names import FORMATS

#: Name looked for in the working folder when no --config is given.
LOCAL_CONFIG_NAME = "batchscribe.toml"


# TOML key (section, name) -> (Settings field, accepted type). One table, so the file format,
# config.example.toml and validation cannot drift apart.
_SCHEMA: dict[tuple[str, str], tuple[str, type | tuple[type, ...]]] = {
    ("", "engine"): ("engine", str),
    ("", "concurrency"): ("concurrency", int),
    ("", "grace"): ("grace", (int, float)),
    ("", "extensions"): ("extensions", list),
    ("", "metrics_file"): ("metrics_file", str),
    ("watch", "poll"): ("watch_poll", bool),
    ("watch", "settle"): ("watch_settle", (int, float)),
    ("watch", "rescan"): ("watch_rescan", (int, float)),
    ("output", "formats"): ("formats", list),
    ("output", "dir"): ("output_dir", str),
    ("output", "max_line_chars"): ("max_line_chars", int),
    ("output", "max_lines"): ("max_lines", int),
    ("output", "max_cue_seconds"): ("max_cue_seconds", (int, float)),
    ("output", "pause_seconds"): ("pause_seconds", (int, float)),
    ("output", "low_confidence"): ("low_confidence", (int, float)),
    ("assemblyai", "transcript"): ("transcript_options", dict),
    ("assemblyai", "delete_after"): ("delete_after", bool),
    ("assemblyai", "price_per_hour"): ("price_per_hour", (int, float)),
    ("assemblyai", "prices"): ("prices", dict),
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
    ("assemblyai", "unreachable_timeout"): ("unreachable_timeout", (int, float)),
    ("local", "model"): ("model", str),
    ("local", "compute_type"): ("compute_type", str),
    ("local", "beam_size"): ("beam_size", int),
    ("local", "language"): ("language", str),
    ("local", "task"): ("task", str),
    ("local", "multilingual"): ("multilingual", str),
    ("local", "batch_size"): ("batch_size", int),
    ("local", "vad_filter"): ("vad_filter", bool),
    ("local", "vad_threshold"): ("vad_threshold", (int, float)),
    ("local", "vad_min_silence_ms"): ("vad_min_silence_ms", int),
    ("local", "vad_speech_pad_ms"): ("vad_speech_pad_ms", int),
    ("local", "condition_on_previous_text"): ("condition_on_previous_text", bool),
    ("local", "compression_ratio_threshold"): ("compression_ratio_threshold", (int, float)),
    ("local", "log_prob_threshold"): ("log_prob_threshold", (int, float)),
    ("local", "no_speech_threshold"): ("no_speech_threshold", (int, float)),
    ("local", "hallucination_silence_threshold"): (
        "hallucination_silence_threshold",
        (int, float),
    ),
    ("local", "speaker_labels"): ("speaker_labels", bool),
    ("local", "speakers_expected"): ("speakers_expected", int),
    ("local", "min_speakers"): ("min_speakers", int),
    ("local", "max_speakers"): ("max_speakers", int),
    ("local", "device"): ("device", str),
    ("local", "threads"): ("threads", int),
    ("local", "workers"): ("workers", int),
    ("ray", "address"): ("ray_address", str),
    ("ray", "actors"): ("ray_actors", int),
    ("ray", "num_cpus"): ("ray_num_cpus", (int, float)),
    ("ray", "num_gpus"): ("ray_num_gpus", (int, float)),
    ("ray", "shared_storage"): ("ray_shared_storage", bool),
    ("ray", "max_file_bytes"): ("ray_max_file_bytes", int),
    ("serve", "host"): ("serve_host", str),
    ("serve", "port"): ("serve_port", int),
    ("serve", "state_dir"): ("serve_state_dir", str),
    ("serve", "max_upload_mb"): ("serve_max_upload_mb", int),
    ("serve", "max_queue"): ("serve_max_queue", int),
}
_SECTIONS = {section for section, _ in _SCHEMA if section}


@dataclass(frozen=True, slots=True)
class Range:
    """The values a count the user gives may take, both ends included, and why its ceiling."""

    low: int
    high: int
    why: str
    #: the flag that sets it too, if any
    flag: str | None = None


# Every count a user gives, flag or config key alike (Settings field -> its range): one table,
# checked by `config.validate` whatever set the value, so no count can ask for unbounded memory
# or a task per unit (`concurrency = 100000000` once made 100 million tasks before a signal
# could be handled). README's "Limits" and config.example.toml say the same.
RANGES: dict[str, Range] = {
    # A worker is a task, a connection and two queued jobs; 256 is --ray's own default, and the
    # API's 4,000 requests a minute are saturated far below it.
    "concurrency": Range(1, 256, "files under way at once", "--concurrency"),
    # Budgets are counters, no memory per unit: a ceiling only catches a typo.
    "max_files": Range(1, 1_000_000_000, "files per run", "--max-files"),
    # More voices than the clustering can tell apart in one conversation is noise.
    "speakers_expected": Range(1, 32, "speakers in one recording", "--speakers-expected"),
    "min_speakers": Range(1, 32, "speakers in one recording", "--min-speakers"),
    "max_speakers": Range(1, 32, "speakers in one recording", "--max-speakers"),
    "max_line_chars": Range(1, 1000, "characters per subtitle line"),
    "max_lines": Range(1, 100, "lines per subtitle cue"),
    # A token bucket of this size; the API allows 4,000 a minute.
    "requests_per_minute": Range(10, 100_000, "the API allows 4,000 a minute"),
    # Streamed in 1 MiB pieces whatever the size: the ceiling is the largest disk file sensible.
    "max_upload_bytes": Range(1, 1 << 40, "bytes, streamed from disk"),
    "retry_attempts": Range(1, 100, "attempts per request"),
    # Decoder memory grows with each of these: beams per window, windows at once.
    "beam_size": Range(1, 20, "beams per window; memory grows with each"),
    "batch_size": Range(0, 64, "windows decoded at once, 0: off; memory grows with each"),
    "threads": Range(0, 256, "decoding threads per worker, 0: chosen for the cores"),
    # Each local worker holds its own copy of the model in memory.
    "workers": Range(0, 64, "local workers, each holding the model; 0: one per core"),
    "vad_min_silence_ms": Range(0, 3_600_000, "milliseconds"),
    "vad_speech_pad_ms": Range(0, 3_600_000, "milliseconds"),
    # Twice the actors is the default concurrency, whose ceiling is 256.
    "ray_actors": Range(0, 128, "actors, each holding the model; 0: sized by the cluster"),
    # Held whole in memory, once per actor at work, when not on shared storage.
    "ray_max_file_bytes": Range(1, 1 << 32, "bytes held in memory per file sent to an actor"),
}


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
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror}).") from None
    try:
        document = tomllib.loads(_toml_text(path, raw))
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


#: What Windows editors write instead of UTF-8, by the bytes they start the file with.
_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}


def _toml_text(path: Path, raw: bytes) -> str:
    """The file as text: TOML is UTF-8; a UTF-8 byte-order mark (Notepad's "UTF-8 with BOM")
    is dropped. Anything else raises ConfigError naming the file and its encoding."""
    for bom, name in _BOMS.items():
        if raw.startswith(bom):
            raise ConfigError(
                f"{path}: the file is in {name}, and TOML must be UTF-8; save it as UTF-8."
            )
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        byte = raw[err.start : err.start + 1].hex()
        utf16 = b"\x00" in raw  # UTF-16 without a byte-order mark
        guess = "UTF-16" if utf16 else "Latin-1 or Windows-1252, perhaps"
        raise ConfigError(
            f"{path}: not UTF-8 (byte 0x{byte} on line {line}; {guess}), and TOML must be "
            "UTF-8; save it as UTF-8."
        ) from None


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
    if name == "formats":
        return {name: parse_formats(list(value), source=f"{path}: '{dotted}'")}  # type: ignore[call-overload]
    if name == "transcript_options":
        # checked by the engine's family (engines/assemblyai/request.check_settings)
        return {name: value, "file_transcript_options": value}
    if name == "prices":
        return {name: _prices(cast(dict[str, Any], value), source=f"{path}: [{dotted}]")}
    if name in {"output_dir", "metrics_file", "serve_state_dir"}:
        return {name: Path(str(value)).expanduser() if value else None}
    if name in {"api_key", "model", "language", "ray_address"} and value == "":
        return {name: None}  # TOML has no null; an empty string means "not set"
    if expected == (int, float):  # `-1` and `-1.0` are one value, and one options fingerprint
        return {name: float(cast(float, value))}
    return {name: value}


def _prices(table: dict[str, Any], *, source: str) -> dict[str, float]:
    for model, price in table.items():
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ConfigError(f"{source} {model} must be USD per audio hour, e.g. 0.15.")
    return {model: float(price) for model, price in table.items()}


def _extensions(items: Any, *, source: str) -> frozenset[str]:
    if isinstance(items, str):
        items = items.split(",")
    exts = frozenset(str(item).strip().lower().lstrip(".") for item in items)
    exts -= {""}
    if not exts:
        raise ConfigError(f"{source} lists no extensions; give at least one, e.g. mp3,wav.")
    return exts


def parse_formats(items: str | list[Any], *, source: str = "--formats") -> tuple[str, ...]:
    """`txt,srt` -> ("txt", "srt"), in the order given, each once; unknown formats rejected."""
    names = items.split(",") if isinstance(items, str) else [str(i) for i in items]
    chosen = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    unknown = [n for n in chosen if n not in FORMATS]
    if unknown or not chosen:
        raise ConfigError(
            f"{source}: unknown format {', '.join(unknown) or '(none)'}; choose from "
            f"{','.join(FORMATS)}."
        )
    return chosen


def parse_extensions(text: str) -> frozenset[str]:
    """`--ext mp3,.WAV` -> {'mp3', 'wav'}."""
    return _extensions(text, source="--ext")


def config_key(name: str) -> str | None:
    """The config file's key for Settings field `name`, as a user writes it (`[local] beam_size`);
    None for a flag-only setting."""
    for (section, key), (field, _) in _SCHEMA.items():
        if field == name:
            return f"[{section}] {key}" if section else key
    return None


def check_ranges(values: Mapping[str, Any]) -> None:
    """Raise ConfigError, one line, for the first count outside RANGES (None: not set)."""
    for name, allowed in RANGES.items():
        value = values.get(name)
        if value is None or allowed.low <= value <= allowed.high:
            continue
        key = config_key(name)
        given = f"{allowed.flag} (config: {key})" if allowed.flag and key else allowed.flag
        raise ConfigError(
            f"{given or key or name} must be from {allowed.low:,} to {allowed.high:,} "
            f"({allowed.why}), not {value:,}."
        )
