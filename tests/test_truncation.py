"""A recording cut short is transcribed, written, and flagged: on real truncations of the
example recordings (cut with the bytes a `head -c` keeps), not on made-up durations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from batchscribe.errors import EXIT_OK
from batchscribe.run.truncation import Container, flag_truncated, read_container, truncated_note
from tests.kit import EXAMPLES, events, run_cli


def cut(source: Path, target: Path, share: float) -> Path:
    """`head -c` of `share` of the bytes: what an interrupted copy or download leaves."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: int(len(data) * share)])
    return target


@pytest.mark.parametrize("name", ["meeting-notes.wav", "podcast-intro.mp3", "lecture/part-1.flac"])
def test_a_cut_recording_s_header_still_gives_the_whole_length(tmp_path: Path, name: str) -> None:
    whole = read_container(EXAMPLES / name)
    part = read_container(cut(EXAMPLES / name, tmp_path / Path(name).name, 0.6))
    assert whole.seconds is not None and whole.seconds > 7
    assert part == whole  # the length the engine must reach; decoding gives 60% of it


def test_an_ogg_stream_cut_short_has_no_end_page(tmp_path: Path) -> None:
    assert read_container(EXAMPLES / "voicemail.ogg") == Container()
    assert read_container(cut(EXAMPLES / "voicemail.ogg", tmp_path / "v.ogg", 0.6)).unended


def test_flagged_when_much_less_is_heard_than_the_header_says() -> None:
    header = Container(seconds=185.0)
    cut_at_30 = flag_truncated({"audio_duration": 55.4, "text": "..."}, header)
    assert cut_at_30["batchscribe"] == {"truncated": True, "container_seconds": 185.0}
    note = truncated_note(cut_at_30)
    assert note is not None and "header says 185 s and 55 s was heard" in note
    whole = {"audio_duration": 184.9}
    assert flag_truncated(whole, header) is whole
    rounded = {"audio_duration": 2}  # AssemblyAI's whole seconds for a 3.4 s file
    assert flag_truncated(rounded, Container(seconds=3.4)) is rounded
    both = flag_truncated({"audio_duration": 5, "batchscribe": {"low_confidence": True}}, header)
    assert both["batchscribe"] == {
        "low_confidence": True,
        "truncated": True,
        "container_seconds": 185.0,
    }


@pytest.mark.model
def test_a_cut_recording_is_written_and_flagged_like_a_low_confidence(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    cut(EXAMPLES / "meeting-notes.wav", folder / "meeting.wav", 0.5)
    cut(EXAMPLES / "voicemail.ogg", folder / "voicemail.ogg", 0.6)
    shutil.copyfile(EXAMPLES / "podcast-intro.mp3", folder / "podcast.mp3")

    result = run_cli(str(folder), "--json", "--quiet")

    assert result.exit_code == EXIT_OK, result.output
    warned = events(result.stderr, "warning")
    assert len(warned) == 2 and all("looks cut short" in line for line in warned)
    assert any("meeting.wav" in line and "header says 7 s" in line for line in warned)
    assert any("voicemail.ogg" in line and "stream has no end" in line for line in warned)
    summary = json.loads(result.stdout.splitlines()[-1])
    assert sorted(Path(p).name for p in summary["truncated"]) == ["meeting.wav", "voicemail.ogg"]
    assert "2 cut short" in result.stderr
    meeting = json.loads((folder / "meeting.json").read_text())
    assert meeting["batchscribe"]["truncated"] is True and meeting["audio_duration"] < 4.0
    assert "batchscribe" not in json.loads((folder / "podcast.json").read_text())
    assert (folder / "meeting.txt").read_text().strip()  # what was heard is written
