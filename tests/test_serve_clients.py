"""`batchscribe serve` against the official AssemblyAI and OpenAI clients, unchanged, and its
survival: kill -9 and a restart, SIGTERM, uploads that are not audio. A real server in a
subprocess (tests/serveproc.py) and the real Whisper tiny.en model."""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import assemblyai as aai
import httpx
import openai
import pytest
import srt
import webvtt

from tests.fakes import wait_for
from tests.rayhead import LOOPBACK_ENV, ray_head
from tests.serveproc import Served, serving, start
from tests.wer import words

pytestmark = [pytest.mark.model, pytest.mark.slow]

DATA = Path(__file__).parent / "data" / "speakers"
LANGUAGES = Path(__file__).parent.parent / "examples" / "languages"
KEY = "s3cret-server-key"


@pytest.fixture(autouse=True)
def _sdk_connections_closed() -> Iterator[None]:
    """The SDK keeps one client per settings, never closed: close this test's."""
    yield
    aai.Client.get_default(api_key_required=False).http_client.close()


def sdk(served: Served, key: str = KEY) -> aai.Transcriber:
    aai.settings.base_url = served.url
    aai.settings.api_key = key
    aai.settings.polling_interval = 0.1
    return aai.Transcriber()


def client(served: Served, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)


def test_assemblyai_sdk_transcribes_a_file_and_exports_its_sections(tmp_path: Path) -> None:
    with serving(tmp_path / "state", key=KEY) as served:
        transcript = sdk(served).transcribe(str(DATA / "monologue.wav"))

        assert transcript.status == aai.TranscriptStatus.completed, transcript.error
        assert "good morning" in (transcript.text or "").lower()
        assert transcript.words and all(w.end >= w.start for w in transcript.words)
        assert transcript.audio_duration and transcript.audio_duration > 20
        cues = list(srt.parse(transcript.export_subtitles_srt()))
        assert " ".join(c.content.replace("\n", " ") for c in cues) == transcript.text
        vtt = webvtt.from_string(transcript.export_subtitles_vtt())
        assert len(vtt.captions) == len(cues)
        sentences = transcript.get_sentences()
        assert len(sentences) >= 4 and sentences[0].text.startswith("Good morning")
        assert " ".join(p.text for p in transcript.get_paragraphs()) == transcript.text
        again = aai.Transcript.get_by_id(transcript.id)
        assert again.text == transcript.text


def test_assemblyai_sdk_labels_the_two_speakers_of_an_interview(tmp_path: Path) -> None:
    with serving(tmp_path / "state", key=KEY) as served:
        config = aai.TranscriptionConfig(speaker_labels=True, speakers_expected=2)
        transcript = sdk(served).transcribe(str(DATA / "interview.wav"), config=config)

        assert transcript.status == aai.TranscriptStatus.completed, transcript.error
        turns = transcript.utterances or []
        assert {u.speaker for u in turns} == {"A", "B"}
        assert turns[0].text.startswith("Welcome back") and turns[1].speaker == "B"
        assert all(w.speaker in ("A", "B") for w in transcript.words or [])


def test_assemblyai_sdk_with_a_wrong_key_is_refused(tmp_path: Path) -> None:
    with serving(tmp_path / "state", key=KEY) as served:
        with pytest.raises(aai.TranscriptError, match="Authentication error"):
            sdk(served, key="wrong").transcribe(str(DATA / "monologue.wav"))
        for headers in ({}, {"Authorization": f"Bearer {KEY}x"}, {"Authorization": KEY[:-1]}):
            assert httpx.get(f"{served.url}/v2/transcript", headers=headers).status_code == 401
        assert httpx.get(f"{served.url}/v1/models", headers={"Authorization": KEY}).is_success
        assert KEY not in served.stop()


def test_openai_client_transcribes_in_every_response_format(tmp_path: Path) -> None:
    audio = DATA / "monologue.wav"
    with serving(tmp_path / "state", key=KEY) as served, client(served) as api:
        with audio.open("rb") as f:
            text = api.audio.transcriptions.create(model="whisper-1", file=f).text
        assert text.startswith("Good morning")
        with audio.open("rb") as f:
            verbose = api.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="verbose_json",
                timestamp_granularities=["word", "segment"], language="en",
            )  # fmt: skip
        assert verbose.text == text and verbose.language == "english" and verbose.duration > 20
        assert verbose.words and verbose.words[0].word == "Good"
        assert verbose.segments and verbose.segments[0].text.startswith("Good morning")
        for fmt in ("text", "srt", "vtt"):
            with audio.open("rb") as f:
                body = api.audio.transcriptions.create(
                    model="whisper-1",
                    file=f,
                    response_format=fmt,  # type: ignore[call-overload]
                )
            assert "Good morning" in body
        assert {m.id for m in api.models.list()} >= {"whisper-1", "tiny.en"}


def test_openai_client_translates_german_speech_to_english_with_base(tmp_path: Path) -> None:
    """The default multilingual model: German heard as German, and translated to English."""
    audio = LANGUAGES / "de.ogg"
    with serving(tmp_path / "state", "--model", "base", key=KEY) as served, client(served) as api:
        with audio.open("rb") as f:
            heard = api.audio.transcriptions.create(
                model="base", file=f, response_format="verbose_json"
            )
        # the client marks this overload deprecated (a warning, an error under pytest's filter)
        with audio.open("rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            english = api.audio.translations.create(
                model="whisper-1", file=f, response_format="verbose_json"
            )
    assert heard.language == "german" and "haushalt" in heard.text.lower(), heard.text
    assert english.language == "english"
    said = set(words(english.text))
    assert {"good", "morning", "today"} <= said or {"morning", "year", "please"} <= said, said
    assert len(said & set(words(heard.text))) <= 2, english.text  # hardly a German word left


def test_an_upload_that_is_not_audio_is_an_error_and_the_server_goes_on(tmp_path: Path) -> None:
    junk = tmp_path / "notes.mp3"
    junk.write_text("these are notes, not a recording\n" * 50)
    with serving(tmp_path / "state", key=KEY) as served:
        failed = sdk(served).transcribe(str(junk))
        assert failed.status == aai.TranscriptStatus.error
        assert "audio" in str(failed.error) and str(tmp_path) not in str(failed.error)
        with (
            client(served) as api,
            junk.open("rb") as f,
            pytest.raises(openai.BadRequestError, match="audio"),
        ):
            api.audio.transcriptions.create(model="whisper-1", file=f)

        after = sdk(served).transcribe(str(DATA / "monologue.wav"))
        assert after.status == aai.TranscriptStatus.completed


def _create(served: Served, clip: Path) -> str:
    """Upload and create with plain HTTP: the id, the transcript left to the server."""
    headers = {"Authorization": KEY}
    upload = httpx.post(f"{served.url}/v2/upload", content=clip.read_bytes(), headers=headers)
    body = {"audio_url": upload.json()["upload_url"]}
    return str(httpx.post(f"{served.url}/v2/transcript", json=body, headers=headers).json()["id"])


def _status(served: Served, transcript_id: str) -> str:
    got = httpx.get(f"{served.url}/v2/transcript/{transcript_id}", headers={"Authorization": KEY})
    return str(got.json()["status"])


def test_after_kill_9_completed_ids_answer_and_queued_ones_finish(tmp_path: Path) -> None:
    state = tmp_path / "state"
    served = start(state, "--concurrency", "1", key=KEY)
    try:
        first = _create(served, DATA / "monologue.wav")
        wait_for(lambda: _status(served, first) == "completed", timeout=60)
        queued = [_create(served, DATA / "interview.wav") for _ in range(3)]
    finally:
        served.stop(signal.SIGKILL)
    assert any(_status_after(state, i) != "completed" for i in queued)

    with serving(state, key=KEY) as again:
        assert _status(again, first) == "completed"
        for transcript_id in queued:
            wait_for(lambda i=transcript_id: _status(again, i) == "completed", timeout=90)


def _status_after(state: Path, transcript_id: str) -> str:
    import sqlite3

    with sqlite3.connect(state / "server.sqlite") as db:
        row = db.execute("SELECT status FROM transcripts WHERE id = ?", (transcript_id,))
        return str(row.fetchone()[0])


def test_sigterm_hands_back_work_under_way_within_10_seconds(tmp_path: Path) -> None:
    state = tmp_path / "state"
    served = start(state, "--concurrency", "1", key=KEY)
    ids = [_create(served, DATA / "meeting-pair.wav") for _ in range(3)]
    wait_for(lambda: _status(served, ids[0]) == "processing", timeout=30)
    began = time.monotonic()

    stderr = served.stop(signal.SIGTERM)

    assert time.monotonic() - began < 10
    assert served.proc.returncode == 0 and "Traceback" not in stderr
    assert {_status_after(state, i) for i in ids} <= {"queued", "completed"}
    with serving(state, key=KEY) as again:
        for transcript_id in ids:
            wait_for(lambda i=transcript_id: _status(again, i) == "completed", timeout=120)


@pytest.mark.ray
def test_with_ray_the_actors_of_a_local_head_transcribe(tmp_path: Path) -> None:
    """`serve --ray`: a real head on 127.0.0.1 (one CPU slot), tiny.en on its actor; the
    server's stop ends the actor, and the head is stopped with every process it started."""
    with ray_head(num_cpus=1) as head:
        with serving(tmp_path / "state", "--ray", head.address, key=KEY,
                     env_extra=LOOPBACK_ENV) as served, client(served) as api:  # fmt: skip
            with (DATA / "monologue.wav").open("rb") as f:
                text = api.audio.transcriptions.create(model="whisper-1", file=f).text
            assert text.startswith("Good morning"), text
            assert head.actor_pids(), "no Ray actor transcribed"
            with (DATA / "monologue.wav").open("rb") as f, pytest.raises(openai.BadRequestError):
                api.audio.transcriptions.create(model="whisper-1", file=f, prompt="Quill")
            served.stop(signal.SIGTERM)
        wait_for(lambda: not head.actor_pids(), timeout=30)
        assert not head.listening_off_loopback()
