from __future__ import annotations

import functools
import re
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from batchscribe.errors import ConfigError, JournalError
from batchscribe.fingerprint import Fingerprint
from batchscribe.recording import Resume
from batchscribe.state.journal import (
    Event,
    InvalidTransition,
    Journal,
    Record,
    Start,
    State,
    next_state,
    resume_point,
)
from tests.fakes import connect_journal, journal_path

REPO = Path(__file__).resolve().parent.parent

FP = Fingerprint(100, 123456789)


def test_states_survive_reopening(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", ["a.txt"])
    journal.uploaded("a.mp3", "https://cdn/upload/1")
    journal.submitted("a.mp3", "t-1")
    journal.close()
    record = Journal(tmp_path).get("a.mp3")
    assert record is not None
    assert record.state is State.SUBMITTED
    assert (record.upload_url, record.transcript_id, record.fingerprint) == (
        "https://cdn/upload/1",
        "t-1",
        FP,
    )


def test_restart_forgets_the_old_upload_but_keeps_our_outputs(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", ["a.txt", "a.json"])
    journal.uploaded("a.mp3", "u")
    journal.submitted("a.mp3", "t")
    journal.done("a.mp3")
    journal.start("a.mp3", Fingerprint(5, 6), "assemblyai", ["a.mp3.txt"])
    record = journal.get("a.mp3")
    assert record is not None and record.state is State.PENDING
    assert record.upload_url is None and record.transcript_id is None
    assert record.outputs == ("a.json", "a.mp3.txt", "a.txt")


class FullDisk(sqlite3.Connection):
    """A connection whose writes fail once `full` is set, as on a full disk."""

    full = False

    def execute(self, sql: str, params: Any = (), /) -> sqlite3.Cursor:
        if FullDisk.full and not sql.startswith("PRAGMA"):
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, params)


def test_a_journal_that_cannot_be_written_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path, connect=functools.partial(sqlite3.connect, factory=FullDisk))
    monkeypatch.setattr(FullDisk, "full", True)
    with pytest.raises(JournalError, match="cannot write the journal") as err:
        journal.start("a.mp3", FP, "assemblyai", [])
    assert err.value.exit_code == 2
    assert str(err.value).endswith(
        "free some disk space or fix the folder's permissions, then run again."
    )


def test_a_journal_that_cannot_be_opened_says_what_it_needs(tmp_path: Path) -> None:
    journal_path(tmp_path).parent.write_text("a file where the folder should be")
    with pytest.raises(ConfigError, match="cannot open the journal") as err:
        Journal(tmp_path)
    assert str(err.value).endswith("batchscribe needs a writable folder to remember what it did.")


def test_the_journal_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    mode = journal_path(tmp_path).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_journal_from_before_options_were_recorded_gains_the_new_columns(
    tmp_path: Path,
) -> None:
    journal_path(tmp_path).parent.mkdir()
    with connect_journal(tmp_path) as old:
        old.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " mtime_ns INTEGER NOT NULL, state TEXT NOT NULL, engine TEXT, upload_url TEXT,"
            " uploaded_at REAL, transcript_id TEXT, error TEXT, outputs TEXT,"
            " updated_at REAL NOT NULL)"
        )
        old.execute("INSERT INTO files VALUES ('old.mp3', 1, 2, 'done', 'local', NULL, NULL,"
                    " NULL, NULL, '[\"old.txt\"]', 0)")  # fmt: skip

    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [], options="o1", digest="d1")

    records = journal.records()
    assert records["old.mp3"].done and records["old.mp3"].options is None
    assert (records["a.mp3"].options, records["a.mp3"].digest) == ("o1", "d1")


def test_every_column_of_a_record_reads_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("sub/a.mp3", FP, "assemblyai", ["a.txt"], options="o1", digest="d1")
    journal.uploaded("sub/a.mp3", "u", at=123.0)
    journal.submitted("sub/a.mp3", "t")
    journal.failed("sub/a.mp3", "not audio", permanent=True)

    assert journal.records() == {
        "sub/a.mp3": Record(
            key="sub/a.mp3",
            fingerprint=FP,
            state=State.FAILED,
            engine="assemblyai",
            upload_url="u",
            uploaded_at=123.0,
            transcript_id="t",
            error="not audio",
            outputs_json='["a.txt"]',
            options="o1",
            permanent=True,
            digest="d1",
        )
    }


def test_an_upload_is_recorded_with_when_it_happened(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [])
    before = time.time()
    journal.uploaded("a.mp3", "u1")
    record = journal.get("a.mp3")
    assert record is not None and record.uploaded_at is not None
    assert before <= record.uploaded_at <= time.time()


def test_a_stale_upload_uploaded_again_records_the_new_one(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [])
    journal.uploaded("a.mp3", "u1", at=1.0)
    journal.uploaded("a.mp3", "u2", at=2.0)
    record = journal.get("a.mp3")
    assert record is not None and (record.upload_url, record.uploaded_at) == ("u2", 2.0)


def test_a_failure_is_not_permanent_unless_said(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [])
    journal.failed("a.mp3", "server error")
    record = journal.get("a.mp3")
    assert record is not None and record.failed and not record.permanent


def test_a_transient_failure_before_anything_billable_fails_the_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [])
    journal.failed("a.mp3", "network down", transient=True)
    record = journal.get("a.mp3")
    assert record is not None and record.failed and record.error == "network down"


def test_runs_are_numbered_and_their_end_recorded(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    first, second = journal.begin_run(), journal.begin_run()
    journal.end_run(first, "completed", {"done": 2})
    journal.close()

    with connect_journal(tmp_path) as db:
        rows = db.execute("SELECT id, ended_at, outcome, summary FROM runs ORDER BY id").fetchall()
    assert (first, second) == (1, 2)
    assert [(r[0], r[2], r[3]) for r in rows] == [(1, "completed", '{"done": 2}'), (2, None, None)]
    assert rows[0][1] is not None and rows[1][1] is None


# -- the state machine


P, U, S, D, F = State.PENDING, State.UPLOADED, State.SUBMITTED, State.DONE, State.FAILED
#: Every legal (state, event) -> state; any pair not listed must be refused.
LEGAL = {
    **{(s, Event.START): P for s in (None, P, U, S, D, F)},
    (P, Event.UPLOAD): U,
    (U, Event.UPLOAD): U,
    (P, Event.SUBMIT): S,
    (U, Event.SUBMIT): S,
    (P, Event.DONE): D,
    (U, Event.DONE): D,
    (S, Event.DONE): D,
    **{(s, Event.FAIL): F for s in (P, U, S, D, F)},
    (None, Event.FAIL): None,
    # transient trouble keeps a billable step, and fails a file that had none
    (P, Event.STALL): F,
    (U, Event.STALL): U,
    (S, Event.STALL): S,
    (D, Event.STALL): F,
    (F, Event.STALL): F,
    (None, Event.STALL): None,
}


@pytest.mark.parametrize("state", [None, *State])
@pytest.mark.parametrize("event", list(Event))
def test_next_state_follows_the_table_and_refuses_the_rest(
    state: State | None, event: Event
) -> None:
    if (state, event) in LEGAL:
        assert next_state(state, event) is LEGAL[(state, event)]
    else:
        with pytest.raises(InvalidTransition):
            next_state(state, event)


def test_an_impossible_event_names_the_event_and_the_state() -> None:
    with pytest.raises(InvalidTransition, match=r"^upload cannot happen to a new file$"):
        next_state(None, Event.UPLOAD)
    with pytest.raises(InvalidTransition, match=r"^done cannot happen to a failed file$"):
        next_state(State.FAILED, Event.DONE)


def test_a_transient_failure_after_the_create_keeps_the_transcript(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [])
    journal.uploaded("a.mp3", "u")
    journal.submitted("a.mp3", "t-1")
    journal.failed("a.mp3", "disk full", transient=True)
    record = journal.get("a.mp3")
    assert record is not None and record.state is State.SUBMITTED
    assert record.transcript_id == "t-1" and record.error is None

    journal.failed("a.mp3", "not audio", permanent=True)
    record = journal.get("a.mp3")
    assert record is not None and record.failed and record.permanent
    assert record.error == "not audio"


def test_an_impossible_event_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.start("a.mp3", FP, "assemblyai", [])
    journal.done("a.mp3")
    with pytest.raises(InvalidTransition):
        journal.uploaded("a.mp3", "u")
    record = journal.get("a.mp3")
    assert record is not None and record.done and record.upload_url is None


def test_a_failure_of_a_file_without_a_row_records_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.failed("new.mp3", "its output exists")
    assert journal.get("new.mp3") is None


def record(state: State, **values: object) -> Record:
    fields: dict[str, object] = {
        "key": "a.mp3",
        "fingerprint": FP,
        "state": state,
        "engine": "assemblyai",
        "options": "o1",
        **values,
    }
    return Record(**fields)  # type: ignore[arg-type]


def resume(rec: Record | None, *, fingerprint: Fingerprint = FP, options: str = "o1") -> Any:
    return resume_point(
        rec, fingerprint, engine="assemblyai", options=options, now=1000.0, upload_ttl=100.0
    )


def test_resume_point_polls_a_submitted_transcript_and_reuses_a_fresh_upload() -> None:
    assert resume(record(S, upload_url="u", uploaded_at=10.0, transcript_id="t")) == Resume(
        transcript_id="t"
    )
    assert resume(record(U, upload_url="u", uploaded_at=950.0)) == Resume(upload_url="u")
    # expired on the service: carry on, but send the bytes again
    assert resume(record(U, upload_url="u", uploaded_at=900.0)) == Resume()
    assert resume(record(U, upload_url="u", uploaded_at=None)) == Resume()
    # a journal from before options were recorded carries on with any options
    assert resume(record(U, upload_url="u", uploaded_at=950.0, options=None)) == Resume(
        upload_url="u"
    )


def test_resume_point_polls_only_a_submitted_transcript() -> None:
    # the state decides, not what a column still holds
    stray = record(U, upload_url="u", uploaded_at=950.0, transcript_id="t")
    assert resume(stray) == Resume(upload_url="u")


def test_resume_point_starts_afresh_for_anything_else() -> None:
    submitted = record(S, transcript_id="t")
    assert resume(None) is None
    assert resume(submitted, fingerprint=Fingerprint(1, 2)) is None
    assert resume(submitted, options="o2") is None
    assert resume(record(S, transcript_id="t", engine="local")) is None
    for state in (P, D, F):
        assert resume(record(state, transcript_id="t", upload_url="u", uploaded_at=999.0)) is None


# -- writes batched: one commit for the writes of a file that no billable step separates


class Recording(sqlite3.Connection):
    """A connection that remembers every statement but the reads (its first two words), and
    can fail the next one that starts so, as a full disk would."""

    fail_on: str | None = None
    statements: ClassVar[list[str]] = []

    def execute(self, sql: str, params: Any = (), /) -> sqlite3.Cursor:
        if not sql.startswith("SELECT"):
            Recording.statements.append(" ".join(sql.split()[:2]))
        if Recording.fail_on is not None and sql.startswith(Recording.fail_on):
            Recording.fail_on = None
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, params)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Journal]:
    Recording.statements, Recording.fail_on = [], None
    journal = Journal(tmp_path, connect=functools.partial(sqlite3.connect, factory=Recording))
    Recording.statements.clear()
    yield journal
    journal.close()


START = Start("a.mp3", FP, "assemblyai", ("a.txt",), options="o1", digest="d1")


def test_a_held_back_start_is_recorded_as_start_records_it(tmp_path: Path) -> None:
    (tmp_path / "held").mkdir(), (tmp_path / "direct").mkdir()
    held, direct = Journal(tmp_path / "held"), Journal(tmp_path / "direct")
    held.begin(START)
    direct.start("a.mp3", FP, "assemblyai", ["a.txt"], options="o1", digest="d1")
    assert held.records() == direct.records()
    assert held.records()["a.mp3"].outputs == ("a.txt",) and held.get("a.mp3") is not None


def test_a_batched_start_and_upload_are_one_commit_synced_to_disk(recorded: Journal) -> None:
    with recorded.batch(synced=True):
        recorded.begin(START)
        recorded.uploaded("a.mp3", "u1", at=5.0)

    assert Recording.statements == [
        "PRAGMA synchronous=FULL",
        "BEGIN IMMEDIATE",
        "INSERT INTO",
        "UPDATE files",
        "COMMIT",
        "PRAGMA synchronous=NORMAL",
    ]
    record = recorded.get("a.mp3")
    assert record is not None and record.state is State.UPLOADED
    assert (record.upload_url, record.uploaded_at, record.digest) == ("u1", 5.0, "d1")


def test_an_upload_alone_is_its_own_synced_commit(recorded: Journal) -> None:
    recorded.begin(START)
    Recording.statements.clear()

    recorded.uploaded("a.mp3", "u1")

    assert Recording.statements[:2] == ["PRAGMA synchronous=FULL", "BEGIN IMMEDIATE"]
    assert Recording.statements[-2:] == ["COMMIT", "PRAGMA synchronous=NORMAL"]
    with recorded.batch():  # later writes are not synced
        recorded.done("a.mp3")
    assert Recording.statements[-3:] == ["BEGIN IMMEDIATE", "UPDATE files", "COMMIT"]


def test_an_upload_in_a_batch_that_is_not_synced_is_refused(recorded: Journal) -> None:
    with pytest.raises(RuntimeError, match="synced=True"), recorded.batch():
        recorded.begin(START)
        recorded.uploaded("a.mp3", "u1")
    assert recorded.get("a.mp3") is None  # rolled back, start and all


def test_a_batch_whose_second_write_fails_records_neither(recorded: Journal) -> None:
    Recording.fail_on = "UPDATE"
    with pytest.raises(JournalError), recorded.batch(synced=True):
        recorded.begin(START)
        recorded.uploaded("a.mp3", "u1")

    assert recorded.get("a.mp3") is None
    assert Recording.statements[-2:] == ["ROLLBACK", "PRAGMA synchronous=NORMAL"]
    recorded.begin(START)  # the journal is usable again, with no transaction left open
    assert recorded.get("a.mp3") is not None


def test_a_batch_whose_commit_fails_records_nothing_and_leaves_no_transaction(
    recorded: Journal,
) -> None:
    Recording.fail_on = "COMMIT"
    with pytest.raises(JournalError, match="cannot write the journal"), recorded.batch():
        recorded.begin(START)
        recorded.done("a.mp3")

    assert recorded.get("a.mp3") is None
    with recorded.batch():  # a fresh transaction, not the remains of the failed one
        recorded.begin(START)
    assert Recording.statements[-2:] == ["INSERT INTO", "COMMIT"]
    assert recorded.get("a.mp3") is not None


def test_a_batch_inside_a_batch_commits_with_the_outer_one(recorded: Journal) -> None:
    with pytest.raises(KeyError), recorded.batch(synced=True):
        with recorded.batch():
            recorded.begin(START)
        recorded.uploaded("a.mp3", "u1")  # a synced write in a synced batch: allowed
        raise KeyError("after both writes")
    assert recorded.get("a.mp3") is None
    assert Recording.statements.count("BEGIN IMMEDIATE") == 1


KILLED_IN_A_BATCH = """
import os, sys
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal import Journal, Start
journal = Journal(__import__("pathlib").Path(sys.argv[1]))
start = Start("a.mp3", Fingerprint(100, 123456789), "assemblyai", ("a.txt",))
with journal.batch(synced=True):
    journal.begin(start)
    journal.uploaded("a.mp3", "u1")
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), 9)  # kill -9 between the two writes and the commit
os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("when", ["kill", "after"])
def test_a_process_killed_inside_a_batch_leaves_none_of_its_writes(
    tmp_path: Path, when: str
) -> None:
    cmd = [sys.executable, "-c", KILLED_IN_A_BATCH, str(tmp_path), when]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == -9, proc.stderr

    record = Journal(tmp_path).get("a.mp3")
    if when == "kill":
        assert record is None
    else:
        assert record is not None and record.state is State.UPLOADED
        assert (record.upload_url, record.outputs) == ("u1", ("a.txt",))


def test_a_start_claiming_only_owned_outputs_may_wait_for_done() -> None:
    owned = Record("a.mp3", FP, State.DONE, outputs_json='["a.json", "a.txt"]')
    assert not START.claims_beyond(owned)  # a.txt is owned already
    assert not replace(START, outputs=()).claims_beyond(None)
    assert not replace(START, outputs=("a.json", "a.txt")).claims_beyond(owned)


def test_a_start_claiming_an_output_not_yet_owned_must_be_written_first() -> None:
    owned = Record("a.mp3", FP, State.DONE, outputs_json='["a.txt"]')
    assert START.claims_beyond(None)
    assert START.claims_beyond(Record("a.mp3", FP, State.DONE))
    assert replace(START, outputs=("a.txt", "a.srt")).claims_beyond(owned)


# -- a damaged journal (the run's side is in test_recovery.py)


def test_a_damaged_journal_is_moved_aside_and_a_new_one_started(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.begin(START)
    journal.close()
    path = journal_path(tmp_path)
    path.write_bytes(b"not a database at all, " * 100)

    again = Journal(tmp_path)

    assert again.moved_aside is not None
    aside, why = again.moved_aside
    assert aside.parent == path.parent and aside.name.startswith("journal.sqlite3.damaged-")
    assert aside.read_bytes().startswith(b"not a database")
    assert "not a database" in why or "malformed" in why
    assert again.records() == {}  # a new, working journal
    again.begin(START)
    assert again.get("a.mp3") is not None


def test_a_journal_that_opens_cleanly_is_not_moved(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    journal = Journal(tmp_path)
    assert journal.moved_aside is None
    assert not list(journal_path(tmp_path).parent.glob("*.damaged-*"))


def test_a_journal_error_that_is_no_damage_is_not_taken_for_damage(tmp_path: Path) -> None:
    def locked(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(ConfigError, match="database is locked"):
        Journal(tmp_path, connect=locked)
    assert not list(journal_path(tmp_path).parent.glob("*.damaged-*"))


def test_a_damaged_journal_is_kept_under_the_time_it_was_found(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    path = journal_path(tmp_path)
    path.write_bytes(b"not a database at all, " * 100)

    again = Journal(tmp_path)

    assert again.moved_aside is not None
    aside = again.moved_aside[0]
    assert re.fullmatch(r"journal\.sqlite3\.damaged-\d{8}T\d{6}", aside.name)
    again.begin(START)
    assert again.get("a.mp3") is not None


def test_a_journal_whose_pages_are_damaged_is_moved_aside_with_sqlite_s_finding(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    with journal.batch():
        for i in range(2000):
            journal.begin(replace(START, key=f"{i:05}.mp3", outputs=(f"{i:05}.txt",)))
    journal.close()
    path = journal_path(tmp_path)
    data = bytearray(path.read_bytes())
    page = 4096
    data[10 * page : 11 * page] = bytes(page)  # a page zeroed: it opens, quick_check finds it
    path.write_bytes(bytes(data))

    again = Journal(tmp_path)

    assert again.moved_aside is not None
    why = again.moved_aside[1]
    assert why.startswith("database disk image is malformed: *** in database main ***")
    assert "Page 11" in why  # what quick_check found
    assert again.records() == {}


def test_a_journal_from_before_the_added_columns_gets_them_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.begin(START)
    journal.close()
    db = sqlite3.connect(journal_path(tmp_path))
    for column in ("options", "permanent", "digest"):
        db.execute(f"ALTER TABLE files DROP COLUMN {column}")
    db.commit()
    db.close()

    again = Journal(tmp_path)

    old = again.get("a.mp3")
    assert old is not None and old.options is None and old.digest is None
    again.begin(replace(START, key="b.mp3"))
    new = again.get("b.mp3")
    assert new is not None and (new.options, new.digest) == ("o1", "d1")
