"""Paths named on the command line: folders and recordings go on; other files are set aside.

`batchscribe pod/*` names the recordings and their transcripts alike. A file without an audio
extension (batchscribe's own `.txt`/`.json`/`.srt`/`.vtt`, notes, pictures) is not a
recording: it is skipped, as the walk of a folder skips it, and counted on one line; it is
never tried, so never recorded as failed. Naming only such files is a usage error.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.errors import ConfigError
from batchscribe.output.names import FORMATS, stem_of


def keep_recordings(settings: Settings) -> tuple[Settings, list[Path]]:
    """`settings` with only the folders and recordings among its paths, and the files set
    aside. Raises ConfigError when nothing named is a folder or a recording. A path that does
    not exist is kept: the run says so."""
    kept: list[Path] = []
    aside: list[Path] = []
    for path in settings.paths:
        recording = _has_audio_extension(path.name, settings.extensions)
        if recording or os.path.isdir(path) or not os.path.lexists(path):
            kept.append(path)
        else:
            aside.append(path)
    if aside and not kept:
        raise ConfigError(_not_a_recording(aside[0], settings.extensions))
    if not aside:
        return settings, []
    return dataclasses.replace(settings, paths=tuple(kept)), aside


def format_set_aside(paths: list[Path]) -> str:
    """The one line for the files named that are not recordings."""
    suffixes = sorted({p.suffix.lower() or "(none)" for p in paths})
    return (
        f"skipped {len(paths)} named file(s) that are not recordings "
        f"({', '.join(suffixes[:6])}{', ...' if len(suffixes) > 6 else ''})"
    )


def _not_a_recording(path: Path, extensions: frozenset[str]) -> str:
    takes = ", ".join(sorted(extensions))
    if path.suffix.lstrip(".").lower() in FORMATS:
        siblings = _recordings_beside(path, extensions)
        if siblings:
            return (
                f"{path}: this is batchscribe's transcript of {siblings[0].name}, not a "
                "recording; name the recording or its folder."
            )
    return (
        f"{path}: not a recording; batchscribe takes folders and audio files ({takes}; "
        "--ext to change)."
    )


def _recordings_beside(output: Path, extensions: frozenset[str]) -> list[Path]:
    """Recordings whose outputs `output` could be (`talk.txt` of `talk.mp3` or `talk.mp3.txt`)."""
    base = stem_of(output.name)
    try:
        names = sorted(os.listdir(output.parent or "."))
    except OSError:
        return []
    return [
        output.parent / name
        for name in names
        if _has_audio_extension(name, extensions) and base in (name, stem_of(name))
    ]


def _has_audio_extension(name: str, extensions: frozenset[str]) -> bool:
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in extensions
