"""The live progress line on a terminal: what fits the width, most important first, and an ETA
from the audio still to do and the speed measured so far (× real time).

`format_line` is pure (a `Snapshot` and a width in, a string out); `LiveLine` is what rich's
`Live` redraws a few times a second, reading the reporter's counts as they stand.

At 80 columns the line keeps, in this order: files done out of found, failures, the ETA,
what is under way, the speed, the audio heard, the elapsed time; a bar takes the room left.
It stays 3 columns short of the width, so the `^C` a terminal echoes never wraps it onto a
second line (which `Live` would then leave on screen when it clears the display).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions
from rich.text import Text

#: Columns kept free at the right: room for the `^C` a terminal echoes.
RIGHT_MARGIN = 3
#: The bar is drawn only when this much room is left, and never longer than BAR_MAX.
BAR_MIN, BAR_MAX = 10, 40


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The counts the line shows, at one moment."""

    found: int
    #: done, failed or given up for this run
    finished: int
    failed: int
    uploading: int
    transcribing: int
    #: the local engine: nothing is uploaded, every file under way is transcribing
    local: bool
    #: seconds of audio transcribed so far: files done, and the part of those under way heard
    audio_heard: float
    #: seconds of audio still to transcribe (from the headers), None when no length is known
    audio_left: float | None
    elapsed: float

    @property
    def files_left(self) -> int:
        return max(self.found - self.finished, 0)

    @property
    def speed(self) -> float | None:
        """Audio transcribed per second of wall time (× real time), once there is some."""
        if self.audio_heard <= 0 or self.elapsed <= 0:
            return None
        return self.audio_heard / self.elapsed

    def eta(self) -> float | None:
        """Seconds until every file found is done: the audio left at the speed measured so
        far; without lengths, the files left at the pace of the files finished."""
        if self.files_left == 0:
            return 0.0
        speed = self.speed
        if self.audio_left is not None and speed:
            return max(self.audio_left, 0.0) / speed
        if self.finished > 0 and self.elapsed > 0:
            return self.files_left * self.elapsed / self.finished
        return None


def clock(seconds: float | None) -> str:
    """`4:05`, `1:02:09`; `-:--` when unknown."""
    if seconds is None:
        return "-:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _parts(s: Snapshot) -> list[tuple[int, str]]:
    """(priority, text) in display order; 0 is kept longest."""
    if s.local:
        doing = f"{s.transcribing} transcribing"
    else:
        doing = f"{s.uploading} uploading · {s.transcribing} transcribing"
    speed = s.speed
    return [
        (0, f"{s.finished}/{s.found} files"),
        (0 if s.failed else 1, f"{s.failed} failed"),
        (2, doing),
        (3, f"{speed:.1f}× real time" if speed else "speed -"),
        (3, f"{s.audio_heard / 3600:.2f} h audio"),
        (5, f"{clock(s.elapsed)} elapsed"),
        (0, f"ETA {clock(s.eta())}"),
    ]


def format_line(s: Snapshot, width: int) -> str:
    """The line for a terminal `width` columns wide: the parts that fit, by priority, joined
    by ` · `, with a bar after the file count when there is room for one."""
    room = max(width - RIGHT_MARGIN, 20)
    parts = _parts(s)
    while len(" · ".join(text for _, text in parts)) > room and len(parts) > 3:
        lowest = max(priority for priority, _ in parts)
        index = max(i for i, (priority, _) in enumerate(parts) if priority == lowest)
        parts.pop(index)
    line = " · ".join(text for _, text in parts)
    spare = room - len(line) - 1
    if spare < BAR_MIN:
        return line[:room]
    bar = _bar(s, min(spare, BAR_MAX))
    head, _, tail = line.partition(" · ")
    return f"{head} {bar} · {tail}" if tail else f"{head} {bar}"


def _bar(s: Snapshot, width: int) -> str:
    cells = width - 1
    filled = round(cells * s.finished / s.found) if s.found else 0
    return "━" * filled + "─" * (cells - filled)


class LiveLine:
    """The renderable `rich.live.Live` redraws: the line as `snapshot()` stands, at the
    console's width at that moment (a resized terminal gets its new width)."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield Text(format_line(self._snapshot(), options.max_width), no_wrap=True)
