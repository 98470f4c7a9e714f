"""How long a recording is, from its headers (mutagen): no decoding, no model, milliseconds."""

from __future__ import annotations

from pathlib import Path

import mutagen
import mutagen.wave


def audio_seconds(path: Path) -> float | None:
    """The recording's duration, or None when the headers do not tell (or it is not audio).

    Blocking (reads a few KB of the file): call it in a thread.
    """
    try:
        found = mutagen.File(path)
        if found is None and path.suffix.lower() in (".wav", ".wave"):
            found = mutagen.wave.WAVE(path)  # type: ignore[no-untyped-call]  # mutagen.File does not sniff RIFF/WAVE
    except (mutagen.MutagenError, OSError, ValueError):
        return None
    length = getattr(getattr(found, "info", None), "length", None)
    return float(length) if length else None
