"""Output naming and pure renderers; `write_atomic` is the one place outputs touch the disk."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from batchscribe.errors import OutputError
from batchscribe.output.subtitles import (
    DEFAULT_LIMITS,
    SENTENCE_END,
    CueLimits,
    render_srt,
    render_vtt,
)
from batchscribe.transcript import Span, Transcript, spans_of

#: Temporary files start with this: a run killed mid-write leaves one, the next run removes it.
TEMP_PREFIX = ".batchscribe-"
TEMP_SUFFIX = ".tmp"
#: Formats written when none are asked for.
DEFAULT_FORMATS: tuple[str, ...] = ("txt", "json")


#: Outputs get the usual permissions (0666 less the umask); private files 0600. The umask is
#: read once, at import, while the process is still single-threaded (reading it sets it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def output_paths(
    source: Path,
    *,
    clash: bool,
    formats: Iterable[str] = DEFAULT_FORMATS,
    folder: Path | None = None,
) -> dict[str, Path]:
    """Where the outputs of `source` go: `talk.mp3` -> `talk.txt`, or `talk.mp3.txt` on a clash.

    `clash` is true when another audio file in the same folder has the same stem; then each
    keeps its full name so that neither overwrites the other's transcript. `folder` is where
    they go (`--output-dir`), by default next to the source.
    """
    target = folder if folder is not None else source.parent
    return {fmt: target / name for fmt, name in output_names(source.name, clash, formats)}


def output_names(
    source_name: str, clash: bool, formats: Iterable[str] = DEFAULT_FORMATS
) -> list[tuple[str, str]]:
    """(format, file name) of each output: the naming rule of `output_paths`, on strings, for
    the re-scan's hot path (50,000 files must not build 100,000 Path objects)."""
    base = source_name if clash else stem_of(source_name)
    return [(fmt, f"{base}.{fmt}") for fmt in formats]


def clashing_stems(names: Iterable[str]) -> set[str]:
    """Stems shared by two or more of `names` (the audio files of one folder)."""
    seen: set[str] = set()
    clashes: set[str] = set()
    for name in names:
        stem = stem_of(name)
        (clashes if stem in seen else seen).add(stem)
    return clashes


def stem_of(name: str) -> str:
    """`talk.mp3` -> `talk` (as Path.stem, without building a Path)."""
    return name.rpartition(".")[0] or name


#: A silence this long between two words starts a paragraph (after a sentence end). Whisper's
#: word times put 0.3-1.1 s between sentences read one after another, and about 2 s where a
#: speaker stops for two seconds: 1.5 s keeps the first together and breaks at the second.
PARAGRAPH_PAUSE_MS = 1500
#: A paragraph ends after this many sentences: a handful, as a reader would cut a talk.
PARAGRAPH_SENTENCES = 5
#: Nor may it grow past this many characters (about 170 words): it is cut at its last sentence
#: end, else before the word that would pass it. (One "word" longer than this, as a text
#: without spaces, stays whole: cutting it would change the words.)
PARAGRAPH_CHARS = 1000
#: "Mrs. Sam", "e.g. this": full stops that do not end a sentence (also any single initial).
ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "mt.", "vs.", "jr.", "sr.", "e.g.", "i.e."}
)
_CLOSERS = "\"')]}\u201d\u2019\u00bb"


def ends_sentence(word: str, following: str | None = None) -> bool:
    """`word` closes a sentence: it ends with . ? ! or … (closing quotes aside), is not an
    abbreviation or an initial, and the word after it (if any) does not start in lower case."""
    bare = word.rstrip(_CLOSERS)
    if not bare.endswith(SENTENCE_END):
        return False
    initial = len(bare) == 2 and bare[0].isupper() and bare[1] == "."
    if initial or bare.lower() in ABBREVIATIONS:
        return False
    return following is None or not following[:1].islower()


def paragraph_starts(spans: list[Span]) -> list[int]:
    """Indexes of the spans that begin a paragraph: at a change of speaker, after a long pause
    that follows a sentence end (any long pause, in a text without punctuation), after
    `PARAGRAPH_SENTENCES` sentences, and before `PARAGRAPH_CHARS` would be passed."""
    if not spans:
        return []
    count = len(spans)
    ends = [ends_sentence(s.text, spans[i + 1].text if i + 1 < count else None)
            for i, s in enumerate(spans)]  # fmt: skip
    punctuated = any(ends)
    turns, pauses = _turns(spans), _pauses(spans)
    starts, sentences, length = [0], 0, len(spans[0].text)
    for i in range(1, count):
        sentences += ends[i - 1]
        size = len(spans[i].text)
        paused = pauses[i] and (ends[i - 1] or not punctuated)
        if turns[i] or paused or sentences >= PARAGRAPH_SENTENCES:
            starts.append(i)
        elif length + 1 + size > PARAGRAPH_CHARS:
            # after its last sentence end; if what that carries over still does not fit, here
            cut = 1 + max((k for k in range(starts[-1], i) if ends[k]), default=i - 1)
            starts.append(cut)
            if cut < i and _length(spans[cut:i]) + 1 + size > PARAGRAPH_CHARS:
                starts.append(i)
        else:
            length += 1 + size
            continue
        sentences, length = 0, _length(spans[starts[-1] : i + 1])
    return starts


def _length(spans: list[Span]) -> int:
    """Characters of the spans joined by single spaces."""
    return sum(len(span.text) for span in spans) + max(len(spans) - 1, 0)


def _turns(spans: list[Span]) -> list[bool]:
    """Where a new speaker takes over (a span without a speaker keeps the last one)."""
    turns, speaker = [], None
    for span in spans:
        changed = span.speaker is not None and speaker is not None and span.speaker != speaker
        turns.append(changed)
        speaker = span.speaker or speaker
    return turns


def _pauses(spans: list[Span]) -> list[bool]:
    """Where a span starts `PARAGRAPH_PAUSE_MS` or more after the last timed span ended."""
    pauses, last_end = [], None
    for span in spans:
        pauses.append(
            span.start is not None
            and last_end is not None
            and span.start - last_end >= PARAGRAPH_PAUSE_MS
        )
        last_end = span.end if span.end is not None else last_end
    return pauses


def paragraphs(spans: list[Span]) -> list[str]:
    """The spans in paragraphs; the first of each speaker's turn starts `Speaker A: `."""
    starts = paragraph_starts(spans)
    if not starts:
        return []
    labelled = any(span.speaker for span in spans)
    result, speaker = [], None
    for start, stop in zip(starts, [*starts[1:], len(spans)], strict=True):
        text = " ".join(span.text for span in spans[start:stop])
        who = spans[start].speaker or speaker
        if labelled and who is not None and who != speaker:
            text = f"Speaker {who}: {text}"
        speaker = who
        result.append(text)
    return result


def render_txt(transcript: Transcript) -> str:
    """Paragraphs separated by a blank line, then one newline (see `paragraph_starts`).

    Its words are exactly the transcript's `text` (joining the paragraphs with single spaces
    gives it back); word timings place the breaks, and without words the text is cut by its
    sentences. With speaker labels each turn starts `Speaker A: `; a transcript with turns
    (`utterances`) but no words to place them gets one or more paragraphs per turn.
    """
    spans = transcript.spans()
    turns = transcript.utterances if transcript.data.get("speaker_labels") else []
    if turns and not any(span.speaker for span in spans):
        parts = []
        for who, text in turns:
            said = paragraphs(spans_of(text))
            parts.extend([f"Speaker {who}: {said[0]}", *said[1:]] if said else [])
        return "\n\n".join(parts) + "\n"
    return "\n\n".join(paragraphs(spans)) + "\n"


def render_json(transcript: Transcript) -> str:
    """The transcript object, pretty-printed, UTF-8 characters kept as they are."""
    return json.dumps(transcript.data, ensure_ascii=False, indent=2) + "\n"


#: Every format batchscribe can write.
FORMATS = ("txt", "json", "srt", "vtt")


def render(fmt: str, transcript: Transcript, limits: CueLimits = DEFAULT_LIMITS) -> str:
    """One output format of a transcript, as text."""
    if fmt == "txt":
        return render_txt(transcript)
    if fmt == "json":
        return render_json(transcript)
    if fmt == "srt":
        return render_srt(transcript, limits)
    if fmt == "vtt":
        return render_vtt(transcript, limits)
    raise ValueError(f"unknown format {fmt!r}")


def is_stale_temp(name: str) -> bool:
    """A temporary output file that a killed run left behind (only ever ours)."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _makedirs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def _mkstemp(prefix: str, suffix: str, folder: str) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)


def _fchmod(fd: int, mode: int) -> None:
    os.fchmod(fd, mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _close(fd: int) -> None:
    os.close(fd)


def _replace(src: str, dst: Path) -> None:
    os.replace(src, dst)


def _unlink(path: str) -> None:
    os.unlink(path)


@dataclass(frozen=True, slots=True)
class FileOps:
    """The file-system calls `write_atomic` makes, so a test can fail any one of them.

    Pass one with a field replaced to fake a full disk (`write` or `fsync` raising ENOSPC) or a
    read-only folder (`mkstemp` raising EACCES). The defaults look `os` and `tempfile` up at
    call time, so patching `formats.os.fsync` or `formats.tempfile.mkstemp` still reaches them.
    """

    makedirs: Callable[[Path], None] = _makedirs
    #: (prefix, suffix, folder) -> (fd, name), as `tempfile.mkstemp`
    mkstemp: Callable[[str, str, str], tuple[int, str]] = _mkstemp
    fchmod: Callable[[int, int], None] = _fchmod
    #: writes every byte (looping over short writes)
    write: Callable[[int, bytes], None] = _write_all
    fsync: Callable[[int], None] = _fsync
    close: Callable[[int], None] = _close
    replace: Callable[[str, Path], None] = _replace
    unlink: Callable[[str], None] = _unlink


#: The real disk: what every caller but a test of `write_atomic` wants.
REAL_FILE_OPS = FileOps()


def write_atomic(
    path: Path, data: str, *, private: bool = False, ops: FileOps = REAL_FILE_OPS
) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never half.

    The temporary file lives in the same folder (rename is atomic only within a filesystem)
    and is removed on any failure; raises OutputError naming `path`. `ops` are the file-system
    calls it makes (tests inject failures there).
    """
    raw = data.encode("utf-8")  # before any file exists: a bad string leaves nothing behind
    tmp_name = ""
    try:
        ops.makedirs(path.parent)
        fd, tmp_name = ops.mkstemp(f"{TEMP_PREFIX}{path.name}.", TEMP_SUFFIX, str(path.parent))
        try:
            ops.fchmod(fd, 0o600 if private else 0o666 & ~_UMASK)
            ops.write(fd, raw)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        ops.replace(tmp_name, path)
    except OSError as err:
        if tmp_name:
            with contextlib.suppress(OSError):
                ops.unlink(tmp_name)
        reason = err.strerror or str(err)
        raise OutputError(
            f"cannot write {path.name} ({reason}); check the folder's permissions and free space."
        ) from None
