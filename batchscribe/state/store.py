"""Transcripts kept per root, by content and options: re-rendering or reuse never pays again.

`<root>/.batchscribe/transcripts/<sha256>-<options>.json` holds each transcript as the engine
returned it. Adding a format later, renaming or copying a recording, or a second file with the
same bytes all render from here: no request, no model.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchscribe.errors import OutputError
from batchscribe.output.atomic import write_atomic
from batchscribe.transcript import Transcript

TRANSCRIPTS_DIR = "transcripts"


def options_id(options: Mapping[str, Any]) -> str:
    """A short, stable name for the options a transcript was made with."""
    canonical = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class TranscriptStore:
    """Blocking file I/O: call `load` and `save` in a worker thread."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / TRANSCRIPTS_DIR

    def _path(self, digest: str, options: str) -> Path:
        return self.folder / f"{digest}-{options}.json"

    def load(self, digest: str, options: str) -> Transcript | None:
        try:
            data = json.loads(self._path(digest, options).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or damaged: transcribe again rather than fail
        return Transcript(data) if isinstance(data, dict) else None

    def save(self, digest: str, options: str, transcript: Transcript) -> None:
        """Raises OutputError (e.g. disk full); the transcript stays collectable from the API."""
        data = json.dumps(transcript.data, ensure_ascii=False)
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            if self.folder.is_symlink():  # never written through a planted link
                raise OSError(errno.ELOOP, "it is a symbolic link; remove it")
            write_atomic(self._path(digest, options), data, private=True)
        except (OSError, OutputError) as err:
            reason = err.strerror if isinstance(err, OSError) else err.message
            raise OutputError(
                f"cannot keep the transcript in {self.folder} ({reason}); free some space or "
                "fix the permissions, then run again: it is fetched again without paying"
            ) from None
