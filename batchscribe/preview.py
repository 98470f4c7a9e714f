"""--dry-run: what a run would transcribe and why, how much audio, what it would cost.

Reads the journals without creating or locking them, reads durations from headers, and makes
no request and loads no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.durations import audio_seconds
from batchscribe.errors import ConfigError
from batchscribe.history import peek
from batchscribe.scan import Job, Listing, Root, Wanted, plan, resolve_roots, walk


@dataclass(slots=True)
class Preview:
    work: list[tuple[Job, float | None]] = field(default_factory=list)
    up_to_date: int = 0
    failed_before: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return sum(seconds or 0.0 for _, seconds in self.work)


def preview(settings: Settings) -> Preview:
    """Plan the run as `pipeline.run` would, without doing any of it. Blocking."""
    wanted = Wanted.of(settings)
    result = Preview()
    todo = resolve_roots(settings.paths, settings.output_dir)
    listings: dict[str, Listing] = {}  # one listing per folder for `rec/*.mp3`, as a run does
    while todo:
        root = todo.pop(0)
        if not root.walk_from.exists():
            raise ConfigError(f"{root.walk_from}: no such file or folder.")
        records, _ = peek(root.path)
        own_tree = settings.output_dir is None
        folders = walk(
            root.walk_from, settings.extensions, clean=False, nested=own_tree, listings=listings
        )
        for items in folders:
            batch = plan(items, root, records, wanted)
            todo += [Root(path=p, walk_from=p, base=p) for p in batch.nested]
            result.up_to_date += batch.skipped
            result.failed_before += batch.failed_before
            result.unreadable += [(p.path, p.reason) for p in batch.problems]
            result.work += [(job, audio_seconds(job.source)) for job in batch.jobs]
    return result


def format_preview(result: Preview, settings: Settings) -> list[str]:
    """The lines --dry-run prints: one per file to transcribe, then the totals."""
    lines = []
    for job, seconds in result.work:
        length = f"{seconds / 60:.1f} min" if seconds is not None else "length unknown"
        lines.append(f"would transcribe {job.source} ({job.reason}, {length})")
    for path, reason in result.unreadable:
        lines.append(f"cannot read {path} ({reason})")
    hours = result.audio_seconds / 3600
    total = (
        f"batchscribe: dry run: {len(result.work)} to transcribe ({hours:.2f} h of audio), "
        f"{result.up_to_date} up to date"
    )
    if result.failed_before:
        total += f", {result.failed_before} failed before (--retry-failed to retry)"
    if settings.chosen_engine() == "assemblyai":
        cost = hours * settings.price_per_hour
        total += f"; estimated AssemblyAI cost ${cost:.2f} at ${settings.price_per_hour:.2f}/h"
    else:
        total += "; local engine, no cost"
    unknown = sum(1 for _, seconds in result.work if seconds is None)
    if unknown:
        total += f" ({unknown} file(s) of unknown length not counted)"
    return [*lines, total]
