"""A journal read without touching it: for --status and --dry-run, which never lock or write."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from batchscribe.errors import ConfigError
from batchscribe.journal import COLUMNS, JOURNAL_NAME, Record, record_from_row
from batchscribe.lock import STATE_DIR


@dataclass(frozen=True, slots=True)
class Run:
    """One run as the journal remembers it."""

    started_at: float
    ended_at: float | None
    outcome: str | None
    summary: dict[str, object]


def _select_records(have: set[str]) -> str:
    """The SELECT for a journal that may predate some columns (read-only: cannot add them)."""
    return "SELECT " + ", ".join(c if c in have else "NULL" for c in COLUMNS) + " FROM files"


def peek(root: Path) -> tuple[dict[str, Record], list[Run]]:
    """A root's records and runs, read-only: nothing is created, locked or changed.

    For --dry-run and --status; a root without a journal has neither.
    """
    db_path = root / STATE_DIR / JOURNAL_NAME
    if not db_path.is_file():
        return {}, []
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
            have = {row[1] for row in db.execute("PRAGMA table_info(files)")}
            records = {row[0]: record_from_row(row) for row in db.execute(_select_records(have))}
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            runs = [
                Run(started, ended, outcome, json.loads(summary) if summary else {})
                for started, ended, outcome, summary in db.execute(
                    "SELECT started_at, ended_at, outcome, summary FROM runs ORDER BY id"
                    if "runs" in tables
                    else "SELECT 0, 0, '', '' WHERE 0"
                )
            ]
    except sqlite3.Error as err:
        raise ConfigError(f"{db_path}: cannot read the journal ({err}).") from None
    return records, runs
