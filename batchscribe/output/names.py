"""Where outputs go and what they are called: `talk.mp3` -> `talk.txt`, or `talk.mp3.txt` when
two recordings of one folder share a stem. Pure, on strings where the re-scan needs speed."""

from __future__ import annotations

import os
from collections import Counter
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


def full_named(names: Iterable[str]) -> set[str]:
    """Which of `names` (the audio files of one folder) keep their full name in their outputs'
    names: those sharing a stem (`a.mp3`, `a.ogg`), then any whose stem is the full name of
    one of those (`a.ogg.wav` would write `a.ogg.txt`, as `a.ogg` does), until none is left:
    every output name in the folder is then one recording's."""
    listed = list(names)
    stems = Counter(stem_of(name) for name in listed)
    full = {name for name in listed if stems[stem_of(name)] > 1}
    while more := {name for name in listed if name not in full and stem_of(name) in full}:
        full |= more
    return full


def stem_of(name: str) -> str:
    """`talk.mp3` -> `talk` (as Path.stem, without building a Path)."""
    return name.rpartition(".")[0] or name


#: The longest file name most disks take (ext4, XFS, btrfs, APFS: 255 bytes), where the
#: folder cannot say (it does not exist yet: --output-dir mirrors it as it writes).
NAME_MAX = 255


def name_too_long(path: Path) -> str | None:
    """Why the disk would refuse `path`'s name (a recording named close to the limit gets a
    longer transcript name: `x.m4a` -> `x.json`), or None when it fits. Checked before any
    work, as no retry can cure it."""
    length = len(path.name.encode("utf-8", "surrogateescape"))
    if length <= NAME_MAX:
        return None
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = NAME_MAX
    if length <= limit:
        return None
    return (
        f"its output name {path.name[:40]}… would be {length} bytes long, over the disk's "
        f"{limit}; rename the recording shorter (it fails for good until then)"
    )
