from __future__ import annotations

import errno
import json
import os
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchscribe.errors import OutputError
from batchscribe.output.atomic import _UMASK, FileOps, is_stale_temp, write_atomic
from batchscribe.output.formats import render, render_json, render_txt
from batchscribe.output.names import full_named, output_names, output_paths
from batchscribe.output.paragraphs import (
    PARAGRAPH_CHARS,
    PARAGRAPH_PAUSE_MS,
    ends_sentence,
    paragraph_starts,
)
from batchscribe.output.subtitles import CueLimits, render_srt, render_vtt
from batchscribe.transcript import Span, Transcript, Word, spans_of


def test_output_paths_next_to_source() -> None:
    assert output_paths(Path("/r/talk.mp3"), clash=False) == {
        "txt": Path("/r/talk.txt"),
        "json": Path("/r/talk.json"),
    }


def test_output_paths_on_a_stem_clash_keep_the_full_name() -> None:
    assert output_paths(Path("/r/talk.mp3"), clash=True)["txt"] == Path("/r/talk.mp3.txt")


def test_output_paths_in_another_folder_for_the_formats_asked() -> None:
    paths = output_paths(Path("/r/talk.mp3"), clash=False, formats=("srt",), folder=Path("/o"))
    assert paths == {"srt": Path("/o/talk.srt")}


def test_recordings_sharing_a_stem_keep_their_full_names() -> None:
    assert full_named(["a.mp3", "a.wav", "b.mp3", "c.tar.mp3", "c.tar.wav"]) == {
        "a.mp3", "a.wav", "c.tar.mp3", "c.tar.wav"
    }  # fmt: skip


def test_a_stem_that_is_a_full_named_recordings_name_keeps_its_full_name_too() -> None:
    # a.ogg writes a.ogg.txt (it shares "a" with a.mp3); a.ogg.wav's stem would write it too,
    # and so on down the chain
    names = ["a.ogg", "a.mp3", "a.ogg.wav", "a.ogg.wav.flac", "a.ogg.m4a.mp3", "b.ogg.wav"]
    full = full_named(names)
    assert full == {"a.ogg", "a.mp3", "a.ogg.wav", "a.ogg.wav.flac"}
    written = [out for name in names for _, out in output_names(name, name in full)]
    assert len(written) == len(set(written))  # one recording's each


def test_txt_is_text_and_one_newline() -> None:
    assert render_txt(Transcript({"text": "Hello there.  "})) == "Hello there.\n"
    assert render_txt(Transcript({"text": None})) == "\n"


VOCABULARY = [
    "the", "budget", "team", "launch", "plan", "review", "quarter", "we", "will", "and", "of",
    "to", "a", "in", "that", "it", "is", "for", "on", "with", "customers", "product", "release",
    "mobile", "application", "market", "growth", "numbers", "report", "design", "sprint",
    "because", "schedule", "question", "answer", "meeting", "decision", "people", "data",
]  # fmt: skip


def spoken(seed: int, words: int = 450, pauses: int = 2) -> dict[str, Any]:
    """A transcript like a real 3-minute one: `words` words in sentences of 4 to 28 words,
    punctuated, timed like speech (short gaps, a breath between sentences) with `pauses`
    silences of two seconds; `text` is the words joined, as both engines give it."""
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < words:
        sentence = rng.choices(VOCABULARY, k=rng.randint(4, 28))
        sentence[0] = sentence[0].capitalize()
        sentence[rng.randrange(len(sentence))] += ","
        texts.extend([*sentence[:-1], sentence[-1].rstrip(",") + rng.choice(".?.!.")])
    long_pauses = set(rng.sample(range(1, len(texts)), pauses))
    timed, clock = [], 0
    for i, text in enumerate(texts):
        gap = 2000 if i in long_pauses else rng.randint(0, 120)
        if i and texts[i - 1][-1] in ".?!":
            gap = max(gap, rng.randint(250, 900))
        start = clock + gap
        clock = start + rng.randint(120, 450)
        timed.append({"text": text, "start": start, "end": clock, "confidence": 0.9})
    return {"text": " ".join(texts), "words": timed, "audio_duration": clock / 1000}


def paragraphs_of(data: dict[str, Any]) -> list[str]:
    txt = render_txt(Transcript(data))
    assert txt.endswith("\n") and not txt.endswith("\n\n")
    return txt[:-1].split("\n\n")


@pytest.mark.parametrize("seed", range(8))
def test_a_three_minute_transcript_reads_in_paragraphs_of_its_exact_words(seed: int) -> None:
    data = spoken(seed)
    assert 160_000 <= data["words"][-1]["end"] <= 200_000  # about three minutes of speech

    paragraphs = paragraphs_of(data)

    assert len(paragraphs) >= 3
    assert all(0 < len(p) <= 1200 for p in paragraphs)
    assert " ".join(paragraphs) == data["text"]


@pytest.mark.parametrize("seed", range(4))
def test_without_punctuation_or_words_paragraphs_are_cut_at_a_word(seed: int) -> None:
    text = " ".join(random.Random(seed).choices(VOCABULARY, k=450))

    paragraphs = paragraphs_of({"text": text})

    assert len(paragraphs) >= 3 and all(len(p) <= PARAGRAPH_CHARS for p in paragraphs)
    assert " ".join(paragraphs) == text


def timed(*parts: str | int) -> dict[str, Any]:
    """Words 300 ms long, 100 ms apart; an int in `parts` is a silence of that many ms."""
    words, clock = [], 0
    for part in parts:
        if isinstance(part, int):
            clock += part
            continue
        for word in part.split():
            words.append({"text": word, "start": clock, "end": clock + 300})
            clock += 400
    return {"text": " ".join(w["text"] for w in words), "words": words}


def test_a_long_pause_after_a_sentence_starts_a_paragraph() -> None:
    data = timed("One thing. Two things.", 1500, "After the pause.")
    assert paragraphs_of(data) == ["One thing. Two things.", "After the pause."]


def test_a_shorter_pause_or_one_inside_a_sentence_does_not() -> None:
    assert paragraphs_of(timed("One thing.", 1300, "Two things.")) == ["One thing. Two things."]
    assert paragraphs_of(timed("One", 3000, "thing. Two.")) == ["One thing. Two."]


def test_without_punctuation_any_long_pause_starts_a_paragraph() -> None:
    assert paragraphs_of(timed("one thing", 2000, "two")) == ["one thing", "two"]


def test_five_sentences_make_a_paragraph() -> None:
    data = timed(" ".join(f"Sentence {n}." for n in range(1, 13)))
    assert paragraphs_of(data) == [
        "Sentence 1. Sentence 2. Sentence 3. Sentence 4. Sentence 5.",
        "Sentence 6. Sentence 7. Sentence 8. Sentence 9. Sentence 10.",
        "Sentence 11. Sentence 12.",
    ]


def test_a_long_paragraph_is_cut_at_its_last_sentence_end_else_at_a_word() -> None:
    run_on = " ".join(["word"] * 300)  # 1,499 characters, no sentence end
    data = {"text": f"Short one. Then {run_on}."}

    paragraphs = paragraphs_of(data)

    assert paragraphs[0] == "Short one."
    assert paragraphs[1].startswith("Then word") and len(paragraphs) == 3
    assert all(len(p) <= PARAGRAPH_CHARS for p in paragraphs)
    assert " ".join(paragraphs) == data["text"]


def test_a_word_longer_than_a_paragraph_stays_whole() -> None:
    text = "日本語" * 500 + " and after."
    assert paragraphs_of({"text": text}) == ["日本語" * 500, "and after."]


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    assert not ends_sentence("Mrs.", "Sam") and not ends_sentence("J.", "Smith")
    assert not ends_sentence("e.g.", "this") and not ends_sentence("etc.", "and more")
    assert ends_sentence("Tuesday.", "Please") and ends_sentence('done."', "Then")
    assert ends_sentence("A!") and ends_sentence("why?", None)
    data = timed(" ".join(["Mrs. Sam called."] * 4), "Then more.")
    assert len(paragraphs_of(data)) == 1


def test_a_full_stop_before_a_lower_case_word_ends_no_sentence() -> None:
    assert not ends_sentence("done.", "iPhone") and ends_sentence("done.", "IPhone")
    # "p.m." is followed by "today": no sentence end, so the pause starts no paragraph
    assert paragraphs_of(timed("We met at 5 p.m.", 2000, "today.")) == ["We met at 5 p.m. today."]


def test_a_pause_of_exactly_paragraph_pause_after_a_sentence_starts_a_paragraph() -> None:
    # timed() puts 100 ms between words: a silence of PARAGRAPH_PAUSE_MS - 100 makes the gap
    data = timed("One thing.", PARAGRAPH_PAUSE_MS - 100, "Two things.")
    assert paragraphs_of(data) == ["One thing.", "Two things."]


def test_an_untimed_span_keeps_the_last_end_for_the_pause_after_it() -> None:
    spans = [Span("One.", 0, 300), Span("Two.", None, None), Span("Three.", 2000, 2300)]
    assert paragraph_starts(spans) == [0, 2]


#: Run-on text without sentence ends: 198 words of four letters, 989 characters (capitals:
#: a full stop before them ends a sentence).
WORDS_989 = " ".join(["Abcd"] * 198)
#: Run-on text of exactly PARAGRAPH_CHARS characters.
WORDS_1000 = " ".join(["Abcd"] * 199 + ["Abcde"])


def test_a_paragraph_may_hold_exactly_paragraph_chars() -> None:
    assert len(WORDS_1000) == PARAGRAPH_CHARS
    assert paragraphs_of({"text": WORDS_1000}) == [WORDS_1000]
    assert len(paragraphs_of({"text": WORDS_1000 + "f"})) == 2


def test_after_five_sentences_the_next_paragraph_counts_its_own_characters() -> None:
    sentences = "One. Two. Three. Four. Five."
    assert paragraphs_of({"text": f"{sentences} {WORDS_1000}"}) == [sentences, WORDS_1000]


def test_what_a_cut_carries_over_may_fill_a_paragraph_exactly() -> None:
    carried = f"{WORDS_989} {'x' * 10}"  # 1,000 characters after the sentence end
    assert paragraphs_of({"text": f"Start. {carried}"}) == ["Start.", carried]
    # one more and the last word goes on alone
    assert paragraphs_of({"text": f"Start. {WORDS_989} {'x' * 11}"}) == [
        "Start.",
        WORDS_989,
        "x" * 11,
    ]


def test_a_word_longer_than_a_paragraph_after_other_words_gets_a_paragraph_of_its_own() -> None:
    text = "some words " + "日本語" * 500 + " and after."
    assert paragraphs_of({"text": text}) == ["some words", "日本語" * 500, "and after."]


def test_a_long_turn_from_the_words_is_labelled_once() -> None:
    texts = [f"Point{n}." for n in range(1, 8)]
    words = [
        {"text": t, "start": i * 400, "end": i * 400 + 300, "speaker": "A"}
        for i, t in enumerate(texts)
    ]
    data = {"text": " ".join(texts), "words": words, "speaker_labels": True}
    assert paragraphs_of(data) == [
        "Speaker A: Point1. Point2. Point3. Point4. Point5.",
        "Point6. Point7.",
    ]


def test_turns_are_not_labelled_without_speaker_labels() -> None:
    data = {"text": "Hi there.", "utterances": [{"speaker": "A", "text": "Hi there."}]}
    assert render_txt(Transcript(data)) == "Hi there.\n"


def test_a_turn_without_text_adds_no_paragraph() -> None:
    data = {
        "text": "Hi.",
        "speaker_labels": True,
        "utterances": [{"speaker": "A", "text": "Hi."}, {"speaker": "B", "text": " "}],
    }
    assert render_txt(Transcript(data)) == "Speaker A: Hi.\n"


def test_speaker_changes_start_labelled_paragraphs_from_the_words() -> None:
    words = [
        {"text": t, "start": i * 400, "end": i * 400 + 300, "speaker": s}
        for i, (t, s) in enumerate([("Hi", "A"), ("there.", "A"), ("Hello.", "B"), ("Bye.", "A")])
    ]
    data = {"text": "Hi there. Hello. Bye.", "words": words, "speaker_labels": True,
            "utterances": [{"speaker": "A", "text": "something else"}]}  # fmt: skip
    assert render_txt(Transcript(data)) == (
        "Speaker A: Hi there.\n\nSpeaker B: Hello.\n\nSpeaker A: Bye.\n"
    )


def test_a_long_turn_is_labelled_once_and_split() -> None:
    turn = " ".join(f"Point {n}." for n in range(1, 8))
    data = {"text": turn, "speaker_labels": True, "utterances": [{"speaker": "A", "text": turn}]}
    assert paragraphs_of(data) == [
        "Speaker A: Point 1. Point 2. Point 3. Point 4. Point 5.",
        "Point 6. Point 7.",
    ]


def test_words_the_text_spells_differently_lend_their_times_and_change_no_word() -> None:
    words = [Word("It", 0, 100), Word("converts", 200, 500), Word("nutrient", 600, 900),
             Word("-syntal", 900, 1200), Word("energy.", 1300, 1600),
             Word("zzz", 1700, 1800), Word("Next.", 3400, 3800)]  # fmt: skip
    spans = spans_of("It converts nutrient-syntal energy. Next.", words)

    assert [s.text for s in spans] == ["It", "converts", "nutrient-syntal", "energy.", "Next."]
    assert (spans[2].start, spans[2].end) == (600, 1200) and spans[4].start == 3400
    data = {"text": "It converts nutrient-syntal energy. Next.",
            "words": [{"text": w.text, "start": w.start, "end": w.end} for w in words]}  # fmt: skip
    assert paragraphs_of(data) == ["It converts nutrient-syntal energy.", "Next."]


def test_odd_spacing_in_the_text_is_kept_inside_a_paragraph() -> None:
    data = {"text": "  One.  Two.\tThree. "}
    assert paragraphs_of(data) == ["One.  Two.\tThree."]


def test_json_keeps_every_field_and_unicode() -> None:
    data = {"id": "x", "text": "café 日本", "custom": [1, 2]}
    out = render_json(Transcript(data))
    assert "café 日本" in out and '"custom"' in out
    assert out == '{\n  "id": "x",\n  "text": "café 日本",\n  "custom": [\n    1,\n    2\n  ]\n}\n'
    assert json.loads(out) == data


def test_render_gives_each_format_with_the_cue_limits() -> None:
    words = ["one", "two", "three.", "four"]
    timed_words = [{"text": w, "start": i * 300, "end": i * 300 + 250} for i, w in enumerate(words)]
    t = Transcript({"text": " ".join(words), "words": timed_words})
    limits = CueLimits(max_chars=8)
    assert render("txt", t, limits) == render_txt(t)
    assert render("json", t, limits) == render_json(t)
    assert render("srt", t, limits) == render_srt(t, limits) != render_srt(t)
    assert render("vtt", t, limits) == render_vtt(t, limits) != render_vtt(t)
    with pytest.raises(ValueError, match="unknown format 'doc'"):
        render("doc", t)


def test_only_our_temporary_files_are_stale() -> None:
    assert is_stale_temp(".batchscribe-a.txt.k2j4.tmp")
    assert not is_stale_temp(".batchscribe-a.txt")
    assert not is_stale_temp("notes.tmp")


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "a.txt"
    target.write_text("old")
    write_atomic(target, "new ünïcode\n")
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_write_atomic_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "out" / "deep" / "a.txt"
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"


def test_write_atomic_writes_a_temporary_file_of_ours_beside_the_target(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    target = tmp_path / "a.txt"
    renamed: list[str] = []

    def replace(src: str, dst: Path) -> None:
        renamed.append(src)
        os.replace(src, dst)

    write_atomic(target, "new\n", ops=FileOps(replace=replace))

    (temp,) = renamed
    assert Path(temp).parent == tmp_path and is_stale_temp(Path(temp).name)
    assert len(Path(temp).name) < 32  # short whatever the target's name: see test_bad_input
    assert os.listdir(tmp_path) == ["a.txt"]


def test_write_atomic_gives_outputs_the_usual_permissions_and_private_files_0600(
    tmp_path: Path,
) -> None:
    write_atomic(tmp_path / "out.txt", "x")
    write_atomic(tmp_path / "key.json", "x", private=True)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~_UMASK
    assert stat.S_IMODE((tmp_path / "key.json").stat().st_mode) == 0o600


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


def test_write_atomic_that_fails_before_a_temporary_file_exists_removes_nothing(
    old_file: Path,
) -> None:
    removed: list[str] = []
    ops = FileOps(mkstemp=fail_with(errno.EACCES), unlink=removed.append)
    with pytest.raises(OutputError):
        write_atomic(old_file, "new transcript\n", ops=ops)
    assert removed == []


def test_write_atomic_reports_the_write_even_when_the_cleanup_fails(old_file: Path) -> None:
    ops = FileOps(fsync=fail_with(errno.EIO), unlink=fail_with(errno.EACCES))
    with pytest.raises(OutputError, match=r"cannot write a\.txt \(Input/output error\)"):
        write_atomic(old_file, "new transcript\n", ops=ops)
    assert old_file.read_text() == "old transcript\n"


def test_write_atomic_names_an_error_without_errno_by_its_message(old_file: Path) -> None:
    def fail(fd: int) -> None:
        raise OSError("the disk went away")

    with pytest.raises(OutputError, match=r"cannot write a\.txt \(the disk went away\)"):
        write_atomic(old_file, "new transcript\n", ops=FileOps(fsync=fail))
