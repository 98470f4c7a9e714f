"""Identical recordings: who makes a transcript, who waits, who goes again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from batchscribe.fingerprint import Fingerprint
from batchscribe.run.identical import Adoption, IdenticalRecordings
from batchscribe.state.journal import Record, State
from tests.fakes import job

HOME = Path("/rec")


def owner_record(key: str, transcript_id: str | None = "t1") -> Record:
    state = State.SUBMITTED if transcript_id else State.UPLOADED
    return Record(key, Fingerprint(9, 9), state, "assemblyai", "u", 1.0, transcript_id)


def test_the_first_file_makes_the_transcript_and_copies_wait_for_it() -> None:
    identical = IdenticalRecordings()
    first, copy, other = job(HOME, "a.mp3"), job(HOME, "b.mp3"), job(HOME, "c.mp3", digest="d2")

    assert identical.claim(first) is False
    assert identical.claim(copy) is True
    assert identical.claim(other) is False  # other bytes: its own transcript
    assert identical.release("d1") == [copy]
    assert identical.release("d1") == []  # released once


def test_a_file_with_its_copies_releases_them_once() -> None:
    identical = IdenticalRecordings()
    first, copy = job(HOME, "a.mp3"), job(HOME, "b.mp3")
    identical.claim(first)
    identical.claim(copy)

    assert identical.with_copies(first) == [first, copy]
    assert identical.with_copies(first) == [first]


def test_whether_a_file_would_wait_is_told_without_claiming() -> None:
    identical = IdenticalRecordings()
    first, copy = job(HOME, "a.mp3"), job(HOME, "b.mp3")
    assert identical.waits(first) is False  # nobody makes d1 yet
    identical.claim(first)

    assert identical.waits(copy) is True
    assert identical.waits(copy, owner=True) is False  # an owner never waits
    assert identical.waits(job(HOME, "c.mp3", digest="d2")) is False
    assert identical.release("d1") == []  # asking made nobody wait


def test_a_copy_reached_after_the_transcript_was_settled_makes_its_own_claim() -> None:
    identical = IdenticalRecordings()
    identical.claim(job(HOME, "a.mp3"))
    identical.release("d1")

    assert identical.claim(job(HOME, "b.mp3")) is False  # the worker then renders it from the store


def test_open_makes_later_copies_wait_and_release_of_none_is_empty() -> None:
    identical = IdenticalRecordings()
    identical.open("d1")

    assert identical.claim(job(HOME, "b.mp3")) is True
    assert identical.release(None) == []
    assert identical.leftovers() == [job(HOME, "b.mp3")]
    assert identical.leftovers() == []


def test_a_reservation_makes_copies_wait_but_never_its_owner() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("a.mp3"))
    copy, owner = job(HOME, "b.mp3"), job(HOME, "a.mp3")

    assert identical.claim(copy) is True  # the walk reached the copy first
    assert identical.take_over(copy) is False
    assert identical.take_over(owner) is True
    assert identical.claim(owner, owner=True) is False
    assert identical.release("d1") == [copy]
    assert identical.take_over(owner) is False  # taken over once
    assert identical.strand().jobs == []


def test_the_first_reservation_of_a_content_wins() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("a.mp3"))
    identical.reserve("d1", HOME, owner_record("z.mp3"))

    assert identical.take_over(job(HOME, "z.mp3")) is False
    assert identical.take_over(job(HOME, "a.mp3")) is True


def test_a_reservation_in_another_home_is_not_taken_over() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("a.mp3"))

    assert identical.take_over(job(Path("/elsewhere"), "a.mp3")) is False


def test_stranded_copies_go_again_and_the_first_collects_the_owners_transcript() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("gone.mp3", transcript_id="t7"))
    first, second = job(HOME, "b.mp3"), job(HOME, "c.mp3")
    identical.claim(first)
    identical.claim(second)

    stranded = identical.strand()

    assert [j.key for j in stranded.jobs] == ["b.mp3", "c.mp3"]
    adopted = stranded.jobs[0]
    assert stranded.adoptions == [Adoption(adopted, "t7")]
    assert adopted.record is not None
    assert adopted.record.key == "b.mp3" and adopted.record.transcript_id == "t7"
    assert adopted.record.fingerprint == first.fingerprint
    assert stranded.jobs[1] == second
    assert identical.requeued == {"b.mp3", "c.mp3"}
    assert identical.adopted == {"b.mp3": "t7"}  # for the worker to journal first
    assert identical.strand().jobs == []  # reservations are gone


def test_stranded_copies_of_an_upload_without_transcript_adopt_nothing() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("gone.mp3", transcript_id=None))
    identical.claim(job(HOME, "b.mp3"))

    stranded = identical.strand()

    assert [j.key for j in stranded.jobs] == ["b.mp3"] and stranded.adoptions == []


def test_stranded_copies_in_another_home_adopt_nothing() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", Path("/other"), owner_record("gone.mp3"))
    identical.claim(job(HOME, "b.mp3"))

    stranded = identical.strand()

    assert stranded.adoptions == [] and [j.key for j in stranded.jobs] == ["b.mp3"]


def test_copies_released_before_the_run_ends_are_not_stranded() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("gone.mp3"))
    copy = job(HOME, "b.mp3")
    identical.claim(copy)
    assert identical.release("d1") == [copy]

    stranded = identical.strand()

    assert stranded.jobs == [] and stranded.adoptions == [] and identical.requeued == set()


def test_stranded_copies_of_every_reserved_content_go_again() -> None:
    identical = IdenticalRecordings()
    identical.reserve("d1", HOME, owner_record("gone1.mp3", transcript_id=None))
    identical.reserve("d2", HOME, owner_record("gone2.mp3", transcript_id=None))
    identical.claim(job(HOME, "b.mp3", digest="d1"))
    identical.claim(job(HOME, "c.mp3", digest="d2"))

    stranded = identical.strand()

    assert sorted(j.key for j in stranded.jobs) == ["b.mp3", "c.mp3"]
    assert identical.requeued == {"b.mp3", "c.mp3"}


def test_the_adopting_copy_keeps_its_own_outputs_and_owns_the_content() -> None:
    identical = IdenticalRecordings()
    owner = replace(owner_record("gone.mp3", transcript_id="t7"), outputs_json='["gone.txt"]')
    identical.reserve("d1", HOME, owner)
    own = Record("b.mp3", Fingerprint(1, 2), State.DONE, "assemblyai", outputs_json='["b.txt"]')
    first = replace(job(HOME, "b.mp3"), record=own)
    identical.claim(first)
    identical.claim(job(HOME, "c.mp3"))

    adopter = identical.strand().jobs[0]

    assert adopter.record is not None and adopter.record.outputs_json == '["b.txt"]'
    # a copy reached from now on waits for the adopter, which takes the content over
    later = job(HOME, "d.mp3")
    assert identical.claim(later) is True
    assert identical.take_over(adopter) is True
    assert identical.release("d1") == [later]
