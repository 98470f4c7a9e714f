"""The .txt's paragraphs: where a transcript's text is cut (sentence ends, pauses, turns)."""

from __future__ import annotations

from batchscribe.output.subtitles import SENTENCE_END
from batchscribe.transcript import Span

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
