"""Output naming and pure renderers; `write_atomic` is the one place outputs touch the disk."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from batchscribe.errors import OutputError
from batchscribe.subtitles import DEFAULT_LIMITS, CueLimits, render_srt, render_vtt
from batchscribe.transcript import Transcript

#: Temporary files start with this: a run killed mid-write leaves one, the next run removes it.
TEMP_PREFIX = ".batchscribe-"
TEMP_SUFFIX = ".tmp"
#: Formats written when none are asked for.
DEFAULT_FORMATS: tuple[str, ...] = ("txt", "json")


#: Outputs get the usual permissions (0666 less the umask); private files 0600. The umask is
#: read once, at import, while the process is still single-threaded (reading it sets it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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


def render_txt(transcript: Transcript) -> str:
    """The text and one newline; with speaker labels, one `Speaker A:` paragraph per turn."""
    utterances = transcript.utterances if transcript.data.get("speaker_labels") else []
    if utterances:
        return "\n\n".join(f"Speaker {who}: {text}" for who, text in utterances) + "\n"
    return transcript.text.strip() + "\n"


def render_json(transcript: Transcript) -> str:
    """The transcript object, pretty-printed, UTF-8 characters kept as they are."""
    return json.dumps(transcript.data, ensure_ascii=False, indent=2) + "\n"


#: Every format batchscribe can write.
FORMATS = ("txt", "json", "srt", "vtt")


def render(fmt: str, transcript: Transcript, limits: CueLimits = DEFAULT_LIMITS) -> str:
    """One output format of a transcript, as text."""
    if fmt == "txt":
        return render_txt(transcript)
    if fmt == "json":
        return render_json(transcript)
    if fmt == "srt":
        return render_srt(transcript, limits)
    if fmt == "vtt":
        return render_vtt(transcript, limits)
    raise ValueError(f"unknown format {fmt!r}")


def is_stale_temp(name: str) -> bool:
    """A temporary output file that a killed run left behind (only ever ours)."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _makedirs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def _mkstemp(prefix: str, suffix: str, folder: str) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)


def _fchmod(fd: int, mode: int) -> None:
    os.fchmod(fd, mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _close(fd: int) -> None:
    os.close(fd)


def _replace(src: str, dst: Path) -> None:
    os.replace(src, dst)


def _unlink(path: str) -> None:
    os.unlink(path)


@dataclass(frozen=True, slots=True)
class FileOps:
    """The file-system calls `write_atomic` makes, so a test can fail any one of them.

    Pass one with a field replaced to fake a full disk (`write` or `fsync` raising ENOSPC) or a
    read-only folder (`mkstemp` raising EACCES). The defaults look `os` and `tempfile` up at
    call time, so patching `formats.os.fsync` or `formats.tempfile.mkstemp` still reaches them.
    """

    makedirs: Callable[[Path], None] = _makedirs
    #: (prefix, suffix, folder) -> (fd, name), as `tempfile.mkstemp`
    mkstemp: Callable[[str, str, str], tuple[int, str]] = _mkstemp
    fchmod: Callable[[int, int], None] = _fchmod
    #: writes every byte (looping over short writes)
    write: Callable[[int, bytes], None] = _write_all
    fsync: Callable[[int], None] = _fsync
    close: Callable[[int], None] = _close
    replace: Callable[[str, Path], None] = _replace
    unlink: Callable[[str], None] = _unlink


#: The real disk: what every caller but a test of `write_atomic` wants.
REAL_FILE_OPS = FileOps()


def write_atomic(
    path: Path, data: str, *, private: bool = False, ops: FileOps = REAL_FILE_OPS
) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half.

    The temporary file lives in the same folder (rename is atomic only within a filesystem)
    and is removed on any failure; raises OutputError naming `path`. `ops` are the file-system
    calls it makes (tests inject failures there).
    """
    raw = data.encode("utf-8")  # before any file exists: a bad string leaves nothing behind
    tmp_name = ""
    try:
        ops.makedirs(path.parent)
        fd, tmp_name = ops.mkstemp(f"{TEMP_PREFIX}{path.name}.", TEMP_SUFFIX, str(path.parent))
        try:
            ops.fchmod(fd, 0o600 if private else 0o666 & ~_UMASK)
            ops.write(fd, raw)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        ops.replace(tmp_name, path)
    except OSError as err:
        if tmp_name:
            with contextlib.suppress(OSError):
                ops.unlink(tmp_name)
        reason = err.strerror or str(err)
        raise OutputError(
            f"cannot write {path.name} ({reason}); check the folder's permissions and free space."
        ) from None
