"""Never pay twice: faults, lost responses, resumed journals and identical content."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from batchscribe.errors import EXIT_OK
from batchscribe.fingerprint import Fingerprint
from batchscribe.state.journal import Journal, State
from batchscribe.state.journal_view import peek
from batchscribe.state.store import options_id
from tests.fakeapi import FakeAssemblyAI, FakeServer
from tests.fakes import connect_journal, journal_states
from tests.kit import api_env, make_tree, run_cli, speech


def test_flaky_api_ends_with_every_file_done_each_content_paid_once(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.error_rate = 0.2
    fake.api.reset_rate = 0.1
    # 429s slow the whole run down (assemblyai/throttle.py): tests/test_limits.py gives them a
    # real rate limit; random ones here would only make this test slow.
    root = tmp_path / "r"
    spoken = make_tree(root)
    config = tmp_path / "flaky.toml"
    config.write_text(fast_config.read_text() + "retry_attempts = 12\n")

    result = run_cli(str(root), "-c", "4", "--config", str(config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.faults["500"] > 0 and fake.api.faults["reset"] > 0
    assert all(s.with_suffix(".txt").read_text() == t + "\n" for s, t in spoken.items())
    assert set(fake.api.uploads_by_digest.values()) == {1}
    assert set(fake.api.transcripts_by_digest.values()) == {1}
    assert len(fake.api.transcripts_by_digest) == len(spoken)


def test_create_whose_response_was_lost_is_adopted_not_created_again(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.lose_create_response_rate = 0.5
    for i in range(8):
        (tmp_path / f"{i}.mp3").write_bytes(speech(f"lost {i}"))

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.faults["lost create"] > 0
    assert set(fake.api.transcripts_by_digest.values()) == {1}
    assert all((tmp_path / f"{i}.txt").read_text() == f"lost {i}\n" for i in range(8))


def test_identical_files_share_one_upload_and_one_transcript(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    content = speech("same words")
    for name in ("a.mp3", "copy of a.mp3", "sub/again.mp3"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content)
    (tmp_path / "other.mp3").write_bytes(speech("different"))

    result = run_cli(str(tmp_path), "-c", "3", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.upload_count == 2 and fake.api.transcript_count == 2
    for name in ("a.txt", "copy of a.txt", "sub/again.txt"):
        assert (tmp_path / name).read_text() == "same words\n"
    assert "4 done" in result.output


def seed_uploaded(root: Path, name: str, upload_url: str, *, age: float = 0.0) -> None:
    """A journal as a run killed right after the upload (or the create) leaves it."""
    journal = Journal(root)
    no_options = options_id({})  # what a run with the default request options records
    journal.start(name, Fingerprint.of((root / name).stat()), "assemblyai", [], no_options)
    journal.uploaded(name, upload_url, at=time.time() - age)
    journal.close()


def call_directly(fake: FakeServer, path: str, **kwargs: object) -> dict[str, object]:
    """One request to the fake API outside batchscribe (to set up what a crashed run left)."""
    import asyncio

    import aiohttp

    async def go() -> dict[str, object]:
        headers = {"Authorization": fake.api.api_key}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{fake.url}{path}", headers=headers, **kwargs) as resp,  # type: ignore[arg-type]
        ):
            return dict(await resp.json())

    return asyncio.run(go())


def upload_directly(fake: FakeServer, content: bytes) -> str:
    return str(call_directly(fake, "/v2/upload", data=content)["upload_url"])


def create_directly(fake: FakeServer, upload_url: str) -> str:
    body = {"audio_url": upload_url, "speech_models": ["universal-2"]}
    return str(call_directly(fake, "/v2/transcript", json=body)["id"])


def test_resumed_upload_is_submitted_not_uploaded_again(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(content := speech("resume me"))
    seed_uploaded(tmp_path, "a.mp3", upload_directly(fake, content))
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 1
    assert (tmp_path / "a.txt").read_text() == "resume me\n"


def test_transcript_created_before_a_crash_is_adopted_from_the_list(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(content := speech("created then crashed"))
    url = upload_directly(fake, content)
    create_directly(fake, url)
    seed_uploaded(tmp_path, "a.mp3", url)  # the crash came before the id was journaled
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    assert (tmp_path / "a.txt").read_text() == "created then crashed\n"


def test_expired_or_vanished_upload_is_uploaded_again(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "old.mp3").write_bytes(speech("old upload"))
    (tmp_path / "gone.mp3").write_bytes(speech("gone upload"))
    seed_uploaded(tmp_path, "old.mp3", f"{fake.url}/cdn/upload/expired", age=2 * 86400)
    seed_uploaded(tmp_path, "gone.mp3", f"{fake.url}/cdn/upload/unknown-id")

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.upload_count == 2 and fake.api.transcript_count == 2
    assert (tmp_path / "gone.txt").read_text() == "gone upload\n"
    assert set(journal_states(tmp_path).values()) == {"done"}


def test_a_service_that_cannot_list_is_polled_one_by_one(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.list_status = 404
    fake.api.processing_seconds = 0.2
    for i in range(12):
        (tmp_path / f"{i}.mp3").write_bytes(speech(f"no list {i}"))

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert all((tmp_path / f"{i}.txt").read_text() == f"no list {i}\n" for i in range(12))


def test_lost_create_that_cannot_be_checked_waits_instead_of_paying_twice(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.lose_create_response_rate = 1.0
    fake.api.list_status = 503
    (tmp_path / "a.mp3").write_bytes(speech("exactly once"))
    config = tmp_path / "few.toml"
    config.write_text(fast_config.read_text() + "retry_attempts = 2\n")

    first = run_cli(str(tmp_path), "--config", str(config), env=api_env(fake))

    assert first.exit_code == 1 and fake.api.transcript_count == 1
    assert journal_states(tmp_path) == {"a.mp3": "uploaded"}
    fake.api.lose_create_response_rate = 0.0
    fake.api.list_status = None

    second = run_cli(str(tmp_path), "--config", str(config), env=api_env(fake))

    assert second.exit_code == EXIT_OK, second.output
    assert fake.api.transcript_count == 1 and fake.api.upload_count == 1
    assert (tmp_path / "a.txt").read_text() == "exactly once\n"


def test_journal_from_before_options_were_recorded_is_kept(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(speech("old journal"))
    assert run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    with connect_journal(tmp_path) as db:
        db.execute("UPDATE files SET options = NULL")
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK and fake.api.request_count == 0


def test_twin_of_an_interrupted_transcript_waits_for_it_even_when_reached_first(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    content = speech("said once")
    (tmp_path / "a-copy.mp3").write_bytes(content)  # walked first
    (tmp_path / "z-original.mp3").write_bytes(content)
    # as the interrupted run left it: z submitted, a not started
    seed_submitted(fake, tmp_path, "z-original.mp3", content)
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "-c", "2", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    assert (tmp_path / "a-copy.txt").read_text() == "said once\n"
    assert (tmp_path / "z-original.txt").read_text() == "said once\n"


def seed_submitted(fake: FakeServer, root: Path, name: str, content: bytes) -> str:
    """A journal row as an interrupted run leaves it: uploaded, transcript created."""
    from batchscribe.fingerprint import content_digest

    url = upload_directly(fake, content)
    transcript_id = create_directly(fake, url)
    journal = Journal(root)
    source = root / name
    journal.start(
        name,
        Fingerprint.of(source.stat()),
        "assemblyai",
        [],
        options_id({}),
        content_digest(source),
    )
    journal.uploaded(name, url)
    journal.submitted(name, transcript_id)
    journal.close()
    return transcript_id


def test_copy_of_an_interrupted_original_that_is_gone_collects_its_transcript(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    content = speech("left behind")
    (tmp_path / "a.mp3").write_bytes(content)
    (tmp_path / "b.mp3").write_bytes(content)
    seed_submitted(fake, tmp_path, "a.mp3", content)
    (tmp_path / "a.mp3").unlink()  # the original is gone before the next run
    fake.api.reset_counters()

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert (tmp_path / "b.txt").read_text() == "left behind\n"
    assert fake.api.upload_count == 0 and fake.api.transcript_count == 0
    again = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))
    assert again.exit_code == EXIT_OK and "0 done, 1 up to date" in again.output


def test_touched_original_of_a_reservation_does_not_wait_on_itself(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    content = speech("touched")
    (tmp_path / "a.mp3").write_bytes(content)
    seed_submitted(fake, tmp_path, "a.mp3", content)
    os.utime(tmp_path / "a.mp3", (1, 1))  # "changed": same bytes, new modification time

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert (tmp_path / "a.txt").read_text() == "touched\n"


@dataclass
class JournalReadingAPI(FakeAssemblyAI):
    """The fake API reading the client's journal, as a run started after a crash would, at
    every create and every poll: what it finds is what a crash at that moment leaves."""

    root: Path = Path()
    wrong: list[str] = field(default_factory=list)
    creates: int = 0
    polls: int = 0

    async def _create(self, request: web.Request) -> web.Response:
        audio_url = (await request.json())["audio_url"]  # the body is kept for the handler
        rows = [r for r in peek(self.root)[0].values() if r.upload_url == audio_url]
        self.creates += 1
        if [(r.state, r.outputs, r.digest) for r in rows] != [
            (State.UPLOADED, (f"{Path(r.key).stem}.json", f"{Path(r.key).stem}.txt"),
             digest_of(self.root / r.key))
            for r in rows[:1]
        ]:  # fmt: skip
            self.wrong.append(f"create of {audio_url}: the journal has {rows}")
        return await super()._create(request)

    async def _get(self, request: web.Request) -> web.Response:
        transcript_id = request.match_info["id"]
        rows = [r for r in peek(self.root)[0].values() if r.transcript_id == transcript_id]
        self.polls += 1
        if [r.state for r in rows] != [State.SUBMITTED]:
            self.wrong.append(f"poll of {transcript_id}: the journal has {rows}")
        return await super()._get(request)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_billable_step_is_journaled_before_the_next_request_whatever_is_batched(
    tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    for i in range(6):
        (root / f"{i}.mp3").write_bytes(speech(f"in order {i}"))
    # Polled one by one (no list), each a while, so every transcript is looked at by id.
    api = JournalReadingAPI(root=root, list_status=404, processing_seconds=0.3)

    with FakeServer(api) as fake:
        result = run_cli(str(root), "-c", "3", "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_OK, result.output
    assert api.wrong == []
    # The start held back went with the upload: found at the create, with its claim and digest.
    assert api.creates == 6 and api.polls >= 6
    assert {r.state for r in peek(root)[0].values()} == {State.DONE}
