"""Crash-safe state per root: SQLite in `<root>/.batchscribe/`, and the file state machine.

Every billable step is recorded here before the next one starts, so a run killed at any moment
resumes without uploading or transcribing anything twice. Rows are keyed by the source's path
relative to the root (POSIX separators), so a moved root keeps its history.

Writes of one file that no billable step separates are one transaction (`Journal.batch`): a
fresh attempt's `start` is held back (`Start`) and committed with the attempt's next record
(the upload, or its end), so a file costs fewer commits and trips to the journal thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from batchscribe.errors import ConfigError, JournalError
from batchscribe.fingerprint import Fingerprint
from batchscribe.recording import Resume
from batchscribe.state.lock import STATE_DIR, open_state_file, private_mkdir

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


class Event(StrEnum):
    """What happened to a source; `next_state` says where each event leads from each state."""

    #: a fresh attempt: any earlier upload or transcript of other bytes is forgotten
    START = "start"
    #: the bytes reached AssemblyAI's storage
    UPLOAD = "upload"
    #: a transcript exists (created, adopted, or a copy's original's)
    SUBMIT = "submit"
    #: every output written
    DONE = "done"
    #: the attempt failed for good, or failed before anything billable happened
    FAIL = "fail"
    #: transient trouble (a network error, a full disk) after a billable step: the step is
    #: kept, so the next run carries on from it and never pays again
    STALL = "stall"


_IN_FLIGHT = frozenset({State.UPLOADED, State.SUBMITTED})
_STATES = {state.value: state for state in State}
_ANY = frozenset(State)

#: The state machine: event -> (states it may happen in, state it leads to). `None` stands for
#: "no row yet". STALL is the one event whose result depends on the state (see `next_state`).
TRANSITIONS: dict[Event, tuple[frozenset[State | None], State]] = {
    Event.START: (frozenset({None, *State}), State.PENDING),
    # A stale upload is uploaded again: UPLOADED -> UPLOADED.
    Event.UPLOAD: (frozenset({State.PENDING, State.UPLOADED}), State.UPLOADED),
    # From PENDING: a copy collects its interrupted original's transcript.
    Event.SUBMIT: (frozenset({State.PENDING, State.UPLOADED}), State.SUBMITTED),
    # From PENDING: the local engine, or a transcript kept in the store.
    Event.DONE: (frozenset({State.PENDING, *_IN_FLIGHT}), State.DONE),
    # From DONE or FAILED: an attempt that failed before it started (foreign outputs).
    Event.FAIL: (_ANY, State.FAILED),
    Event.STALL: (_ANY, State.FAILED),
}


class Damaged(Exception):
    """The journal's pages fail SQLite's own check: it is moved aside, never used."""


class InvalidTransition(RuntimeError):
    """A bug: an event that cannot happen in the source's state."""


def next_state(current: State | None, event: Event) -> State | None:
    """Where `event` leads from `current`; None when there is nothing to record (a failure of a
    file that never got a row). Raises InvalidTransition for an impossible event."""
    if current is None and event in (Event.FAIL, Event.STALL):
        return None
    allowed, target = TRANSITIONS[event]
    if current not in allowed:
        raise InvalidTransition(f"{event.value} cannot happen to a {current or 'new'} file")
    if event is Event.STALL and current in _IN_FLIGHT:
        return current
    return target


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

    @property
    def done(self) -> bool:
        """Its outputs were written (they may have gone missing since)."""
        return self.state is State.DONE

    @property
    def failed(self) -> bool:
        return self.state is State.FAILED

    @property
    def in_flight(self) -> bool:
        """An attempt got past a billable step (uploaded or submitted) and did not end."""
        return self.state in _IN_FLIGHT

    def continues(self, engine: str, options: str) -> bool:
        """An attempt under way that a run with this engine and these options carries on."""
        return self.in_flight and self.engine == engine and self.options in (None, options)


def resume_point(
    record: Record | None,
    fingerprint: Fingerprint,
    *,
    engine: str,
    options: str,
    now: float,
    upload_ttl: float,
) -> Resume | None:
    """Where an attempt at these very bytes carries on from, or None to start afresh.

    A transcript id is only ever polled, never re-created; an upload is reused while the
    service keeps it (`upload_ttl`), else the bytes go again (`Resume()` with nothing set).
    """
    if record is None or record.fingerprint != fingerprint:
        return None
    if not record.continues(engine, options):
        return None
    if record.state is State.SUBMITTED and record.transcript_id:
        return Resume(transcript_id=record.transcript_id)
    fresh = record.uploaded_at is not None and now - record.uploaded_at < upload_ttl
    return Resume(upload_url=record.upload_url if fresh else None)


@dataclass(frozen=True, slots=True)
class Start:
    """A fresh attempt, as `Journal.start` records it, held back until it is written together
    with the attempt's next record (one commit). Nothing billable may happen before it is
    written, and no output it claims may be written before it is."""

    key: str
    fingerprint: Fingerprint
    engine: str
    outputs: tuple[str, ...]
    options: str | None = None
    digest: str | None = None

    def claims_beyond(self, record: Record | None) -> bool:
        """It claims an output that `record`, the row it replaces, does not own: then it must
        be committed before that output is written, or a crash in between would leave a file
        the next run takes for the user's. (Claims are never dropped, so a row owns at least
        what it owned when it was read.)"""
        owned = record.outputs if record else ()
        return not set(self.outputs).issubset(owned)


COLUMNS = ("path", "size", "mtime_ns", "state", "engine", "upload_url", "uploaded_at",
            "transcript_id", "error", "outputs", "options", "permanent", "digest")  # fmt: skip
_SELECT_RECORDS = f"SELECT {', '.join(COLUMNS)} FROM files"


class Journal:
    """The SQLite journal of one root. Blocking and not thread-safe: a run uses it from one
    thread at a time (`state_dirs.JournalThread`), off the event loop."""

    def __init__(
        self, root: Path, *, connect: Callable[..., sqlite3.Connection] = sqlite3.connect
    ) -> None:
        """Open (or create) the journal of `root`; `connect` opens SQLite (tests inject a full
        disk there). A damaged journal (truncated, overwritten) is moved aside and a new one
        started: `moved_aside` says where it went and why. Raises ConfigError when the folder
        or the database cannot be opened."""
        self.root = root
        #: (where the damaged journal went, SQLite's words for the damage), or None
        self.moved_aside: tuple[Path, str] | None = None
        #: the open batch's commit is synced to disk (it holds an upload record)
        self._synced = False
        state_dir = root / STATE_DIR
        db_path = state_dir / JOURNAL_NAME
        try:
            private_mkdir(state_dir)
            try:
                self._db = self._open(db_path, connect)
            except (sqlite3.DatabaseError, Damaged) as err:
                if isinstance(err, sqlite3.DatabaseError) and not _damaged(err):
                    raise
                self.moved_aside = (_move_aside(db_path), str(err))
                self._db = self._open(db_path, connect)
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"{state_dir}: cannot open the journal ({err}); batchscribe needs a writable "
                "folder to remember what it did."
            ) from None

    @staticmethod
    def _open(db_path: Path, connect: Callable[..., sqlite3.Connection]) -> sqlite3.Connection:
        """Open, check and bring up to date; raises Damaged, or sqlite3.DatabaseError
        (SQLITE_CORRUPT, SQLITE_NOTADB), for a journal whose pages are damaged."""
        # Created user-only before SQLite opens it: it holds transcript ids and upload URLs.
        os.close(open_state_file(db_path, os.O_CREAT | os.O_RDWR))
        for companion in ("-wal", "-shm", "-journal"):  # SQLite opens these by name
            if os.path.islink(f"{db_path}{companion}"):
                open_state_file(Path(f"{db_path}{companion}"), os.O_RDONLY)  # raises for it
        db = connect(db_path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: every commit survives a crash of this process (kill -9); only the upload
            # record is also synced to disk (see `uploaded`), one fsync per file, not five.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            # A truncated file can open and fail only at the page a later query reads: check
            # every page now (milliseconds for 50,000 rows), not in the middle of a run.
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise Damaged(f"database disk image is malformed: {problems[0]}")
            db.executescript(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(files)")}
            for column, sql_type in _ADDED_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE files ADD COLUMN {column} {sql_type}")
        except BaseException:
            db.close()
            raise
        return db

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
        return {row[0]: record_from_row(row) for row in rows}

    def get(self, key: str) -> Record | None:
        row = self._sql(_SELECT_RECORDS + " WHERE path = ?", (key,)).fetchone()
        return record_from_row(row) if row else None

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
        state = next_state(previous.state if previous else None, Event.START)
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
                state,
                engine,
                json.dumps(owned),
                options,
                time.time(),
                digest,
            ),
        )

    def begin(self, start: Start) -> None:
        """A fresh attempt held back until now (`Start`): recorded as `start` records it."""
        self.start(
            start.key,
            start.fingerprint,
            start.engine,
            list(start.outputs),
            start.options,
            start.digest,
        )

    def uploaded(self, key: str, upload_url: str, *, at: float | None = None) -> None:
        """Synced to disk before the billable create starts, so even after a power cut the
        next run knows this upload and can find a transcript created from it (in a batch, one
        opened with `synced=True`). (Losing any later record costs nothing: that transcript
        is found again in the API's list, and a lost "done" only re-writes outputs from the
        kept transcript.)"""
        with self.batch(synced=True):
            uploaded_at = time.time() if at is None else at
            self.advance(key, Event.UPLOAD, upload_url=upload_url, uploaded_at=uploaded_at)

    def submitted(self, key: str, transcript_id: str) -> None:
        self.advance(key, Event.SUBMIT, transcript_id=transcript_id)

    def done(self, key: str) -> None:
        self.advance(key, Event.DONE, error=None)

    def failed(
        self, key: str, error: str, *, permanent: bool = False, transient: bool = False
    ) -> None:
        """The attempt failed; `transient` trouble after a billable step keeps that step."""
        event = Event.STALL if transient else Event.FAIL
        self.advance(key, event, error=error, permanent=int(permanent))

    def advance(self, key: str, event: Event, **columns: object) -> None:
        """Record `event` for `key` with its columns, in the state the table gives.

        Raises InvalidTransition for an event its state does not allow (a bug)."""
        row = self._sql("SELECT state FROM files WHERE path = ?", (key,)).fetchone()
        current = _STATES[row[0]] if row else None
        state = next_state(current, event)
        if state is None or (state is current and event is Event.STALL):
            return  # nothing to record: no row, or a billable step to keep as it is
        self._set(key, state=state, **columns)

    @contextlib.contextmanager
    def batch(self, *, synced: bool = False) -> Iterator[None]:
        """The writes inside as one transaction: every one of them is recorded, or none (an
        error inside rolls them all back; a crash before the commit leaves none). `synced`:
        the commit is synced to disk, surviving a power cut. A batch inside a batch is part
        of the outer one, which must be synced if the inner one is (SQLite refuses to change
        that once a transaction has begun)."""
        if self._db.in_transaction:
            if synced and not self._synced:
                raise RuntimeError("a synced write in a batch that is not: pass synced=True")
            yield
            return
        try:
            if synced:
                self._synced = True
                self._sql("PRAGMA synchronous=FULL")
            self._sql("BEGIN IMMEDIATE")
            yield
            self._sql("COMMIT")
        except BaseException:
            # Also after a failed COMMIT, which may leave the transaction open; the first
            # error is the one to tell (a ROLLBACK of nothing fails too).
            with contextlib.suppress(JournalError):
                self._sql("ROLLBACK")
            raise
        finally:
            if self._synced:
                self._synced = False
                self._sql("PRAGMA synchronous=NORMAL")

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


#: SQLite's words for a file that is not (or no longer) a whole database.
DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _damaged(err: sqlite3.DatabaseError) -> bool:
    """The journal's bytes are damaged (not a full disk, a lock or a permission)."""
    return getattr(err, "sqlite_errorcode", None) in DAMAGE_CODES


def _move_aside(db_path: Path) -> Path:
    """Keep a damaged journal (and its WAL) as `journal.sqlite3.damaged-<time>` for a look
    later, so that a new one can start in its place."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm", ""):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{db_path}{suffix}", f"{aside}{suffix}")
    return aside


def record_from_row(row: tuple[Any, ...]) -> Record:
    """A row as SQLite returns it (the schema fixes the types): built for speed, positionally,
    since a re-scan builds one per file."""
    key, size, mtime_ns, state, engine, url, at, tid, error, outputs, options, perm, digest = row
    fingerprint, status = Fingerprint(size, mtime_ns), _STATES[state]
    return Record(key, fingerprint, status, engine, url, at, tid, error, outputs, options,
                  bool(perm), digest)  # fmt: skip
