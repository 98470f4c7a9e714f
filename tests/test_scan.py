from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from batchscribe import scan
from batchscribe.config import DEFAULT_EXTENSIONS
from batchscribe.errors import ConfigError
from batchscribe.fingerprint import Fingerprint
from batchscribe.journal import Journal, Record, State
from batchscribe.scan import Found, Root, Unreadable, Wanted, needs_work, plan, resolve_roots, walk


def found(root: Path) -> list[str]:
    return sorted(
        Path(item.where).relative_to(root).as_posix()
        for items in walk(root, DEFAULT_EXTENSIONS)
        for item in items
        if isinstance(item, Found)
    )


def count_scandir(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders the walk lists from now on, in order."""
    scanned: list[str] = []
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        scanned.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(scan.os, "scandir", scandir)
    return scanned


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_walk_finds_audio_case_insensitively_and_skips_hidden(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("a.mp3", "B.WAV", "sub/c.Flac", "sub/notes.txt", ".hidden.mp3",
                 ".git/x.mp3", ".batchscribe/y.mp3", "noext", "mp3"):  # fmt: skip
        touch(root / name)
    assert found(root) == ["B.WAV", "a.mp3", "sub/c.Flac"]


def test_walk_does_not_follow_folder_symlinks_so_loops_are_harmless(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "sub" / "a.mp3")
    os.symlink(root, root / "sub" / "loop")
    os.symlink(root / "sub" / "a.mp3", root / "link.mp3")  # file symlinks are followed
    assert found(root) == ["link.mp3", "sub/a.mp3"]


def test_walk_marks_stem_clashes(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("t.mp3", "t.wav", "u.mp3", "sub/t.ogg"):
        touch(root / name)
    clashes = {
        Path(item.where).name: item.clash
        for items in walk(root, DEFAULT_EXTENSIONS)
        for item in items
        if isinstance(item, Found)
    }
    assert clashes == {"t.mp3": True, "t.wav": True, "u.mp3": False, "t.ogg": False}


def test_walk_reports_a_path_that_cannot_be_read(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "a.mp3")
    items = [i for batch in walk(root / "a.mp3" / "nope", DEFAULT_EXTENSIONS) for i in batch]
    assert items == [Unreadable(root / "a.mp3" / "nope", "Not a directory")]


def test_walk_reports_an_unreadable_sub_folder_and_walks_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "r"
    for name in ("a.mp3", "locked/b.mp3", "open/c.mp3"):
        touch(root / name)
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        # Root ignores permissions (CI runs as root), so chmod 000 cannot deny it: inject it.
        if Path(path) == root / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scan.os, "scandir", scandir)
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    assert [i for i in items if isinstance(i, Unreadable)] == [
        Unreadable(root / "locked", "Permission denied")
    ]
    assert sorted(Path(i.where).name for i in items if isinstance(i, Found)) == ["a.mp3", "c.mp3"]


def test_walk_is_lazy_one_folder_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "r"
    for i in range(40):
        touch(root / f"d{i:02d}" / "a.mp3")
    scanned = count_scandir(monkeypatch)
    batches = walk(root, DEFAULT_EXTENSIONS)
    assert scanned == []  # nothing happens before the first folder is asked for
    first = next(batches)
    assert len(first) == 1  # one folder's files
    # The producer feeds workers while the walk goes on: the first batch must not wait for
    # the 40 other folders to be listed (root and the first folder, a little slack).
    assert len(scanned) <= 3, f"the walk listed {len(scanned)} folders before its first batch"
    assert sum(len(batch) for batch in batches) == 39


FP = Fingerprint(10, 20)


def rec(state: State, fp: Fingerprint = FP) -> Record:
    return Record(key="a.mp3", fingerprint=fp, state=state, engine="assemblyai", options="opts-1")


WANTED = Wanted(formats=("txt", "json"), engine="assemblyai", options="opts-1")


def test_needs_work_rule() -> None:
    assert needs_work(None, FP, False, WANTED) == "new"
    assert needs_work(rec(State.DONE), FP, True, WANTED) is None
    assert needs_work(rec(State.DONE), FP, False, WANTED) == "outputs missing"
    assert needs_work(rec(State.DONE, Fingerprint(10, 21)), FP, True, WANTED) == "changed"
    assert needs_work(rec(State.SUBMITTED), FP, False, WANTED) == "unfinished"
    assert needs_work(rec(State.FAILED), FP, False, WANTED) == "failed before"


def test_changed_options_redo_unless_kept_and_other_engines_are_kept() -> None:
    other = replace(rec(State.DONE), options="opts-0")
    assert needs_work(other, FP, True, WANTED) == "options changed"
    assert needs_work(other, FP, True, replace(WANTED, keep_existing=True)) is None
    local = replace(other, engine="local")
    assert needs_work(local, FP, True, WANTED) is None


def test_plan_skips_current_files(tmp_path: Path) -> None:
    root = tmp_path / "r"
    src = touch(root / "a.mp3")
    touch(root / "b.mp3")
    journal = Journal(root)
    journal.start("a.mp3", Fingerprint.of(src.stat()), "assemblyai", ["a.txt", "a.json"], "opts-1")
    journal.done("a.mp3")
    touch(root / "a.txt")
    touch(root / "a.json")
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    batch = plan(items, Root(root, root, root), journal.records(), WANTED)
    assert batch.skipped == 1
    assert [(j.key, j.reason) for j in batch.jobs] == [("b.mp3", "new")]


def test_resolve_roots_dedupes_nested_paths(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    roots = resolve_roots([tmp_path / "a" / "b", tmp_path / "a", tmp_path / "a"])
    assert [r.walk_from for r in roots] == [tmp_path / "a"]


def test_sub_folder_uses_the_journal_of_the_tree_above(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    Journal(tmp_path / "a").close()
    (root,) = resolve_roots([tmp_path / "a" / "b"])
    assert root.path == tmp_path / "a" and root.walk_from == tmp_path / "a" / "b"


def test_output_dir_mirrors_paths_and_holds_the_journal(tmp_path: Path) -> None:
    (tmp_path / "archive" / "a" / "b").mkdir(parents=True)
    (root,) = resolve_roots([tmp_path / "archive"], tmp_path / "out")
    assert root.path == tmp_path / "out" and root.base == tmp_path / "archive"
    source = tmp_path / "archive" / "a" / "b" / "x.mp3"
    assert root.output_folder(source) == tmp_path / "out" / "a" / "b"


def test_output_dir_with_several_roots_keeps_them_apart(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    roots = resolve_roots([tmp_path / "one", tmp_path / "two"], tmp_path / "out")
    assert [r.path for r in roots] == [tmp_path / "out" / "one", tmp_path / "out" / "two"]


def test_broken_symlink_to_audio_is_reported_not_skipped(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    os.symlink(root / "gone.mp3", root / "link.mp3")
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    assert items == [Unreadable(root / "link.mp3", "broken symlink")]


def test_output_dir_refuses_two_roots_with_one_name(tmp_path: Path) -> None:
    (tmp_path / "alice" / "rec").mkdir(parents=True)
    (tmp_path / "bob" / "rec").mkdir(parents=True)
    with pytest.raises(ConfigError, match="two folders named 'rec'"):
        resolve_roots([tmp_path / "alice" / "rec", tmp_path / "bob" / "rec"], tmp_path / "out")


def test_output_dir_with_many_files_of_one_folder(tmp_path: Path) -> None:
    for name in ("a.mp3", "b.mp3"):
        touch(tmp_path / "rec" / name)
    files = [tmp_path / "rec" / "a.mp3", tmp_path / "rec" / "b.mp3"]  # what rec/*.mp3 gives
    roots = resolve_roots(files, tmp_path / "out")
    assert [r.path for r in roots] == [tmp_path / "out"] * 2


def steps(action: Callable[[], object]) -> int:
    """How much Python `action` runs (trace events: calls and lines, in every module): a
    measure of work that, unlike a clock, does not depend on how busy the machine is."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        action()
    finally:
        sys.settrace(previous)
    return count


def single_files(folder: Path, n: int) -> list[Path]:
    """What `rec/*.mp3` gives the CLI: `n` files of one folder, each a path of its own."""
    files = [touch(folder / f"{i:05d}.mp3") for i in range(n)]
    return [*files, files[1]]  # a shell glob and a name typed again


def resolve_and_walk(files: list[Path]) -> int:
    """What a run does with `files`: resolve them to roots, walk each (sharing listings)."""
    listings: dict[str, Any] = {}  # walk's cache of folder listings
    return sum(
        len(batch)
        for root in resolve_roots(files)
        for batch in walk(root.walk_from, DEFAULT_EXTENSIONS, listings=listings)
    )


#: Sizes compared by the linear-time tests: small enough to trace in a blink when linear.
FEW = 30
#: 10 times the paths may cost at most this many times the work (linear: 10, plus fixed costs
#: shared by both; comparing each path with the others, as before: 90).
LINEAR_GROWTH = 15


def test_many_single_files_resolve_in_linear_time(tmp_path: Path) -> None:
    small, large = single_files(tmp_path / "s", FEW), single_files(tmp_path / "l", 10 * FEW)
    assert len(resolve_roots(large)) == 10 * FEW
    growth = steps(lambda: resolve_roots(large)) / steps(lambda: resolve_roots(small))
    assert growth < LINEAR_GROWTH, f"10x the paths took {growth:.0f}x the work"


def test_many_single_files_of_one_folder_walk_in_linear_time(tmp_path: Path) -> None:
    small, large = single_files(tmp_path / "s", FEW), single_files(tmp_path / "l", 10 * FEW)
    assert resolve_and_walk(large) == 10 * FEW
    growth = steps(lambda: resolve_and_walk(large)) / steps(lambda: resolve_and_walk(small))
    assert growth < LINEAR_GROWTH, f"10x the paths took {growth:.0f}x the work"


def test_single_files_of_one_folder_share_one_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = single_files(tmp_path / "rec", 50)
    scanned = count_scandir(monkeypatch)
    assert resolve_and_walk(files) == 50
    assert scanned == [str(tmp_path / "rec")]


def test_a_name_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.mp3")).write_bytes(b"x")
    touch(root / "ok.mp3")
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    problems = [i for i in items if isinstance(i, Unreadable)]
    assert len(problems) == 1 and "not valid UTF-8" in problems[0].reason
    assert found(root) == ["ok.mp3"]
