"""Thread hand-offs per file: how often a run leaves the event loop for a thread, and why.

    python -m bench.handoffs --files 100
    python -m bench.handoffs --files 100 --tree /path/to/another/checkout   # e.g. an older commit

Each hand-off (`loop.run_in_executor`, which `asyncio.to_thread` uses too) costs tens of
microseconds of CPU in the executor machinery, the loop's self-pipe wake-up and the future
chaining, whatever the call does. This counts them in a real `batchscribe` process, without
touching the product: the subprocess patches `BaseEventLoop.run_in_executor` before it imports
batchscribe, and writes the counts (by executor and by the function handed off) as JSON when it
exits. Scenarios, each on its own folder against the fake AssemblyAI API (tests/fakeapi.py):

- `fresh`: `--files` distinct recordings, transcribed for the first time;
- `store`: the same folder with its outputs deleted: every transcript is in the store;
- `copies`: `--files` recordings that are `--files / 5` contents, five copies each;
- `local`: the example recordings (examples/recordings), the local engine (`--local`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import environment, make_folder  # noqa: E402
from tests.fakeapi import FakeServer  # noqa: E402

#: Runs `python -m batchscribe ARGS` with every hand-off counted; the counts go to the file
#: named by $HANDOFFS_OUT at exit.
COUNTING = r"""
import asyncio.base_events, atexit, collections, functools, json, os, runpy, sys, threading
counts = collections.Counter()
main_thread = threading.main_thread()

def name_of(func):
    while isinstance(func, functools.partial):
        # asyncio.to_thread hands off partial(Context.run, func, *args)
        func = func.args[0] if getattr(func.func, "__name__", "") == "run" else func.func
    return getattr(func, "__qualname__", repr(func))

real = asyncio.base_events.BaseEventLoop.run_in_executor
def counted(self, executor, func, *args):
    if threading.current_thread() is main_thread:
        where = "default" if executor is None else getattr(executor, "_thread_name_prefix", "?")
        counts[f"{where} {name_of(func)}"] += 1
    return real(self, executor, func, *args)
asyncio.base_events.BaseEventLoop.run_in_executor = counted

def dump():
    with open(os.environ["HANDOFFS_OUT"], "w") as fh:
        json.dump(dict(counts), fh)
atexit.register(dump)
sys.argv = ["batchscribe", *sys.argv[1:]]
try:
    runpy.run_module("batchscribe", run_name="__main__")
finally:
    dump()
"""


def counted_run(tree: Path, folder: Path, env: dict[str, str], *extra: str) -> Counter[str]:
    out = folder.parent / "handoffs.json"
    cmd = [sys.executable, "-c", COUNTING, str(folder), "-q", "--concurrency", "8", *extra]
    run_env = {**env, "PYTHONPATH": str(tree), "HANDOFFS_OUT": str(out)}
    proc = subprocess.run(cmd, cwd=tree, env=run_env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"batchscribe exited {proc.returncode}: {proc.stderr[-2000:]}")
    return Counter(json.loads(out.read_text()))


def report(name: str, counts: Counter[str], files: int) -> None:
    per_file = {k: v / files for k, v in counts.items()}
    journal = sum(v for k, v in per_file.items() if k.startswith("batchscribe-journal"))
    default = sum(v for k, v in per_file.items() if k.startswith("default"))
    total = sum(per_file.values())
    print(f"{name}: {total:.2f} hand-offs per file (journal thread {journal:.2f}, "
          f"asyncio.to_thread {default:.2f}, other {total - journal - default:.2f})")  # fmt: skip
    for key, value in sorted(per_file.items(), key=lambda kv: (-kv[1], kv[0])):
        if value >= 0.1:
            print(f"    {value:5.2f}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to count")
    parser.add_argument("--local", action="store_true", help="also the local engine")
    args = parser.parse_args()
    tree = args.tree.resolve()
    print(f"tree {tree}; calls made for fewer than a tenth of the files are counted, not listed")
    with tempfile.TemporaryDirectory() as tmp_name, FakeServer() as server:
        tmp = Path(tmp_name)
        env = environment(tmp, server.url)
        fresh = tmp / "fresh" / "r"
        make_folder(fresh, args.files, args.size)
        report("fresh", counted_run(tree, fresh, env), args.files)
        for output in fresh.glob("*.txt"):
            output.unlink()
        report("store", counted_run(tree, fresh, env), args.files)
        copies = tmp / "copies" / "r"
        make_folder(copies, args.files // 5, args.size)
        for original in sorted(copies.glob("*.wav")):
            for n in range(1, 5):
                shutil.copy(original, original.with_name(f"{original.stem}-copy{n}.wav"))
        report("copies", counted_run(tree, copies, env), args.files)
        if args.local:
            local = tmp / "local" / "r"
            shutil.copytree(REPO / "examples" / "recordings", local)
            local_env = {k: v for k, v in env.items() if not k.startswith("ASSEMBLYAI")}
            counts = counted_run(tree, local, local_env, "--engine", "local")
            files = len(list(local.rglob("*.txt")))
            report(f"local ({files} files)", counts, files)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
