"""The flags that set AssemblyAI request fields, and how they join the config file's
[assemblyai.transcript]: the fields in the user's words, which are the options fingerprint.

What is sent is another view, the engine's (engines/assemblyai/request.to_send): upgrading
batchscribe may change the body, never these words, so a finished folder is never redone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchscribe.errors import ConfigError

#: Flags that set a `POST /v2/transcript` field: flag name -> request field. `language` is also
#: a Settings field (the local engine's); the others exist only as request fields.
REQUEST_FLAGS = {"language": "language_code", "speaker_labels": "speaker_labels",
                 "speakers_expected": "speakers_expected",
                 "speech_model": "speech_models"}  # fmt: skip
#: What may be said of the speaker count (Settings fields; each needs --speaker-labels), and the
#: `speaker_options` fields the bounds are sent as (min_/max_speakers_expected).
SPEAKER_COUNTS = ("speakers_expected", "min_speakers", "max_speakers")
SPEAKER_BOUNDS = {"min_speakers": "min_speakers_expected", "max_speakers": "max_speakers_expected"}
#: The spelling of a model field: one model, as before the API took a list, or several.
MODEL_FIELDS = frozenset({"speech_model", "speech_models"})


def parse_speech_models(text: str) -> list[str]:
    """`universal-3-pro, universal-2` -> the models in priority order; empty raises ConfigError."""
    models = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not models:
        raise ConfigError(
            "--speech-model needs at least one model name, e.g. universal-3-pro,universal-2."
        )
    return models


def from_flag(models: str | list[str]) -> dict[str, Any]:
    """`--speech-model`'s request field. One model keeps the spelling it had before the API took
    a list, `speech_model`, so that the fingerprint of a folder done with `--speech-model X` stays
    the same (the engine sends it as a list); several are `speech_models`."""
    names = parse_speech_models(models) if isinstance(models, str) else list(models)
    return {"speech_model": names[0]} if len(names) == 1 else {"speech_models": names}


def from_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The request fields the flags set (`--language en` -> `language_code`); None = not given."""
    options = {
        field: flags[name] for name, field in REQUEST_FLAGS.items() if flags.get(name) is not None
    }
    bounds = {f: flags[n] for n, f in SPEAKER_BOUNDS.items() if flags.get(n) is not None}
    if bounds:
        options["speaker_options"] = bounds
    if "speech_models" in options:  # --speech-model's models, spelled as from_flag says
        options.update(from_flag(options.pop("speech_models")))
    if options.get("language_code") == "auto":  # AssemblyAI's way to say it is a flag
        del options["language_code"]
        options["language_detection"] = True
    return options


def file_counts_replaced(flags: Mapping[str, Any]) -> tuple[str, ...]:
    """The config file's speaker-count settings the flags replace: a count given on the command
    line replaces the file's range, a bound the file's count (either with both is an error)."""
    given = {name for name in SPEAKER_COUNTS if flags.get(name) is not None}
    if not given:
        return ()
    if given == {"speakers_expected"}:
        return ("min_speakers", "max_speakers")
    return ("speakers_expected",) if "speakers_expected" not in given else ()


def merge(from_file: Mapping[str, Any], from_flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags' fields over the config file's; models given by a flag replace the file's,
    whichever the spelling on either side, and a speaker count or range the file's other."""
    replaced = set(MODEL_FIELDS) if from_flags.keys() & MODEL_FIELDS else set()
    if "speakers_expected" in from_flags and "speaker_options" not in from_flags:
        replaced.add("speaker_options")
    if "speaker_options" in from_flags and "speakers_expected" not in from_flags:
        replaced.add("speakers_expected")
    from_file = {name: value for name, value in from_file.items() if name not in replaced}
    return {**from_file, **from_flags}
