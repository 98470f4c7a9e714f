"""Where outputs go and what they are called: `talk.mp3` -> `talk.txt`, or `talk.mp3.txt` when
two recordings of one folder share a stem. Pure, on strings where the re-scan needs speed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DEFAULT_FORMATS: tuple[str, ...] = ("txt", "json")


#: Every format batchscribe can write.
FORMATS = ("txt", "json", "srt", "vtt")


def output_paths(
    source: Path,
    *,
    clash: bool,
    formats: Iterable[str] = DEFAULT_FORMATS,
    folder: Path | None = None,
) -> dict[str, Path]:
    """Where the outputs of `source` go: `talk.mp3` -> `talk.txt`, or `talk.mp3.txt` on a clash.

    `clash` is true when another audio file in the same folder has the same stem; then each
    keeps its full name so that neither overwrites the other's transcript. `folder` is where
    they go (`--output-dir`), by default next to the source.
    """
    target = folder if folder is not None else source.parent
    return {fmt: target / name for fmt, name in output_names(source.name, clash, formats)}


def output_names(
    source_name: str, clash: bool, formats: Iterable[str] = DEFAULT_FORMATS
) -> list[tuple[str, str]]:
    """(format, file name) of each output: the naming rule of `output_paths`, on strings, for
    the re-scan's hot path (50,000 files must not build 100,000 Path objects)."""
    base = source_name if clash else stem_of(source_name)
    return [(fmt, f"{base}.{fmt}") for fmt in formats]


def clashing_stems(names: Iterable[str]) -> set[str]:
    """Stems shared by two or more of `names` (the audio files of one folder)."""
    seen: set[str] = set()
    clashes: set[str] = set()
    for name in names:
        stem = stem_of(name)
        (clashes if stem in seen else seen).add(stem)
    return clashes


def stem_of(name: str) -> str:
    """`talk.mp3` -> `talk` (as Path.stem, without building a Path)."""
    return name.rpartition(".")[0] or name
