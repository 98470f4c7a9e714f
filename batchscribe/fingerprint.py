"""What says a file is unchanged (size + mtime_ns), and its content hash when asked: one home."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What says a file is unchanged: size and modification time in nanoseconds."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns)


#: Read this much at a time while hashing: between two reads a stop is noticed.
HASH_CHUNK = 1024 * 1024


class Interrupted(Exception):
    """Hashing was given up because the run is stopping now."""


def content_digest(path: Path, stop: threading.Event | None = None) -> str:
    """sha256 of the file's bytes: identical recordings are paid for once per run.

    Blocking (reads the whole file): call it in a thread, and only for files that need work.
    Raises Interrupted when `stop` is set (a 2 GB file on a slow share must not hold up a
    second Ctrl-C).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            if stop is not None and stop.is_set():
                raise Interrupted(str(path))
            digest.update(chunk)
    return digest.hexdigest()
