"""`batchscribe serve`'s rules, on a real server on 127.0.0.1 in this process with the fake
engine (no model): the key, the loopback default, never fetching, the caps, the command line.
The real clients and the real model are in test_serve_clients.py."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from batchscribe.config import build_settings
from batchscribe.errors import ConfigError, LockHeld
from batchscribe.serve.app import serve
from batchscribe.serve.assemblyai_face import options_of, own_upload
from batchscribe.serve.auth import check_bind, is_loopback, key_matches
from batchscribe.serve.command import serve_command
from batchscribe.serve.sections import cut, paragraph_word_starts, sentence_starts
from batchscribe.serve.store import Store
from tests.fakes import FakeEngine
from tests.serveproc import free_port

KEY = "k3y-for-tests"
SPEECH = b"SPEECH:hello there\n"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def made() -> list[dict[str, Any]]:
    """The decoding options each engine the server made was made with."""
    return []


@pytest.fixture
async def server(
    tmp_path: Path, engine: FakeEngine, made: list[dict[str, Any]]
) -> AsyncIterator[str]:
    """A served URL; `engine` transcribes. One transcript at a time, at most 2 waiting."""
    settings = build_settings(
        flags={"serve_port": free_port(), "serve_state_dir": tmp_path / "state",
               "serve_max_upload_mb": 1, "serve_max_queue": 2, "concurrency": 1,
               "model": "tiny.en"},
        env={"BATCHSCRIBE_SERVER_KEY": KEY}, cwd=tmp_path,
    )  # fmt: skip
    up = asyncio.Event()
    task = asyncio.create_task(
        serve(
            settings,
            make_engine=lambda s, d: (made.append(dict(d)), engine)[1],
            ready=lambda line: up.set(),
        )
    )
    await asyncio.wait_for(up.wait(), 10)
    yield f"http://127.0.0.1:{settings.serve_port}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": KEY}) as session:
        yield session


async def _upload(http: aiohttp.ClientSession, url: str, body: bytes = SPEECH) -> str:
    async with http.post(f"{url}/v2/upload", data=body) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["upload_url"])


async def test_every_request_needs_the_key_in_either_form(server: str) -> None:
    async with aiohttp.ClientSession() as anyone:
        for headers in ({}, {"Authorization": "nope"}, {"Authorization": f"Bearer {KEY}!"}):
            async with anyone.get(f"{server}/v2/transcript", headers=headers) as response:
                assert response.status == 401
        for given in (KEY, f"Bearer {KEY}"):
            headers = {"Authorization": given}
            async with anyone.get(f"{server}/v2/transcript", headers=headers) as response:
                assert response.status == 200


async def test_a_transcript_is_made_from_an_upload(
    server: str, http: aiohttp.ClientSession
) -> None:
    upload_url = await _upload(http, server)
    body = {"audio_url": upload_url, "speech_models": ["universal-3-pro"]}
    async with http.post(f"{server}/v2/transcript", json=body) as response:
        created = await response.json()
    assert created["status"] == "queued" and created["speech_models"] == ["universal-3-pro"]
    for _ in range(200):
        async with http.get(f"{server}/v2/transcript/{created['id']}") as response:
            got = await response.json()
        if got["status"] == "completed":
            break
        await asyncio.sleep(0.01)
    assert got["text"] == "hello there" and got["audio_url"] == upload_url


async def test_a_transcript_without_words_has_no_sentences_no_paragraphs_no_segments(
    server: str, http: aiohttp.ClientSession
) -> None:
    # the fake engine writes no words, as the local engine does for silence
    created = await _create(http, server, await _upload(http, server, b"SPEECH:\n"))
    for name in ("sentences", "paragraphs"):
        async with http.get(f"{server}/v2/transcript/{created}/{name}") as response:
            assert response.status == 200, await response.text()
            assert (await response.json())[name] == []
    form = _form(model="whisper-1", response_format="verbose_json")
    async with http.post(f"{server}/v1/audio/transcriptions", data=form) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["segments"] == []


async def _create(http: aiohttp.ClientSession, url: str, upload_url: str) -> str:
    """A transcript of `upload_url`, waited for until completed: its id."""
    async with http.post(f"{url}/v2/transcript", json={"audio_url": upload_url}) as response:
        transcript_id = str((await response.json())["id"])
    for _ in range(500):
        async with http.get(f"{url}/v2/transcript/{transcript_id}") as response:
            if (await response.json())["status"] == "completed":
                return transcript_id
        await asyncio.sleep(0.01)
    raise AssertionError("never completed")


async def test_an_audio_url_not_of_our_uploads_is_refused_and_never_fetched(
    server: str, http: aiohttp.ClientSession
) -> None:
    with socket.socket() as bait:
        bait.bind(("127.0.0.1", 0))
        bait.listen()
        bait.setblocking(False)
        port = bait.getsockname()[1]
        unknown = f"{server}/v2/upload/{'0' * 32}"
        for audio_url in (f"http://127.0.0.1:{port}/a.mp3", unknown, "file:///etc/passwd",
                          f"{server}/v2/upload/../../server.sqlite"):  # fmt: skip
            async with http.post(f"{server}/v2/transcript", json={"audio_url": audio_url}) as r:
                assert r.status == 400
                assert "never fetches" in (await r.json())["error"]
        with pytest.raises(BlockingIOError):
            bait.accept()  # nobody came


async def test_an_upload_over_the_cap_is_413_and_leaves_nothing(
    server: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with http.post(f"{server}/v2/upload", data=io.BytesIO(b"x" * (2 << 20))) as response:
        assert response.status == 413
        assert "max_upload_mb" in (await response.json())["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        for _ in range(3):
            yield b"x" * (512 << 10)

    async with http.post(f"{server}/v2/upload", data=chunks()) as response:
        assert response.status == 413
    assert list((tmp_path / "state" / "uploads").iterdir()) == []


async def test_a_full_queue_answers_429_with_retry_after(
    server: str, http: aiohttp.ClientSession, engine: FakeEngine
) -> None:
    engine.delay = 30  # the one worker stays busy; two may wait
    upload_url = await _upload(http, server)
    statuses = []
    for _ in range(4):
        async with http.post(f"{server}/v2/transcript", json={"audio_url": upload_url}) as r:
            statuses.append(r.status)
            retry_after = r.headers.get("Retry-After")
        await asyncio.sleep(0.05)  # the worker takes the first
    assert statuses == [200, 200, 200, 429] and retry_after is not None


async def test_openai_refuses_an_unknown_response_format(
    server: str, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", SPEECH, filename="a.wav")
    form.add_field("model", "whisper-1")
    form.add_field("response_format", "xml")
    async with http.post(f"{server}/v1/audio/transcriptions", data=form) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "response_format"


def _form(**fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", SPEECH, filename="a.wav")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def test_openai_prompt_and_temperature_reach_whisper(
    server: str, http: aiohttp.ClientSession, made: list[dict[str, Any]]
) -> None:
    url = f"{server}/v1/audio/transcriptions"
    form = _form(model="whisper-1", prompt="Quillfeather, Xanthe.", temperature="0.4")
    async with http.post(url, data=form) as response:
        assert response.status == 200, await response.text()
    async with http.post(url, data=_form(model="tiny.en", temperature="0")) as response:
        assert response.status == 200, await response.text()
    # 0 keeps Whisper's fallback of temperatures (OpenAI's "raised as needed")
    assert made == [{"initial_prompt": "Quillfeather, Xanthe.", "temperature": 0.4}, {}]


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"model": "gpt-4o-transcribe"}, "model"), ({"model": "whisper-1", "temperature": "1.5"},
     "temperature"), ({"model": "whisper-1", "temperature": "hot"}, "temperature")],
)  # fmt: skip
async def test_openai_refuses_a_model_not_served_and_a_temperature_out_of_range(
    server: str, http: aiohttp.ClientSession, fields: dict[str, str], param: str
) -> None:
    async with http.post(f"{server}/v1/audio/transcriptions", data=_form(**fields)) as response:
        assert response.status == 400
        body = await response.json()
        assert body["error"]["param"] == param
    if param == "model":
        assert "whisper-1 or tiny.en" in body["error"]["message"]


async def test_a_second_server_on_the_same_state_folder_is_refused_naming_the_first(
    server: str, tmp_path: Path
) -> None:
    settings = build_settings(
        flags={"serve_port": free_port(), "serve_state_dir": tmp_path / "state",
               "model": "tiny.en"},
        env={"BATCHSCRIBE_SERVER_KEY": KEY}, cwd=tmp_path,
    )  # fmt: skip
    with pytest.raises(LockHeld, match=rf"another batchscribe server \(pid {os.getpid()}\)"):
        await serve(settings, make_engine=lambda s, d: FakeEngine())
    async with aiohttp.ClientSession() as anyone, anyone.get(f"{server}/health") as response:
        assert response.status == 200  # the first one serves on


def test_every_engine_of_the_server_shares_one_set_of_decoding_threads(tmp_path: Path) -> None:
    from batchscribe.serve.app import engine_factory

    settings = build_settings(flags={"model": "tiny.en"}, env={}, cwd=tmp_path)
    make = engine_factory(settings)
    plain, prompted = make(settings, {}), make(settings, {"initial_prompt": "Xanthe."})
    # a long request lends only the decoders no other request holds, whatever its options
    assert plain._transcriber._decoders is prompted._transcriber._decoders


def test_the_key_matches_only_itself() -> None:
    assert key_matches(KEY, KEY) and key_matches(f"Bearer {KEY}", KEY)
    assert key_matches(f"bearer  {KEY} ", KEY)
    assert not key_matches(None, KEY) and not key_matches(KEY + "x", KEY)
    assert not key_matches(f"Basic {KEY}", KEY)


def test_loopback_is_told_from_the_rest() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))


def test_a_bind_off_loopback_needs_a_key(tmp_path: Path) -> None:
    wide = build_settings(flags={"serve_host": "0.0.0.0"}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="BATCHSCRIBE_SERVER_KEY"):
        check_bind(wide)
    check_bind(replace(wide, server_key=KEY))


def test_serve_off_loopback_without_a_key_exits_2_in_one_line() -> None:
    result = CliRunner().invoke(serve_command, ["--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "BATCHSCRIBE_SERVER_KEY" in result.output


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_port_out_of_range_exits_2(port: str) -> None:
    result = CliRunner().invoke(serve_command, ["--port", port])
    assert result.exit_code == 2 and "between 1 and 65535" in result.output


def test_a_folder_named_serve_is_still_a_folder_run(tmp_path: Path) -> None:
    (tmp_path / "serve").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "batchscribe", "./serve", "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "serving" not in done.stderr


def test_only_our_upload_paths_name_an_upload() -> None:
    upload = "a" * 32
    assert own_upload(f"http://host:1/v2/upload/{upload}") == upload
    assert own_upload(f"http://host:1/v2/upload/{upload}/x") is None
    assert own_upload(f"http://host:1/v2/upload/{upload[:-1]}") is None
    assert own_upload("https://cdn.example/v2/upload/../x") is None


def test_the_create_options_the_engine_hears() -> None:
    assert options_of({"language_code": "fr"})["language"] == "fr"
    assert options_of({"language_code": "fr", "language_detection": True})["language"] == "auto"
    labelled = options_of({"speaker_labels": True, "speakers_expected": 2})
    assert labelled["speaker_labels"] and labelled["speakers_expected"] == 2
    assert "speakers_expected" not in options_of({"speakers_expected": 2})


def test_words_are_cut_into_sentences_and_paragraphs() -> None:
    texts = ["Hello", "there.", "How", "are", "you?", "Fine."]
    words = [{"text": t, "start": i * 100, "end": i * 100 + 90, "confidence": 0.5}
             for i, t in enumerate(texts)]  # fmt: skip
    words[5] = {**words[5], "start": 5000, "end": 5400}  # a long pause before "Fine."
    sentences = cut(words, sentence_starts(words))
    assert [s["text"] for s in sentences] == ["Hello there.", "How are you?", "Fine."]
    assert sentences[1]["start"] == 200 and sentences[1]["end"] == 490
    paragraphs = cut(words, paragraph_word_starts(words))
    assert [p["text"] for p in paragraphs] == ["Hello there. How are you?", "Fine."]
    assert cut([], sentence_starts([])) == cut([], paragraph_word_starts([])) == []


def test_the_serve_section_of_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "batchscribe.toml"
    config.write_text('[serve]\nport = 9911\nstate_dir = "~/st"\nmax_queue = 3\n')
    settings = build_settings(flags={}, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert (settings.serve_port, settings.serve_max_queue) == (9911, 3)
    assert settings.serve_state_dir is not None and settings.serve_state_dir.name == "st"
    config.write_text("[serve]\nmax_upload_mb = 0\n")
    with pytest.raises(ConfigError, match="max_upload_mb"):
        build_settings(flags={}, env={}, cwd=tmp_path)


async def test_the_metrics_file_says_the_server_is_up(tmp_path: Path, engine: FakeEngine) -> None:
    metrics = tmp_path / "serve.prom"
    settings = build_settings(
        flags={"serve_port": free_port(), "serve_state_dir": tmp_path / "state",
               "metrics_file": metrics},
        env={}, cwd=tmp_path,
    )  # fmt: skip
    up = asyncio.Event()
    task = asyncio.create_task(
        serve(settings, make_engine=lambda s, d: engine, ready=lambda line: up.set())
    )
    await asyncio.wait_for(up.wait(), 10)
    for _ in range(100):
        if metrics.exists():
            break
        await asyncio.sleep(0.01)
    assert "batchscribe_up 1.0" in metrics.read_text()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "batchscribe_up 0.0" in metrics.read_text()


async def test_the_store_runs_sqlite_on_its_own_thread_not_the_loop(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    threads: list[str] = []
    trace = store._db.set_trace_callback  # the connection answers only on its own thread
    store._writer.submit(trace, lambda sql: threads.append(threading.current_thread().name))
    try:
        job = await store.create("a" * 32, {"task": "transcribe"})
        await store.complete(job.id, {"text": "hi"})
        assert (await store.get(job.id)) is not None
        store.hand_back(job.id)
    finally:
        store.close()  # waits for the hand-back
    assert threads and all(name.startswith("serve-store") for name in threads), threads
    again = Store(tmp_path / "state")
    try:
        assert [j.id for j in await again.unfinished()] == [job.id]  # handed back, committed
    finally:
        again.close()
