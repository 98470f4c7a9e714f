"""Which engine a run uses: the one `settings` asks for (`auto` resolved), wrapped in the
low-confidence check; only the engine in use is imported."""

from __future__ import annotations

from batchscribe.config import Settings
from batchscribe.engines.base import Engine
from batchscribe.engines.confidence import ConfidenceCheck
from batchscribe.errors import ConfigError


def create_engine(settings: Settings) -> Engine:
    """The engine `settings` asks for (`auto` resolved), its transcripts checked for low
    confidence; imports only the engine in use."""
    if settings.chosen_engine() == "assemblyai":
        from batchscribe.engines.assemblyai.engine import create_engine as create_assemblyai

        return ConfidenceCheck(create_assemblyai(settings.assemblyai()), settings.low_confidence)
    from batchscribe.engines.local.options import english_only

    local: Engine
    if settings.ray_address is not None:  # the only import of Ray: --ray was given
        from batchscribe.engines.cluster.engine import RayEngine

        local = RayEngine(settings.cluster())
    else:
        from batchscribe.engines.local.engine import LocalEngine

        local = LocalEngine(settings.local())
    return ConfidenceCheck(
        local, settings.low_confidence, english_only=english_only(settings.model)
    )


def model_label(settings: Settings) -> str:
    """The model a run's transcripts come from, as the user names it (for the metrics): the
    speech models asked of AssemblyAI, or the local model (`--model`, or the bundled one)."""
    if settings.chosen_engine() == "assemblyai":
        from batchscribe.engines.assemblyai.request import to_send

        return ",".join(to_send(settings.transcript_options).get("speech_models") or [])
    from batchscribe.engines.local.options import model_label as local_model

    return local_model(settings.local())


def makes_requests(settings: Settings) -> bool:
    """Whether the run's engine talks to a service, so that its requests are counted (and a
    run that made none reports zeros rather than nothing)."""
    return settings.chosen_engine() == "assemblyai"


def check_engine_available(settings: Settings) -> list[str]:
    """Fail before any work (ConfigError, exit 2) when the chosen engine cannot run: the
    `local` extra missing (or the `speakers` extra, with speaker labels), or a language its
    model cannot hear (`--language fr` with an English-only model); with --ray, Ray missing or
    [ray] values no pool can have (the model is the actors' to load); request fields no
    AssemblyAI request may carry, whichever engine runs (a config shared by both is kept
    sendable). Returns the lines to warn about once per run (AssemblyAI's only)."""
    warnings = _check_request(settings)
    chosen = settings.chosen_engine()
    if settings.ray_address is not None:
        from batchscribe.engines.cluster.plan import check_ray

        if chosen != "local":
            raise ConfigError(
                "--ray runs the local engine on a Ray cluster, but the engine is AssemblyAI (a "
                "key is set): add --engine local."
            )
        check_ray(settings.cluster())
    if chosen == "local" and settings.speaker_labels:
        from batchscribe.engines.speakers import clustering as speakers

        speakers.check_installed()
    if chosen == "local" and settings.ray_address is None:
        from batchscribe.engines.local.engine import check_installed
        from batchscribe.engines.local.models import check_name
        from batchscribe.engines.local.options import check_language

        check_installed()
        check_name(settings.model)
        check_language(settings.local())
    return warnings if chosen == "assemblyai" else []


def _check_request(settings: Settings) -> list[str]:
    if settings.chosen_engine() != "assemblyai" and not (
        settings.transcript_options or settings.file_transcript_options
    ):
        return []  # nothing to check: an offline run imports nothing of AssemblyAI's
    from batchscribe.engines.assemblyai.request import check_settings

    return check_settings(settings.assemblyai())
