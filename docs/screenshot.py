"""Render docs/progress.svg: what the progress display looks like mid-run (rich's SVG export).

python docs/screenshot.py
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from batchscribe.progress import LiveLine
from batchscribe.report import Reporter

HERE = Path(__file__).resolve().parent


def main() -> None:
    console = Console(record=True, force_terminal=True, width=110, file=io.StringIO())
    reporter = Reporter(console=console)
    # Not entered: the live line is drawn once, below, not by its refresh thread.
    reporter.discovered(240, {Path(f"recordings/2026-11/call-{i:03d}.mp3"): 431.0
                              for i in range(171, 240)})  # fmt: skip
    reporter.summary.done = 171  # files finished before the lines below
    reporter.summary.audio_seconds = 171 * 431.0
    for i in range(171, 186):
        source = Path(f"recordings/2026-11/call-{i:03d}.mp3")
        reporter.started(source)
        if i == 176:
            reporter.failed(
                source,
                "AssemblyAI could not transcribe it: Transcoding "
                "failed. File does not appear to contain audio.",
            )
        elif i < 180:
            reporter.done(source, 431.0)
        elif i < 184:
            reporter.transcribing(source)
    reporter.summary.started -= 1500.0  # half an hour in
    console.print(LiveLine(reporter.snapshot))
    console.save_svg(str(HERE / "progress.svg"), title="batchscribe ./recordings --concurrency 8")


if __name__ == "__main__":
    main()
