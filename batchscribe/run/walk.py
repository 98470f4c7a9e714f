"""Walk the roots, find audio files, and decide which of them need work.

The walk blocks (os.scandir, stat), so it runs in a worker thread one folder at a time; the
decision of whether a file needs work is the pure `needs_work`, the one place that rule lives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchscribe.errors import ConfigError
from batchscribe.fingerprint import Fingerprint
from batchscribe.output.atomic import is_stale_temp
from batchscribe.output.names import full_named, output_names, output_paths
from batchscribe.run.job import OUTPUTS_MISSING, Job, Root, Wanted
from batchscribe.state.journal import JOURNAL_NAME, Record
from batchscribe.state.lock import STATE_DIR


@dataclass(frozen=True, slots=True)
class Found:
    """An audio file the walk found; `clash` when its outputs keep its full name (a sibling
    shares its stem, or its stem is such a sibling's name: `output.names.full_named`).

    `where` is its path as a string: a Path is built only for files that need work.
    """

    where: str
    stat: os.stat_result
    clash: bool
    #: every name in its folder: outputs beside it are checked here, not with a stat each
    siblings: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A folder or file the walk could not read: reported, never silently skipped.

    `link` (the symlink's own stat) is set for a broken link or a link loop: no retry can
    cure those, so they fail for good until the link itself changes, reported once.
    """

    path: Path
    reason: str
    link: os.stat_result | None = field(default=None, compare=False)

    @property
    def permanent(self) -> bool:
        return self.link is not None


@dataclass(frozen=True, slots=True)
class Nested:
    """A folder below the root with a journal of its own: a root of its own, walked apart
    under its own journal and lock, so two runs never work on one file."""

    path: Path


@dataclass(slots=True)
class Batch:
    """What one folder of the walk produced."""

    jobs: list[Job] = field(default_factory=list)
    skipped: int = 0
    #: failed for good before and not retried (not audio, empty, too big)
    failed_before: int = 0
    problems: list[Unreadable] = field(default_factory=list)
    nested: list[Path] = field(default_factory=list)


def resolve_roots(paths: Iterable[Path], output_dir: Path | None = None) -> list[Root]:
    """Absolute, de-duplicated roots; a path inside another given path is dropped.

    A path inside a folder that already has a journal uses that journal, so running on a
    sub-folder after the whole tree never transcribes a file twice. With `output_dir` and
    several paths, each mirrors into a sub-folder named after it, so none collide.
    """
    # Sorted, a path inside another comes right after it (or after another path inside it):
    # one pass with the last kept folder drops them all, for `rec/*.mp3` with 10,000 files.
    walk_froms: list[Path] = []
    kept = ""
    for text in sorted({os.path.abspath(raw) for raw in paths}):
        if kept and (text == kept or text.startswith(kept.rstrip(os.sep) + os.sep)):
            continue
        walk_froms.append(Path(text))
        kept = text
    if output_dir is None:
        roots = []
        for walk_from in walk_froms:
            home = journal_root_for(walk_from)
            roots.append(Root(path=home, walk_from=walk_from, base=home))
        return roots
    out = Path(os.path.abspath(output_dir))
    bases = [w if w.is_dir() else w.parent for w in walk_froms]
    names = [b.name for b in set(bases)]
    if len(walk_froms) > 1 and len(set(names)) < len(names):
        clash = next(n for n in names if names.count(n) > 1)
        raise ConfigError(
            f"two folders named '{clash}' would share {out / clash} under --output-dir; "
            "run them one at a time, each with its own --output-dir."
        )
    mirrored = []
    for walk_from in walk_froms:
        base = walk_from if walk_from.is_dir() else walk_from.parent
        target = out / base.name if len(set(bases)) > 1 else out
        mirrored.append(Root(path=target, walk_from=walk_from, base=base, output_dir=target))
    return mirrored


def journal_root_for(path: Path) -> Path:
    """The nearest folder at or above `path` holding a journal, else `path`'s own folder."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / STATE_DIR / JOURNAL_NAME).is_file():
            return folder
    return start


def walk(
    walk_from: Path,
    extensions: frozenset[str],
    *,
    clean: bool = True,
    nested: bool = False,
    listings: dict[str, Listing] | None = None,
) -> Iterator[list[Found | Unreadable | Nested]]:
    """Yield the audio files of one folder at a time, depth first.

    Hidden files and folders (and so our own `.batchscribe`) are skipped; folder symlinks are
    not followed, which also makes symlink loops harmless. File symlinks are followed. With
    `clean`, temporary files a killed run left behind are removed (a run holds the lock).
    With `nested`, a sub-folder holding a journal is not entered but reported as Nested.
    `listings` caches folder listings across single-file roots (`rec/*.mp3`) of one run.
    """
    if not walk_from.is_dir():
        yield _single_file(walk_from, extensions, {} if listings is None else listings)
        return
    stack = [walk_from]
    while stack:
        folder = stack.pop()
        items: list[Found | Unreadable | Nested] = []
        audio: list[tuple[str, str, os.stat_result]] = []
        subfolders: list[Path] = []
        names: set[str] = set()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    names.add(entry.name)
                    if entry.name.startswith("."):
                        if clean:
                            _remove_if_stale_temp(entry)
                        continue
                    try:
                        _sort_entry(entry, extensions, nested, items, audio, subfolders)
                    except OSError as err:
                        items.append(_unreadable_entry(entry, err, extensions))
        except OSError as err:
            items.append(Unreadable(folder, err.strerror or str(err)))
        clashes = full_named(name for name, _, _ in audio)
        siblings = frozenset(names)
        items.extend(
            Found(path, st, name in clashes, siblings)
            for name, path, st in sorted(audio, key=lambda a: a[0])
        )
        stack.extend(sorted(subfolders, reverse=True))
        if items:
            yield items


def _sort_entry(
    entry: os.DirEntry[str],
    extensions: frozenset[str],
    nested: bool,
    items: list[Found | Unreadable | Nested],
    audio: list[tuple[str, str, os.stat_result]],
    subfolders: list[Path],
) -> None:
    """File one folder entry under what the walk does with it."""
    is_audio = _is_audio(entry.name, extensions)
    if not _utf8(entry.name):
        if is_audio or entry.is_dir(follow_symlinks=False):
            items.append(Unreadable(Path(entry.path), NOT_UTF8))
    elif entry.is_dir(follow_symlinks=False):
        sub = Path(entry.path)
        if nested and (sub / STATE_DIR / JOURNAL_NAME).is_file():
            items.append(Nested(sub))
        else:
            subfolders.append(sub)
    elif is_audio and entry.is_file():
        audio.append((entry.name, entry.path, entry.stat()))
    elif is_audio:  # never opened: a FIFO would block, /dev/zero would never end
        items.append(_not_a_file(entry.path, entry.stat(follow_symlinks=False)))


def _not_a_file(path: str, own: os.stat_result) -> Unreadable:
    """An audio-named entry that is no regular file: a broken link, or a special file (itself
    or behind a link), failed for good until it changes. Only stats, never opens it."""
    if not stat.S_ISLNK(own.st_mode):
        return Unreadable(Path(path), f"{special_kind(own.st_mode)}{NOT_A_FILE}", own)
    try:
        target = os.stat(path)
    except FileNotFoundError:
        return Unreadable(Path(path), BROKEN_LINK, own)
    kind = f"a symbolic link to {special_kind(target.st_mode)} ({os.readlink(path)})"
    return Unreadable(Path(path), f"{kind}{NOT_A_FILE}", own)


def special_kind(mode: int) -> str:
    """What a file that is not a regular file is, in the user's words."""
    for test, kind in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


#: After what a special file is: why it is skipped, and until when.
NOT_A_FILE = (
    ", not a recording: only regular files are transcribed (not tried again until it changes)"
)


#: For a symlink whose target is gone, and for a symlink loop: fixed only by the user.
BROKEN_LINK = (
    "broken symlink: what it points to does not exist; fix or remove the link "
    "(not tried again until the link changes)"
)
LINK_LOOP = (
    "symlink loop (Too many levels of symbolic links); point the link at a recording "
    "(not tried again until the link changes)"
)


def _unreadable_entry(
    entry: os.DirEntry[str], err: OSError, extensions: frozenset[str]
) -> Unreadable:
    """An entry whose stat failed: a symlink loop fails for good, anything else is reported
    (and looked at again by the next run)."""
    path = Path(entry.path)
    if err.errno == errno.ELOOP and _is_audio(entry.name, extensions):
        with contextlib.suppress(OSError):
            return Unreadable(path, LINK_LOOP, entry.stat(follow_symlinks=False))
    return Unreadable(path, err.strerror or str(err))


def _remove_if_stale_temp(entry: os.DirEntry[str]) -> None:
    # The run lock is held while walking, so no live run of this root is writing it.
    if is_stale_temp(entry.name):
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


@dataclass(frozen=True, slots=True)
class Listing:
    """A folder's names, listed once for all the single files given in it (`rec/*.mp3`)."""

    names: frozenset[str]
    audio: frozenset[str]
    #: the audio files whose outputs keep their full name: a clash is one lookup, not a pass
    full_named: frozenset[str]

    @classmethod
    def of(cls, folder: str, extensions: frozenset[str]) -> Listing:
        names = frozenset(entry.name for entry in os.scandir(folder))
        audio = frozenset(n for n in names if _is_audio(n, extensions))
        return cls(names, audio, frozenset(full_named(audio)))


def _single_file(
    path: Path, extensions: frozenset[str], listings: dict[str, Listing]
) -> list[Found | Unreadable | Nested]:
    if not _utf8(path.name):
        return [Unreadable(path, NOT_UTF8)]
    folder = str(path.parent)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # named on the command line: never opened either
            return [_not_a_file(str(path), path.lstat())]
        if folder not in listings:
            listings[folder] = Listing.of(folder, extensions)
    except OSError as err:
        return [Unreadable(path, err.strerror or str(err))]
    listing = listings[folder]
    if _is_audio(path.name, extensions):
        clash = path.name in listing.full_named
    else:  # named on the command line, though not of an audio extension: one more of them
        clash = path.name in full_named([*listing.audio, path.name])
    return [Found(str(path), st, clash, listing.names)]


NOT_UTF8 = "its name is not valid UTF-8; rename it to transcribe it"


def _utf8(name: str) -> bool:
    # Undecodable bytes come back as surrogates; the journal (SQLite) cannot store them.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_audio(name: str, extensions: frozenset[str]) -> bool:
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in extensions


def needs_work(
    record: Record | None, fingerprint: Fingerprint, outputs_exist: bool, wanted: Wanted
) -> str | None:
    """Why a source needs work, or None when its outputs are current. The one re-run rule.

    Options count only within one engine: switching engine keeps existing transcripts.
    """
    if record is None:
        return "new"
    if record.fingerprint != fingerprint:
        return "changed"
    if record.done:
        if (
            record.engine == wanted.engine
            and record.options is not None  # journals before options were recorded: keep
            and record.options != wanted.options
            and not wanted.keep_existing
        ):
            return "options changed"
        return None if outputs_exist else OUTPUTS_MISSING
    if record.failed:
        return "failed before"
    return "unfinished"


def plan(
    items: list[Found | Unreadable | Nested],
    root: Root,
    records: Mapping[str, Record],
    wanted: Wanted,
) -> Batch:
    """Turn one folder's findings into jobs; runs in the scan thread.

    The hot path of a re-scan: a current file costs a dict lookup and string work, no stat
    (its outputs are looked up among the folder's names) and no Path objects.
    """
    batch = Batch()
    prefixes: dict[str, str] = {}
    for item in items:
        if isinstance(item, Unreadable):
            if item.link is not None and _failed_before(item, item.link, root, records, wanted):
                batch.failed_before += 1
            else:
                batch.problems.append(item)
            continue
        if isinstance(item, Nested):
            batch.nested.append(item.path)
            continue
        folder, _, name = item.where.rpartition(os.sep)
        folder = folder or os.sep
        if folder not in prefixes:
            relative = Path(folder).relative_to(root.base).as_posix()
            prefixes[folder] = "" if relative == "." else relative + "/"
        key = prefixes[folder] + name
        fingerprint = Fingerprint.of(item.stat)
        record = records.get(key)
        exist = record is not None and _outputs_exist(item, name, root, wanted.formats)
        reason = needs_work(record, fingerprint, exist, wanted)
        if reason == "failed before" and record and record.permanent and not wanted.retry_failed:
            batch.failed_before += 1
        elif reason is None:
            batch.skipped += 1
        else:
            source = Path(item.where)
            outputs = output_paths(
                source,
                clash=item.clash,
                formats=wanted.formats,
                folder=root.output_folder(source),
            )
            batch.jobs.append(Job(source, root.path, key, fingerprint, outputs, reason, record))
    return batch


def key_of(path: Path, root: Root) -> str:
    """The journal key of a source: its path relative to the root's base, POSIX separators."""
    return path.relative_to(root.base).as_posix()


def _failed_before(
    item: Unreadable,
    link: os.stat_result,
    root: Root,
    records: Mapping[str, Record],
    wanted: Wanted,
) -> bool:
    """A broken link reported by an earlier run and unchanged since: not reported again."""
    record = records.get(key_of(item.path, root))
    return (
        record is not None
        and record.failed
        and record.permanent
        and record.fingerprint == Fingerprint.of(link)
        and not wanted.retry_failed
    )


def _outputs_exist(item: Found, name: str, root: Root, formats: tuple[str, ...]) -> bool:
    names = [out for _, out in output_names(name, item.clash, formats)]
    if root.output_dir is None:
        return all(out in item.siblings for out in names)
    folder = root.output_folder(Path(item.where))
    return all(os.path.exists(folder / out) for out in names)


class WalkPlan:
    """The roots of a run walked one folder at a time and planned into jobs: the one walk that
    a run (`Producer`) and `--dry-run` share. Roots found on the way (sub-folders with their own
    journal) are added by the caller, which decides whether it may enter them.

    Blocking: `next_batch` scans and stats a folder; a run calls it in a thread.
    """

    def __init__(
        self,
        roots: Iterable[Root],
        wanted: Wanted,
        extensions: frozenset[str],
        *,
        nested: bool,
        clean: bool = True,
    ) -> None:
        self._todo = list(roots)
        self._wanted, self._extensions = wanted, extensions
        self._nested, self._clean = nested, clean
        #: one listing per folder for `rec/*.mp3`, however many of its files are named
        self._listings: dict[str, Listing] = {}
        self._folders: Iterator[list[Found | Unreadable | Nested]] = iter(())
        self._root: Root | None = None
        self._records: Mapping[str, Record] = {}

    def next_root(self) -> Root | None:
        """The next root to walk, in order; None when every root is walked."""
        return self._todo.pop(0) if self._todo else None

    def start(self, root: Root, records: Mapping[str, Record]) -> None:
        """Walk `root` next, deciding against its journal's `records`."""
        self._root, self._records = root, records
        self._folders = walk(
            root.walk_from,
            self._extensions,
            clean=self._clean,
            nested=self._nested,
            listings=self._listings,
        )

    def next_batch(self) -> Batch | None:
        """The next folder of the root being walked, planned; None when it is done."""
        items = next(self._folders, None)
        if items is None or self._root is None:
            return None
        return plan(items, self._root, self._records, self._wanted)

    def add_roots(self, roots: Iterable[Root]) -> None:
        """Walk these too, after the roots already waiting."""
        self._todo += roots
