"""What an engine is given: one source file as scanned, and where an earlier attempt got to.

Shared by the engines (which read it) and the journal (which decides `Resume`), so neither
imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from batchscribe.fingerprint import Fingerprint


@dataclass(frozen=True, slots=True)
class Resume:
    """Where an interrupted attempt at the same bytes got to (the journal decides it).

    Both unset: carry on, but the upload has expired and the bytes go again.
    """

    #: the bytes are on the service's storage: create (or adopt) a transcript from them
    upload_url: str | None = None
    #: a transcript exists: only ever poll it, never create another
    transcript_id: str | None = None


@dataclass(frozen=True, slots=True)
class Recording:
    """What an engine is given: one source file as scanned, and where to carry on from."""

    path: Path
    #: the bytes sent must be the bytes scanned, or the transcript belongs to no file
    fingerprint: Fingerprint
    resume: Resume | None = None
