"""A journal read without touching it: for --status and --dry-run, which never lock or write."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from batchscribe.errors import ConfigError
from batchscribe.state.journal import (
    COLUMNS,
    DAMAGE_CODES,
    JOURNAL_NAME,
    Record,
    record_from_row,
)
from batchscribe.state.lock import STATE_DIR


@dataclass(frozen=True, slots=True)
class Run:
    """One run as the journal remembers it."""

    started_at: float
    ended_at: float | None
    outcome: str | None
    summary: dict[str, object]


def _select_records(have: set[str], *, updated: bool = False) -> str:
    """The SELECT for a journal that may predate some columns (read-only: cannot add them)."""
    columns = [c if c in have else "NULL" for c in COLUMNS]
    if updated:
        columns.append("updated_at")
    return "SELECT " + ", ".join(columns) + " FROM files"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A journal as it stands, with when each row last changed: what --status shows."""

    records: dict[str, Record]
    runs: list[Run]
    #: when each row last changed (`time.time()`), keyed like `records`
    updated: dict[str, float]

    def changed_since(self, since: float) -> list[Record]:
        """The rows a run that began at `since` has written (its work so far)."""
        return [r for key, r in self.records.items() if self.updated.get(key, 0.0) >= since]


def peek(root: Path) -> tuple[dict[str, Record], list[Run]]:
    """A root's records and runs, read-only: nothing is created, locked or changed.

    For --dry-run and --status; a root without a journal has neither.
    """
    found = _read(root, updated=False)
    return found.records, found.runs


def snapshot(root: Path) -> Snapshot:
    """`peek`, and when each row last changed: a running run's progress is the rows it wrote
    since it began (it commits each step as it happens)."""
    return _read(root, updated=True)


def _read(root: Path, *, updated: bool) -> Snapshot:
    db_path = root / STATE_DIR / JOURNAL_NAME
    if not db_path.is_file():
        return Snapshot({}, [], {})
    records: dict[str, Record] = {}
    changed: dict[str, float] = {}
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
            have = {row[1] for row in db.execute("PRAGMA table_info(files)")}
            for row in db.execute(_select_records(have, updated=updated)):
                records[row[0]] = record_from_row(row[:-1] if updated else row)
                if updated:
                    changed[row[0]] = float(row[-1] or 0.0)
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
        if getattr(err, "sqlite_errorcode", None) in DAMAGE_CODES:
            raise ConfigError(
                f"{db_path}: the journal is damaged ({err}); the next run moves it aside and "
                "rebuilds it from the outputs and kept transcripts, paying nothing twice."
            ) from None
        raise ConfigError(f"{db_path}: cannot read the journal ({err}).") from None
    return Snapshot(records, runs, changed)


@dataclass(frozen=True, slots=True)
class Tally:
    """A journal's figures for --metrics-file: files per state, and its last good run."""

    #: state name -> files in it
    states: dict[str, int]
    #: when a run last ended with every file done (exit status 0); None: never
    last_success: float | None


def tally(root: Path) -> Tally:
    """Count a root's files per state, read-only (one query, whatever the journal's size),
    and find the last run that ended with exit status 0. A root without a journal has none.

    Safe while a run writes the journal (SQLite WAL: readers never block the writer).
    Raises ConfigError when the journal cannot be read."""
    db_path = root / STATE_DIR / JOURNAL_NAME
    if not db_path.is_file():
        return Tally({}, None)
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
            states = dict(db.execute("SELECT state, COUNT(*) FROM files GROUP BY state"))
            last_success = None
            for ended, summary in db.execute(
                "SELECT ended_at, summary FROM runs WHERE ended_at IS NOT NULL "
                "AND outcome = 'completed' ORDER BY id DESC"
            ):
                if json.loads(summary or "{}").get("exit_code") == 0:
                    last_success = float(ended)
                    break
    except (sqlite3.Error, ValueError) as err:
        raise ConfigError(f"{db_path}: cannot read the journal ({err}).") from None
    return Tally(states, last_success)
