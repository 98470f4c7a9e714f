"""The frame-level resegmentation of the words' speakers (engines/speakers/resegment.py): the
Viterbi pass itself, and turn edges on a call spliced from two real voices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from batchscribe.engines.speakers import resegment as resegment_module
from batchscribe.engines.speakers.clustering import label_words, speech_regions
from batchscribe.engines.speakers.encoder import SAMPLE_RATE, VoiceEncoder
from batchscribe.engines.speakers.resegment import averaged, resegment, viterbi
from tests.speaker_error import read_rttm, score

DATA = Path(__file__).resolve().parent / "data" / "speakers"


def test_a_change_of_speaker_costs_the_penalty_inside_a_region_and_nothing_across() -> None:
    # speaker 1 is likelier for 3 frames inside speaker 0's run: by 2 each, 6 in all
    scores = np.zeros((12, 2), dtype=np.float32)
    scores[:, 0] = 1.0
    scores[4:7] = [0.0, 2.0]
    one_region = np.zeros(12, dtype=np.int64)

    assert viterbi(scores, one_region, penalty=5.0).tolist() == [0] * 12  # 2 switches: 10 > 6
    assert viterbi(scores, one_region, penalty=2.0).tolist()[4:7] == [1, 1, 1]  # 4 < 6
    # the same frames alone in a speech region of their own: switching there is free
    own_region = np.array([0] * 4 + [1] * 3 + [2] * 5, dtype=np.int64)
    assert viterbi(scores, own_region, penalty=5.0).tolist()[4:7] == [1, 1, 1]


def test_averaging_keeps_the_scale_at_the_edges() -> None:
    scores = np.ones((10, 2), dtype=np.float32)
    assert np.allclose(averaged(scores, 4), 1.0)


def test_one_speaker_or_no_frames_is_left_as_it_is() -> None:
    audio = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert resegment(audio, [(0, SAMPLE_RATE)], [(0, 500), (500, 900)], [0, 0]) == [0, 0]
    assert resegment(audio, [], [(0, 500), (500, 900)], [0, 1]) == [0, 1]


def test_turn_edges_move_to_where_the_voice_changes_on_two_real_voices() -> None:
    """quick-fm (tests/data/speakers/README.md: turns of 1-4 s of two AMI speakers, gaps under
    200 ms) with Whisper's word timings: the clustering alone gave 4 of its 99 scored words to
    the other speaker, each at a turn's edge; after the resegmentation, at most one."""
    times = [tuple(t) for t in json.loads((DATA / "quick-fm.word-times.json").read_text())]
    audio = decode_audio(str(DATA / "quick-fm.flac"), sampling_rate=SAMPLE_RATE)

    names = label_words(audio, times, VoiceEncoder(), None)

    words = [{"start": s, "end": e, "speaker": n} for (s, e), n in zip(times, names, strict=True)]
    found = score(words, read_rttm(DATA / "reference.rttm")["quick-fm"])
    assert found.found == 2 and found.scored >= 90, found
    assert found.wrong <= 1, found


def test_a_path_that_loses_a_speaker_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The count is the clustering's (or --speakers-expected): when the frames' path gives no
    word to a speaker, every word keeps the speaker it had."""
    stored = json.loads((DATA / "quick-fm.word-times.json").read_text())
    times = [tuple(t) for t in stored if t[1] > t[0]][:40]  # words with frames
    audio = decode_audio(str(DATA / "quick-fm.flac"), sampling_rate=SAMPLE_RATE)
    speakers = [0] * 20 + [1] * 20
    regions = speech_regions(times, len(audio))
    assert resegment(audio, regions, times, speakers) != [0] * 40

    monkeypatch.setattr(resegment_module, "viterbi", lambda scores, *_: np.zeros(len(scores), int))

    assert resegment(audio, regions, times, speakers) == speakers
