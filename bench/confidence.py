"""Mean word confidence and WER of the default model (base) on right and wrong languages: the
numbers behind `[output] low_confidence` (BENCHMARKS.md, "Low confidence with base").

    python bench/confidence.py        # one JSON line per recording

Each recording is transcribed with the engine's options, once as detected and, for speech in
another language than English, once forced to English (`--language en`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from batchscribe.config import Settings  # noqa: E402
from batchscribe.engines.local.engine import whisper_model  # noqa: E402
from batchscribe.engines.local.options import transcribe_options  # noqa: E402
from tests.wer import wer  # noqa: E402

PODCAST = Path("/work/shared/corpus-real/fsp-orm.mp3")


def cases() -> list[tuple[Path, str | None, str | None, str]]:
    """(recording, reference, language forced, what it is)."""
    found: list[tuple[Path, str | None, str | None, str]] = []
    for folder in (REPO / "examples" / "recordings", REPO / "examples" / "languages",
                   REPO / "tests" / "data" / "hard"):  # fmt: skip
        for clip in json.loads((folder / "manifest.json").read_text())["clips"]:
            if "text" not in clip:
                continue
            language = clip.get("language", "en")
            found.append((folder / clip["path"], clip["text"], None, f"{language} detected"))
            if language != "en":
                found.append((folder / clip["path"], clip["text"], "en", f"{language} forced en"))
    if PODCAST.exists():
        found.append((PODCAST, None, None, "en real podcast"))
    return found


def main() -> None:
    model = whisper_model(None, cache_dir=Path.home() / ".cache", device="cpu",
                          compute_type="int8", cpu_threads=1)  # fmt: skip
    for path, reference, language, what in cases():
        options = transcribe_options(Settings(language=language).local())
        segments, info = model.transcribe(str(path), **options)
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments)
        probabilities = [w.probability for s in segments for w in s.words or []]
        confidence = sum(probabilities) / len(probabilities) if probabilities else None
        print(json.dumps({"what": what, "path": path.name, "language": info.language,
                          "confidence": confidence and round(confidence, 3),
                          "wer": reference and round(wer([reference], [text]), 3),
                          "text": text[:100]}, ensure_ascii=False), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
