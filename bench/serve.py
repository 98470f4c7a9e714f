"""`batchscribe serve` against `batchscribe DIR` on the same 20 clips, and the server's peak RSS
with 8 clients at once.

    python -m bench.serve [--runs 3] [--model tiny.en] [--concurrency 2]

Each round runs both, alternated (the folder run first in odd rounds, the server first in
even ones), each from a cold process: the folder run is `batchscribe DIR` on a fresh copy;
the server run starts `batchscribe serve`, uploads and creates the 20 transcripts over HTTP
(AssemblyAI's API, 4 clients), waits for every one, and stops the server. Medians and their
ratio are printed with the load average. Then 8 OpenAI clients send 3 clips each at once and
the server's peak RSS (VmHWM) is read from /proc.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai

from bench.common import measure
from tests.serveproc import Served, start

SPEAKERS = Path(__file__).resolve().parent.parent / "tests" / "data" / "speakers"
SOURCES = ("interview.wav", "monologue.wav", "meeting-pair.wav", "two-men.wav")
CLIPS = 20


def make_clips(folder: Path) -> list[Path]:
    """20 distinct clips of 8-17 s cut from the speaker recordings (distinct bytes: a folder
    run transcribes identical ones once)."""
    folder.mkdir(parents=True)
    clips = []
    for i in range(CLIPS):
        with wave.open(str(SPEAKERS / SOURCES[i % len(SOURCES)])) as source:
            rate = source.getframerate()
            source.setpos(int(rate * (i // len(SOURCES)) * 2))
            frames = source.readframes(int(rate * (8 + i % 10)))
            params = source.getparams()
        clip = folder / f"clip{i:02}.wav"
        with wave.open(str(clip), "wb") as out:
            out.setparams(params)
            out.writeframes(frames)
        clips.append(clip)
    return clips


def folder_run(clips: list[Path], tmp: Path, model: str, concurrency: int) -> float:
    target = tmp / f"dir-{time.monotonic_ns()}"
    shutil.copytree(clips[0].parent, target)
    cmd = ["batchscribe", str(target), "--engine", "local", "--model", model,
           "--concurrency", str(concurrency), "-q"]  # fmt: skip
    return measure(cmd).seconds


#: A client's poll interval: the SDK's default is 3 s; shorter, so waiting costs the server
#: run no more than a fraction of a clip.
POLL_S = 0.2


def _through(http: httpx.Client, served: Served, clip: Path) -> None:
    """One clip as a client sends it: upload, create, poll until it ends. One shared
    httpx.Client: a new one per request loads the TLS certificates each time (~30 ms of CPU,
    which on 2 cores slowed the server's first measurement by a third)."""
    upload = http.post(f"{served.url}/v2/upload", content=clip.read_bytes(), timeout=60)
    created = http.post(
        f"{served.url}/v2/transcript", json={"audio_url": upload.json()["upload_url"]}
    ).json()
    while True:
        got = http.get(f"{served.url}/v2/transcript/{created['id']}").json()
        if got["status"] in ("completed", "error"):
            assert got["status"] == "completed", got["error"]
            return
        time.sleep(POLL_S)


def server_run(clips: list[Path], tmp: Path, model: str, concurrency: int) -> float:
    began = time.perf_counter()
    served = start(tmp / f"state-{time.monotonic_ns()}", "--concurrency", str(concurrency),
                   *_model(model))  # fmt: skip
    try:
        with httpx.Client() as http, ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda c: _through(http, served, c), clips))
    finally:
        served.stop(signal.SIGTERM)
    return time.perf_counter() - began


def _model(model: str) -> list[str]:
    return ["--model", model]  # the last --model wins over serveproc's tiny.en


def peak_rss_with_clients(clips: list[Path], tmp: Path, model: str, concurrency: int) -> float:
    served = start(tmp / "state-rss", "--concurrency", str(concurrency), *_model(model))

    def client(n: int) -> None:
        with openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0) as api:
            for clip in clips[n::8][:3]:
                with clip.open("rb") as f:
                    api.audio.transcriptions.create(model="whisper-1", file=f)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(8)))
        status = Path(f"/proc/{served.proc.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        return int(hwm.split()[1]) / 1024
    finally:
        served.stop(signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        clips = make_clips(tmp / "clips")
        times: dict[str, list[float]] = {"dir": [], "serve": []}
        for round_ in range(args.runs):
            order = ("dir", "serve") if round_ % 2 == 0 else ("serve", "dir")
            for which in order:
                run = folder_run if which == "dir" else server_run
                seconds = run(clips, tmp, args.model, args.concurrency)
                times[which].append(seconds)
                print(f"round {round_ + 1} {which}: {seconds:.2f} s  load {os.getloadavg()}")
        dir_s, serve_s = statistics.median(times["dir"]), statistics.median(times["serve"])
        print(f"median dir {dir_s:.2f} s, serve {serve_s:.2f} s, ratio {serve_s / dir_s:.3f}")
        rss = peak_rss_with_clients(clips, tmp, args.model, args.concurrency)
        print(f"serve peak RSS with 8 clients x 3 clips: {rss:.0f} MB  load {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
