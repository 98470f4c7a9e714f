"""The live progress line: what fits 80 columns and more, and an ETA from the audio left."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

from batchscribe.progress import RIGHT_MARGIN, Snapshot, clock, format_line
from batchscribe.report import Reporter

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

MID_RUN = Snapshot(
    found=240, finished=175, failed=1, uploading=2, transcribing=4, local=False,
    audio_heard=6 * 3600.0, audio_left=2 * 3600.0, elapsed=1800.0,
)  # fmt: skip


def test_at_80_columns_done_total_failures_and_eta_are_whole() -> None:
    line = format_line(MID_RUN, 80)
    assert len(line) <= 80 - RIGHT_MARGIN
    assert "175/240 files" in line and "1 failed" in line
    # 2 h of audio left at 12x real time (6 h in 30 min): 10 minutes
    assert line.endswith("ETA 10:00")
    assert "…" not in line


def test_wider_terminals_show_more_and_a_bar() -> None:
    narrow, wide = format_line(MID_RUN, 80), format_line(MID_RUN, 160)
    assert len(wide) > len(narrow) and len(wide) <= 160 - RIGHT_MARGIN
    for part in ("2 uploading · 4 transcribing", "12.0× real time", "6.00 h audio",
                 "30:00 elapsed", "ETA 10:00", "━"):  # fmt: skip
        assert part in wide, part


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_the_line_never_passes_the_width_and_keeps_the_essentials(width: int) -> None:
    line = format_line(MID_RUN, width)
    assert len(line) <= max(width - RIGHT_MARGIN, 20)
    assert "175/240" in line and "ETA" in line


def test_eta_comes_from_the_audio_left_and_the_speed_not_the_file_count() -> None:
    # 3-minute files: one done in 60 s (3x real time), 4 left, half of the next heard
    one_done = Snapshot(found=5, finished=1, failed=0, uploading=0, transcribing=1, local=True,
                        audio_heard=180.0 + 90.0, audio_left=4 * 180.0 - 90.0,
                        elapsed=90.0)  # fmt: skip
    assert one_done.speed == pytest.approx(3.0)
    assert one_done.eta() == pytest.approx(210.0)
    nothing_yet = Snapshot(found=5, finished=0, failed=0, uploading=0, transcribing=1,
                           local=True, audio_heard=0.0, audio_left=900.0,
                           elapsed=12.0)  # fmt: skip
    assert nothing_yet.eta() is None and "ETA -:--" in format_line(nothing_yet, 80)
    assert clock(3725) == "1:02:05" and clock(65) == "1:05"


def test_the_reporter_counts_audio_heard_within_a_file_toward_the_eta() -> None:
    reporter = Reporter(console=Console(file=io.StringIO(), force_terminal=True, width=120))
    reporter.summary.engine = "local"
    with reporter:
        assert reporter.wants_lengths
        reporter.discovered(2, {Path("a.wav"): 180.0, Path("b.wav"): 180.0})
        reporter.started(Path("a.wav"))
        reporter.transcribing(Path("a.wav"))
        reporter.heard(Path("a.wav"), 60.0, 180.0)
        mid = reporter.snapshot()
        reporter.done(Path("a.wav"), 180.0)
        after = reporter.snapshot()
    assert mid.audio_heard == 60.0 and mid.audio_left == 300.0
    assert after.audio_heard == 180.0 and after.audio_left == 180.0 and after.finished == 1


def test_the_live_line_is_gone_from_the_screen_once_stopped() -> None:
    out = io.StringIO()
    reporter = Reporter(console=Console(file=out, force_terminal=True, width=80))
    with reporter:
        reporter.discovered(3)
        reporter.started(Path("a.mp3"))
        time.sleep(0.3)  # let the display draw itself at least once
    reporter.interrupted()
    screen = out.getvalue()
    assert "0/3 files" in ANSI.sub("", screen)
    # transient: after its last draw the line is erased (cursor to column 0, line cleared)
    last_draw = screen.rfind("0/3 files")
    assert "\x1b[2K" in screen[last_draw:]
