from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchscribe.errors import OutputError
from batchscribe.formats import (
    FileOps,
    clashing_stems,
    output_paths,
    render_json,
    render_txt,
    write_atomic,
)
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


def fail_with(code: int) -> Callable[..., Any]:
    def fail(*args: object) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    target = tmp_path / "out" / "a.txt"
    target.parent.mkdir()
    target.write_text("old transcript\n")
    return target


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param(FileOps(write=fail_with(errno.ENOSPC)), id="write"),
        pytest.param(FileOps(fsync=fail_with(errno.ENOSPC)), id="fsync"),
    ],
)
def test_write_atomic_on_a_full_disk_keeps_the_old_file_and_no_temp(
    old_file: Path, ops: FileOps
) -> None:
    with pytest.raises(OutputError, match=r"cannot write a\.txt \(No space left on device\)"):
        write_atomic(old_file, "new transcript\n", ops=ops)
    assert old_file.read_text() == "old transcript\n"
    assert os.listdir(old_file.parent) == ["a.txt"]


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES], ids=["EROFS", "EACCES"])
def test_write_atomic_in_a_read_only_folder_keeps_the_old_file(old_file: Path, code: int) -> None:
    ops = FileOps(mkstemp=fail_with(code))
    with pytest.raises(OutputError, match=rf"cannot write a\.txt \({os.strerror(code)}\)"):
        write_atomic(old_file, "new transcript\n", ops=ops)
    assert old_file.read_text() == "old transcript\n"
    assert os.listdir(old_file.parent) == ["a.txt"]


def test_write_atomic_removes_temp_file_when_rename_fails(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    target = tmp_path / "dir-in-the-way"
    (target / "child").mkdir(parents=True)  # os.replace onto a non-empty folder fails
    with pytest.raises(OutputError, match="dir-in-the-way"):
        write_atomic(target, "x")
    assert sorted(os.listdir(tmp_path)) == ["dir-in-the-way"]
