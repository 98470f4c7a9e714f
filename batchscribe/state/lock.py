"""One run per journal folder: an flock on `.batchscribe/lock`, released by the kernel if we die."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path
from types import TracebackType

from batchscribe.errors import ConfigError, LockHeld

#: The folder batchscribe owns inside every root (journal, lock, transcripts).
STATE_DIR = ".batchscribe"
LOCK_NAME = "lock"
#: The lock holder's pid when it is held but the pid cannot be read (not yet written).
UNKNOWN_PID = 0


def private_mkdir(path: Path) -> None:
    """`.batchscribe/` is user-only: it holds transcript ids and upload URLs. Raises ConfigError
    when it is a symbolic link, or writable by every user: anyone could then plant a link in it
    that the journal or the lock would write through."""
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(
            f"{path} is a symbolic link; batchscribe keeps its journal only in a real folder: "
            "remove the link (or move the folder it points to here)."
        )
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"{path} is writable by every user (mode {stat.S_IMODE(st.st_mode):o}): anyone could "
            f"change what batchscribe remembers; make it private with: chmod 700 '{path}'."
        )


def open_state_file(path: Path, flags: int) -> int:
    """`os.open` for a file in `.batchscribe/` that never follows a symbolic link (O_NOFOLLOW):
    a planted link cannot make a run truncate or write another file. Raises ConfigError for a
    link, OSError for anything else."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        raise ConfigError(
            f"{path} is a symbolic link; batchscribe never writes its state through one: "
            "remove it and run again."
        ) from None


class RunLock:
    """One run per root: an flock on `.batchscribe/lock`, released by the kernel if we die.

    Because the kernel drops an flock when its process exits (even on kill -9), a lock left by
    a dead run never blocks the next one.
    """

    def __init__(self, root: Path, *, given: Path | None = None) -> None:
        """`given`: the path the user named, when its journal is this folder's (the nearest
        folder above it with a journal): the lines name both."""
        self.path = root / STATE_DIR / LOCK_NAME
        folder = given if given is None or given.is_dir() else given.parent
        self._given = given if folder is not None and folder != root else None
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            private_mkdir(self.path.parent)
            fd = open_state_file(self.path, os.O_CREAT | os.O_RDWR)
        except OSError as err:
            elsewhere = (
                " A read-only folder of recordings can be transcribed with --output-dir DIR "
                "(the transcripts and the journal go there)."
                if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
                else ""
            )
            raise ConfigError(
                f"{self.path.parent}: cannot create the lock file ({err.strerror}); "
                f"batchscribe needs a writable folder to remember what it did.{elsewhere}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            whose = (
                f" (its journal is the one for {self._given}: the nearest folder above it "
                "with a journal)"
                if self._given is not None
                else ""
            )
            raise LockHeld(
                f"{self.path.parent.parent}: another batchscribe run (pid {holder}) is working "
                f"on this folder{whose}; wait for it to finish or stop it."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def lock_holder(root: Path) -> int | None:
    """The pid of the run holding `root`'s lock, `UNKNOWN_PID` if it has not written it yet,
    or None when no run holds it (a run that never ended was killed).

    Probes with a shared lock taken and dropped at once, never blocking, and creates nothing;
    a run starting in that instant fails to lock (exit 3), as with any other run.
    """
    path = root / STATE_DIR / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # no lock file: no run has ever held it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                return None  # no locks here (some network file systems): cannot tell
            text = os.read(fd, 64).decode(errors="replace").strip()
            return int(text) if text.isdigit() else UNKNOWN_PID
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
