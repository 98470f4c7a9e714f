"""CPU instructions per file, counted by valgrind: a CPU figure that a busy machine cannot blur.

    python -m bench.instructions --files 50 200
    python -m bench.instructions --files 50 200 --tree /path/to/another/checkout

CPU seconds move with the load on a shared machine (caches, frequency, the other tenants);
the number of instructions a run executes does not. Each run is `batchscribe FOLDER` under
`valgrind --tool=callgrind` (every thread counted) against the fake AssemblyAI API with no
processing delay, on fresh folders of two sizes: the difference divided by the difference in
files is the cost of one more file, start-up (imports, the model of nothing) left out.
Valgrind makes the run 50-100 times slower; the figures are instruction counts, not time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import environment, make_folder  # noqa: E402
from tests.fakeapi import FakeServer  # noqa: E402


def instructions(tree: Path, folder: Path, env: dict[str, str]) -> int:
    """Instructions `batchscribe FOLDER` executes, all threads together."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           "-m", "batchscribe", str(folder), "-q", "--concurrency", "8"]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"batchscribe exited {proc.returncode}: {proc.stderr[-2000:]}")
    assert len(list(folder.glob("*.txt"))) == len(list(folder.glob("*.wav")))
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs=2, default=[50, 200])
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to count")
    args = parser.parse_args()
    tree, (small, large) = args.tree.resolve(), sorted(args.files)
    with tempfile.TemporaryDirectory() as tmp_name, FakeServer() as server:
        tmp = Path(tmp_name)
        env = environment(tmp, server.url)
        counts = {}
        for files in (small, large):
            folder = tmp / f"f{files}" / "r"
            make_folder(folder, files, args.size)
            counts[files] = instructions(tree, folder, env)
            print(f"{files} files: {counts[files] / 1e9:.3f} G instructions")
        per_file = (counts[large] - counts[small]) / (large - small)
        print(f"tree {tree}: {per_file / 1e6:.2f} M instructions per file")


if __name__ == "__main__":
    main()
