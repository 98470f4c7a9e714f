"""batchscribe under the API's real limits: a shared rate limit, a dead network, a fault mix.

    python -m bench.limits shared --files 14 --limit 3 --retry-after 1
    python -m bench.limits unreachable --files 40
    python -m bench.limits faults --files 20 --runs 10

`shared`: two runs at once, on two folders, with one key, against a fake that allows `--limit`
requests a second over all clients. `unreachable`: the API's URL points at a closed port, then
the next run against the fake. `faults`: 15% 5xx, 10% uploads cut off mid-body, 10% transcripts
ending in `error`, 15 requests/s with `Retry-After`, `--runs` times in a row.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakeapi import API_KEY, NOT_AUDIO_ERROR, FakeServer  # noqa: E402

FAST_POLL = "[assemblyai]\npoll_interval = 1\n"


def recordings(root: Path, count: int, tag: str, size: int = 4096) -> None:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"{i}.mp3").write_bytes(f"SPEECH:{tag} {i}\n".encode() + os.urandom(size))


def batchscribe(root: Path, url: str, config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "ASSEMBLYAI_API_KEY": API_KEY, "ASSEMBLYAI_BASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "batchscribe", str(root), "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def shared(args: argparse.Namespace, work: Path) -> None:
    with FakeServer() as fake:
        fake.api.rate_limit, fake.api.retry_after = args.limit, args.retry_after
        config = work / "c.toml"
        config.write_text(FAST_POLL)
        for name in ("one", "two"):
            recordings(work / name, args.files, name)
        began = time.monotonic()
        runs = [batchscribe(work / name, fake.url, config) for name in ("one", "two")]
        errors = [run.communicate()[1] for run in runs]
        wall = time.monotonic() - began
        api = fake.api
        paid_twice = sum(1 for n in api.transcripts_by_digest.values() if n > 1)
        print(f"exit {[run.returncode for run in runs]}, {wall:.1f} s, {api.request_count} "
              f"requests, {api.faults['429']} answered 429, {api.transcript_count} transcripts "
              f"for {2 * args.files} files, paid twice: {paid_twice}, "
              f"tracebacks: {sum(e.count('Traceback') for e in errors)}")  # fmt: skip


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable(args: argparse.Namespace, work: Path) -> None:
    config = work / "c.toml"
    config.write_text(FAST_POLL)
    recordings(work / "r", args.files, "r")
    url = f"http://127.0.0.1:{closed_port()}"
    began = time.monotonic()
    run = batchscribe(work / "r", url, config)
    stderr = run.communicate()[1]
    wall = time.monotonic() - began
    lines = [line for line in stderr.splitlines() if line.strip()]
    print(f"unreachable: exit {run.returncode} in {wall:.1f} s, {len(lines)} line(s):")
    for line in lines:
        print(f"    {line}")
    with FakeServer() as fake:
        began = time.monotonic()
        again = batchscribe(work / "r", fake.url, config)
        again.communicate()
        api = fake.api
        print(f"API back: exit {again.returncode} in {time.monotonic() - began:.1f} s, "
              f"{api.upload_count} uploads, {api.transcript_count} transcripts")  # fmt: skip


def faults(args: argparse.Namespace, work: Path) -> None:
    walls = []
    for attempt in range(args.runs):
        with FakeServer() as fake:
            api = fake.api
            api.seed = attempt
            api.error_rate, api.cut_upload_rate, api.error_transcript_rate = 0.15, 0.1, 0.1
            api.rate_limit, api.retry_after = 15, 1
            config = work / f"c{attempt}.toml"
            config.write_text(FAST_POLL)
            root = work / f"run{attempt}"
            recordings(root, args.files, f"run{attempt}", size=300_000)
            began = time.monotonic()
            run = batchscribe(root, fake.url, config)
            stderr = run.communicate()[1]
            walls.append(time.monotonic() - began)
            failed = [line for line in stderr.splitlines() if " failed  " in line]
            by_api = all(NOT_AUDIO_ERROR in line for line in failed)
            done = len(list(root.glob("*.txt")))
            expected_exit = 1 if failed else 0
            verdict = "ok" if by_api and run.returncode == expected_exit else "WRONG"
            print(f"run {attempt + 1}: exit {run.returncode}, {done} done, {len(failed)} failed "
                  f"(by the API: {by_api}), faults {dict(api.faults)}, {api.request_count} "
                  f"requests, tracebacks {stderr.count('Traceback')}, {walls[-1]:.1f} s: "
                  f"{verdict}")  # fmt: skip
    print(f"median {statistics.median(walls):.1f} s over {len(walls)} runs")


MODES: dict[str, Callable[[argparse.Namespace, Path], None]] = {
    "shared": shared,
    "unreachable": unreachable,
    "faults": faults,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--files", type=int, default=14)
    parser.add_argument("--limit", type=float, default=3.0)
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        MODES[args.mode](args, Path(work))


if __name__ == "__main__":
    main()
