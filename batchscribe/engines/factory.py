"""Which engine a run uses: the one `settings` asks for (`auto` resolved), wrapped in the
low-confidence check; only the engine in use is imported."""

from __future__ import annotations

from batchscribe.config import Settings
from batchscribe.engines.base import Engine
from batchscribe.engines.confidence import ConfidenceCheck


def create_engine(settings: Settings) -> Engine:
    """The engine `settings` asks for (`auto` resolved), its transcripts checked for low
    confidence; imports only the engine in use."""
    if settings.chosen_engine() == "assemblyai":
        from batchscribe.engines.assemblyai.engine import create_engine as create_assemblyai

        return ConfidenceCheck(create_assemblyai(settings), settings.low_confidence)
    from batchscribe.engines.local.options import english_only

    local: Engine
    if settings.ray_address is not None:  # the only import of Ray: --ray was given
        from batchscribe.engines.cluster.engine import RayEngine

        local = RayEngine(settings)
    else:
        from batchscribe.engines.local.engine import LocalEngine

        local = LocalEngine(settings)
    return ConfidenceCheck(
        local, settings.low_confidence, english_only=english_only(settings.model)
    )


def model_label(settings: Settings) -> str:
    """The model a run's transcripts come from, as the user names it (for the metrics): the
    speech models asked of AssemblyAI, or the local model (`--model`, or the bundled one)."""
    if settings.chosen_engine() == "assemblyai":
        return ",".join(settings.request_options().get("speech_models") or [])
    from batchscribe.engines.local.options import model_label as local_model

    return local_model(settings)


def makes_requests(settings: Settings) -> bool:
    """Whether the run's engine talks to a service, so that its requests are counted (and a
    run that made none reports zeros rather than nothing)."""
    return settings.chosen_engine() == "assemblyai"


def check_engine_available(settings: Settings) -> None:
    """Fail before any work when the chosen engine cannot run: the `local` extra missing (or
    the `speakers` extra, with speaker labels), or a language its model cannot hear
    (`--language fr` with an English-only model); with --ray, Ray missing or [ray] values no
    pool can have (the model is the actors' to load)."""
    if settings.ray_address is not None:
        from batchscribe.engines.cluster.plan import check_ray

        check_ray(settings)
    if settings.chosen_engine() == "local" and settings.speaker_labels:
        from batchscribe.engines.speakers import clustering as speakers

        speakers.check_installed()
    if settings.chosen_engine() == "local" and settings.ray_address is None:
        from batchscribe.engines.local.engine import check_installed
        from batchscribe.engines.local.models import check_name
        from batchscribe.engines.local.options import check_language

        check_installed()
        check_name(settings.model)
        check_language(settings)
