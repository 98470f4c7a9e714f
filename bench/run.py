"""batchscribe against the official SDK and the tutorial loop, on one fake API; and at scale.

    pip install -e '.[test,bench]'
    python -m bench.run folder --files 40 --processing 2 --runs 3
    python -m bench.run scale --files 500 --processing 2
    python -m bench.run big --gib 2
    python -m bench.run budget --pending 1000 --minutes 10
    python -m bench.run scale --tree /tmp/older-checkout   # batchscribe from another tree

Every contender is a subprocess against the same fake AssemblyAI API (tests/fakeapi.py) on
127.0.0.1, with a fixed server-side processing time; the fake counts requests and concurrent
uploads, and a wrapper process reads each contender's peak RSS. Ratios are taken within one
invocation, medians over --runs.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import measure, measured  # noqa: E402
from tests.fakeapi import API_KEY, FakeServer  # noqa: E402

SDK = """
import sys, glob, assemblyai as aai
folder, url, key = sys.argv[1:4]
aai.settings.base_url = url
aai.settings.api_key = key
files = sorted(glob.glob(folder + "/*.wav"))
# The same request batchscribe sends by default (the spec requires speech_models).
config = aai.TranscriptionConfig(speech_models=["universal-3-pro", "universal-2"])
group = aai.Transcriber(config=config).transcribe_group(files)
for path, transcript in zip(files, group.transcripts):
    open(path[:-4] + ".txt", "w").write((transcript.text or "") + "\\n")
"""

TUTORIAL = """
import sys, glob, time, requests
folder, url, key = sys.argv[1:4]
headers = {"authorization": key}
for path in sorted(glob.glob(folder + "/*.wav")):
    with open(path, "rb") as f:
        upload_url = requests.post(url + "/v2/upload", headers=headers, data=f).json()["upload_url"]
    tid = requests.post(url + "/v2/transcript", headers=headers,
                        json={"audio_url": upload_url,
                              "speech_models": ["universal-3-pro", "universal-2"]}).json()["id"]
    while True:
        result = requests.get(url + "/v2/transcript/" + tid, headers=headers).json()
        if result["status"] in ("completed", "error"):
            break
        time.sleep(1)
    open(path[:-4] + ".txt", "w").write((result.get("text") or "") + "\\n")
"""


def make_folder(folder: Path, count: int, size: int) -> int:
    """`count` synthetic recordings of `size` bytes, each different; returns total bytes."""
    folder.mkdir(parents=True)
    for i in range(count):
        head = f"SPEECH:synthetic recording number {i}\n".encode()
        (folder / f"rec-{i:05d}.wav").write_bytes(head + os.urandom(size - len(head)))
    return count * size


def contender_cmd(name: str, folder: Path, url: str, concurrency: int) -> list[str]:
    if name == "batchscribe":
        return [
            sys.executable,
            "-m",
            "batchscribe",
            str(folder),
            "--concurrency",
            str(concurrency),
            "-q",
        ]
    script = SDK if name == "sdk" else TUTORIAL
    return [sys.executable, "-c", script, str(folder), url, API_KEY]


def run_one(
    server: FakeServer,
    name: str,
    source: Path,
    tmp: Path,
    env: dict[str, str],
    concurrency: int,
    tree: Path = REPO,
) -> dict[str, float]:
    """One run of a contender; batchscribe's is imported from `tree` (its cwd and PYTHONPATH)."""
    work = tmp / f"work-{name}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    server.api.reset_counters()
    cmd = contender_cmd(name, work, server.url, concurrency)
    if name == "batchscribe":
        run = measure(cmd, {**env, "PYTHONPATH": str(tree)}, cwd=tree)
    else:
        run = measure(cmd, env)
    files = len(list(work.glob("*.wav")))
    assert len(list(work.glob("*.txt"))) == files, f"{name} left files without a transcript"
    return {
        "seconds": run.seconds,
        "cpu_s": run.cpu_s,
        "rss_mb": run.rss_mb,
        "requests_per_file": server.api.request_count / files,
        "peak_uploads": server.api.peak_uploads_in_flight,
    }


def median_row(name: str, runs: list[dict[str, float]]) -> dict[str, float | str]:
    return {
        "contender": name,
        "runs": len(runs),
        **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
        "min_s": min(r["seconds"] for r in runs),
        "max_s": max(r["seconds"] for r in runs),
    }


def print_rows(rows: list[dict[str, float | str]]) -> None:
    print(
        f"{'contender':14} {'runs':>4} {'median s':>9} {'min':>7} {'max':>7} "
        f"{'req/file':>8} {'peak up':>7} {'RSS MB':>7} {'CPU s':>6}"
    )
    for r in rows:
        print(
            f"{r['contender']:14} {r['runs']:>4} {r['seconds']:9.2f} {r['min_s']:7.2f} "
            f"{r['max_s']:7.2f} {r['requests_per_file']:8.2f} {r['peak_uploads']:7.0f} "
            f"{r['rss_mb']:7.0f} {r['cpu_s']:6.2f}"
        )


def environment(tmp: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "ASSEMBLYAI_API_KEY": API_KEY,
        "ASSEMBLYAI_BASE_URL": url,
        "XDG_CONFIG_HOME": str(tmp),
        "PYTHONPATH": str(REPO),
    }


def folder_benchmark(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, FakeServer() as server:
        tmp = Path(tmp_name)
        server.api.processing_seconds = args.processing
        make_folder(tmp / "source", args.files, args.size)
        env = environment(tmp, server.url)
        rows = []
        for name, runs in (
            ("batchscribe", args.runs),
            ("sdk", args.runs),
            ("tutorial", args.tutorial_runs),
        ):
            if runs:
                results = [
                    run_one(server, name, tmp / "source", tmp, env, args.concurrency, args.tree)
                    for _ in range(runs)
                ]
                rows.append(median_row(name, results))
        print(
            f"{args.files} files of {args.size} bytes, {args.processing}s processing each, "
            f"batchscribe --concurrency {args.concurrency}, from {args.tree.resolve()}"
        )
        print_rows(rows)
        by = {r["contender"]: float(r["seconds"]) for r in rows}
        if "sdk" in by:
            print(f"batchscribe / SDK wall time: {by['batchscribe'] / by['sdk']:.2f}x")
        if "tutorial" in by:
            print(f"tutorial / batchscribe wall time: {by['tutorial'] / by['batchscribe']:.1f}x")


def scale_benchmark(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, FakeServer() as server:
        tmp = Path(tmp_name)
        server.api.processing_seconds = args.processing
        server.api.total_upload_bytes_per_second = args.bandwidth
        total = make_folder(tmp / "source", args.files, args.size)
        env = environment(tmp, server.url)
        results = [
            run_one(server, "batchscribe", tmp / "source", tmp, env, args.concurrency, args.tree)
            for _ in range(args.runs)
        ]
        ideal = args.processing + total / args.bandwidth
        print(
            f"{args.files} files x {args.size} bytes through {args.bandwidth / 1e6:.0f} MB/s, "
            f"{args.processing}s processing: ideal {ideal:.2f}s; batchscribe from "
            f"{args.tree.resolve()}"
        )
        print_rows([median_row("batchscribe", results)])
        median = statistics.median(r["seconds"] for r in results)
        print(f"batchscribe / ideal: {median / ideal:.2f}x")


def big_file_benchmark(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, FakeServer() as server:
        tmp = Path(tmp_name)
        folder = tmp / "source"
        folder.mkdir()
        big = folder / "big.wav"
        with big.open("wb") as fh:  # sparse: the size is real, the disk blocks are not
            fh.write(b"SPEECH:one very long recording\n")
            fh.truncate(int(args.gib * 1024**3))
        env = environment(tmp, server.url)
        seconds, rss = measured(contender_cmd("batchscribe", folder, server.url, 1), env)
        print(
            f"{args.gib} GiB upload: {seconds:.1f}s, peak RSS {rss:.0f} MB, "
            f"{server.api.upload_count} upload(s)"
        )


def budget_benchmark(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, FakeServer() as server:
        tmp = Path(tmp_name)
        server.api.processing_seconds = args.minutes * 60
        make_folder(tmp / "source", args.pending, 256)
        env = environment(tmp, server.url)
        start = time.perf_counter()
        proc = subprocess.Popen(
            contender_cmd("batchscribe", tmp / "source", server.url, 8), env=env
        )
        samples: list[tuple[float, int]] = []
        while True:
            try:
                proc.wait(timeout=5)  # returns the moment the run ends
                break
            except subprocess.TimeoutExpired:
                samples.append((time.perf_counter() - start, server.api.request_count))
        wall = time.perf_counter() - start
        ended = time.monotonic()
        # the busiest 60 s of the run (samples every 5 s), and the rate while only waiting
        busiest = max(
            (n2 - n1 for (t1, n1) in samples for (t2, n2) in samples if 0 < t2 - t1 <= 60),
            default=0,
        )
        creates = args.pending * 2
        waiting = [(t, n) for t, n in samples if n > creates][2:-2]
        per_minute = [
            (n2 - n1) / (t2 - t1) * 60 for (t1, n1), (t2, n2) in itertools.pairwise(waiting)
        ]
        print(
            f"{args.pending} transcripts pending for {args.minutes} min: wall {wall:.1f}s, "
            f"{server.api.request_count} requests, "
            f"{server.api.request_count / args.pending:.2f} per file"
        )
        print(f"busiest 60 s of the run: {busiest} requests (budget 3000/min, API 4000/min)")
        if per_minute:
            print(
                f"request rate while waiting: median {statistics.median(per_minute):.0f}/min, "
                f"max {max(per_minute):.0f}/min"
            )
        # the last transcript finished `processing` seconds after it was created (fake's clock)
        last_finished = max(t.created for t in server.api.transcripts.values()) + (
            args.minutes * 60
        )
        print(f"last transcript collected {ended - last_finished:.1f}s after it finished")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="which", required=True)
    folder = sub.add_parser("folder", help="batchscribe vs SDK vs tutorial on one folder")
    folder.add_argument("--files", type=int, default=40)
    folder.add_argument("--size", type=int, default=256 * 1024)
    folder.add_argument("--processing", type=float, default=2.0)
    folder.add_argument("--concurrency", type=int, default=8)
    folder.add_argument("--runs", type=int, default=3)
    folder.add_argument("--tutorial-runs", type=int, default=1)
    folder.add_argument("--tree", type=Path, default=REPO, help="batchscribe from this checkout")
    scale = sub.add_parser("scale", help="many files against the ideal wall time")
    scale.add_argument("--files", type=int, default=500)
    scale.add_argument("--size", type=int, default=256 * 1024)
    scale.add_argument("--processing", type=float, default=2.0)
    scale.add_argument("--bandwidth", type=float, default=25e6, help="bytes per second")
    scale.add_argument("--concurrency", type=int, default=8)
    scale.add_argument("--runs", type=int, default=3)
    scale.add_argument("--tree", type=Path, default=REPO, help="batchscribe from this checkout")
    big = sub.add_parser("big", help="peak RSS while uploading one huge (sparse) file")
    big.add_argument("--gib", type=float, default=2.0)
    budget = sub.add_parser("budget", help="request rate with many transcripts pending")
    budget.add_argument("--pending", type=int, default=1000)
    budget.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    {
        "folder": folder_benchmark,
        "scale": scale_benchmark,
        "big": big_file_benchmark,
        "budget": budget_benchmark,
    }[args.which](args)


if __name__ == "__main__":
    main()
