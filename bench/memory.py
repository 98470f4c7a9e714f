"""Peak RSS and wall time of the local engine against whisper-ctranslate2 and faster-whisper.

    pip install -e '.[local]'
    python bench/memory.py clips --runs 2     # 20 distinct clips: batchscribe plans vs wc2
    python bench/memory.py podcast --runs 2   # the 3-minute podcast: batchscribe vs direct
    python bench/memory.py long --runs 1      # the podcast looped to 2 hours: the same
    python bench/memory.py silence --runs 1   # 2 hours of silence (decoding and VAD only)
    python bench/memory.py clips --before /tmp/old  # also an older tree (git archive REV | tar -x)
    python bench/memory.py clips --variant t4=MALLOC_MMAP_THRESHOLD_=4194304  # also under an env

whisper-ctranslate2 is installed by this script in its own venv, bench/out/wc2-venv (gitignored).
Every contender is a fresh process measured by bench/common.measure (peak RSS of the process,
wall seconds); the runs alternate contender by contender, so a load weighs on all alike. All use
the default model (Whisper base, joined into $XDG_CACHE_HOME/batchscribe/models/whisper-base/),
int8, VAD, beam 5, word timestamps, 2 threads in all (whisper-ctranslate2 also without word
timestamps, its own default). batchscribe runs under each [local]
plan given (`workers x threads`); "direct" is faster-whisper called as batchscribe calls it
(`transcribe_options`), one file at a time, on the whole file (decode_audio).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import PODCAST, looped, twenty_distinct  # noqa: E402
from bench.common import measure  # noqa: E402
from tests.wer import wer  # noqa: E402

WC2_VENV = REPO / "bench" / "out" / "wc2-venv"
DIRECT = """
import sys
from faster_whisper import WhisperModel
from batchscribe.config import Settings
from batchscribe.engines.local.options import transcribe_options
model_dir, threads, out, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
for path in files:
    segments, info = model.transcribe(path, **transcribe_options(Settings().local()))
    text = " ".join(s.text.strip() for s in segments)
    open(out + "/" + path.rsplit("/", 1)[-1] + ".txt", "w").write(text + "\\n")
"""


def silent(path: Path, seconds: float) -> Path:
    """`seconds` of digital silence as a 16 kHz mono WAV, written block by block."""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for _ in range(int(seconds)):
            out.writeframes(bytes(32000))
    return path


def wc2() -> str:
    """whisper-ctranslate2 in its own venv, installed on first use."""
    exe = WC2_VENV / "bin" / "whisper-ctranslate2"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(WC2_VENV)], check=True)
        pip = [str(WC2_VENV / "bin" / "pip"), "install", "-q", "whisper-ctranslate2"]
        subprocess.run(pip, check=True)
    return str(exe)


def model_dir() -> str:
    from batchscribe.engines.local.models import choose, locate

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return locate(choose(None), cache=cache)


def contenders(
    tmp: Path,
    files: list[Path],
    plans: list[str],
    with_wc2: bool,
    before: Path | None = None,
    variants: tuple[str, ...] = (),
) -> dict:
    """name -> (command, environment, folder where `<file name>.txt` lands). `before`: another
    source tree of batchscribe (an older commit, `git archive`), run beside this one per plan;
    `variants`: `LABEL=NAME=VALUE`, this tree again per plan with NAME=VALUE in its environment
    (glibc's malloc settings, say)."""
    out: dict[str, tuple[list[str], dict[str, str], Path]] = {}
    trees: list[tuple[str, Path | None, dict[str, str]]] = [("", None, {})]
    trees += [(" before", before, {})] if before else []
    for variant in variants:
        label, name, value = variant.split("=", 2)
        trees.append((f" {label}", None, {name: value}))
    for plan, (label, tree, extra) in ((p, t) for p in plans for t in trees):
        workers, threads = plan.split("x")
        config = tmp / f"config-{plan}"
        (config / "batchscribe").mkdir(parents=True, exist_ok=True)
        (config / "batchscribe" / "config.toml").write_text(
            f"[local]\nworkers = {workers}\nthreads = {threads}\n"
        )
        env = {**os.environ, **extra, "XDG_CONFIG_HOME": str(config), "ASSEMBLYAI_API_KEY": ""}
        if tree:
            env["PYTHONPATH"] = str(tree)  # ahead of the editable install (-P: not the cwd)
        folder = tmp / f"bs-{plan}{label.strip()}"
        python = [sys.executable, "-P"] if tree else [sys.executable]
        cmd = [*python, "-m", "batchscribe", str(folder), "-q", "--formats", "txt"]
        out[f"batchscribe {plan}{label}"] = (cmd, env, folder)
    direct = tmp / "direct"
    out["faster-whisper direct 1x2"] = (
        [sys.executable, "-c", DIRECT, model_dir(), "2", str(direct), *map(str, files)],
        {**os.environ, "PYTHONPATH": str(REPO)},
        direct,
    )
    if with_wc2:
        folder = tmp / "wc2"
        cmd = [
            wc2(),
            *map(str, files),
            "--model_directory",
            model_dir(),
            "--compute_type",
            "int8",
            "--device",
            "cpu",
            "--threads",
            "2",
            "--beam_size",
            "5",
            "--vad_filter",
            "True",
            "--output_format",
            "txt",
            "--verbose",
            "False",
        ]
        # with word timestamps (batchscribe's default output needs them), and without (its own
        # default, what the issue measured): one folder each
        words = [*cmd, "--word_timestamps", "True", "--output_dir", str(folder)]
        out["whisper-ctranslate2 1x2"] = (words, dict(os.environ), folder)
        bare = tmp / "wc2-no-words"
        cmd = [*cmd, "--word_timestamps", "False", "--output_dir", str(bare)]
        out["whisper-ctranslate2 1x2, no word times"] = (cmd, dict(os.environ), bare)
    return out


def text_of(name: str, folder: Path, source: Path) -> str:
    if name.startswith("batchscribe"):
        return source.with_suffix(".txt").read_text()
    if name.startswith("whisper-ctranslate2"):
        return (folder / source.stem).with_suffix(".txt").read_text()
    return (folder / f"{source.name}.txt").read_text()


def bench(
    tmp: Path,
    clips: list[tuple[Path, str | None]],
    plans: list[str],
    runs: int,
    with_wc2: bool,
    before: Path | None = None,
    variants: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
) -> list[dict]:
    files = [path for path, _ in clips]
    found = contenders(tmp, files, plans, with_wc2, before, variants)
    found = {name: how for name, how in found.items() if not any(s in name for s in skip)}
    seen: dict[str, dict] = {name: {"s": [], "cpu": [], "rss": [], "load": []} for name in found}
    for turn in range(runs):
        names = list(found) if turn % 2 == 0 else list(reversed(found))
        for name in names:
            cmd, env, folder = found[name]
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            if name.startswith("batchscribe"):  # outputs land next to the sources
                for path in files:
                    shutil.copyfile(path, folder / path.name)
            run = measure(cmd, env)
            seen[name]["s"].append(round(run.seconds, 1))
            seen[name]["cpu"].append(round(run.cpu_s, 1))  # user + sys: less swayed by load
            seen[name]["rss"].append(round(run.rss_mb))
            seen[name]["load"].append(round(os.getloadavg()[0], 1))
            print(name, seen[name], file=sys.stderr, flush=True)
    rows = []
    refs = [(path, text) for path, text in clips if text]
    for name, (_, _, folder) in found.items():
        sources = [folder / p.name if name.startswith("batchscribe") else p for p, _ in refs]
        hyps = [text_of(name, folder, s) for s in sources]
        rows.append(
            {
                "contender": name,
                **seen[name],
                "median_s": statistics.median(seen[name]["s"]),
                "peak_rss_mb": max(seen[name]["rss"]),
                "wer": round(wer([t for _, t in refs], hyps), 3) if refs else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", choices=["clips", "podcast", "long", "silence"])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--plans", default="1x2,2x1", help="batchscribe's workers x threads")
    parser.add_argument("--no-wc2", action="store_true")
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--before", type=Path, help="an older batchscribe source tree, run too")
    parser.add_argument(
        "--variant", action="append", default=[], help="LABEL=NAME=VALUE: this tree, NAME=VALUE set"
    )
    parser.add_argument(
        "--skip", action="append", default=[], help="leave out the contenders whose name has this"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.work == "clips":
            clips = twenty_distinct(tmp / "clips")
        elif args.work == "podcast":
            clips = [(PODCAST, None)]
        elif args.work == "long":
            clips = [(looped(tmp / "two-hours.wav", args.hours * 3600), None)]
        else:
            clips = [(silent(tmp / "silence.wav", args.hours * 3600), None)]
        rows = bench(
            tmp,
            clips,
            args.plans.split(","),
            args.runs,
            with_wc2=args.work == "clips" and not args.no_wc2,
            before=args.before,
            variants=tuple(args.variant),
            skip=tuple(args.skip),
        )
    for row in rows:
        print(
            f"{row['contender']:28} median {row['median_s']:7.1f} s  peak RSS "
            f"{row['peak_rss_mb']:5} MB  WER {row['wer']}  runs {row['s']} cpu {row['cpu']} "
            f"load {row['load']}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
