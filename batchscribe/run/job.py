"""What a run works on: the roots it walks (`Root`), what a current transcript must match
(`Wanted`), and one file that needs work (`Job`). Plain values, shared by the walk, the workers,
the writer and --dry-run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal import Record
from batchscribe.state.store import options_id

#: A done file's reason when an output it wants is not there (deleted, or a format added).
OUTPUTS_MISSING = "outputs missing"


@dataclass(frozen=True, slots=True)
class Root:
    """Where to walk, where the journal lives, and where outputs go.

    `walk_from` is a folder or a single file. `path` holds `.batchscribe/` (journal, lock,
    transcripts); journal keys and mirrored output paths are relative to `base`. Without
    --output-dir, `path` and `base` are the nearest folder with a journal at or above
    `walk_from`; with it, the journal lives in the output folder.
    """

    path: Path
    walk_from: Path
    base: Path
    output_dir: Path | None = None

    def output_folder(self, source: Path) -> Path:
        """The folder `source`'s outputs go to: beside it, or mirrored under --output-dir."""
        if self.output_dir is None:
            return source.parent
        return self.output_dir / source.parent.relative_to(self.base)


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a current transcript must match: formats on disk, engine and its options."""

    formats: tuple[str, ...]
    engine: str
    options: str
    #: keep transcripts made with other options (--keep-existing)
    keep_existing: bool = False
    #: retry files whose last failure was permanent (--retry-failed)
    retry_failed: bool = False

    @classmethod
    def of(cls, settings: Settings) -> Wanted:
        """What `settings` ask of a current transcript: the one place a run and --dry-run
        agree on it."""
        return cls(
            formats=settings.formats,
            engine=settings.chosen_engine(),
            options=options_id(settings.engine_options()),
            keep_existing=settings.keep_existing,
            retry_failed=settings.retry_failed,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """One source that needs work, with everything the workers and writer need to know."""

    source: Path
    #: the folder whose `.batchscribe/` journals this file (a `Root.path`)
    state_root: Path
    key: str
    fingerprint: Fingerprint
    outputs: Mapping[str, Path]
    #: why it needs work: "new", "changed", "unfinished", "outputs missing", "failed before"
    reason: str
    #: the journal row from an earlier run, if any (a resumed upload or transcript)
    record: Record | None = None
    #: sha256 of the content, set by the worker before anything billable happens
    digest: str | None = None
