"""The `POST /v2/transcript` body: the fields the API reference lists, those it has deprecated,
and the speech models sent when the user names none.

Two views of the request options are kept apart on purpose. What the user asked for, in the
words they used (`Settings.transcript_options`), is the options fingerprint: upgrading
batchscribe never changes it, so it never transcribes a finished folder again. What is sent
(`to_send`) is in today's API's words: deprecated fields translated, the default models added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from batchscribe.errors import ConfigError
from batchscribe.settings.parts import AssemblyAISettings

#: AssemblyAI's recommended routing (docs, "Select the speech model", 2026): Universal-3 Pro,
#: falling back to Universal-2 for what it does not take. Sent when the user names no model,
#: and never part of the fingerprint, so a user who sets nothing keeps the one they had.
DEFAULT_SPEECH_MODELS = ("universal-3-pro", "universal-2")

#: `POST /v2/transcript` fields in assemblyai-openapi.yml (TranscriptOptionalParams, 2026-03),
#: less the deprecated ones below.
KNOWN_TRANSCRIPT_OPTIONS = frozenset([
    "audio_end_at", "audio_start_from", "auto_highlights", "content_safety",
    "content_safety_confidence", "custom_spelling", "disfluencies", "entity_detection",
    "filter_profanity", "format_text", "iab_categories", "keyterms_prompt", "language_code",
    "language_codes", "language_confidence_threshold", "language_detection",
    "language_detection_options", "multichannel", "prompt", "punctuate", "redact_pii",
    "redact_pii_audio", "redact_pii_audio_options", "redact_pii_audio_quality",
    "redact_pii_policies", "redact_pii_sub", "remove_audio_tags", "sentiment_analysis",
    "speaker_labels", "speaker_options", "speakers_expected", "speech_models", "speech_threshold",
    "speech_understanding", "temperature", "webhook_auth_header_name",
    "webhook_auth_header_value", "webhook_url",
])  # fmt: skip

#: Fields the live service refuses that have a successor: old configs keep working, translated.
#: (`speech_model` and the others are deprecated in the reference; `word_boost` and its weight
#: `boost_param` are gone from it, replaced by `keyterms_prompt`.)
TRANSLATED = {"speech_model": "speech_models", "word_boost": "keyterms_prompt",
              "boost_param": "keyterms_prompt"}  # fmt: skip

_LLM_GATEWAY = (
    "remove it; for chapters and summaries use AssemblyAI's LLM Gateway on the transcript"
)
_TOPICS = "remove it (it had no effect); to detect topics use iab_categories = true"
#: Deprecated fields with no successor in the request: refused, saying what to do instead.
REFUSED = {
    "auto_chapters": _LLM_GATEWAY,
    "summarization": _LLM_GATEWAY,
    "summary_model": _LLM_GATEWAY,
    "summary_type": _LLM_GATEWAY,
    "custom_topics": _TOPICS,
    "topics": _TOPICS,
}


def to_send(options: Mapping[str, Any]) -> dict[str, Any]:
    """The request fields for `options`, in today's API's words; never a deprecated field.

    `speech_model` becomes `speech_models = [it]` (a `speech_models` given too wins),
    `word_boost` joins `keyterms_prompt`, `boost_param` is dropped, and when no model is named
    DEFAULT_SPEECH_MODELS is sent: the service requires `speech_models`.
    """
    sent = {name: value for name, value in options.items() if name not in TRANSLATED}
    if "speech_models" not in sent:
        legacy = options.get("speech_model")
        sent["speech_models"] = [legacy] if legacy else list(DEFAULT_SPEECH_MODELS)
    if options.get("word_boost"):
        terms = [*sent.get("keyterms_prompt", []), *options["word_boost"]]
        sent["keyterms_prompt"] = list(dict.fromkeys(terms))
    return sent


def check(options: Mapping[str, Any], *, where: str) -> list[str]:
    """Refuse what no request may carry; one warning line per deprecated field translated.

    `where` names the options' home in messages (`c.toml: [assemblyai.transcript]`).
    Raises ConfigError naming the key and what to use instead.
    """
    for name, instead in REFUSED.items():
        if name in options:
            raise ConfigError(f"{where} {name} is deprecated and AssemblyAI refuses it: {instead}.")
    _check_types(options, where=where)
    sent = to_send(options)
    warnings = []
    for name in TRANSLATED.keys() & options.keys():
        successor = TRANSLATED[name]
        if name == "boost_param":
            what = "dropped (keyterms_prompt has no weight)"
        else:
            what = f"sending {successor} = {json.dumps(sent.get(successor, []))} instead"
        warnings.append(
            f"batchscribe: warning: {where} {name} is deprecated; {what}; update your config."
        )
    return sorted(warnings)


def _check_types(options: Mapping[str, Any], *, where: str) -> None:
    models = options.get("speech_models", ["ok"])
    if not isinstance(models, list) or not models or not all(_name(m) for m in models):
        raise ConfigError(
            f"{where} speech_models must be a list of model names in priority order, e.g. "
            f"{json.dumps(list(DEFAULT_SPEECH_MODELS))}."
        )
    if "speech_model" in options and not _name(options["speech_model"]):
        raise ConfigError(f"{where} speech_model must be a model name; better, use speech_models.")
    for name in ("keyterms_prompt", "word_boost"):
        terms = options.get(name, [])
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise ConfigError(f"{where} {name} must be a list of words or phrases.")


def _name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def unknown(options: Mapping[str, Any]) -> list[str]:
    """Option names the API spec does not list (nor translates): still sent, worth a word."""
    return sorted(set(options) - KNOWN_TRANSCRIPT_OPTIONS - TRANSLATED.keys())


#: Where the request fields are set, as messages name it.
TABLE = "[assemblyai.transcript]"


def check_settings(part: AssemblyAISettings) -> list[str]:
    """Refuse, before any work (ConfigError, exit 2), request fields no request may carry: the
    config file's table in its own words (messages name the file), then with the flags' over
    it. Returns the lines to warn about once per run: the file's deprecated fields translated,
    and fields the API reference does not list (sent anyway: the API gains fields before our
    copy of its spec does)."""
    if "audio_url" in part.transcript_options:
        raise ConfigError(f"{TABLE} must not set audio_url; batchscribe sets it.")
    translated = check(part.file_transcript_options, where=f"{part.config_path}: {TABLE}")
    check(part.transcript_options, where=TABLE)
    return [
        *translated,
        *(
            f"batchscribe: warning: {TABLE} {name} is not in the API reference; sending it anyway."
            for name in unknown(part.transcript_options)
        ),
    ]
