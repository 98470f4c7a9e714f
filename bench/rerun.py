"""Re-run of an already-transcribed folder: wall time and requests (target: 0 requests, < 1 s).

    python bench/rerun.py --files 1000 --runs 5

Builds N placeholder recordings in nested folders, transcribes them once for real through the
fake AssemblyAI API (tests/fakeapi.py) on 127.0.0.1 -- or, with --fill, writes the journal and
outputs directly, which is what 50,000 files need -- then times `batchscribe` re-runs as
subprocesses and reports the median.
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

from batchscribe.fingerprint import Fingerprint  # noqa: E402
from batchscribe.output.names import output_paths  # noqa: E402
from batchscribe.state.journal import Journal  # noqa: E402
from tests.fakeapi import API_KEY, FakeServer  # noqa: E402

FILES_PER_FOLDER = 100


def make_files(root: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        folder = root / f"batch-{i // FILES_PER_FOLDER:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"call {i:06d}.wav"
        path.write_bytes(f"SPEECH:placeholder number {i}\n".encode())
        paths.append(path)
    return paths


def fill_journal(root: Path, paths: list[Path]) -> None:
    """What a finished run leaves behind, written directly (fast for 50,000 files)."""
    journal = Journal(root)
    with journal.batch():
        fill_rows(journal, root, paths)
    journal.close()


def fill_rows(journal: Journal, root: Path, paths: list[Path]) -> None:
    for path in paths:
        key = path.relative_to(root).as_posix()
        outputs = output_paths(path, clash=False)
        for out in outputs.values():
            out.write_text("placeholder\n")
        journal.start(
            key, Fingerprint.of(path.stat()), "assemblyai", [p.name for p in outputs.values()]
        )
        journal.submitted(key, f"t-{key}")
        journal.done(key)


def batchscribe(root: Path, env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "batchscribe", str(root), "--concurrency", "8"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, proc.returncode, proc.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fill", action="store_true", help="fill the journal directly")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
        root = Path(tmp) / "recordings"
        paths = make_files(root, args.files)
        env = {
            **os.environ,
            "ASSEMBLYAI_API_KEY": API_KEY,
            "ASSEMBLYAI_BASE_URL": server.url,
            "XDG_CONFIG_HOME": tmp,
        }
        if args.fill:
            fill_journal(root, paths)
        else:
            seconds, code, last = batchscribe(root, env)
            print(f"first run: {seconds:.2f}s exit {code}: {last}")
        server.api.reset_counters()
        times = []
        for _ in range(args.runs):
            seconds, code, last = batchscribe(root, env)
            assert code == 0, last
            times.append(seconds)
        print(
            f"re-run of {args.files} done files: median {statistics.median(times):.3f}s "
            f"(min {min(times):.3f}s, max {max(times):.3f}s, {args.runs} runs), "
            f"{server.api.request_count} requests; last line: {last}"
        )


if __name__ == "__main__":
    main()
