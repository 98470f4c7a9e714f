"""Identical recordings in one run: the first makes the transcript, the copies wait for it.

Synchronous and without I/O: the worker and writer ask it who waits for whom, and do the
journaling and writing themselves. Content is named by its sha256 (`Job.digest`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from batchscribe.run.job import Job
from batchscribe.state.journal import Record


@dataclass(frozen=True, slots=True)
class Reservation:
    """Content an interrupted run left uploaded or submitted, and the file that owns it."""

    state_root: Path
    owner: Record


@dataclass(frozen=True, slots=True)
class Adoption:
    """A copy that collects its never-reached original's transcript, unpaid."""

    job: Job
    transcript_id: str


@dataclass(slots=True)
class Stranded:
    """Copies left waiting for an original this run never reached: they go again."""

    jobs: list[Job] = field(default_factory=list)
    adoptions: list[Adoption] = field(default_factory=list)


class IdenticalRecordings:
    """Who makes which content's transcript, and who waits for it."""

    def __init__(self) -> None:
        #: content under way -> the copies waiting for its transcript
        self._waiting: dict[str, list[Job]] = {}
        #: content an interrupted run left under way -> its owner
        self._reserved: dict[str, Reservation] = {}
        #: keys started a second time after their reservation's owner never came
        self.requeued: set[str] = set()
        #: copies taking over a never-reached original's transcript -> its id, until the
        #: worker journals the take-over (`Worker`)
        self.adopted: dict[str, str] = {}

    def reserve(self, digest: str, state_root: Path, owner: Record) -> None:
        """A file with these bytes must wait for `owner`'s transcript, even if the walk
        reaches it first; the first reservation of a content wins."""
        if digest in self._reserved:
            return
        self._waiting.setdefault(digest, [])
        self._reserved[digest] = Reservation(state_root, owner)

    def take_over(self, job: Job) -> bool:
        """True when `job` owns the reservation on its content: from here it is an ordinary
        original, and it never waits on itself."""
        assert job.digest is not None
        reservation = self._reserved.get(job.digest)
        if reservation is None or (reservation.state_root, reservation.owner.key) != (
            job.state_root,
            job.key,
        ):
            return False
        del self._reserved[job.digest]
        return True

    def open(self, digest: str) -> None:
        """The caller makes the transcript of `digest`: copies reached from now on wait."""
        self._waiting.setdefault(digest, [])

    def waits(self, job: Job, *, owner: bool = False) -> bool:
        """Whether `claim` would make `job` wait (asked first, to journal what must be
        journaled before anyone else may write `job`'s outputs)."""
        assert job.digest is not None
        return job.digest in self._waiting and not owner

    def claim(self, job: Job, *, owner: bool = False) -> bool:
        """True: another file is making this content's transcript and `job` now waits for
        it. False: `job` makes it (and later copies wait for `job`)."""
        assert job.digest is not None
        if self.waits(job, owner=owner):
            self._waiting[job.digest].append(job)
            return True
        self._waiting.setdefault(job.digest, [])
        return False

    def release(self, digest: str | None) -> list[Job]:
        """The transcript of `digest` is settled (done, failed or given up): the copies that
        waited for it, each to be settled the same way."""
        return self._waiting.pop(digest, []) if digest is not None else []

    def with_copies(self, job: Job) -> list[Job]:
        """`job` and the copies that waited for its content: each to be settled alike."""
        return [job, *self.release(job.digest)]

    def strand(self) -> Stranded:
        """Copies that waited for a reserved original this run never reached (deleted,
        changed, outside the paths, over budget): nothing else can settle them now. One of
        each content becomes the original of the others; when the original's transcript
        exists, it collects that transcript instead of paying again."""
        stranded = Stranded()
        adopted: dict[str, Reservation] = {}
        for digest, reservation in self._reserved.items():
            waiting = self._waiting.pop(digest, [])
            owner = reservation.owner
            if waiting and owner.transcript_id and reservation.state_root == waiting[0].state_root:
                first = waiting[0]
                # The copy's own outputs stay its own: only the attempt is taken over.
                own = first.record.outputs_json if first.record else None
                record = replace(
                    owner, key=first.key, fingerprint=first.fingerprint, outputs_json=own
                )
                waiting[0] = replace(first, record=record)
                stranded.adoptions.append(Adoption(waiting[0], owner.transcript_id))
                self.adopted[first.key] = owner.transcript_id
                # The adopter owns the content now: the other copies wait for it, whichever
                # of them is hashed first.
                adopted[digest] = Reservation(reservation.state_root, record)
            stranded.jobs += waiting
        self._reserved.clear()
        for digest, reservation in adopted.items():
            self.reserve(digest, reservation.state_root, reservation.owner)
        self.requeued.update(job.key for job in stranded.jobs)
        return stranded

    def leftovers(self) -> list[Job]:
        """Copies still waiting when the run ends: a bug if any, reported, never silence."""
        jobs = [job for waiting in self._waiting.values() for job in waiting]
        self._waiting.clear()
        return jobs
