"""Transcription engines behind one interface (`base.Engine`)."""

from __future__ import annotations

from batchscribe.config import Settings
from batchscribe.engines.base import Engine


def create_engine(settings: Settings) -> Engine:
    """The engine `settings` asks for (`auto` resolved); imports only the one in use."""
    if settings.chosen_engine() == "assemblyai":
        from batchscribe.engines.assemblyai import create_engine as create_assemblyai

        return create_assemblyai(settings)
    from batchscribe.engines.local import LocalEngine

    return LocalEngine(settings)


def check_engine_available(settings: Settings) -> None:
    """Fail before any work when the chosen engine cannot run (missing extra)."""
    if settings.chosen_engine() == "local":
        from batchscribe.engines.local import check_installed

        check_installed()
