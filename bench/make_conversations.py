"""Make the synthetic conversations of tests/data/speakers/ (espeak-ng and sox, Debian's).

Each is a 16 kHz mono 16-bit WAV of turns spoken by espeak-ng voices, with its reference turns
in `reference.rttm` (`SPEAKER <file> 1 <start s> <duration s> <NA> <NA> <speaker> <NA> <NA>`):

- `interview.wav`: two voices (a man's and a woman's variant) taking turns, some one-word.
- `two-men.wav`: two male voices of different accents: closer voices, harder.
- `monologue.wav`: one voice, its turns separated by pauses of 1-2.5 s: one speaker.
- `meeting-pair.wav`: two real people of the shared corpus-speakers set (AMI meetings): no excerpt
  there is two-person, so this takes the stretches where only FEE083 (trn09) or only MEE075
  (trn04) speaks, by its reference.rttm, and alternates them. Two meetings, two rooms: easier
  than one meeting's two people, but real far-field speech.
- `meeting-trn07.flac`, `meeting-trn09.flac` (`--meetings`): two excerpts of the shared set as
  they are, 16-bit FLAC: people heard mostly in overlap, a few words said alone.
- `monologue-real.mp3`: the first 60 s of fsp-orm.mp3 (the shared corpus-real set): one
  real person.

    apt-get install -y espeak-ng sox ffmpeg && python bench/make_conversations.py

The text is written for this project (public domain); the voices are espeak-ng's (GPL-3.0,
the program's output is not covered by it).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "speakers"
SHARED = next(
    (p / "shared" for p in REPO.parents if (p / "shared").is_dir()), REPO.parent / "shared"
)
RATE = 16000
#: The shared corpus-real podcast: one person throughout (the "host" of the quick calls).
PODCAST = SHARED / "corpus-real" / "fsp-orm.mp3"

INTERVIEW = [
    (
        "A",
        "en-us",
        "Welcome back to the show. Today I am talking to a gardener about "
        "growing vegetables in a very small space.",
    ),
    ("B", "en-us+f4", "Thank you for having me. It is a topic I could talk about for hours."),
    ("A", "en-us", "So where should a beginner start, if all they have is a balcony?"),
    (
        "B",
        "en-us+f4",
        "Start with containers and with plants that forgive mistakes. "
        "Lettuce, radishes and herbs grow quickly, and they do not need much soil.",
    ),
    ("A", "en-us", "Really?"),
    ("B", "en-us+f4", "Yes. A radish is ready in about four weeks, so you learn fast."),
    ("A", "en-us", "What about tomatoes? Everybody wants tomatoes."),
    (
        "B",
        "en-us+f4",
        "Tomatoes want sun, at least six hours a day, and a lot of water in "
        "summer. Choose a small variety and a large pot.",
    ),
    ("A", "en-us", "And the most common mistake?"),
    ("B", "en-us+f4", "Too much water in spring, and too little in August."),
    ("A", "en-us", "That is good advice. Thank you very much for coming in today."),
    ("B", "en-us+f4", "It was a pleasure."),
]

TWO_MEN = [
    ("A", "en-us+m3", "Did you manage to fix the printer on the second floor this morning?"),
    (
        "B",
        "en-gb-scotland+m7",
        "Not yet. The paper tray is broken, and we are waiting for the new part to arrive.",
    ),
    ("A", "en-us+m3", "When is it supposed to come?"),
    ("B", "en-gb-scotland+m7", "On Thursday, if the supplier keeps its promise this time."),
    ("A", "en-us+m3", "Then people can use the printer in the library until Thursday."),
    ("B", "en-gb-scotland+m7", "Good idea. I will send a message to everyone after lunch."),
    ("A", "en-us+m3", "Thanks. And please ask them to stop printing entire manuals."),
    ("B", "en-gb-scotland+m7", "I will try, but I cannot promise anything."),
]

MONOLOGUE = [
    ("A", "en-us+m1", "Good morning everyone, and thank you for joining this short update."),
    ("A", "en-us+m1", "First, the new office opens next Monday, on the third floor."),
    ("A", "en-us+m1", "Second, please return your old badges to the front desk by Friday."),
    ("A", "en-us+m1", "Third, the kitchen will be closed on Wednesday for cleaning."),
    ("A", "en-us+m1", "That is all for today. Have a good week."),
]

#: Pauses between turns, in seconds, cycled: short as in a lively talk, some longer.
PAUSES = (0.4, 0.7, 0.3, 1.0, 0.5)
MONOLOGUE_PAUSES = (1.2, 2.5, 1.5, 2.0)


def speak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(raw), text], check=True)
        subprocess.run(["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)],
                       check=True)  # fmt: skip
        with wave.open(str(out)) as w:
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    # espeak pads each utterance with silence: trim it, so the reference turns are tight
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def build(name: str, turns: list[tuple[str, str, str]], pauses: tuple[float, ...]) -> list[str]:
    parts: list[np.ndarray] = [np.zeros(int(0.5 * RATE), dtype="<i2")]
    lines, at = [], 0.5
    for i, (who, voice, text) in enumerate(turns):
        said = speak(voice, text)
        lines.append(f"SPEAKER {name} 1 {at:.3f} {len(said) / RATE:.3f} <NA> <NA> {who} <NA> <NA>")
        gap = np.zeros(int(pauses[i % len(pauses)] * RATE), dtype="<i2")
        parts.extend([said, gap])
        at += (len(said) + len(gap)) / RATE
    with wave.open(str(OUT / f"{name}.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.concatenate(parts).tobytes())
    print(f"{name}.wav: {at:.1f} s, {len(turns)} turns")
    return lines


#: (source excerpt, start s, end s, speaker): only that speaker talks there (reference.rttm).
MEETING_PAIR = [
    ("trn09", 6.045, 12.857, "FEE083"),
    ("trn04", 16.816, 21.158, "MEE075"),
    ("trn09", 18.224, 24.992, "FEE083"),
    ("trn04", 21.765, 23.952, "MEE075"),
    ("trn09", 27.350, 29.687, "FEE083"),
]


def meeting_pair() -> list[str]:
    corpus = SHARED / "corpus-speakers"
    parts: list[np.ndarray] = [np.zeros(int(0.5 * RATE), dtype="<i2")]
    lines, at = [], 0.5
    for source, start, end, who in MEETING_PAIR:
        command = ["sox", "-D", str(corpus / f"{source}.wav"), "-t", "raw", "-e", "signed",
                   "-b", "16", "-"]  # fmt: skip
        # 32-bit float WAV, 16 kHz mono: read as 16-bit samples
        raw = subprocess.run(command, check=True, capture_output=True).stdout
        said = np.frombuffer(raw, dtype="<i2")[int(start * RATE) : int(end * RATE)]
        lines.append(
            f"SPEAKER meeting-pair 1 {at:.3f} {len(said) / RATE:.3f} <NA> <NA> {who} <NA> <NA>"
        )
        gap = np.zeros(int(0.6 * RATE), dtype="<i2")
        parts.extend([said, gap])
        at += (len(said) + len(gap)) / RATE
    with wave.open(str(OUT / "meeting-pair.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.concatenate(parts).tobytes())
    print(f"meeting-pair.wav: {at:.1f} s, {len(MEETING_PAIR)} turns")
    return lines


#: Where one real person speaks alone: (recording, start s, end s); a recording is an excerpt
#: of the shared corpus-speakers set (by its reference.rttm) or the shared corpus-real podcast
#: (one person throughout). The material of the quick-turn conversations.
SOLO = {
    "FEE083": [("trn09", 6.045, 12.857), ("trn09", 18.224, 24.992), ("trn09", 27.350, 29.687)],
    "MEE075": [("trn04", 16.816, 21.158), ("trn04", 21.765, 23.952), ("trn04", 25.200, 25.936)],
    "MEE094": [("trn09", 12.857, 13.342), ("trn09", 14.201, 15.726), ("trn09", 16.549, 18.224),
               ("trn09", 24.992, 27.350)],
    # held out: voices no threshold was chosen on (the host of the podcast, a studio
    # microphone; FEE087 of trn07, far-field)
    "FEE087": [("trn07", 8.275, 9.727), ("trn07", 15.600, 18.410), ("trn07", 19.901, 20.277),
               ("trn07", 22.592, 23.197), ("trn07", 26.506, 27.182)],
    "host": [("fsp-orm", 100.0, 112.0)],
}  # fmt: skip
#: Turn lengths (s), cycled: a lively call, 1-4 s each.
TURNS = (1.4, 3.2, 2.1, 3.8, 1.1, 2.6, 1.7, 3.5)
#: Gaps between turns (s), cycled: under 200 ms, the next voice starting without a pause;
#: negative ones are overlaps (the next voice starts before the last one ends), up to 0.5 s.
QUICK_GAPS = (0.05, 0.15, 0.0, 0.1, 0.18, 0.02)
OVERLAP_GAPS = (0.1, -0.3, 0.05, -0.5, 0.0, -0.2, 0.15, -0.4)
#: The meeting excerpts kept as they are (`--meetings`).
MEETINGS = ("trn07", "trn09")
#: (file, its speakers in their first turns' order, gaps): the speakers take turns in that
#: order, round after round, until one has no material left.
QUICK = [
    ("quick-fm", ("FEE083", "MEE075"), QUICK_GAPS),
    ("quick-same-room", ("FEE083", "MEE094"), QUICK_GAPS),
    ("quick-overlap", ("MEE075", "MEE094"), OVERLAP_GAPS),
    # held out (made after every threshold was set; `--held-out` writes only these)
    ("quick-studio", ("host", "MEE094"), QUICK_GAPS),
    ("quick-two-women", ("FEE087", "FEE083"), QUICK_GAPS),
    ("quick-two-men", ("host", "MEE075"), OVERLAP_GAPS),
    ("quick-three", ("FEE083", "MEE075", "host"), QUICK_GAPS),
    ("quick-four", ("FEE083", "MEE075", "FEE087", "host"), OVERLAP_GAPS),
]
HELD_OUT = {"quick-studio", "quick-two-women", "quick-two-men", "quick-three", "quick-four"}


def _solo_audio(who: str) -> np.ndarray:
    """All of `who`'s solo stretches, joined, at one loudness (so the level tells nothing)."""
    from faster_whisper import decode_audio

    def path(source: str) -> Path:
        return PODCAST if source == PODCAST.stem else SHARED / "corpus-speakers" / f"{source}.wav"

    parts = [decode_audio(str(path(source)), sampling_rate=RATE)[
        int(start * RATE) : int(end * RATE)] for source, start, end in SOLO[who]]  # fmt: skip
    joined = np.concatenate(parts)
    return joined * (0.1 / np.sqrt(np.mean(joined**2)))


def _turns(audio: np.ndarray, offset: int) -> list[np.ndarray]:
    """`audio` (twice over: the short stretches make few turns) cut into TURNS-long pieces,
    starting at TURNS[offset], each cut at the quietest 20 ms within 0.3 s of its length."""
    pieces, at, i, frame = [], 0, offset, RATE // 50
    doubled = np.concatenate([audio, audio])
    while len(doubled) - at > RATE:
        want = at + int(TURNS[i % len(TURNS)] * RATE)
        lo, hi = want - int(0.3 * RATE), min(len(doubled), want + int(0.3 * RATE))
        if hi - lo < frame:
            break
        energy = [np.mean(doubled[j : j + frame] ** 2) for j in range(lo, hi - frame, frame)]
        cut = lo + int(np.argmin(energy)) * frame + frame // 2 if energy else hi
        pieces.append(doubled[at:cut])
        at, i = cut, i + 1
    return pieces


def quick_turns(name: str, speakers: tuple[str, ...], gaps: tuple[float, ...]) -> list[str]:
    """Turns of real people taken in turn with the `gaps`, written as 16 kHz FLAC; RTTM lines
    from the splice itself."""
    pieces = [_turns(_solo_audio(who), 3 * i) for i, who in enumerate(speakers)]
    rounds = zip(*pieces, strict=False)  # up to the speaker with the fewest turns
    order = [(who, said) for turns in rounds for who, said in zip(speakers, turns, strict=True)]
    length = (
        1.0  # the 0.3 s before and after, and room for rounding
        + sum(len(said) / RATE for _, said in order)
        + sum(max(0.0, gaps[i % len(gaps)]) for i in range(len(order)))
    )
    track, lines, at = np.zeros(int(length * RATE), dtype=np.float32), [], 0.3
    for i, (who, said) in enumerate(order):
        begin = int(at * RATE)
        track[begin : begin + len(said)] += said
        lines.append(f"SPEAKER {name} 1 {at:.3f} {len(said) / RATE:.3f} <NA> <NA> {who} <NA> <NA>")
        at += len(said) / RATE + gaps[i % len(gaps)]
    _write_flac(OUT / f"{name}.flac", track[: int((at + 0.3) * RATE)])
    print(f"{name}.flac: {at:.1f} s, {len(order)} turns")
    return lines


def _write_flac(path: Path, track: np.ndarray) -> None:
    """16 kHz mono 16-bit FLAC of float samples."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (np.clip(track, -1, 1) * 32767).astype("<i2")[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def meeting_excerpts() -> list[str]:
    """trn07 and trn09 of the shared corpus-speakers set as they are (30 s of a real meeting:
    people heard mostly in overlap), as 16-bit FLAC, with their reference turns."""
    from faster_whisper import decode_audio

    corpus = SHARED / "corpus-speakers"
    lines = []
    for source in MEETINGS:
        _write_flac(OUT / f"meeting-{source}.flac",
                    decode_audio(str(corpus / f"{source}.wav"), sampling_rate=RATE))  # fmt: skip
        for line in (corpus / "reference.rttm").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 8 and fields[1] == source:
                lines.append(" ".join([fields[0], f"meeting-{source}", *fields[2:]]))
    return lines


def monologue_real() -> None:
    source = PODCAST
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-t", "60", "-ac", "1",
                    "-ar", "16000", "-b:a", "48k", str(OUT / "monologue-real.mp3")],
                   check=True)  # fmt: skip


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] in (["--quick"], ["--held-out"]):  # only (the held-out) quick-turn calls
        made = [spec for spec in QUICK if sys.argv[1] == "--quick" or spec[0] in HELD_OUT]
        kept = [line for line in (OUT / "reference.rttm").read_text().splitlines()
                if line.split()[1] not in {name for name, *_ in made}]  # fmt: skip
        lines = [*kept, *(line for spec in made for line in quick_turns(*spec))]
        (OUT / "reference.rttm").write_text("\n".join(lines) + "\n")
        return
    if sys.argv[1:] == ["--meetings"]:  # only the meeting excerpts, as they are
        kept = [line for line in (OUT / "reference.rttm").read_text().splitlines()
                if not line.split()[1].startswith("meeting-trn")]  # fmt: skip
        (OUT / "reference.rttm").write_text("\n".join([*kept, *meeting_excerpts()]) + "\n")
        return
    lines = [
        *build("interview", INTERVIEW, PAUSES),
        *build("two-men", TWO_MEN, PAUSES),
        *build("monologue", MONOLOGUE, MONOLOGUE_PAUSES),
        *meeting_pair(),
    ]
    monologue_real()
    (OUT / "reference.rttm").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
