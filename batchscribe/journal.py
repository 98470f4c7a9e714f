"""Crash-safe state per root: SQLite in `<root>/.batchscribe/`, and the file state machine.

Every billable step is recorded here before the next one starts, so a run killed at any moment
resumes without uploading or transcribing anything twice. Rows are keyed by the source's path
relative to the root (POSIX separators), so a moved root keeps its history.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from batchscribe.errors import ConfigError, JournalError
from batchscribe.fingerprint import Fingerprint
from batchscribe.lock import STATE_DIR, private_mkdir

JOURNAL_NAME = "journal.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path          TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    state         TEXT NOT NULL,
    engine        TEXT,
    upload_url    TEXT,
    uploaded_at   REAL,
    transcript_id TEXT,
    error         TEXT,
    outputs       TEXT,
    options       TEXT,
    permanent     INTEGER,
    digest        TEXT,
    updated_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    outcome     TEXT,
    summary     TEXT
);
"""
#: Columns added after the first release, with their SQL type: added to older journals on open.
_ADDED_COLUMNS = {"options": "TEXT", "permanent": "INTEGER", "digest": "TEXT"}


class State(StrEnum):
    """Where a source stands; each step is committed before the next billable one starts."""

    #: seen, nothing billable done yet
    PENDING = "pending"
    #: the bytes are on AssemblyAI's storage (`upload_url` set)
    UPLOADED = "uploaded"
    #: a transcript exists (`transcript_id` set); only ever polled from here, never re-created
    SUBMITTED = "submitted"
    #: outputs written
    DONE = "done"
    #: the last attempt failed (`error` says why)
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Record:
    """One journal row."""

    key: str
    fingerprint: Fingerprint
    state: State
    engine: str | None = None
    upload_url: str | None = None
    uploaded_at: float | None = None
    transcript_id: str | None = None
    error: str | None = None
    #: the output file names this source owns, as stored (JSON): parsed only when asked, as
    #: a re-scan of 50,000 files reads every row and needs none of them
    outputs_json: str | None = None
    #: `store.options_id` of the options the transcript was (being) made with
    options: str | None = None
    #: the last failure cannot be cured by trying again (not audio, empty, too big)
    permanent: bool = False
    #: sha256 of the content this attempt is for
    digest: str | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(json.loads(self.outputs_json)) if self.outputs_json else ()


@dataclass(frozen=True, slots=True)
class Run:
    """One run as the journal remembers it."""

    started_at: float
    ended_at: float | None
    outcome: str | None
    summary: dict[str, object]


_COLUMNS = (
    "path",
    "size",
    "mtime_ns",
    "state",
    "engine",
    "upload_url",
    "uploaded_at",
    "transcript_id",
    "error",
    "outputs",
    "options",
    "permanent",
    "digest",
)
_SELECT_RECORDS = f"SELECT {', '.join(_COLUMNS)} FROM files"


def _select_records(have: set[str]) -> str:
    """The SELECT for a journal that may predate some columns (read-only: cannot add them)."""
    return "SELECT " + ", ".join(c if c in have else "NULL" for c in _COLUMNS) + " FROM files"


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
            records = {row[0]: _record(row) for row in db.execute(_select_records(have))}
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


class Journal:
    """The SQLite journal of one root. Not thread-safe: use it from the event loop only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        state_dir = root / STATE_DIR
        try:
            private_mkdir(state_dir)
            db_path = state_dir / JOURNAL_NAME
            # Created user-only before SQLite opens it: it holds transcript ids and upload URLs.
            os.close(os.open(db_path, os.O_CREAT | os.O_RDWR, 0o600))
            self._db = sqlite3.connect(db_path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: every commit survives a crash of this process (kill -9); only the upload
            # record is also synced to disk (see `uploaded`), one fsync per file, not five.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
            for column, sql_type in _ADDED_COLUMNS.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE files ADD COLUMN {column} {sql_type}")
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"{state_dir}: cannot open the journal ({err}); batchscribe needs a writable "
                "folder to remember what it did."
            ) from None

    def close(self) -> None:
        self._db.close()

    def _sql(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """Every statement after opening: a failure stops the run with one line, because
        a billable step that cannot be recorded must not happen."""
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as err:
            raise JournalError(
                f"{self.root / STATE_DIR / JOURNAL_NAME}: cannot write the journal ({err}); "
                "free some disk space or fix the folder's permissions, then run again."
            ) from None

    def records(self) -> dict[str, Record]:
        """Every row, keyed by relative path: read once per run, so a re-scan is one query."""
        rows = self._sql(_SELECT_RECORDS)
        return {row[0]: _record(row) for row in rows}

    def get(self, key: str) -> Record | None:
        row = self._sql(_SELECT_RECORDS + " WHERE path = ?", (key,)).fetchone()
        return _record(row) if row else None

    def start(
        self,
        key: str,
        fingerprint: Fingerprint,
        engine: str,
        outputs: list[str],
        options: str | None = None,
        digest: str | None = None,
    ) -> None:
        """A fresh attempt at `key`: forget any earlier upload or transcript of other bytes.

        `outputs` are claimed before they are written, so a run killed between writing them
        and recording `done` still knows they are ours; earlier claims are kept.
        """
        previous = self.get(key)
        owned = sorted({*(previous.outputs if previous else ()), *outputs})
        self._sql(
            "INSERT INTO files (path, size, mtime_ns, state, engine, outputs, options,"
            " updated_at, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            " ON CONFLICT (path) DO UPDATE SET size = ?2, mtime_ns = ?3, state = ?4,"
            " engine = ?5, upload_url = NULL, uploaded_at = NULL, transcript_id = NULL,"
            " error = NULL, permanent = NULL, outputs = ?6, options = ?7, updated_at = ?8,"
            " digest = ?9",
            (
                key,
                fingerprint.size,
                fingerprint.mtime_ns,
                State.PENDING,
                engine,
                json.dumps(owned),
                options,
                time.time(),
                digest,
            ),
        )

    def uploaded(self, key: str, upload_url: str) -> None:
        """Synced to disk before the billable create starts, so even after a power cut the
        next run knows this upload and can find a transcript created from it. (Losing any
        later record costs nothing: that transcript is found again in the API's list, and a
        lost "done" only re-writes outputs from the kept transcript.)"""
        self._sql("PRAGMA synchronous=FULL")
        try:
            self._set(key, state=State.UPLOADED, upload_url=upload_url, uploaded_at=time.time())
        finally:
            self._sql("PRAGMA synchronous=NORMAL")

    def submitted(self, key: str, transcript_id: str) -> None:
        self._set(key, state=State.SUBMITTED, transcript_id=transcript_id)

    def done(self, key: str) -> None:
        self._set(key, state=State.DONE, error=None)

    def failed(self, key: str, error: str, *, permanent: bool = False) -> None:
        self._set(key, state=State.FAILED, error=error, permanent=int(permanent))

    def begin_run(self) -> int:
        cursor = self._sql("INSERT INTO runs (started_at) VALUES (?)", (time.time(),))
        return int(cursor.lastrowid or 0)

    def end_run(self, run_id: int, outcome: str, summary: dict[str, object]) -> None:
        self._sql(
            "UPDATE runs SET ended_at = ?, outcome = ?, summary = ? WHERE id = ?",
            (time.time(), outcome, json.dumps(summary), run_id),
        )

    def _set(self, key: str, **columns: object) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._sql(
            f"UPDATE files SET {assignments}, updated_at = ? WHERE path = ?",
            (*columns.values(), time.time(), key),
        )


_STATES = {state.value: state for state in State}


def _record(row: tuple[Any, ...]) -> Record:
    """A row as SQLite returns it (the schema fixes the types): built for speed, positionally,
    since a re-scan builds one per file."""
    key, size, mtime_ns, state, engine, url, at, tid, error, outputs, options, perm, digest = row
    return Record(
        key,
        Fingerprint(size, mtime_ns),
        _STATES[state],
        engine,
        url,
        at,
        tid,
        error,
        outputs,
        options,
        bool(perm),
        digest,
    )
