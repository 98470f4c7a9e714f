from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from batchscribe.config import DEFAULT_EXTENSIONS, Settings
from batchscribe.errors import ConfigError
from batchscribe.fingerprint import Fingerprint
from batchscribe.run import walk as scan
from batchscribe.run.job import Root, Wanted
from batchscribe.run.walk import (
    BROKEN_LINK,
    LINK_LOOP,
    NOT_UTF8,
    Found,
    Nested,
    Unreadable,
    needs_work,
    plan,
    resolve_roots,
    walk,
)
from batchscribe.state.journal import Journal, Record, State
from batchscribe.state.store import options_id


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
    assert items == [Unreadable(root / "link.mp3", BROKEN_LINK)]
    assert items[0].permanent  # not tried again until the link changes


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


# -- what a run asks of a current transcript


def test_wanted_is_what_the_settings_ask() -> None:
    settings = Settings(
        engine="assemblyai",
        formats=("srt",),
        transcript_options={"speaker_labels": True},
        keep_existing=True,
        retry_failed=True,
    )
    assert Wanted.of(settings) == Wanted(
        formats=("srt",),
        engine="assemblyai",
        options=options_id({"speaker_labels": True}),
        keep_existing=True,
        retry_failed=True,
    )


# -- resolving the paths given


def test_resolve_roots_keeps_the_paths_after_a_dropped_one(tmp_path: Path) -> None:
    for name in ("a/b", "c"):
        (tmp_path / name).mkdir(parents=True)
    roots = resolve_roots([tmp_path / "a", tmp_path / "a" / "b", tmp_path / "c"])
    assert [r.walk_from for r in roots] == [tmp_path / "a", tmp_path / "c"]


def test_the_filesystem_root_holds_every_other_path(tmp_path: Path) -> None:
    roots = resolve_roots([tmp_path, Path(os.sep)])
    assert [r.walk_from for r in roots] == [Path(os.sep)]


def test_output_dir_names_the_folder_name_given_twice(tmp_path: Path) -> None:
    paths = [tmp_path / "alice" / "rec", tmp_path / "bob" / "rec"]
    paths += [tmp_path / f"other{i}" for i in range(10)]
    for path in paths:
        path.mkdir(parents=True)
    with pytest.raises(ConfigError) as err:
        resolve_roots(paths, tmp_path / "out")
    assert str(err.value) == (
        f"two folders named 'rec' would share {tmp_path / 'out' / 'rec'} under --output-dir; "
        "run them one at a time, each with its own --output-dir."
    )


def test_output_dir_for_single_files_mirrors_their_folder(tmp_path: Path) -> None:
    source = touch(tmp_path / "rec" / "a.mp3")
    (root,) = resolve_roots([source], tmp_path / "out")
    assert root == Root(
        path=tmp_path / "out",
        walk_from=source,
        base=tmp_path / "rec",
        output_dir=tmp_path / "out",
    )
    assert root.output_folder(source) == tmp_path / "out"


# -- the walk


def test_walk_removes_the_temporary_files_a_killed_run_left(tmp_path: Path) -> None:
    root = tmp_path / "r"
    stale = touch(root / "sub" / ".batchscribe-a.txt.k2j4.tmp")
    other = touch(root / "sub" / ".notes.tmp")
    touch(root / "sub" / "a.mp3")

    list(walk(root, DEFAULT_EXTENSIONS, clean=False))
    assert stale.exists()

    list(walk(root, DEFAULT_EXTENSIONS))
    assert not stale.exists() and other.exists()


def test_walk_goes_on_when_a_stale_temporary_file_cannot_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "r"
    touch(root / ".batchscribe-a.txt.k2j4.tmp")
    touch(root / "a.mp3")

    def unlink(path: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(scan.os, "unlink", unlink)
    assert found(root) == ["a.mp3"]


def test_a_sub_folder_with_its_own_journal_is_walked_unless_nested_roots_are_asked(
    tmp_path: Path,
) -> None:
    root = tmp_path / "r"
    touch(root / "sub" / "a.mp3")
    Journal(root / "sub").close()

    assert found(root) == ["sub/a.mp3"]
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS, nested=True) for i in batch]
    assert items == [Nested(root / "sub")]


def test_walk_visits_folders_depth_first_in_name_order(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("z.mp3", "b/x.mp3", "a/y.mp3", "a/c/w.mp3", "a/b.mp3"):
        touch(root / name)
    batches = [
        [Path(i.where).relative_to(root).as_posix() for i in batch if isinstance(i, Found)]
        for batch in walk(root, DEFAULT_EXTENSIONS)
    ]
    assert batches == [["z.mp3"], ["a/b.mp3", "a/y.mp3"], ["a/c/w.mp3"], ["b/x.mp3"]]


def test_a_name_with_several_dots_is_audio_by_its_last_extension(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("meeting.2024.mp3", "notes.mp3.txt"):
        touch(root / name)
    assert found(root) == ["meeting.2024.mp3"]


def test_symlinks_that_are_not_audio_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "sub" / "a.mp3")
    touch(tmp_path / "notes.txt")
    os.symlink(tmp_path / "notes.txt", root / "notes.txt")
    os.symlink(tmp_path / "gone.txt", root / "gone.txt")
    os.symlink(root / "sub", root / os.fsdecode(b"caf\xe9"))  # a folder link: never entered
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    assert [Path(i.where).name for i in items if isinstance(i, Found)] == ["a.mp3"]
    assert len(items) == 1


def failing_stat(monkeypatch: pytest.MonkeyPatch, errors: dict[str, OSError]) -> None:
    """From now on, the entries named in `errors` fail to stat, as a file deleted between the
    listing and its stat."""
    real_scandir = os.scandir

    class Entry:
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self._entry = entry

        def __getattr__(self, name: str) -> Any:
            return getattr(self._entry, name)

        def stat(self, **_: Any) -> os.stat_result:
            raise errors[self._entry.name]

    @contextlib.contextmanager
    def scandir(path: Any) -> Iterator[list[Any]]:
        with real_scandir(path) as entries:
            yield [Entry(e) if e.name in errors else e for e in entries]

    monkeypatch.setattr(scan.os, "scandir", scandir)


def test_a_file_that_cannot_be_read_is_reported_with_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "r"
    for name in ("a.mp3", "gone.mp3", "odd.mp3"):
        touch(root / name)
    errors = {
        "gone.mp3": FileNotFoundError(errno.ENOENT, "No such file or directory"),
        "odd.mp3": OSError("stat refused"),
    }
    failing_stat(monkeypatch, errors)
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    problems = sorted((i for i in items if isinstance(i, Unreadable)), key=lambda u: u.path)
    assert problems == [
        Unreadable(root / "gone.mp3", "No such file or directory"),
        Unreadable(root / "odd.mp3", "stat refused"),
    ]
    assert [Path(i.where).name for i in items if isinstance(i, Found)] == ["a.mp3"]


def test_a_folder_listing_error_without_errno_is_reported_by_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "r"
    root.mkdir()

    def scandir(path: Any) -> Any:
        raise OSError("listing refused")

    monkeypatch.setattr(scan.os, "scandir", scandir)
    assert list(walk(root, DEFAULT_EXTENSIONS)) == [[Unreadable(root, "listing refused")]]
    file = touch(root / "a.mp3")
    assert list(walk(file, DEFAULT_EXTENSIONS)) == [[Unreadable(file, "listing refused")]]


def test_a_non_utf8_name_is_reported_by_its_path(tmp_path: Path) -> None:
    root = tmp_path / "r"
    bad = touch(root / os.fsdecode(b"caf\xe9.mp3"))
    assert list(walk(root, DEFAULT_EXTENSIONS)) == [[Unreadable(bad, NOT_UTF8)]]
    assert list(walk(bad, DEFAULT_EXTENSIONS)) == [[Unreadable(bad, NOT_UTF8)]]


def single(path: Path) -> Found:
    """What walking a single file finds (no shared listings: a walk of its own)."""
    (items,) = walk(path, DEFAULT_EXTENSIONS)
    (item,) = items
    assert isinstance(item, Found)
    return item


def test_a_single_file_is_found_with_its_folder_s_names(tmp_path: Path) -> None:
    source = touch(tmp_path / "rec" / "a.mp3")
    touch(tmp_path / "rec" / "a.txt")
    assert single(source) == Found(str(source), source.stat(), False, frozenset({"a.mp3", "a.txt"}))


def test_a_single_file_clashes_only_with_other_audio_of_its_stem(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    alone, notes = touch(rec / "alone.mp3"), touch(rec / "notes.txt")
    talk, other, text = touch(rec / "talk.mp3"), touch(rec / "talk.wav"), touch(rec / "talk.txt")
    assert [single(p).clash for p in (alone, notes, talk, other, text)] == [
        False, False, True, True, True
    ]  # fmt: skip
    # a file named on the command line with an extension not in the list: its outputs would
    # collide with those of the one audio file of its stem
    other_format = touch(tmp_path / "voice" / "memo.3gp")
    touch(tmp_path / "voice" / "memo.mp3")
    assert single(other_format).clash is True


# -- the plan


def records_for(root: Path, **states: tuple[State, bool]) -> dict[str, Record]:
    """Journal rows for the files under `root` named by key (`a_mp3` for `a.mp3`)."""
    result = {}
    for name, (state, permanent) in states.items():
        key = name.replace("_", ".")
        fingerprint = Fingerprint.of((root / key).stat())
        result[key] = Record(key, fingerprint, state, "assemblyai", options="opts-1",
                             permanent=permanent)  # fmt: skip
    return result


def plan_of(root: Root, records: dict[str, Record], wanted: Wanted = WANTED) -> scan.Batch:
    items = [i for batch in walk(root.walk_from, DEFAULT_EXTENSIONS) for i in batch]
    return plan(items, root, records, wanted)


def test_plan_reports_problems_and_nested_roots_and_plans_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "a.mp3")
    problem, nested = Unreadable(root / "x.mp3", "Permission denied"), Nested(root / "n")
    items = [problem, nested, *[i for b in walk(root, DEFAULT_EXTENSIONS) for i in b]]

    batch = plan(items, Root(root, root, root), {}, WANTED)

    assert batch.problems == [problem] and batch.nested == [root / "n"]
    assert [j.key for j in batch.jobs] == ["a.mp3"]


def test_plan_keys_are_relative_posix_paths(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "a.mp3")
    touch(root / "sub" / "deeper" / "b.mp3")
    batch = plan_of(Root(root, root, root), {})
    assert [j.key for j in batch.jobs] == ["a.mp3", "sub/deeper/b.mp3"]


def test_plan_counts_current_files_and_permanent_failures(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("a.mp3", "a.txt", "a.json", "b.mp3", "b.txt", "b.json", "c.mp3", "d.mp3",
                 "e.mp3"):  # fmt: skip
        touch(root / name)
    records = records_for(
        root,
        a_mp3=(State.DONE, False),
        b_mp3=(State.DONE, False),
        c_mp3=(State.FAILED, True),
        d_mp3=(State.FAILED, True),
        e_mp3=(State.FAILED, False),
    )

    batch = plan_of(Root(root, root, root), records)

    assert (batch.skipped, batch.failed_before) == (2, 2)
    assert [(j.key, j.reason) for j in batch.jobs] == [("e.mp3", "failed before")]

    retried = plan_of(Root(root, root, root), records, replace(WANTED, retry_failed=True))
    assert retried.failed_before == 0
    assert [j.key for j in retried.jobs] == ["c.mp3", "d.mp3", "e.mp3"]


def test_a_permanent_failure_whose_file_changed_is_tried_again(tmp_path: Path) -> None:
    root = tmp_path / "r"
    touch(root / "a.mp3")
    records = records_for(root, a_mp3=(State.FAILED, True))
    touch(root / "a.mp3", b"new bytes")

    batch = plan_of(Root(root, root, root), records)

    assert batch.failed_before == 0
    assert [(j.key, j.reason) for j in batch.jobs] == [("a.mp3", "changed")]


def test_plan_under_output_dir_mirrors_outputs_and_looks_for_them_there(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    for name in ("sub/a.mp3", "sub/a.wav", "sub/a.mp3.srt"):  # a.mp3.srt beside: not ours
        touch(src / name)
    root = Root(out, src, src, output_dir=out)
    wanted = replace(WANTED, formats=("srt",))
    records = records_for(src, **{"sub/a_mp3": (State.DONE, False)})

    missing = plan_of(root, records, wanted)

    assert [(j.key, j.reason) for j in missing.jobs] == [
        ("sub/a.mp3", "outputs missing"),
        ("sub/a.wav", "new"),
    ]
    assert missing.jobs[0].outputs == {"srt": out / "sub" / "a.mp3.srt"}

    touch(out / "sub" / "a.mp3.srt")
    current = plan_of(root, records, wanted)
    assert current.skipped == 1 and [j.key for j in current.jobs] == ["sub/a.wav"]


# -- links that fail for good


def link_record(link: Path, root: Path, **changes: Any) -> dict[str, Record]:
    """The journal row an earlier run left for a link it reported as broken."""
    key = link.relative_to(root).as_posix()
    record = Record(key, Fingerprint.of(os.lstat(link)), State.FAILED, "assemblyai",
                    error=BROKEN_LINK, permanent=True)  # fmt: skip
    return {key: replace(record, **changes)}


def test_a_symlink_loop_to_audio_is_reported_as_failing_for_good(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    os.symlink(root / "loop.mp3", root / "loop.mp3")
    os.symlink(root / "other", root / "notes.txt")  # not audio: not ours to report
    os.symlink(root / "other", root / "other")

    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]

    assert items == [Unreadable(root / "loop.mp3", LINK_LOOP)]
    assert items[0].permanent
    assert items[0].link is not None and items[0].link.st_ino == os.lstat(root / "loop.mp3").st_ino


def test_a_broken_link_reported_before_and_unchanged_is_not_reported_again(
    tmp_path: Path,
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    os.symlink(root / "gone.mp3", root / "link.mp3")
    records = link_record(root / "link.mp3", root)

    batch = plan_of(Root(root, root, root), records)

    assert (batch.failed_before, batch.problems, batch.jobs) == (1, [], [])


def test_a_broken_link_is_reported_again_when_retrying_failures_or_when_it_changed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    link = root / "link.mp3"
    os.symlink(root / "gone.mp3", link)
    records = link_record(link, root)
    again = [Unreadable(link, BROKEN_LINK)]

    assert (
        plan_of(Root(root, root, root), records, replace(WANTED, retry_failed=True)).problems
        == again
    )
    for changed in (
        {"permanent": False},
        {"state": State.DONE},
        {"fingerprint": Fingerprint(1, 1)},
    ):
        batch = plan_of(Root(root, root, root), link_record(link, root, **changed))
        assert (batch.failed_before, batch.problems) == (0, again), changed
    assert plan_of(Root(root, root, root), {}).problems == again


def test_every_broken_link_reported_before_is_counted(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    records: dict[str, Record] = {}
    for name in ("a.mp3", "b.mp3", "c.mp3"):
        os.symlink(root / f"gone-{name}", root / name)
        records |= link_record(root / name, root)

    assert plan_of(Root(root, root, root), records).failed_before == 3


def test_a_link_whose_recording_cannot_be_read_is_tried_again_not_failed_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "r"
    touch(root / "target.wav")
    os.symlink(root / "target.wav", root / "link.mp3")
    real_scandir = os.scandir

    class Entry:  # the link itself can be read, what it points to cannot
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self._entry = entry

        def __getattr__(self, name: str) -> Any:
            return getattr(self._entry, name)

        def is_file(self, *, follow_symlinks: bool = True) -> bool:
            return True

        def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
            if follow_symlinks:
                raise PermissionError(errno.EACCES, "Permission denied")
            return self._entry.stat(follow_symlinks=False)

    @contextlib.contextmanager
    def scandir(path: Any) -> Iterator[list[Any]]:
        with real_scandir(path) as entries:
            yield [Entry(e) if e.name == "link.mp3" else e for e in entries]

    monkeypatch.setattr(scan.os, "scandir", scandir)
    items = [i for batch in walk(root, DEFAULT_EXTENSIONS) for i in batch]
    problems = [i for i in items if isinstance(i, Unreadable)]
    assert problems == [Unreadable(root / "link.mp3", "Permission denied")]
    assert not problems[0].permanent


# -- the walk plan


def test_a_walk_plan_cleans_up_after_a_killed_run_and_reports_nested_roots(
    tmp_path: Path,
) -> None:
    root = tmp_path / "r"
    stale = touch(root / ".batchscribe-a.txt.k2j4.tmp")
    touch(root / "a.mp3")
    touch(root / "sub" / "b.mp3")
    Journal(root / "sub").close()
    walk_plan = scan.WalkPlan([Root(root, root, root)], WANTED, DEFAULT_EXTENSIONS, nested=True)

    first = walk_plan.next_root()
    assert first is not None
    walk_plan.start(first, {})
    batch = walk_plan.next_batch()

    assert batch is not None
    assert [j.key for j in batch.jobs] == ["a.mp3"] and batch.nested == [root / "sub"]
    assert not stale.exists()
    assert walk_plan.next_batch() is None


def test_a_walk_plan_walks_added_roots_after_those_waiting(tmp_path: Path) -> None:
    roots = [Root(tmp_path / n, tmp_path / n, tmp_path / n) for n in ("a", "b", "c")]
    walk_plan = scan.WalkPlan(roots[:2], WANTED, DEFAULT_EXTENSIONS, nested=True)
    walk_plan.add_roots(roots[2:])
    assert [walk_plan.next_root() for _ in range(4)] == [*roots, None]


def test_single_files_of_one_folder_are_listed_once_by_a_walk_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.mp3", "b.mp3"):
        touch(tmp_path / "r" / name)
    roots = resolve_roots([tmp_path / "r" / "a.mp3", tmp_path / "r" / "b.mp3"])
    walk_plan = scan.WalkPlan(roots, WANTED, DEFAULT_EXTENSIONS, nested=False)
    scanned = count_scandir(monkeypatch)
    while (root := walk_plan.next_root()) is not None:
        walk_plan.start(root, {})
        while walk_plan.next_batch() is not None:
            pass
    assert scanned == [str(tmp_path / "r")]


def test_a_walk_plan_not_started_has_nothing_and_one_told_not_to_clean_keeps_temps(
    tmp_path: Path,
) -> None:
    root = tmp_path / "r"
    stale = touch(root / ".batchscribe-a.txt.k2j4.tmp")
    touch(root / "a.mp3")
    walk_plan = scan.WalkPlan(
        [Root(root, root, root)], WANTED, DEFAULT_EXTENSIONS, nested=False, clean=False
    )
    assert walk_plan.next_batch() is None

    walk_plan.start(Root(root, root, root), {})
    assert walk_plan.next_batch() is not None
    assert stale.exists()
