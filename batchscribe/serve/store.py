"""What the server keeps across restarts: uploads (files in `uploads/`) and transcripts (rows in
SQLite), in its state folder.

Every change is one committed statement, so after `kill -9` a completed transcript still
answers and a queued or processing one is queued again (`unfinished`). Ids are ours (random
hex): no client string ever becomes a path.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

#: Upload and transcript ids: 32 hex digits, the only names the uploads folder ever holds.
ID_PATTERN = r"[0-9a-f]{32}"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, size INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transcripts (
    id TEXT PRIMARY KEY, upload TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,
    completed REAL, request TEXT NOT NULL, result TEXT, error TEXT);
"""


class Status(StrEnum):
    """A transcript's status, in AssemblyAI's words."""

    #: waiting for a worker (also after a restart, whatever it was doing)
    queued = "queued"
    #: a worker is transcribing it
    processing = "processing"
    #: `result` holds the transcript
    completed = "completed"
    #: `error` says why
    error = "error"


@dataclass(frozen=True, slots=True)
class Job:
    """One transcript as stored: its request (the options asked for) and where it got to."""

    id: str
    upload: str
    status: Status
    created: float
    request: Mapping[str, Any]
    completed: float | None = None
    result: Mapping[str, Any] | None = None
    error: str | None = None


def new_id() -> str:
    return secrets.token_hex(16)


class Store:
    """The state folder: `server.sqlite` and `uploads/<id>`. Calls are short, on the loop's
    thread; SQLite in WAL mode commits each in well under a millisecond."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uploads = folder / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(folder / "server.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def upload_path(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def add_upload(self, upload_id: str, size: int) -> None:
        self._db.execute("INSERT INTO uploads VALUES (?, ?, ?)", (upload_id, size, time.time()))

    def has_upload(self, upload_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return row is not None and self.upload_path(upload_id).is_file()

    def create(self, upload_id: str, request: Mapping[str, Any]) -> Job:
        job = Job(new_id(), upload_id, Status.queued, time.time(), dict(request))
        self._db.execute(
            "INSERT INTO transcripts (id, upload, status, created, request) VALUES (?,?,?,?,?)",
            (job.id, upload_id, job.status, job.created, json.dumps(job.request)),
        )
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT * FROM transcripts WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def newest(self, *, limit: int, status: str | None = None) -> list[Job]:
        """Newest first, as AssemblyAI lists them."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self._db.execute(
            f"SELECT * FROM transcripts {where} ORDER BY created DESC LIMIT ?", (*args, limit)
        ).fetchall()
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, count(*) FROM transcripts GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def processing(self, job_id: str) -> None:
        self._db.execute(
            "UPDATE transcripts SET status = ? WHERE id = ?", (Status.processing, job_id)
        )

    def complete(self, job_id: str, result: Mapping[str, Any]) -> None:
        self._db.execute(
            "UPDATE transcripts SET status = ?, result = ?, completed = ? WHERE id = ?",
            (Status.completed, json.dumps(result, ensure_ascii=False), time.time(), job_id),
        )

    def fail(self, job_id: str, error: str) -> None:
        self._db.execute(
            "UPDATE transcripts SET status = ?, error = ?, completed = ? WHERE id = ?",
            (Status.error, error, time.time(), job_id),
        )

    def requeue(self, job_id: str) -> None:
        """Handed back (the server stopping): the next start transcribes it."""
        self._db.execute("UPDATE transcripts SET status = ? WHERE id = ?", (Status.queued, job_id))

    def unfinished(self) -> list[Job]:
        """Queued or processing when the server last stopped, oldest first: to queue again."""
        rows = self._db.execute(
            "SELECT * FROM transcripts WHERE status IN (?, ?) ORDER BY created",
            (Status.queued, Status.processing),
        ).fetchall()
        return [_job(row) for row in rows]

    def delete(self, job_id: str) -> None:
        """AssemblyAI's DELETE: the row stays (its id answers), its words and audio go."""
        job = self.get(job_id)
        if job is None:
            return
        self._db.execute(
            "UPDATE transcripts SET result = ? WHERE id = ?",
            (json.dumps(_redacted(job.result or {})), job_id),
        )
        self.delete_upload(job.upload)

    def delete_upload(self, upload_id: str) -> None:
        self.upload_path(upload_id).unlink(missing_ok=True)
        self._db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))


def _redacted(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a deleted transcript still says: AssemblyAI keeps the fields, not the words."""
    return {**result, "text": "Deleted by user.", "words": [], "utterances": []}


def _job(row: tuple[Any, ...]) -> Job:
    job_id, upload, status, created, completed, request, result, error = row
    return Job(
        id=job_id,
        upload=upload,
        status=Status(status),
        created=created,
        completed=completed,
        request=json.loads(request),
        result=json.loads(result) if result else None,
        error=error,
    )
