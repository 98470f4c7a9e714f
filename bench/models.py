"""The installable models compared, multilingual decoding's cost, and the batched pipeline.

    pip install -e '.[local]'
    python bench/models.py --runs 2 > /tmp/models.json     # a table on stderr, JSON on stdout

Each measurement is a fresh process (`python bench/models.py --one SPEC`), so load time and
peak RSS are each contender's own; runs alternate contender by contender (A B A B), so a load
on a shared machine weighs on all alike. Audio:
- the English corpus (examples/recordings, manifest.json): pooled WER;
- the real podcast (/work/shared/corpus-real/fsp-orm.mp3, 183 s, no reference transcript):
  speed as x real time, and how far each model's text is from the other's;
- examples/languages: French, German, Spanish, Italian (detected language, pooled WER).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.wer import wer  # noqa: E402

ENGLISH = REPO / "examples" / "recordings"
LANGUAGES = REPO / "examples" / "languages"
PODCAST = Path("/work/shared/corpus-real/fsp-orm.mp3")


def corpus(folder: Path) -> list[tuple[str, str, str | None]]:
    """(path, reference text, language) of each clip of a manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return [
        (str(folder / c["path"]), c["text"], c.get("language", "en")) for c in manifest["clips"]
    ]


def one(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the model as batchscribe does, transcribe the files, report times and results."""
    from batchscribe.config import Settings
    from batchscribe.engines.local.engine import whisper_model
    from batchscribe.engines.local.options import to_transcript_data, transcribe_options
    from batchscribe.output.subtitles import cues
    from batchscribe.transcript import Transcript

    settings = Settings(model=spec["model"], multilingual=spec.get("multilingual", "auto"),
                        batch_size=spec.get("batch_size", 0))  # fmt: skip
    started = time.monotonic()
    model = whisper_model(settings.model, cache_dir=Path.home() / ".cache",
                          batch_size=settings.batch_size, device="cpu", compute_type="int8",
                          cpu_threads=spec["threads"], num_workers=spec["workers"])  # fmt: skip
    loaded = time.monotonic() - started
    options = transcribe_options(settings.local())

    def transcribe(path: str) -> dict[str, Any]:
        segments, info = model.transcribe(path, **options)
        segments = list(segments)
        data = to_transcript_data(segments, info, model="m", detected=True)
        lengths = [(c.end_ms - c.start_ms) / 1000 for c in cues(Transcript(data))]
        return {"path": path, "text": data["text"], "language": data["language_code"],
                "confidence": data["confidence"], "segments": len(segments),
                "words": len(data["words"]), "duration": info.duration,
                "cue_seconds": lengths,
                "speech_seconds": sum(s.end - s.start for s in segments)}  # fmt: skip

    started = time.monotonic()
    with ThreadPoolExecutor(spec["workers"]) as pool:
        files = list(pool.map(transcribe, spec["files"]))
    decoded = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"load_s": round(loaded, 2), "decode_s": round(decoded, 2), "peak_rss_mb": round(peak),
            "files": files}  # fmt: skip


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


def alternate(specs: dict[str, dict[str, Any]], runs: int) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in specs}
    for run in range(runs):
        for name, spec in specs.items():
            results[name].append(measure(spec))
            r = results[name][-1]
            print(f"  run {run + 1} {name}: load {r['load_s']}s decode {r['decode_s']}s "
                  f"rss {r['peak_rss_mb']} MB", file=sys.stderr, flush=True)  # fmt: skip
    return results


def pooled(result: dict[str, Any], clips: list[tuple[str, str, str | None]]) -> float:
    texts = {f["path"]: f["text"] for f in result["files"]}
    return round(wer([c[1] for c in clips], [texts[c[0]] for c in clips]), 3)


def median(results: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in results), 2)


def models_table(runs: int) -> dict[str, Any]:
    english, languages = corpus(ENGLISH), corpus(LANGUAGES)
    table: dict[str, Any] = {}
    for plan, files, workers, threads in (
        ("english", [c[0] for c in english], 2, 1),
        ("podcast", [str(PODCAST)], 1, 2),
        ("languages", [c[0] for c in languages], 2, 1),
    ):
        print(f"{plan}:", file=sys.stderr)
        specs = {m: {"model": m, "files": files, "workers": workers, "threads": threads}
                 for m in ("tiny.en", "base")}  # fmt: skip
        table[plan] = alternate(specs, runs)
    out: dict[str, Any] = {}
    for m in ("tiny.en", "base"):
        pod = table["podcast"][m]
        out[m] = {
            "english_wer": pooled(table["english"][m][0], english),
            "languages_wer": pooled(table["languages"][m][0], languages),
            "languages": {
                Path(f["path"]).name: (f["language"], f["confidence"])
                for f in table["languages"][m][0]["files"]
            },
            "english_confidence": [f["confidence"] for f in table["english"][m][0]["files"]],
            "podcast_decode_s": median(pod, "decode_s"),
            "podcast_x_realtime": round(183.0 / median(pod, "decode_s"), 1),
            "english_folder_s": median(table["english"][m], "decode_s"),
            "load_s": median(pod, "load_s"),
            "peak_rss_mb": median(pod, "peak_rss_mb"),
            "podcast_text": pod[0]["files"][0]["text"],
            "podcast_confidence": pod[0]["files"][0]["confidence"],
        }
    out["podcast_tiny_vs_base_wer"] = round(
        wer([out["base"]["podcast_text"]], [out["tiny.en"]["podcast_text"]]), 3
    )
    return out


def multilingual_cost(runs: int) -> dict[str, Any]:
    english = corpus(ENGLISH)
    files = [c[0] for c in english] + [str(PODCAST)]
    specs = {f"multilingual {m}": {"model": "base", "files": files, "workers": 1, "threads": 2,
                                   "multilingual": m} for m in ("on", "off")}  # fmt: skip
    print("multilingual:", file=sys.stderr)
    results = alternate(specs, runs)
    out = {}
    for name, rs in results.items():
        texts = {f["path"]: f["text"] for f in rs[0]["files"]}
        out[name] = {"decode_s": median(rs, "decode_s"),
                     "english_wer": round(wer([c[1] for c in english],
                                              [texts[c[0]] for c in english]), 3),
                     "podcast_words": rs[0]["files"][-1]["words"],
                     "podcast_text": texts[str(PODCAST)]}  # fmt: skip
    out["podcast_on_vs_off_wer"] = round(
        wer([out["multilingual off"]["podcast_text"]], [out["multilingual on"]["podcast_text"]]),
        3,
    )
    return out


def batched(runs: int) -> dict[str, Any]:
    english = corpus(ENGLISH)
    out: dict[str, Any] = {}
    for plan, files, sequential in (
        ("podcast", [str(PODCAST)], (1, 2)),
        ("clips", [c[0] for c in english] * 2, (2, 1)),
    ):
        specs = {
            "sequential": {"model": "base", "files": files, "workers": sequential[0],
                           "threads": sequential[1]},
            "batched 8": {"model": "base", "files": files, "workers": 1, "threads": 2,
                          "batch_size": 8},
        }  # fmt: skip
        print(f"batched, {plan}:", file=sys.stderr)
        results = alternate(specs, runs)
        for name, rs in results.items():
            files_out = rs[0]["files"]
            cue_lengths = [s for f in files_out for s in f["cue_seconds"]]
            row = {"decode_s": median(rs, "decode_s"),
                   "words": sum(f["words"] for f in files_out),
                   "segments": sum(f["segments"] for f in files_out),
                   "cue_seconds_median": round(statistics.median(cue_lengths), 2),
                   "cue_seconds_max": round(max(cue_lengths), 2),
                   "speech_seconds": round(sum(f["speech_seconds"] for f in files_out), 1),
                   }  # fmt: skip
            if plan == "clips":
                texts = {f["path"]: f["text"] for f in files_out[:5]}
                row["wer"] = round(wer([c[1] for c in english], [texts[c[0]] for c in english]), 3)
            else:
                row["text"] = files_out[0]["text"]
            out[f"{plan} {name}"] = row
    out["podcast batched vs sequential wer"] = round(
        wer([out["podcast sequential"]["text"]], [out["podcast batched 8"]["text"]]), 3
    )
    return out


def plans(runs: int) -> dict[str, Any]:
    """One file per core (2 workers x 1 thread) against one file at a time on both cores."""
    english = corpus(ENGLISH)
    files = [c[0] for c in english] * 2
    specs = {"2 workers x 1 thread": {"model": "base", "files": files, "workers": 2, "threads": 1},
             "1 worker x 2 threads": {"model": "base", "files": files, "workers": 1,
                                      "threads": 2}}  # fmt: skip
    print("plans:", file=sys.stderr)
    return {
        name: {"decode_s": median(rs, "decode_s")} for name, rs in alternate(specs, runs).items()
    }


def folder(runs: int) -> dict[str, Any]:
    """A folder of clips, alternated: the default plan, batched, and one file on both cores."""
    files = [c[0] for c in corpus(ENGLISH)] * 2
    specs = {
        "sequential 2x1": {"model": "base", "files": files, "workers": 2, "threads": 1},
        "batched 8": {"model": "base", "files": files, "workers": 1, "threads": 2,
                      "batch_size": 8},
        "sequential 1x2": {"model": "base", "files": files, "workers": 1, "threads": 2},
    }  # fmt: skip
    print("folder:", file=sys.stderr)
    return {name: [r["decode_s"] for r in rs] for name, rs in alternate(specs, runs).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", choices=["models", "multilingual", "batched", "plans", "folder"])
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    parts = {"models": models_table, "multilingual": multilingual_cost, "batched": batched,
             "plans": plans, "folder": folder}  # fmt: skip
    report = {"machine": f"{os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d %H:%M"),
              "load_average_at_start": os.getloadavg()}  # fmt: skip
    for name, part in parts.items():
        if args.only in (None, name):
            report[name] = part(args.runs)
            print(json.dumps({name: report[name]}, ensure_ascii=False), file=sys.stderr)
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
