"""--ray measured: throughput against in-process, and the coordinator's own limit.

    pip install -e '.[test]'          # batchscribe[local,ray]
    python -m bench.ray_scale ratio --files 8 --runs 2
    python -m bench.ray_scale scale --actors 8,32,128 --seconds 2.0
    python -m bench.ray_scale pending --files 1000,4000

(a) ratio: a folder of distinct 3-minute recordings, once in-process and once through
    `--ray` with 2 actors on a 2-CPU head on 127.0.0.1, alternately run by run; audio seconds
    per wall second of each (the CLI in a subprocess, model loading and Ray's start included).
(b) scale: actors holding a stand-in transcriber that sleeps `--seconds` per file (as a
    transcription of a fixed length would take), at num_cpus = 2 / actors, on a 2-CPU head:
    files per second from the first output written to the last, against the ideal
    actors / seconds, and the coordinator's CPU seconds per 1,000 files.
(c) pending: the coordinator's peak RSS and CPU with N files to do, through the stand-in.

The stand-in is this module's, handed to RayEngine by `coordinator` (a bench-only entry point
that runs the real CLI with another engine factory); no flag of batchscribe selects it.
Ray binds to 127.0.0.1 only (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, see tests/rayhead.py).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from tests.rayhead import ray_env, ray_head

REPO = Path(__file__).resolve().parent.parent


class SleepingTranscriber:
    """Stands in for the model: sleeps SECONDS per file, says the file's length in seconds."""

    seconds = float(os.environ.get("BENCH_STANDIN_SECONDS", "1.0"))

    def __init__(self, settings: Any, plan: Any) -> None:
        self._seconds = SleepingTranscriber.seconds

    def load(self) -> None:
        return None

    def transcribe(self, audio: Any) -> dict[str, Any]:
        began = time.time()
        time.sleep(self._seconds)
        with wave.open(audio, "rb") as clip:
            duration = clip.getnframes() / clip.getframerate()
        return {"status": "completed", "text": "stand-in", "words": [], "confidence": None,
                "language_code": "en", "language_probability": None,
                "audio_duration": duration, "engine": "local", "model": "stand-in",
                "bench": [os.getpid(), began, time.time()]}  # fmt: skip


def coordinator(args: list[str]) -> None:
    """The real CLI, its engine the Ray engine with the stand-in on every actor."""
    from batchscribe.cli import make_cli
    from batchscribe.engines.cluster.engine import RayEngine
    from batchscribe.engines.confidence import ConfidenceCheck

    def factory(settings: Any) -> Any:
        return ConfidenceCheck(
            RayEngine(settings.cluster(), make_transcriber=SleepingTranscriber), 0.0
        )

    make_cli(factory)(args, prog_name="batchscribe")


def silent_wavs(root: Path, count: int) -> None:
    """`count` different one-second WAVs (8 kHz), each its own bytes."""
    root.mkdir(parents=True)
    for i in range(count):
        with wave.open(str(root / f"{i:06d}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(i.to_bytes(4, "little") + bytes(15996))


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user+sys) and peak RSS (MB) of one process; its stderr."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:6]} exited {proc.returncode}: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, err


def output_span(root: Path) -> tuple[int, float]:
    """Outputs written, and seconds from the first to the last."""
    stamps = sorted(p.stat().st_mtime for p in root.rglob("*.txt"))
    return len(stamps), stamps[-1] - stamps[0]


def steady_rate(root: Path) -> tuple[float, float, float]:
    """Files per second once every actor is at work: files finished between the moment the
    last actor began its first file and the moment the first actor ended its last; and the
    median time an actor sat idle between two files, and the seconds from the first actor's
    first file to the last actor's (the pool coming up)."""
    import json

    spans: dict[int, list[tuple[float, float]]] = {}
    for path in root.glob("*.json"):  # the outputs, not the store's copies
        pid, began, ended = json.loads(path.read_text())["bench"]
        spans.setdefault(pid, []).append((began, ended))
    start = max(min(s)[0] for s in spans.values())
    end = min(max(s)[1] for s in spans.values())
    done = sum(start < e <= end for s in spans.values() for _, e in s)
    ordered = [sorted(s) for s in spans.values()]
    idle = [b[0] - a[1] for s in ordered for a, b in itertools.pairwise(s)]
    first = min(min(s)[0] for s in spans.values())
    if end <= start:
        raise SystemExit(f"the pool took {start - first:.0f} s to come up: raise --duration")
    return done / (end - start), statistics.median(idle), start - first


def ratio(files: int, runs: int) -> None:
    sys.path.insert(0, str(REPO))
    from tests.kit import three_minutes_of_speech

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    source = work / "source"
    source.mkdir()
    audio = sum(three_minutes_of_speech(source / f"talk {i}.wav", lead=0.1 * (i + 1))
                for i in range(files))  # fmt: skip
    cli = [sys.executable, "-m", "batchscribe", "--engine", "local"]
    rows: dict[str, list[float]] = {"in-process": [], "ray": []}
    with ray_head(num_cpus=2) as head:
        for run in range(runs):
            for name, extra in (("in-process", []), ("ray", ["--ray", head.address])):
                folder = work / f"{name}-{run}"
                shutil.copytree(source, folder)
                wall, _, _, _ = run_measured([*cli, str(folder), *extra], ray_env())
                rows[name].append(audio / wall)
                print(f"run {run + 1} {name:10s} {wall:7.1f} s  {audio / wall:6.1f}x real time")
    local, remote = statistics.median(rows["in-process"]), statistics.median(rows["ray"])
    print(f"{files} files, {audio / 60:.1f} min of audio; median in-process {local:.1f}x, "
          f"ray {remote:.1f}x real time; ratio {remote / local:.3f}")  # fmt: skip
    shutil.rmtree(work)


def scale(actors_list: list[int], seconds: float, duration: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    env = ray_env(BENCH_STANDIN_SECONDS=str(seconds))
    print("actors  files  files/s  ideal  of ideal  idle ms  CPU s/1k  RSS MB  ramp s")
    with ray_head(num_cpus=2) as head:
        for actors in actors_list:
            count = max(int(actors / seconds * duration), 2 * actors)
            folder = work / f"a{actors}"
            silent_wavs(folder, count)
            config = work / f"a{actors}.toml"
            config.write_text(f"[ray]\nactors = {actors}\nnum_cpus = {2 / actors}\n")
            cmd = [sys.executable, "-m", "bench.ray_scale", "coordinator", str(folder),
                   "--engine", "local", "--ray", head.address, "--config", str(config)]  # fmt: skip
            _, cpu, rss, _ = run_measured(cmd, env)
            written, _ = output_span(folder)
            rate, idle, ramp = steady_rate(folder)
            ideal = actors / seconds
            per_1k = cpu / written * 1000
            print(f"{actors:6d}  {written:5d}  {rate:7.1f}  {ideal:5.1f}  {rate / ideal:8.1%}  "
                  f"{idle * 1000:7.1f}  {per_1k:8.1f}  {rss:6.0f}  {ramp:6.0f}")  # fmt: skip
            shutil.rmtree(folder)
    shutil.rmtree(work)


def pending(counts: list[int]) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    env = ray_env(BENCH_STANDIN_SECONDS="0.0")
    print("files pending  coord wall s  coord CPU s  peak RSS MB")
    with ray_head(num_cpus=2) as head:
        for count in counts:
            folder = work / f"p{count}"
            silent_wavs(folder, count)
            config = work / "p.toml"
            config.write_text("[ray]\nactors = 8\nnum_cpus = 0.25\n")
            cmd = [sys.executable, "-m", "bench.ray_scale", "coordinator", str(folder),
                   "--engine", "local", "--ray", head.address, "--config", str(config)]  # fmt: skip
            wall, cpu, rss, _ = run_measured(cmd, env)
            print(f"{count:13d}  {wall:12.1f}  {cpu:11.1f}  {rss:11.0f}")
            shutil.rmtree(folder)
    shutil.rmtree(work)


def main() -> None:
    if sys.argv[1:2] == ["coordinator"]:
        coordinator(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("ratio")
    a.add_argument("--files", type=int, default=8)
    a.add_argument("--runs", type=int, default=2)
    b = sub.add_parser("scale")
    b.add_argument("--actors", default="8,32,128")
    b.add_argument("--seconds", type=float, default=2.0)
    b.add_argument("--duration", type=float, default=30.0, help="seconds of work per point")
    c = sub.add_parser("pending")
    c.add_argument("--files", default="1000,4000")
    args = parser.parse_args()
    if args.what == "ratio":
        ratio(args.files, args.runs)
    elif args.what == "scale":
        scale([int(n) for n in args.actors.split(",")], args.seconds, args.duration)
    else:
        pending([int(n) for n in args.files.split(",")])


if __name__ == "__main__":
    main()
