"""Where a `batchscribe serve` run's time goes, against `batchscribe DIR` on the same 20
clips (bench/serve.py's): the server's start, work and stop in wall seconds, and the CPU
seconds of each process (read from /proc for the server, getrusage for the folder run).
CPU seconds hardly move with the machine's load; wall seconds do.

    python -m bench.serve_phases [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.serve import _through, make_clips
from tests.serveproc import start


def server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_round(clips: list[Path], state: Path) -> str:
    began = time.perf_counter()
    served = start(state, "--concurrency", "2")
    up = time.perf_counter()
    with httpx.Client() as http, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: _through(http, served, c), clips))
    worked = time.perf_counter()
    cpu = server_cpu_s(served.proc.pid)
    served.stop(signal.SIGTERM)
    end = time.perf_counter()
    return (f"serve: up {up - began:.2f} work {worked - up:.2f} stop {end - worked:.2f} "
            f"total {end - began:.2f} s, server CPU {cpu:.1f} s")  # fmt: skip


def dir_round(clips: list[Path], target: Path) -> str:
    shutil.copytree(clips[0].parent, target)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    cmd = ["batchscribe", str(target), "--engine", "local", "--model", "tiny.en",
           "--concurrency", "2", "-q"]  # fmt: skip
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return f"dir:   total {wall:.2f} s, CPU {cpu:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        clips = make_clips(tmp / "clips")
        for n in range(args.rounds):
            for line in (serve_round(clips, tmp / f"state{n}"), dir_round(clips, tmp / f"d{n}")):
                print(f"{line}  load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
