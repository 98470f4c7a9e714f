"""--watch: files are taken once complete, never as temporary names, once each; a stop while
idle is prompt; what arrives while stopped is done at the next start."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_INTERRUPTED
from batchscribe.run.job import Root
from batchscribe.run.watch import Settling, is_candidate, root_of
from tests.fakeapi import FakeServer
from tests.fakes import wait_for
from tests.kit import api_env, spawn_cli, speech, write_config

pytestmark = pytest.mark.slow  # subprocesses: left out of the quick loop

AUDIO = frozenset({"wav", "mp3"})


def test_only_complete_recordings_are_candidates() -> None:
    assert is_candidate("/r/talk.wav", AUDIO) and is_candidate("/r/Sub/TALK.MP3", AUDIO)
    for name in ("x.wav.part", "x.wav.crdownload", "x.tmp", "x.wav~", ".x.wav", "x.txt", "x"):
        assert not is_candidate(f"/r/{name}", AUDIO), name
    assert not is_candidate("/r/.batchscribe/transcripts/a.wav", AUDIO)


def test_a_file_settles_once_unchanged_for_the_settle_time() -> None:
    settling = Settling(settle=2.0)
    settling.saw("/r/a.wav", 100, 1, now=10.0)
    settling.saw("/r/a.wav", 200, 2, now=11.5)  # still being written
    assert settling.ready(13.0) == []
    settling.saw("/r/a.wav", 200, 2, now=13.0)  # unchanged: the clock keeps running
    assert settling.ready(13.5) == ["/r/a.wav"]
    assert settling.ready(20.0) == []  # taken once


def test_a_file_that_goes_away_is_forgotten() -> None:
    settling = Settling(settle=0.0)
    settling.saw("/r/a.wav.part", 1, 1, now=1.0)
    settling.gone("/r/a.wav.part")
    assert settling.ready(5.0) == []


def test_a_path_belongs_to_the_deepest_root_that_covers_it() -> None:
    outer = Root(path=Path("/r"), walk_from=Path("/r"), base=Path("/r"))
    inner = Root(path=Path("/r/sub"), walk_from=Path("/r/sub"), base=Path("/r/sub"))
    assert root_of("/r/sub/a.wav", [outer, inner]) == inner
    assert root_of("/r/a.wav", [outer, inner]) == outer
    assert root_of("/rest/a.wav", [outer, inner]) is None


class Watching:
    """`batchscribe ROOT --watch` in a subprocess, its stderr readable as it runs."""

    def __init__(self, root: Path, fake: FakeServer, config: Path, *args: str) -> None:
        self.log = root.parent / "watch.log"
        self._out = self.log.open("w")
        self.proc = spawn_cli(
            str(root), "--watch", "--config", str(config), *args,
            env=api_env(fake), stdout=subprocess.DEVNULL, stderr=self._out,
        )  # fmt: skip

    def stop(self) -> tuple[int, float, str]:
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._out.close()
        return code, time.monotonic() - began, self.log.read_text()

    def is_watching(self) -> bool:
        """The catch-up walk is over and the watcher waits for events (its signal handlers
        are in place since before the walk)."""
        return "for new recordings" in self.log.read_text()

    def done(self, name: str) -> int:
        return sum(1 for line in self.log.read_text().splitlines() if "done    " in line
                   and line.rstrip().split("/")[-1].split(" (")[0] == name)  # fmt: skip


def test_watch_takes_each_file_once_complete_and_stops_promptly_when_idle(
    fake: FakeServer, tmp_path: Path
) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    config = write_config(
        tmp_path / "c.toml", assemblyai={"poll_interval": 0.05}, watch={"settle": 1.0}
    )
    (root / "present.wav").write_bytes(speech("there at the start"))
    watching = Watching(root, fake, config)
    wait_for(lambda: watching.done("present.wav") == 1)

    # A slow copy: five seconds of writes; taken only after the last one.
    slow = root / "slow.wav"
    with slow.open("wb") as out:
        out.write(speech("copied slowly"))
        for _ in range(10):
            out.flush()
            time.sleep(0.5)
            out.write(os.urandom(20_000))
    complete = hashlib.sha256(slow.read_bytes()).hexdigest()
    # A recorder writing under a temporary name, then renaming it.
    part = root / "x.wav.part"
    part.write_bytes(speech("renamed when done"))
    time.sleep(1.5)  # longer than the settle time: a .part is never taken
    part.rename(root / "x.wav")
    wait_for(lambda: watching.done("slow.wav") == 1 and watching.done("x.wav") == 1)
    time.sleep(1.5)  # nothing more may happen while idle

    code, took, log = watching.stop()

    assert code == EXIT_INTERRUPTED and took < 5, log
    assert "Traceback" not in log
    assert fake.api.uploads_by_digest[complete] == 1  # the whole file, once
    assert fake.api.upload_count == 3 and fake.api.transcript_count == 3
    assert (root / "x.txt").read_text() == "renamed when done\n"
    assert not list(root.glob("*.part.*"))


def test_a_file_added_while_stopped_is_done_at_the_next_start(
    fake: FakeServer, tmp_path: Path
) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    config = write_config(
        tmp_path / "c.toml", assemblyai={"poll_interval": 0.05}, watch={"settle": 0.5}
    )
    first = Watching(root, fake, config)
    wait_for(first.is_watching)  # not a fixed sleep: a loaded machine starts Python slowly
    assert first.stop()[0] == EXIT_INTERRUPTED
    (root / "late.wav").write_bytes(speech("arrived at night"))

    again = Watching(root, fake, config)
    wait_for(lambda: again.done("late.wav") == 1)
    again.stop()

    assert (root / "late.txt").read_text() == "arrived at night\n"
    assert fake.api.transcript_count == 1


def test_a_file_the_budget_holds_back_is_one_file_left_however_often_rescanned(
    fake: FakeServer, tmp_path: Path
) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    metrics = tmp_path / "batchscribe.prom"
    config = write_config(
        tmp_path / "c.toml",
        assemblyai={"poll_interval": 0.05},
        watch={"settle": 0.2, "rescan": 0.2},
    )
    (root / "a.wav").write_bytes(speech("the first of the day"))
    (root / "b.wav").write_bytes(speech("one too many"))
    watching = Watching(root, fake, config, "--max-files", "1", "--metrics-file", str(metrics))
    wait_for(lambda: watching.done("a.wav") + watching.done("b.wav") == 1)
    time.sleep(2.0)  # ten rescans, each offering the waiting file again

    code, _took, log = watching.stop()

    assert code == EXIT_INTERRUPTED, log
    assert fake.api.transcript_count == 1
    assert "1 left for the next run (budget reached)" in log, log
    assert 'batchscribe_run_files_total{result="over_budget"} 1.0' in metrics.read_text()
