"""Pure subtitle rendering, checked by real SRT and WebVTT parsers."""

from __future__ import annotations

import io
from typing import Any

import srt
import webvtt

from batchscribe.output.formats import render_txt
from batchscribe.output.subtitles import (
    Cue,
    CueLimits,
    cues,
    render_srt,
    render_vtt,
    timestamp,
    wrap,
)
from batchscribe.transcript import Transcript


def transcript(words: list[tuple[str, int, int]], speaker: Any = None, **extra: Any) -> Transcript:
    data = {
        "text": " ".join(w for w, _, _ in words),
        "words": [
            {"text": w, "start": s, "end": e, "confidence": 0.9, "speaker": speaker}
            for w, s, e in words
        ],
        **extra,
    }
    return Transcript(data)


def spaced(text: str, start: int = 0, step: int = 300) -> list[tuple[str, int, int]]:
    return [(w, start + i * step, start + i * step + 250) for i, w in enumerate(text.split())]


def parse_srt(text: str) -> list[srt.Subtitle]:
    return list(srt.parse(text))


def parse_vtt(text: str) -> list[Any]:
    return list(webvtt.from_buffer(io.StringIO(text)))


def test_timestamps_cross_hour_boundaries() -> None:
    assert timestamp(3_599_999, separator=",") == "00:59:59,999"
    assert timestamp(3_600_000, separator=",") == "01:00:00,000"
    assert timestamp(3_600_000 * 100 + 1, separator=".") == "100:00:00.001"


def test_srt_and_vtt_parse_back_with_the_same_cues() -> None:
    t = transcript(spaced("Hello there. This is a test of the subtitles. Bye now."))
    subs = parse_srt(render_srt(t))
    vtt = parse_vtt(render_vtt(t))
    assert [s.content for s in subs] == ["Hello there.", "This is a test of the subtitles.",
                                        "Bye now."]  # fmt: skip
    assert [c.text for c in vtt] == [s.content for s in subs]
    assert subs[0].start.total_seconds() == 0 and subs[0].end.total_seconds() == 0.55
    assert vtt[1].start == "00:00:00.600"


def test_cue_near_the_hour_mark() -> None:
    t = transcript(spaced("late words", start=3_599_500))
    (sub,) = parse_srt(render_srt(t))
    assert sub.start.total_seconds() == 3599.5 and sub.end.total_seconds() == 3600.05


def test_lines_and_duration_are_limited() -> None:
    limits = CueLimits(max_chars=20, max_lines=2, max_seconds=3.0)
    t = transcript(spaced("one two three four five six seven eight nine ten eleven twelve"))
    for cue in cues(t, limits):
        assert len(cue.lines) <= 2 and all(len(line) <= 20 for line in cue.lines)
        assert cue.end_ms - cue.start_ms <= 3000
    assert len(parse_srt(render_srt(t, limits))) == len(cues(t, limits))


def test_a_pause_starts_a_new_cue() -> None:
    words = spaced("before the pause") + spaced("after it", start=5000)
    assert [c.lines for c in cues(transcript(words))] == [("before the pause",), ("after it",)]


def test_long_word_gets_its_own_line_unsplit() -> None:
    long_word = "Donaudampfschifffahrtsgesellschaftskapitän"
    assert wrap(["a", long_word, "b"], 10) == ["a", long_word, "b"]
    (sub,) = parse_srt(render_srt(transcript(spaced(f"the {long_word}"))))
    assert long_word in sub.content


def test_non_ascii_survives_both_formats() -> None:
    t = transcript(spaced("Café naïve 日本語 — ok?"))
    assert parse_srt(render_srt(t))[0].content == "Café naïve 日本語 — ok?"
    assert parse_vtt(render_vtt(t))[0].text == "Café naïve 日本語 — ok?"


def test_empty_transcript_gives_valid_empty_subtitles() -> None:
    t = Transcript({"text": "", "words": []})
    assert parse_srt(render_srt(t)) == []
    assert render_vtt(t) == "WEBVTT\n" and parse_vtt(render_vtt(t)) == []


def test_text_without_word_timings_is_one_cue_over_the_audio() -> None:
    t = Transcript({"text": "no timings here", "words": None, "audio_duration": 4})
    (sub,) = parse_srt(render_srt(t))
    assert sub.content == "no timings here" and sub.end.total_seconds() == 4
    assert sub.start.total_seconds() == 0


def test_text_without_timings_or_duration_shows_for_one_second() -> None:
    t = Transcript({"text": "no timings here", "words": None})
    assert cues(t) == [Cue(0, 1000, ("no timings here",))]


def test_speaker_changes_split_cues_and_are_labelled() -> None:
    words = [
        {"text": "Hi", "start": 0, "end": 200, "speaker": "A"},
        {"text": "there", "start": 250, "end": 400, "speaker": "A"},
        {"text": "Hello", "start": 450, "end": 700, "speaker": "B"},
    ]
    t = Transcript({"text": "Hi there Hello", "words": words})
    assert [s.content for s in parse_srt(render_srt(t))] == ["Speaker A: Hi there",
                                                              "Speaker B: Hello"]  # fmt: skip
    vtt = render_vtt(t)
    assert "<v Speaker A>Hi there" in vtt
    assert [c.voice for c in parse_vtt(vtt)] == ["Speaker A", "Speaker B"]


def test_vtt_escapes_markup() -> None:
    vtt = render_vtt(transcript(spaced("a <b> & c --> d")))
    assert "&lt;b&gt; &amp; c --&gt; d" in vtt


def test_txt_has_a_paragraph_per_speaker_turn() -> None:
    t = Transcript(
        {
            "text": "Hi there. Hello.",
            "speaker_labels": True,
            "utterances": [
                {"speaker": "A", "text": "Hi there."},
                {"speaker": "B", "text": "Hello."},
            ],
        }
    )
    assert render_txt(t) == "Speaker A: Hi there.\n\nSpeaker B: Hello.\n"


def test_a_word_that_fits_a_line_exactly_joins_it() -> None:
    assert wrap(["abcd", "efgh"], 9) == ["abcd efgh"]
    assert wrap(["abcd", "efghi"], 9) == ["abcd", "efghi"]


def test_a_sentence_end_inside_closing_quotes_ends_the_cue() -> None:
    t = transcript(spaced('He said "stop." Then left.'))
    assert [c.lines for c in cues(t)] == [('He said "stop."',), ("Then left.",)]
    t = transcript(spaced("(like this.) More"))
    assert [c.lines for c in cues(t)] == [("(like this.)",), ("More",)]


def test_a_pause_of_exactly_the_limit_starts_a_new_cue() -> None:
    words = [("one", 0, 200), ("two", 1000, 1200), ("three", 1999, 2200)]
    assert [c.lines for c in cues(transcript(words))] == [("one",), ("two three",)]


def test_a_cue_may_last_exactly_max_seconds_and_no_longer() -> None:
    limits = CueLimits(max_seconds=3.0)
    exact = [("one", 0, 500), ("two", 600, 1500), ("three", 1600, 3000)]
    assert [c.lines for c in cues(transcript(exact), limits)] == [("one two three",)]
    longer = [("one", 0, 500), ("two", 600, 1500), ("three", 1600, 3001)]
    assert [c.lines for c in cues(transcript(longer), limits)] == [("one two",), ("three",)]


def test_a_word_without_duration_still_shows_for_a_millisecond() -> None:
    assert cues(transcript([("blip", 500, 500)])) == [Cue(500, 501, ("blip",))]


def test_srt_cues_are_numbered_from_one_and_keep_their_lines() -> None:
    limits = CueLimits(max_chars=10)
    t = transcript(spaced("one two three. four five"))
    srt_text = render_srt(t, limits)
    assert srt_text.startswith("1\n00:00:00,000 --> ")
    subs = parse_srt(srt_text)
    assert [s.index for s in subs] == [1, 2]
    assert subs[0].content == "one two\nthree."


def test_vtt_uses_the_same_limits_and_lines_as_srt() -> None:
    limits = CueLimits(max_chars=10)
    t = transcript(spaced("one two three. four five"))
    vtt = parse_vtt(render_vtt(t, limits))
    assert [c.text for c in vtt] == ["one two\nthree.", "four five"]
