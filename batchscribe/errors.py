"""The exception tree: every expected failure is one of these, with one user-facing line.

    BatchscribeError                  anything batchscribe expects and explains
    ├── ConfigError                   bad flag, config file or key          → exit 2
    ├── LockHeld                      another run owns the folder           → exit 3
    ├── JournalError                  the journal cannot be written (disk)  → exit 2
    ├── FatalApiError                 the whole run cannot go on            → exit 2
    │   └── AuthError                 HTTP 401: the key is wrong
    ├── Unreachable                   no answer from the API for too long   → exit 1
    └── FileError                     one file failed; the run goes on     → exit 1 at the end
        ├── InputError                the file itself is unusable (empty, unreadable, too big)
        ├── ApiError                  an HTTP request about this file failed
        │   ├── RetryableApiError     429, 5xx, reset, timeout: worth another try
        │   │   └── NoAnswer          no HTTP answer at all (refused, DNS, TLS, connect)
        │   └── PermanentApiError     other 4xx: trying again cannot help
        ├── TranscriptionFailed       the engine finished with an error (`status: error`)
        └── OutputError               the outputs could not be written
            └── ForeignOutput         an output name is taken by a file we did not write

    Stopped                           not a failure: work given up because the run is stopping

Messages name the file and suggest a fix; they never contain the API key.
"""

from __future__ import annotations

import errno

#: Exit statuses, the contract scripts rely on (docs/ARCHITECTURE.md, "The contract").
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class BatchscribeError(Exception):
    """Base of every expected failure; `str(err)` is the line shown to the user."""

    exit_code = EXIT_SOME_FAILED


class ConfigError(BatchscribeError):
    """A flag, config file, environment variable or missing extra makes the run impossible."""

    exit_code = EXIT_USAGE


class LockHeld(BatchscribeError):
    """Another batchscribe process is working on the same folder."""

    exit_code = EXIT_LOCKED


class JournalError(BatchscribeError):
    """The journal cannot record a step (disk full, read-only): stop before paying blind."""

    exit_code = EXIT_USAGE


class FatalApiError(BatchscribeError):
    """The API refuses the whole run (not one file): stop at once instead of failing every file."""

    exit_code = EXIT_USAGE


class AuthError(FatalApiError):
    """HTTP 401: the API key is missing or wrong."""


class Unreachable(BatchscribeError):
    """The API gave no answer at all for longer than `unreachable_timeout`: one problem for
    the whole run, not one per file. Nothing is marked failed; the next run carries on."""

    exit_code = EXIT_SOME_FAILED


class FileError(BatchscribeError):
    """One file failed; the others go on. The file is named by whoever reports it.

    `permanent` failures (not audio, empty, too big) are not retried on later runs unless the
    file changes or --retry-failed is given; the others are retried on the next run.
    """

    permanent = False

    def __init__(self, message: str, *, permanent: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if permanent is not None:
            self.permanent = permanent


class InputError(FileError):
    """The source file cannot be transcribed as it is (empty, unreadable, too large, changed)."""


class ApiError(FileError):
    """An HTTP request failed; `status` is the HTTP status, or None for a transport failure."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RetryableApiError(ApiError):
    """429, 5xx, a dropped connection or a timeout: another attempt may succeed."""


class NoAnswer(RetryableApiError):
    """The request got no HTTP answer at all: the network or the host is down, not this file.
    Bounded by the run's reachability check (`engines/assemblyai/throttle`), not by attempts."""


class PermanentApiError(ApiError):
    """A 4xx other than 401/429: the request itself is wrong and retrying cannot help."""

    permanent = True


class TranscriptionFailed(FileError):
    """The engine finished the job with an error, e.g. the file is not audio."""

    permanent = True


class OutputError(FileError):
    """The transcript could not be written next to the source (permissions, full disk)."""


class ForeignOutput(OutputError):
    """An output's name is taken by a file batchscribe did not write: it is kept, and the
    recording waits until the user moves it (reported once, like other permanent failures)."""

    permanent = True


class Stopped(Exception):
    """Work given up because the run is stopping; nothing is recorded as failed."""


#: What to do about an OSError, by its cause: the advice must fit (a name too long is not
#: cured by checking permissions).
_FIXES = {
    errno.ENOSPC: "free some disk space, then run again",
    errno.EDQUOT: "free some space under your disk quota, then run again",
    errno.EACCES: "check the folder's permissions, or write elsewhere with --output-dir",
    errno.EPERM: "check the folder's permissions, or write elsewhere with --output-dir",
    errno.EROFS: "the disk is read-only; write elsewhere with --output-dir",
    errno.ENAMETOOLONG: "the name is too long for the disk; rename the recording shorter",
    errno.EIO: "the disk reported an error; check it, then run again",
}
_READ_FIXES = {
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.ENOENT: "it disappeared while being read; the next run looks again",
    errno.ELOOP: "it is a symlink loop; point the link at a recording",
    errno.EIO: "the disk reported an error; check it, then run again",
    errno.EISDIR: "it is a folder",
}


def write_advice(err: OSError) -> str:
    """`(<the system's words>); <what to do>` for a file that could not be written."""
    fix = _FIXES.get(err.errno or 0, "check the folder's permissions and free space")
    return f"({err.strerror or err}); {fix}"


def read_advice(err: OSError) -> str:
    """`(<the system's words>); <what to do>` for a recording that could not be read."""
    fix = _READ_FIXES.get(err.errno or 0, "check the file and its folder")
    return f"({err.strerror or err}); {fix}"
