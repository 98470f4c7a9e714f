from __future__ import annotations

import os
from pathlib import Path

from batchscribe.config import DEFAULT_EXTENSIONS
from batchscribe.journal import Fingerprint, Journal, Record, State
from batchscribe.scan import Found, Unreadable, needs_work, plan, resolve_roots, walk


def found(root: Path) -> list[str]:
    return sorted(
        item.path.relative_to(root).as_posix()
        for items in walk(root, DEFAULT_EXTENSIONS)
        for item in items
        if isinstance(item, Found)
    )


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
        item.path.name: item.clash
        for items in walk(root, DEFAULT_EXTENSIONS)
        for item in items
        if isinstance(item, Found)
    }
    assert clashes == {"t.mp3": True, "t.wav": True, "u.mp3": False, "t.ogg": False}


def test_walk_reports_unreadable_folder(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "a.mp3")
    items = [i for batch in walk(root / "a.mp3" / "nope", DEFAULT_EXTENSIONS) for i in batch]
    assert isinstance(items[0], Unreadable)


def test_walk_is_lazy_one_folder_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for i in range(3):
        touch(root / f"d{i}" / "a.mp3")
    batches = walk(root, DEFAULT_EXTENSIONS)
    assert len(next(batches)) == 1


FP = Fingerprint(10, 20)


def rec(state: State, fp: Fingerprint = FP) -> Record:
    return Record(key="a.mp3", fingerprint=fp, state=state)


def test_needs_work_rule() -> None:
    assert needs_work(None, FP, False) == "new"
    assert needs_work(rec(State.DONE), FP, True) is None
    assert needs_work(rec(State.DONE), FP, False) == "outputs missing"
    assert needs_work(rec(State.DONE, Fingerprint(10, 21)), FP, True) == "changed"
    assert needs_work(rec(State.SUBMITTED), FP, False) == "unfinished"
    assert needs_work(rec(State.FAILED), FP, False) == "failed before"


def test_plan_skips_current_files(tmp_path: Path) -> None:
    root = tmp_path / "r"
    src = touch(root / "a.mp3")
    touch(root / "b.mp3")
    journal = Journal(root)
    journal.start("a.mp3", Fingerprint.of(src.stat()), "local", ["a.txt", "a.json"])
    journal.done("a.mp3")
    touch(root / "a.txt")
    touch(root / "a.json")
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    batch = plan(items, root, journal.records(), ("txt", "json"))
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
