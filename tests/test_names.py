"""Output names: a transcript name the disk would refuse is found before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchscribe.output import names
from batchscribe.output.names import name_too_long


def test_a_name_of_exactly_255_bytes_fits_and_256_does_not(tmp_path: Path) -> None:
    assert name_too_long(tmp_path / ("a" * 251 + ".txt")) is None
    reason = name_too_long(tmp_path / ("a" * 252 + ".txt"))
    assert reason is not None
    assert "256 bytes" in reason
    assert "disk's 255" in reason


def test_the_length_is_counted_in_bytes_not_characters(tmp_path: Path) -> None:
    reason = name_too_long(tmp_path / ("é" * 126 + ".txt"))  # 130 characters, 256 bytes
    assert reason is not None
    assert "256 bytes" in reason


def test_a_name_that_is_not_valid_utf8_is_measured_as_its_raw_bytes(tmp_path: Path) -> None:
    raw = os.fsdecode(b"\xff" * 10 + b".txt")  # as the disk gives an undecodable name
    assert name_too_long(tmp_path / raw) is None
    long_raw = os.fsdecode(b"\xff" * 252 + b".txt")
    reason = name_too_long(tmp_path / long_raw)
    assert reason is not None
    assert "256 bytes" in reason


def test_the_reason_names_the_start_of_the_file_and_says_what_to_do(tmp_path: Path) -> None:
    name = "0123456789" * 30 + ".json"
    reason = name_too_long(tmp_path / name)
    assert reason == (
        f"its output name {name[:40]}… would be 305 bytes long, over the disk's 255; "
        "rename the recording shorter (it fails for good until then)"
    )


@pytest.fixture
def roomy_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A disk mounted at tmp_path/disk that takes 1024-byte names (the rest keep 255)."""
    mount = tmp_path / "disk"
    mount.mkdir()

    def pathconf(path: str | os.PathLike[str], name: str) -> int:
        if name != "PC_NAME_MAX":
            raise ValueError(f"unrecognized configuration name {name!r}")
        os.stat(path)  # a folder that does not exist has no limit to ask for
        inside = Path(path) == mount or mount in Path(path).parents
        return 1024 if inside else 255

    monkeypatch.setattr(names.os, "pathconf", pathconf)
    return mount


def test_a_disk_that_takes_longer_names_takes_them(roomy_disk: Path) -> None:
    assert name_too_long(roomy_disk / ("a" * 300 + ".txt")) is None
    assert name_too_long(roomy_disk / ("a" * 1020 + ".txt")) is None  # 1024 bytes: just fits
    reason = name_too_long(roomy_disk / ("a" * 1021 + ".txt"))
    assert reason is not None
    assert "over the disk's 1024" in reason


def test_a_folder_not_made_yet_is_judged_by_the_disk_it_will_be_on(roomy_disk: Path) -> None:
    # --output-dir mirrors the tree as it writes: out/a/b does not exist at the check.
    assert name_too_long(roomy_disk / "out" / "a" / "b" / ("a" * 300 + ".txt")) is None


def test_a_disk_that_cannot_say_its_limit_is_taken_as_255(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pathconf(path: str | os.PathLike[str], name: str) -> int:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(names.os, "pathconf", pathconf)
    assert name_too_long(tmp_path / ("a" * 251 + ".txt")) is None
    reason = name_too_long(tmp_path / ("a" * 252 + ".txt"))
    assert reason is not None
    assert "disk's 255" in reason
