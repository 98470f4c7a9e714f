"""What says a file is unchanged (size + mtime_ns), and its content hash when asked: one home."""

from __future__ import annotations

import hashlib
import os
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


def content_digest(path: Path) -> str:
    """sha256 of the file's bytes: identical recordings are paid for once per run.

    Blocking (reads the whole file): call it in a thread, and only for files that need work.
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
