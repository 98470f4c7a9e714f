"""Outputs batchscribe wrote but its journal forgot (a damaged or deleted journal, a power cut
before the journal's last records reached the disk): recognised by their bytes.

An output is batchscribe's when its bytes are exactly what batchscribe renders, with this run's
options, from the transcript kept in `.batchscribe/transcripts/` for the recording's content.
A user's file cannot pass by chance, so it is still refused.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

from batchscribe.output.formats import render
from batchscribe.output.subtitles import CueLimits
from batchscribe.transcript import Transcript


def first_foreign(
    existing: Mapping[str, Path], kept: Transcript | None, limits: CueLimits
) -> Path | None:
    """The first of `existing` (format -> path) that batchscribe did not render from `kept`,
    or None when every one is batchscribe's. Blocking: it reads each file."""
    for fmt, path in existing.items():
        if kept is None or not _same_bytes(path, render(fmt, kept, limits).encode("utf-8")):
            return path
    return None


def _same_bytes(path: Path, expected: bytes) -> bool:
    try:
        st = path.lstat()  # a link (to /dev/zero, to a file elsewhere) is the user's, unread
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(expected):
            return False  # the common case for a user's file: no read
        return path.read_bytes() == expected
    except OSError:
        return False
