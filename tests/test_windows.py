"""Long recordings heard window by window (engines/local/windows.py): where a window ends, and
with the real tiny.en model that a recording cut into windows reads as when heard whole, its
times in order and never overlapping. Memory bounded is measured in bench/memory.py long."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faster_whisper import decode_audio

from batchscribe.config import Settings
from batchscribe.engines.base import DECODING_THREADS
from batchscribe.engines.local import windows
from batchscribe.engines.local.decoders import Decoders
from batchscribe.engines.local.engine import ThreadPlan, Transcriber
from tests.kit import EXAMPLES, three_minutes_of_speech
from tests.wer import wer


def test_a_window_ends_in_the_quietest_frame_of_its_last_seconds() -> None:
    samples = np.ones(10_000, dtype=np.float32)
    samples[8_100:8_200] = 0.0  # a pause 1,900 samples before the end
    assert windows.quiet_cut(samples, 10_000, 3_000, frame=100) == 8_150
    assert windows.quiet_cut(samples, 10_000, 1_000, frame=100) != 8_150  # outside the search
    assert windows.quiet_cut(samples, 10_000, 50, frame=100) == 10_000  # no whole frame


def test_windows_cover_the_recording_once_each_ending_at_a_pause() -> None:
    rate = windows.RATE
    tone = np.sin(np.arange(rate) / 3).astype(np.float32)
    pause = np.zeros(rate // 5, dtype=np.float32)
    audio = np.concatenate([np.concatenate([tone, tone, pause]) for _ in range(20)])  # 44 s
    blocks = (audio[i : i + 7_000] for i in range(0, len(audio), 7_000))

    found = list(windows.windows(blocks, seconds=8))

    offsets = [offset for offset, _ in found]
    assert len(found) >= 4 and offsets[0] == 0
    assert all(a + len(s) == b for (a, s), b in zip(found, offsets[1:], strict=False))
    assert np.array_equal(np.concatenate([s for _, s in found]), audio)
    for _, samples in found[:-1]:
        assert not samples[-800:].any() or not samples[-1:].any()  # cut inside a pause


def said_in_three_minutes(seconds: float) -> str:
    """What `three_minutes_of_speech` reads: the example clips' texts in its order."""
    texts = [c["text"] for c in json.loads((EXAMPLES / "manifest.json").read_text())["clips"]]
    count, said = 0, []
    clips = json.loads((EXAMPLES / "manifest.json").read_text())["clips"]
    durations = [len(decode_audio(str(EXAMPLES / c["path"]))) / 16000 + 0.5 for c in clips]
    total = 0.0
    while total < 180:
        said.append(texts[count % len(texts)])
        total += durations[count % len(texts)]
        count += 1
    assert abs(total - seconds) < 1
    return " ".join(said)


@pytest.mark.model
@pytest.mark.timeout(600)
def test_a_recording_heard_in_windows_reads_as_heard_whole(tmp_path: Path) -> None:
    path = tmp_path / "lecture.wav"
    seconds = three_minutes_of_speech(path)
    settings = Settings(model="tiny.en", device="cpu").local()
    plan = ThreadPlan(workers=1, threads=2)
    heard: list[tuple[float, float | None]] = []

    whole = Transcriber(settings, plan).transcribe(str(path))
    cut = Transcriber(settings, plan, window_s=40).transcribe(
        str(path), lambda s, of: heard.append((s, of))
    )

    spoken = said_in_three_minutes(seconds)
    print("WER whole", wer([spoken], [whole["text"]]), "windowed", wer([spoken], [cut["text"]]))
    assert len(whole["words"]) > 300
    assert wer([spoken], [cut["text"]]) <= wer([spoken], [whole["text"]]) + 0.03
    starts = [w["start"] for w in cut["words"]]
    ends = [w["end"] for w in cut["words"]]
    assert all(s <= e for s, e in zip(starts, ends, strict=True))
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))  # in order, no overlap
    assert ends[-1] > 150_000 and ends[-1] <= seconds * 1000
    assert cut["audio_duration"] == pytest.approx(seconds, abs=0.01)
    assert cut["audio_duration"] == whole["audio_duration"]
    assert len(heard) > 10 and heard == sorted(heard) and heard[-1][1] == pytest.approx(seconds)


@pytest.mark.model
@pytest.mark.timeout(300)
@pytest.mark.parametrize("plan", [ThreadPlan(1, 2), ThreadPlan(2, 1)], ids=["alone", "lent"])
def test_a_stop_between_segments_ends_a_windowed_recording(
    tmp_path: Path, plan: ThreadPlan
) -> None:
    from batchscribe.errors import Stopped

    path = tmp_path / "lecture.wav"
    three_minutes_of_speech(path)
    transcriber = Transcriber(Settings(model="tiny.en", device="cpu").local(), plan,
                              window_s=40)  # fmt: skip
    heard: list[Any] = []

    def stop_after_three(seconds: float, of: float | None) -> None:
        heard.append(seconds)
        if len(heard) == 3:
            transcriber.stopping.set()

    with pytest.raises(Stopped):
        transcriber.transcribe(str(path), stop_after_three)
    assert len(heard) == 3


def heard_on_threads(names: list[str], most: list[int] | None = None) -> Any:
    """The engine's model factory, each `transcribe` call's thread name kept in `names`, and
    the most windows decoded at once in `most[0]` (faster-whisper decodes as it is iterated)."""
    from batchscribe.engines.local.engine import whisper_model

    lock, now = threading.Lock(), [0]
    most = most if most is not None else [0]

    def load(*args: Any, **kwargs: Any) -> Any:
        model = whisper_model(*args, **kwargs)
        transcribe = model.transcribe

        def decoding(segments: Any) -> Any:
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
            try:
                yield from segments
            finally:
                with lock:
                    now[0] -= 1

        def named(*a: Any, **k: Any) -> Any:
            names.append(threading.current_thread().name)
            segments, info = transcribe(*a, **k)
            return decoding(segments), info

        model.transcribe = named
        return model

    return load


@pytest.mark.model
@pytest.mark.timeout(600)
def test_a_lone_recordings_windows_on_the_idle_decoders_read_as_heard_by_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lecture.wav"
    three_minutes_of_speech(path)
    settings = Settings(model="tiny.en", device="cpu").local()
    one: list[str] = []  # the threads each window was heard on
    two: list[str] = []
    heard: list[tuple[float, float | None]] = []

    alone = Transcriber(settings, ThreadPlan(workers=1, threads=1), window_s=40,
                        load_model=heard_on_threads(one)).transcribe(str(path))  # fmt: skip
    shared = Transcriber(settings, ThreadPlan(workers=2, threads=1), window_s=40,
                         load_model=heard_on_threads(two)).transcribe(
        str(path), lambda s, of: heard.append((s, of))
    )  # fmt: skip

    assert len(one) == len(two) >= 4 and len(set(one)) == 1
    assert any(name.startswith(f"{DECODING_THREADS}-window") for name in two), two
    assert shared["words"] == alone["words"] and shared["text"] == alone["text"]
    assert shared["audio_duration"] == alone["audio_duration"]
    assert heard == sorted(heard) and len(heard) > 10


def test_a_file_holds_a_decoder_and_a_long_file_borrows_only_idle_ones() -> None:
    stopping = threading.Event()
    decoders = Decoders(2)
    release = threading.Event()
    with decoders.held(stopping):
        lent = decoders.borrow(release.wait)
        assert lent is not None  # the second decoder was idle
        assert decoders.borrow(release.wait) is None  # none is left to lend
        came: list[str] = []

        def another_file() -> None:
            with decoders.held(stopping):
                came.append("in")

        other = threading.Thread(target=another_file)
        other.start()
        other.join(0.5)
        assert not came  # a new file waits for the lent decoder's window to end
        assert decoders.wanted()  # which a borrowed decoder looks at between windows
        release.set()
        other.join(5)
        assert came == ["in"] and lent.result(5) is True
        assert not decoders.wanted()
    decoders.close()


def test_a_file_waiting_for_a_decoder_stops_when_the_run_stops_now() -> None:
    from batchscribe.errors import Stopped

    stopping = threading.Event()
    decoders = Decoders(1)
    with decoders.held(stopping):
        assert decoders.borrow(lambda: None) is None  # one decoder: nothing to lend
        threading.Timer(0.3, stopping.set).start()
        with pytest.raises(Stopped), decoders.held(stopping):
            pass


@pytest.mark.model
@pytest.mark.timeout(600)
def test_two_long_files_at_once_borrow_nothing_never_more_decodes_than_decoders(
    tmp_path: Path,
) -> None:
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for lead, path in enumerate(paths):
        three_minutes_of_speech(path, lead=lead)
    names: list[str] = []
    most = [0]
    transcriber = Transcriber(Settings(model="tiny.en", device="cpu").local(),
                              ThreadPlan(workers=2, threads=1), window_s=40,
                              load_model=heard_on_threads(names, most))  # fmt: skip
    transcriber.load()
    files = [threading.Thread(target=transcriber.transcribe, args=(str(p),)) for p in paths]
    for thread in files:
        thread.start()
    for thread in files:
        thread.join(600)

    assert len(names) >= 8
    assert most[0] == 2, names  # each file on its own decoder, never a third at once


@dataclasses.dataclass
class _Said:
    """faster-whisper's Segment as Windowed reads it (times, text, words)."""

    start: float
    end: float
    text: str
    words: list[Any] | None = None


@dataclasses.dataclass
class _Info:
    language: str = "en"
    duration: float = 0.0


class _Counting:
    """A stand-in model, to drive Windowed's threads exactly: one segment a window, after
    `delay` seconds (`here` on the test's own thread); every call's thread kept."""

    def __init__(self, delay: float, here: float | None = None) -> None:
        self.delay, self.here = delay, delay if here is None else here
        self.calls: list[str] = []

    def transcribe(self, samples: Any, **options: Any) -> Any:
        name = threading.current_thread().name
        self.calls.append(name)
        delay = self.here if name == "MainThread" else self.delay

        def said() -> Any:
            time.sleep(delay)
            yield _Said(0.0, len(samples) / windows.RATE, "w")

        return said(), _Info()


def _blocks_then(error: BaseException | None, seconds: int) -> Any:
    def stream(audio: Any, chunk: int = 0) -> Any:
        noise = np.random.default_rng(0)
        for _ in range(seconds):
            yield noise.standard_normal(windows.RATE).astype(np.float32) * 0.1
        if error is not None:
            raise error

    return stream


def test_a_read_error_on_a_lent_decoder_fails_the_recording_not_cuts_it_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(windows, "stream", _blocks_then(OSError("damaged at 20 s"), 20))
    stopping = threading.Event()
    model = _Counting(delay=0.01, here=0.5)  # the lent decoder reads on to the damage
    run = windows.Windowed(model, "x.wav", {"language": "en"}, 1.0,
                           decoders=Decoders(2), stopping=stopping)  # fmt: skip
    with pytest.raises(OSError, match="damaged at 20 s"):
        list(run.segments())
    assert any(name.startswith(DECODING_THREADS) for name in model.calls)  # lent indeed


def test_a_stop_now_ends_the_lent_decoders_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchscribe.errors import Stopped

    monkeypatch.setattr(windows, "stream", _blocks_then(None, 60))
    stopping = threading.Event()
    model = _Counting(delay=0.05)
    run = windows.Windowed(model, "x.wav", {"language": "en"}, 1.0,
                           decoders=Decoders(2), stopping=stopping)  # fmt: skip
    segments = run.segments()  # held, not closed: as a caller's frame holds it
    with pytest.raises(Stopped):
        for count, _segment in enumerate(segments):
            if count == 3:  # the engine's own check between segments (Transcriber._decode)
                stopping.set()
                raise Stopped()
    at_stop = len(model.calls)
    time.sleep(0.5)  # ten windows' time: none more may start, here or lent
    assert len(model.calls) <= at_stop + 1 and at_stop < 10
