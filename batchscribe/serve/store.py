"""What the server keeps across restarts: uploads (files in `uploads/`) and transcripts (rows in
SQLite), in its state folder.

Every change is one committed statement, so after `kill -9` a completed transcript still
answers and a queued or processing one is queued again (`unfinished`). Ids are ours (random
hex): no client string ever becomes a path.

SQLite runs on one thread of its own (`_writer`), never on the event loop: a commit's fsync
waits there, not in front of every other request. One thread is also one writer, so the
statements keep the order they were asked in; an awaiting request that is cancelled does
not cancel its statement, which still commits.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _on_writer(
    method: Callable[Concatenate[Store, _P], _R],
) -> Callable[Concatenate[Store, _P], Coroutine[Any, Any, _R]]:
    """The method, awaited on the store's own thread."""

    async def threaded(self: Store, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        call = functools.partial(method, self, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._writer, call)

    threaded.__doc__ = method.__doc__
    return threaded


class Store:
    """The state folder: `server.sqlite` and `uploads/<id>`. Every call that touches the
    database is awaited and runs on `_writer`, the one thread that uses the connection."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uploads = folder / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serve-store")
        self._db = self._writer.submit(_open, folder / "server.sqlite").result()

    def close(self) -> None:
        """After every statement asked for (a hand-back included) has committed."""
        self._writer.submit(self._db.close).result()
        self._writer.shutdown(wait=True)

    def hand_back(self, job_id: str) -> None:
        """Queue a transcript again without waiting (a cancelled worker cannot await); it
        commits before `close` returns, and a kill first leaves it `processing`, which
        `unfinished` queues again all the same."""
        self._writer.submit(self._requeue, job_id)

    def upload_path(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    @_on_writer
    def add_upload(self, upload_id: str, size: int) -> None:
        self._db.execute("INSERT INTO uploads VALUES (?, ?, ?)", (upload_id, size, time.time()))

    @_on_writer
    def has_upload(self, upload_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return row is not None and self.upload_path(upload_id).is_file()

    @_on_writer
    def create(self, upload_id: str, request: Mapping[str, Any]) -> Job:
        job = Job(new_id(), upload_id, Status.queued, time.time(), dict(request))
        self._db.execute(
            "INSERT INTO transcripts (id, upload, status, created, request) VALUES (?,?,?,?,?)",
            (job.id, upload_id, job.status, job.created, json.dumps(job.request)),
        )
        return job

    @_on_writer
    def get(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT * FROM transcripts WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    @_on_writer
    def newest(self, *, limit: int, status: str | None = None) -> list[Job]:
        """Newest first, as AssemblyAI lists them."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self._db.execute(
            f"SELECT * FROM transcripts {where} ORDER BY created DESC LIMIT ?", (*args, limit)
        ).fetchall()
        return [_job(row) for row in rows]

    @_on_writer
    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, count(*) FROM transcripts GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    @_on_writer
    def processing(self, job_id: str) -> None:
        self._db.execute(
            "UPDATE transcripts SET status = ? WHERE id = ?", (Status.processing, job_id)
        )

    @_on_writer
    def complete(self, job_id: str, result: Mapping[str, Any]) -> None:
        self._db.execute(
            "UPDATE transcripts SET status = ?, result = ?, completed = ? WHERE id = ?",
            (Status.completed, json.dumps(result, ensure_ascii=False), time.time(), job_id),
        )

    @_on_writer
    def fail(self, job_id: str, error: str) -> None:
        self._db.execute(
            "UPDATE transcripts SET status = ?, error = ?, completed = ? WHERE id = ?",
            (Status.error, error, time.time(), job_id),
        )

    def _requeue(self, job_id: str) -> None:
        self._db.execute("UPDATE transcripts SET status = ? WHERE id = ?", (Status.queued, job_id))

    #: Queued again (a restart's unfinished work): the next worker, or start, transcribes it.
    requeue = _on_writer(_requeue)

    @_on_writer
    def unfinished(self) -> list[Job]:
        """Queued or processing when the server last stopped, oldest first: to queue again."""
        rows = self._db.execute(
            "SELECT * FROM transcripts WHERE status IN (?, ?) ORDER BY created",
            (Status.queued, Status.processing),
        ).fetchall()
        return [_job(row) for row in rows]

    @_on_writer
    def delete(self, job_id: str) -> None:
        """AssemblyAI's DELETE: the row stays (its id answers), its words and audio go."""
        row = self._db.execute("SELECT * FROM transcripts WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return
        job = _job(row)
        self._db.execute(
            "UPDATE transcripts SET result = ? WHERE id = ?",
            (json.dumps(_redacted(job.result or {})), job_id),
        )
        self._forget_upload(job.upload)

    @_on_writer
    def delete_upload(self, upload_id: str) -> None:
        self._forget_upload(upload_id)

    def _forget_upload(self, upload_id: str) -> None:
        self.upload_path(upload_id).unlink(missing_ok=True)
        self._db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)  # on `_writer`, the thread that uses it
    db.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL commits without an fsync and is still whole after the process is
    # killed (only a power cut may lose the last commits): kill -9 is what we promise.
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


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
