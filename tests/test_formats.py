from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchscribe.errors import OutputError
from batchscribe.formats import clashing_stems, output_paths, render_json, render_txt, write_atomic
from batchscribe.transcript import Transcript


def test_output_paths_next_to_source() -> None:
    assert output_paths(Path("/r/talk.mp3"), clash=False) == {
        "txt": Path("/r/talk.txt"),
        "json": Path("/r/talk.json"),
    }


def test_output_paths_on_a_stem_clash_keep_the_full_name() -> None:
    assert output_paths(Path("/r/talk.mp3"), clash=True)["txt"] == Path("/r/talk.mp3.txt")


def test_clashing_stems() -> None:
    assert clashing_stems(["a.mp3", "a.wav", "b.mp3", "c.tar.mp3", "c.tar.wav"]) == {"a", "c.tar"}


def test_txt_is_text_and_one_newline() -> None:
    assert render_txt(Transcript({"text": "Hello there.  "})) == "Hello there.\n"
    assert render_txt(Transcript({"text": None})) == "\n"


def test_json_keeps_every_field_and_unicode() -> None:
    data = {"id": "x", "text": "café 日本", "custom": [1, 2]}
    out = render_json(Transcript(data))
    assert "café 日本" in out and '"custom"' in out


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "a.txt"
    target.write_text("old")
    write_atomic(target, "new ünïcode\n")
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_write_atomic_in_read_only_folder_fails_cleanly(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=r"a\.txt"):
            write_atomic(tmp_path / "a.txt", "x")
    finally:
        tmp_path.chmod(0o700)


def test_write_atomic_removes_temp_file_when_rename_fails(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    target = tmp_path / "dir-in-the-way"
    (target / "child").mkdir(parents=True)  # os.replace onto a non-empty folder fails
    with pytest.raises(OutputError, match="dir-in-the-way"):
        write_atomic(target, "x")
    assert sorted(os.listdir(tmp_path)) == ["dir-in-the-way"]
