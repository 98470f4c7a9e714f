"""Output naming and pure renderers; `write_atomic` is the one place outputs touch the disk."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
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


def write_atomic(path: Path, data: str, *, private: bool = False) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half.

    The temporary file lives in the same folder (rename is atomic only within a filesystem)
    and is removed on any failure; raises OutputError naming `path`.
    """
    fd, tmp_name = -1, ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent
        )
        os.fchmod(fd, 0o600 if private else 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fd = -1  # now owned by fh
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except OSError as err:
        if fd >= 0:
            os.close(fd)
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        reason = err.strerror or str(err)
        raise OutputError(
            f"cannot write {path.name} ({reason}); check the folder's permissions and free space."
        ) from None
