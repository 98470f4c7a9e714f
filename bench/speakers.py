"""--speaker-labels with the local engine: how good, and what it costs (BENCHMARKS.md).

    python bench/speakers.py            # every recording: score, Whisper vs diarization time
    python bench/speakers.py --cli 3    # and whole runs with and without, 3 times each
    python bench/speakers.py --encoder campplus   # CAM++ in place of GE2E (not adopted)
    python bench/speakers.py --words-only  # without the segmentation's missed speakers
    python bench/speakers.py --alternate 1  # Whisper, words only, with segmentation: in turn
    python bench/speakers.py --telephone   # the conversations as a phone line carries them

(1) Per recording of the shared corpus-speakers set, tests/data/speakers, the one-voice clips of
the shared corpus (and corpus-hard's french.wav) and the 3-minute
fsp-orm.mp3 of the shared corpus-real set: Whisper (the default model, base, as the engine runs
it, one thread; its words cached in bench/out/speakers/, so a diarization variant reruns
alone) then the diarization (decoding the audio again, embedding, clustering; one thread),
timed apart, and the share of words given to the wrong speaker (tests/speaker_error.py).
(2) With --cli: `batchscribe FOLDER --engine local [--speaker-labels]` as fresh processes on a
copy of all of them (2 files at once, one thread each: the default on 2 cores), wall time and
peak RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from batchscribe.config import Settings  # noqa: E402
from batchscribe.engines.local.engine import whisper_model  # noqa: E402
from batchscribe.engines.local.options import to_transcript_data, transcribe_options  # noqa: E402
from batchscribe.engines.speakers.campplus import SpeakerEncoder  # noqa: E402
from batchscribe.engines.speakers.clustering import Encoder, label_words  # noqa: E402
from batchscribe.engines.speakers.encoder import VoiceEncoder  # noqa: E402
from batchscribe.engines.speakers.labels import decoded  # noqa: E402
from batchscribe.engines.speakers.segmentation import Segmenter  # noqa: E402
from tests.speaker_error import read_rttm, score  # noqa: E402

SHARED = next(
    (p / "shared" for p in REPO.parents if (p / "shared").is_dir()), REPO.parent / "shared"
)
OWN = REPO / "tests" / "data" / "speakers"
CORPUS = SHARED / "corpus-speakers"
LONG = SHARED / "corpus-real" / "fsp-orm.mp3"
TELEPHONE = REPO / "bench" / "out" / "telephone"


def recordings() -> list[Path]:
    found = sorted(CORPUS.glob("*.wav")) + sorted(OWN.glob("*.wav"))
    # (the tests' meeting-trn*.flac are the shared trn07, trn09: scored once, from the set)
    found += sorted(p for p in OWN.glob("*.flac") if not p.name.startswith("meeting-"))
    found.append(OWN / "monologue-real.mp3")
    # one voice each: the shared corpus's synthetic clips (7-8 s) and the French one
    audio = {".wav", ".mp3", ".ogg", ".flac", ".m4a"}
    found += sorted(p for p in (SHARED / "corpus").rglob("*") if p.suffix in audio)
    found.append(SHARED / "corpus-hard" / "french.wav")
    return [*found, LONG] if LONG.exists() else found


def transcribed(path: Path, model: Any) -> tuple[list[dict[str, Any]], float, float]:
    """Whisper's words of `path`, its audio seconds and Whisper's seconds: cached under
    bench/out/speakers/ (a variant of the diarization reruns without Whisper)."""
    kept_as = f"telephone-{path.name}" if path.parent == TELEPHONE else path.name
    cache = REPO / "bench" / "out" / "speakers" / f"{kept_as}.json"
    if cache.exists():
        kept = json.loads(cache.read_text())
        return kept["words"], kept["duration"], kept["whisper_s"]
    began = time.perf_counter()
    segments, info = model().transcribe(str(path), **transcribe_options(Settings().local()))
    data = to_transcript_data(list(segments), info, model="base")
    whisper = time.perf_counter() - began
    cache.parent.mkdir(parents=True, exist_ok=True)
    kept = {"words": data["words"], "duration": data["audio_duration"], "whisper_s": whisper}
    cache.write_text(json.dumps(kept))
    return data["words"], data["audio_duration"], whisper


def telephoned() -> list[Path]:
    """The recordings with two or more people, as a phone line carries them: 8 kHz, 300-3400
    Hz, mu-law (G.711), back at 16 kHz, in bench/out/telephone/ (their names kept, so their
    reference turns are theirs)."""
    import av
    import numpy as np
    from scipy.signal import butter, resample_poly, sosfilt

    reference = {**read_rttm(CORPUS / "reference.rttm"), **read_rttm(OWN / "reference.rttm")}
    TELEPHONE.mkdir(parents=True, exist_ok=True)
    made = []
    for path in recordings():
        turns = reference.get(path.stem)
        if not turns or len({t.speaker for t in turns}) < 2:
            continue
        narrow = resample_poly(decoded(str(path)).astype(np.float64) / 32768, 1, 2)
        narrow = sosfilt(butter(4, [300, 3400], btype="band", fs=8000, output="sos"), narrow)
        mu = 255.0  # G.711's mu-law, 8 bits
        coded = np.sign(narrow) * np.log1p(mu * np.abs(np.clip(narrow, -1, 1))) / np.log1p(mu)
        coded = np.round(coded * 127) / 127
        narrow = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
        wide = (np.clip(resample_poly(narrow, 2, 1), -1, 1) * 32767).astype("<i2")
        out_path = TELEPHONE / f"{path.stem}.flac"
        with av.open(str(out_path), "w") as out:
            stream = out.add_stream("flac", rate=16000, layout="mono")
            frame = av.AudioFrame.from_ndarray(wide[None, :], format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
        made.append(out_path)
    return made


def per_recording(
    encoder: Encoder, segmenter: Segmenter | None, paths: list[Path] | None = None
) -> None:
    reference = {**read_rttm(CORPUS / "reference.rttm"), **read_rttm(OWN / "reference.rttm")}
    loaded: list[Any] = []

    def model() -> Any:  # loaded only when a recording is not cached yet
        if not loaded:
            loaded.append(whisper_model(None, device="cpu", compute_type="int8", cpu_threads=1))
        return loaded[0]

    # "in words": the reference speakers alone at a scored word's midpoint (Score.speaking)
    print("| recording | s | words | speakers found (reference; in words) | wrong | Whisper s | "
          "diarization s | share |")  # fmt: skip
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for path in paths or recordings():
        words, duration, whisper = transcribed(path, model)
        began = time.perf_counter()
        names: list[str] = []
        if words:
            audio = decoded(str(path))
            names = label_words(audio, [(w["start"], w["end"]) for w in words], encoder, None,
                                missed=segmenter)  # fmt: skip
        diarization = time.perf_counter() - began
        labelled = [{**w, "speaker": n} for w, n in zip(words, names, strict=True)]
        turns = reference.get(path.stem)
        truth = len({t.speaker for t in turns}) if turns else 1
        result = score(labelled, turns) if turns else None
        wrong = f"{result.error:.1%} ({result.wrong}/{result.scored})" if result else "n/a"
        found = result.found if result else len(set(names))
        truth_text = f"{truth}; {result.speaking}" if result else f"{truth}"
        share = diarization / whisper
        print(f"| {path.name} | {duration:.0f} | {len(words)} | {found} ({truth_text}) "
              f"| {wrong} | {whisper:.2f} | {diarization:.2f} | {share:.0%} |")  # fmt: skip


def alternated(rounds: int) -> None:
    """Per recording, in one process and in turn: Whisper (not the cache), the labels from
    the words' voices alone, then with the segmentation's missed speakers; the medians."""
    from statistics import median

    model = whisper_model(None, device="cpu", compute_type="int8", cpu_threads=1)
    encoder, segmenter = VoiceEncoder(threads=1), Segmenter(threads=1)
    totals = [0.0, 0.0, 0.0]
    print("| recording | Whisper s | words only s | with segmentation s | share before / after |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for path in recordings():
        taken: list[list[float]] = [[], [], []]
        for _ in range(rounds):
            began = time.perf_counter()
            segments, _info = model.transcribe(str(path), **transcribe_options(Settings().local()))
            times = [(int(w.start * 1000), int(w.end * 1000))
                     for s in segments for w in (s.words or [])]  # fmt: skip
            taken[0].append(time.perf_counter() - began)
            for column, missed in ((1, None), (2, segmenter)):
                began = time.perf_counter()
                if times:
                    audio = decoded(str(path))
                    label_words(audio, times, encoder, None, missed=missed)
                taken[column].append(time.perf_counter() - began)
        whisper, before, after = (median(t) for t in taken)
        totals = [totals[0] + whisper, totals[1] + before, totals[2] + after]
        print(f"| {path.name} | {whisper:.2f} | {before:.2f} | {after:.2f} | "
              f"{before / whisper:.0%} / {after / whisper:.0%} |")  # fmt: skip
    print(f"| all | {totals[0]:.1f} | {totals[1]:.1f} | {totals[2]:.1f} | "
          f"{totals[1] / totals[0]:.1%} / {totals[2] / totals[0]:.1%} |")  # fmt: skip


_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def cli_runs(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for labels in [False, True] * runs:
            folder = Path(tmp) / "recordings"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for path in recordings():
                shutil.copyfile(path, folder / path.name)
            command = [sys.executable, "-m", "batchscribe", str(folder), "--engine", "local", "-q"]
            command += ["--speaker-labels"] if labels else []
            began = time.perf_counter()
            # a parent of its own per run, so that each run's peak RSS is its own
            out = subprocess.run([sys.executable, "-c", _PEAK, *command], check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            wall = time.perf_counter() - began
            rss = int(out.split()[-1]) / 1024
            print(f"speaker labels {'on ' if labels else 'off'}: {wall:.1f} s, "
                  f"peak RSS {rss:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", type=int, default=0, help="whole runs with and without, N each")
    parser.add_argument("--encoder", choices=["ge2e", "campplus"], default="ge2e",
                        help="the voice encoder of the windows (ge2e: the engine's)")  # fmt: skip
    parser.add_argument("--words-only", action="store_true",
                        help="no segmentation pass for the speakers the words miss (as before "
                        "issue #27's last step)")  # fmt: skip
    parser.add_argument("--telephone", action="store_true",
                        help="the conversations through a phone line's band, mu-law")  # fmt: skip
    parser.add_argument("--alternate", type=int, default=0,
                        help="Whisper and both labellings timed in turn, N rounds")  # fmt: skip
    args = parser.parse_args()
    if args.alternate:
        alternated(args.alternate)
        return
    per_recording(
        SpeakerEncoder(threads=1) if args.encoder == "campplus" else VoiceEncoder(threads=1),
        None if args.words_only else Segmenter(threads=1),
        telephoned() if args.telephone else None,
    )
    if args.cli:
        cli_runs(args.cli)


if __name__ == "__main__":
    main()
