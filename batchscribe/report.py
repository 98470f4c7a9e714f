"""What the user sees: one line per finished or failed file, and the end-of-run summary.

Lines go to stderr so that stdout stays free for machine-readable output; `--quiet` keeps
only failures (cron mails only on trouble).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED


@dataclass(slots=True)
class Summary:
    """Counts of one run; the exit status is derived from it."""

    engine: str = ""
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    still_running: list[Path] = field(default_factory=list)
    #: files done whose follow-up failed (e.g. --delete-after could not delete)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    #: files begun (hashing, uploading, transcribing) and not yet done, failed or waiting
    in_progress: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def exit_code(summary: Summary) -> int:
    """0 when every file is done or current; 1 when any failed, is still processing, or its
    transcript could not be deleted from the service as asked."""
    trouble = summary.failed or summary.still_running or summary.warnings
    return EXIT_SOME_FAILED if trouble else EXIT_OK


def format_summary(summary: Summary) -> str:
    parts = [f"{summary.done} done", f"{summary.skipped} up to date"]
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    if summary.warnings:
        parts.append(f"{len(summary.warnings)} warning(s)")
    if summary.still_running:
        parts.append(f"{len(summary.still_running)} still processing (the next run collects them)")
    return f"batchscribe: {', '.join(parts)} in {summary.elapsed:.1f}s"


class Reporter:
    """Prints events as they happen and the summary at the end."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.summary = Summary()

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self) -> None:
        self.summary.in_progress += 1

    def done(self, source: Path, audio_seconds: float | None, reason: str = "") -> None:
        self.summary.in_progress -= 1
        self.summary.done += 1
        self.summary.audio_seconds += audio_seconds or 0.0
        if not self.quiet:
            self._line(f"done    {source}{reason}")

    def warn(self, source: Path, message: str) -> None:
        self.summary.warnings.append((source, message))
        self._line(f"warning {source}: {message}")

    def skipped(self, count: int) -> None:
        self.summary.skipped += count

    def failed(self, source: Path, message: str, *, started: bool = True) -> None:
        self.summary.in_progress -= started
        self.summary.failed.append((source, message))
        self._line(f"failed  {source}: {message}")

    def still_running(self, source: Path) -> None:
        self.summary.in_progress -= 1
        self.summary.still_running.append(source)
        if not self.quiet:
            self._line(f"waiting {source}: still processing; the next run collects it")

    def info(self, text: str) -> None:
        if not self.quiet:
            self._line(text)

    def interrupted(self) -> None:
        """Say what was done and what is left: always shown, even with --quiet."""
        self._line(format_summary(self.summary))
        left = self.summary.in_progress
        self._line(
            f"batchscribe: interrupted with {left} file(s) under way; their uploads and "
            "transcripts are saved in the journal. Run the same command again to finish "
            "without paying twice."
        )

    def finish(self) -> None:
        if not self.quiet or self.summary.failed or self.summary.warnings:
            self._line(format_summary(self.summary))
