"""--watch over many arrivals: latency from arrival to transcript, and memory over time.

    python -m bench.watch --arrivals 2000 --rate 20

`batchscribe DIR --watch` runs against the fake API (no processing delay) while recordings
arrive one by one at `--rate` a second. For each, the time from its arrival (written and
closed) to its .txt appearing; the process's RSS after 100 and after all arrivals are done.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakeapi import API_KEY, FakeServer  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arrivals", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    with FakeServer() as fake, tempfile.TemporaryDirectory() as work:
        root = Path(work) / "inbox"
        root.mkdir()
        config = Path(work) / "c.toml"
        config.write_text(f"[watch]\nsettle = {args.settle}\n")
        log = Path(work) / "watch.log"
        env = {**os.environ, "ASSEMBLYAI_API_KEY": API_KEY, "ASSEMBLYAI_BASE_URL": fake.url}
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "batchscribe", str(root), "--watch", "--config",
                 str(config), "--concurrency", "8"],
                env=env, stdout=subprocess.DEVNULL, stderr=out,
            )  # fmt: skip
            wait_until(lambda: "watching" in log.read_text(), 30)
            arrived: dict[str, float] = {}
            latency: dict[str, float] = {}
            rss_at_100 = None
            began = time.monotonic()
            for i in range(args.arrivals):
                due = began + i / args.rate
                while time.monotonic() < due:
                    collect(root, arrived, latency)
                    time.sleep(0.005)
                name = f"call {i:05d}"
                (root / f"{name}.wav").write_bytes(f"SPEECH:{name}\n".encode() + os.urandom(256))
                arrived[name] = time.monotonic()
                if rss_at_100 is None and len(latency) >= 100:
                    rss_at_100 = rss_mb(proc.pid)
            wait_until(lambda: collect(root, arrived, latency) >= args.arrivals, 120)
            rss_at_end = rss_mb(proc.pid)
            proc.terminate()
            proc.wait(timeout=30)
        values = sorted(latency.values())
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"{args.arrivals} arrivals at {args.rate:g}/s, settle {args.settle:g} s: latency "
              f"median {statistics.median(values):.2f} s, p95 {p95:.2f} s, max {values[-1]:.2f} s; "
              f"RSS after 100: {rss_at_100:.1f} MB, after {args.arrivals}: {rss_at_end:.1f} MB; "
              f"{fake.api.transcript_count} transcripts, "
              f"{fake.api.request_count} requests")  # fmt: skip


def collect(root: Path, arrived: dict[str, float], latency: dict[str, float]) -> int:
    """Note the arrival-to-transcript time of each new .txt; the count so far."""
    now = time.monotonic()
    for entry in os.scandir(root):
        stem, _, ext = entry.name.rpartition(".")
        if ext == "txt" and stem in arrived and stem not in latency:
            latency[stem] = now - arrived[stem]
    return len(latency)


if __name__ == "__main__":
    main()
