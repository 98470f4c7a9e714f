"""The truncation rule measured on real cuts: a 3-minute speech recording encoded as MP3, Ogg
Vorbis, M4A (moov at the end, as ffmpeg writes it, and at the front with +faststart), FLAC and
WAV, cut with `head -c` at 30%, 60% and 90% of its bytes; for each, what the header says, what
decoding gives, and whether `run/truncation.py` flags it.

    python bench/truncation.py [--out /tmp/trunc]      # needs ffmpeg and the local extra
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from faster_whisper import decode_audio

from batchscribe.run.truncation import flag_truncated, read_container
from tests.kit import three_minutes_of_speech

ENCODINGS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "ogg": ["-c:a", "libvorbis"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "faststart.m4a": ["-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"],
    "flac": ["-c:a", "flac"],
    "wav": ["-c:a", "pcm_s16le"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/batchscribe-truncation"))
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    three_minutes_of_speech(out / "speech-source.wav")
    print("| format | kept | header s | decoded s | flagged |")
    print("| --- | ---: | ---: | ---: | --- |")
    for ext, codec in ENCODINGS.items():
        whole = out / f"speech.{ext}"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(out / "speech-source.wav"),
             *codec, str(whole)],
            check=True,
        )  # fmt: skip
        data = whole.read_bytes()
        for share in (1.0, 0.9, 0.6, 0.3):
            part = out / f"cut-{int(share * 100)}-{whole.name}"
            part.write_bytes(data[: int(len(data) * share)])
            container = read_container(part)
            try:
                decoded = len(decode_audio(str(part), sampling_rate=16000)) / 16000
            except Exception as err:  # PyAV: one class per codec problem
                print(f"| {ext} | {share:.0%} | - | fails: {type(err).__name__} | (failed) |")
                continue
            flagged = "truncated" in flag_truncated({"audio_duration": decoded}, container).get(
                "batchscribe", {}
            )
            header = f"{container.seconds:.1f}" if container.seconds else "-"
            if container.unended:
                header += " (no end page)"
            print(
                f"| {ext} | {share:.0%} | {header} | {decoded:.1f} | {'yes' if flagged else 'no'} |"
            )


if __name__ == "__main__":
    main()
