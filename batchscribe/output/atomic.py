"""`write_atomic`: the one place outputs (and the store's transcripts) touch the disk; readers see
the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from batchscribe.errors import OutputError, write_advice

#: Temporary files start with this: a run killed mid-write leaves one, the next run removes it.
TEMP_PREFIX = ".batchscribe-"
TEMP_SUFFIX = ".tmp"

#: Outputs get the usual permissions (0666 less the umask); private files 0600. The umask is
#: read once, at import, while the process is still single-threaded (reading it sets it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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
    call time, so patching `atomic.os.fsync` or `atomic.tempfile.mkstemp` still reaches them.
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
        # A short name of its own: a legal output name near the disk's limit (255 bytes) must
        # not fail because its temporary file's name would be longer.
        fd, tmp_name = ops.mkstemp(TEMP_PREFIX, TEMP_SUFFIX, str(path.parent))
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
        raise OutputError(f"cannot write {path.name} {write_advice(err)}.") from None
