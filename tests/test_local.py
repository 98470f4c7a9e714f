"""The local engine with the real Whisper tiny.en model on the example recordings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.engines import local
from batchscribe.engines.local import plan_threads
from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
from tests.conftest import EXAMPLES, copy_recordings, run_cli, three_minutes_of_speech
from tests.wer import edit_distance, wer, words

MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return copy_recordings(tmp_path / "recordings")


def test_wer_helper() -> None:
    assert words("Hi, it's Sam!") == ["hi", "it's", "sam"]
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert wer(["a b c d"], ["a b c d"]) == 0.0
    assert wer(["a b c d"], ["a c d"]) == 0.25


@pytest.mark.model
def test_offline_run_transcribes_every_format_within_wer(recordings: Path) -> None:
    result = run_cli(str(recordings))

    assert result.exit_code == EXIT_OK, result.output
    refs, hyps = [], []
    for clip in MANIFEST["clips"]:
        source = recordings / clip["path"]
        txt = source.with_suffix(".txt").read_text()
        data = json.loads(source.with_suffix(".json").read_text())
        assert txt.endswith("\n") and " ".join(txt[:-1].split("\n\n")) == data["text"]
        assert data["status"] == "completed" and data["language_code"] == "en"
        assert abs(data["audio_duration"] - clip["duration_s"]) < 0.5
        assert data["words"] and {"text", "start", "end", "confidence"} <= set(data["words"][0])
        assert all(w["start"] <= w["end"] for w in data["words"])
        assert data["words"][-1]["end"] <= clip["duration_s"] * 1000 + 500  # milliseconds
        assert data["engine"] == "local" and data["model"]
        refs.append(clip["text"])
        hyps.append(txt)
    assert wer(refs, hyps) <= 0.35

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

    result = run_cli(str(tmp_path), "--engine", "local")

    assert result.exit_code == EXIT_OK, result.output
    assert 180 <= seconds < 200
    txt = (tmp_path / "lecture.txt").read_text()
    data = json.loads((tmp_path / "lecture.json").read_text())
    paragraphs = txt[:-1].split("\n\n")
    assert txt.endswith("\n") and not txt.endswith("\n\n") and len(data["text"]) > 2000
    assert len(paragraphs) >= 3 and all(0 < len(p) <= 1200 for p in paragraphs)
    assert " ".join(paragraphs) == data["text"]
