"""What the user sees: progress while it runs, one line per finished or failed file, a summary.

Human output goes to stderr, so stdout stays free for `--json`. On a terminal a rich progress
display (files, audio hours, stages, rate, ETA) with finished files scrolling above it; piped, in
cron or on a TERM=dumb terminal, plain timestamped lines without control characters, never cut
to a width; `--quiet` keeps only trouble.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar

from rich.console import Console
from rich.live import Live

from batchscribe.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED
from batchscribe.lines import one_line
from batchscribe.progress import LiveLine, Snapshot
from batchscribe.transcript import OUR_KEY

log = logging.getLogger("batchscribe.report")


def low_confidence_note(data: Mapping[str, Any]) -> str | None:
    """What the per-file warning says of a transcript `flag_low_confidence` flagged (`low
    confidence 0.31 (under 0.7) — is it in English? ...`), with the likely reason and the fix
    when the model is English-only; None when it is not flagged."""
    ours = data.get(OUR_KEY)
    confidence = data.get("confidence")
    if not isinstance(ours, Mapping) or ours.get("low_confidence") is not True:
        return None
    said = f"low confidence {float(confidence or 0):.2f}"
    if isinstance(ours.get("confidence_threshold"), int | float):
        said += f" (under {ours['confidence_threshold']:g})"
    if ours.get("english_only_model") is True:
        return (
            f"{said} — is it in English? the model is English-only; for other languages use "
            "--model with a multilingual model, or AssemblyAI"
        )
    return f"{said}; check the transcript against the recording"


T = TypeVar("T")

#: What a watcher's summary lists of each kind (failures, warnings, ...): a screenful.
WATCH_LISTED = 100


class Recent(Generic[T]):
    """A list that keeps its last `limit` items (every item when None) and counts every one:
    a watcher running since spring would otherwise hold (and print in `--json`, and store in
    the journal's run record) every failure since then.

    `len()` and truthiness count every item appended, kept or not (the summary's "3 failed");
    iterating yields the ones kept, oldest first.
    """

    __slots__ = ("_items", "count")

    def __init__(self, limit: int | None = None) -> None:
        self._items: deque[T] = deque(maxlen=limit)
        self.count = 0

    def append(self, item: T) -> None:
        self._items.append(item)
        self.count += 1

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __repr__(self) -> str:
        return f"Recent({list(self._items)!r}, count={self.count})"

    @property
    def dropped(self) -> int:
        """Items appended but no longer kept."""
        return self.count - len(self._items)


@dataclass(slots=True)
class Summary:
    """Counts of one run; the exit status is derived from it."""

    engine: str = ""
    done: int = 0
    skipped: int = 0
    #: every list counts all its files; with --watch each keeps only the last few (`Recent`)
    failed: Recent[tuple[Path, str]] = field(default_factory=Recent)
    still_running: Recent[Path] = field(default_factory=Recent)
    #: files done whose follow-up failed (e.g. --delete-after could not delete)
    warnings: Recent[tuple[Path, str]] = field(default_factory=Recent)
    #: files done whose transcript has no words: silence or noise, nothing was said
    no_speech: Recent[Path] = field(default_factory=Recent)
    #: files done whose transcript's mean word confidence is under [output] low_confidence
    low_confidence: Recent[Path] = field(default_factory=Recent)
    #: files done whose recording looks cut short (heard much less than its header says)
    truncated: Recent[Path] = field(default_factory=Recent)
    #: the language the engine detected in each file done (`language_code`)
    languages: Recent[tuple[Path, str]] = field(default_factory=Recent)
    #: files that failed for good in an earlier run, not retried (see --retry-failed)
    failed_before: int = 0
    #: files left for the next run because --max-files / --max-audio-hours was reached
    over_budget: int = 0
    audio_seconds: float = 0.0
    #: files begun (hashing, uploading, transcribing) and not yet done, failed or waiting
    in_progress: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def keep_last(summary: Summary, limit: int = WATCH_LISTED) -> None:
    """A watcher's summary: each of its per-file lists keeps the last `limit` (counts stay
    whole). Called before anything is recorded in it."""
    summary.failed = Recent(limit)
    summary.warnings = Recent(limit)
    summary.still_running = Recent(limit)
    summary.no_speech = Recent(limit)
    summary.low_confidence = Recent(limit)
    summary.truncated = Recent(limit)
    summary.languages = Recent(limit)


def exit_code(summary: Summary) -> int:
    """0 when every file is done or current; 1 when something needs attention after this run:
    a file failed in it, is still processing, or could not be deleted from the service.

    A file that failed for good in an earlier run (not audio, empty, too big) and is not tried
    again was reported by that run: it does not make every later run exit 1 (cron would mail
    about it each night). The summary still counts it, and `--status` lists it.
    """
    return EXIT_SOME_FAILED if _trouble(summary) else EXIT_OK


def _trouble(summary: Summary) -> bool:
    """Something new for the user to look at: failures in this run, waits, warnings."""
    return bool(summary.failed or summary.still_running or summary.warnings)


def _notable(summary: Summary) -> bool:
    """Worth the summary line even with --quiet: trouble, or a transcript not to trust as is."""
    return _trouble(summary) or bool(summary.low_confidence or summary.truncated)


def format_summary(summary: Summary) -> str:
    heard = [f"{len(summary.no_speech)} no speech"] if summary.no_speech else []
    if summary.low_confidence:
        heard.append(f"{len(summary.low_confidence)} low confidence")
    if summary.truncated:
        heard.append(f"{len(summary.truncated)} cut short")
    done = f"{summary.done} done" + (f" ({', '.join(heard)})" if heard else "")
    parts = [done, f"{summary.skipped} up to date"]
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    if summary.warnings:
        parts.append(f"{len(summary.warnings)} warning(s)")
    if summary.still_running:
        parts.append(f"{len(summary.still_running)} still processing (the next run collects them)")
    if summary.failed_before:
        parts.append(f"{summary.failed_before} failed before, not retried (--retry-failed)")
    if summary.over_budget:
        parts.append(f"{summary.over_budget} left for the next run (budget reached)")
    hours = f", {summary.audio_seconds / 3600:.2f} h of audio" if summary.audio_seconds else ""
    return f"batchscribe: {', '.join(parts)}{hours} in {summary.elapsed:.1f}s"


def format_stopping(
    summary: Summary, stages: list[str], grace: float, how: str = "Ctrl-C", *, idle: bool = False
) -> str:
    """The line of a first Ctrl-C or SIGTERM (`how`): what is finished within `grace`, and how
    not to (the same signal again). `idle`: --watch had caught up, nothing is left to do."""
    now = "press Ctrl-C again to stop now" if how == "Ctrl-C" else f"send {how} again to stop now"
    transcribing = stages.count("transcribing")
    if idle and not stages:
        return f"stopping: nothing under way; {now}"
    if summary.engine == "local":
        if not transcribing:
            return f"stopping: starting no new files; {now}"
        return (
            f"stopping: finishing {transcribing} file(s) being transcribed "
            f"(at most {grace:g} s); {now}"
        )
    if not transcribing:
        return f"stopping: no new uploads (the next run does the rest); {now}"
    return (
        f"stopping: no new uploads; waiting up to {grace:g} s for {transcribing} transcript(s) "
        f"under way (the next run collects the rest); {now}"
    )


def format_interrupted(summary: Summary, *, idle: bool = False) -> str:
    """The last line of a stopped run: what became of the files under way, and what to do.
    `idle`: --watch had caught up and nothing had arrived since: nothing is left."""
    under_way = summary.in_progress
    if under_way <= 0 and idle:
        return "batchscribe: stopped; every recording found is done (or reported above)."
    if under_way <= 0:
        return (
            "batchscribe: interrupted. Run the same command again to do the rest; nothing "
            "done is done twice."
        )
    if summary.engine == "local":
        return (
            f"batchscribe: interrupted with {under_way} file(s) under way; nothing is paid with "
            "the local engine: a file cut short is transcribed again by the next run, and every "
            "file finished is kept. Run the same command again to finish."
        )
    return (
        f"batchscribe: interrupted with {under_way} file(s) under way; their uploads and "
        "transcripts are saved in the journal. Run the same command again to finish without "
        "paying twice."
    )


def summary_json(
    summary: Summary, *, code: int | None = None, error: str | None = None
) -> dict[str, Any]:
    """The `--json` object: stable keys for scripts. `code`: the run's exit status when it did
    not end by itself (130 after a stop, 2 or 3 for the run's one `error` line, then kept as
    `error`); else the summary's own."""
    return {
        "engine": summary.engine,
        "exit_code": exit_code(summary) if code is None else code,
        **({"error": error} if error is not None else {}),
        "done": summary.done,
        "up_to_date": summary.skipped,
        "failed": [{"path": str(p), "error": e} for p, e in summary.failed],
        "failed_count": len(summary.failed),  # with --watch, "failed" lists the last 100
        "still_processing": [str(p) for p in summary.still_running],
        "warnings": [{"path": str(p), "warning": w} for p, w in summary.warnings],
        "no_speech": [str(p) for p in summary.no_speech],
        "low_confidence": [str(p) for p in summary.low_confidence],
        "truncated": [str(p) for p in summary.truncated],
        "languages": {str(p): code for p, code in summary.languages},
        "failed_before": summary.failed_before,
        "left_over_budget": summary.over_budget,
        "audio_seconds": round(summary.audio_seconds, 3),
        "wall_seconds": round(summary.elapsed, 3),
    }


def redraws(console: Console) -> bool:
    """A terminal that can redraw a line: not TERM=dumb (an editor's shell, a serial console),
    which gets the piped form, since rich can neither redraw on it nor learn its width (it
    would cut every long line at 80 columns)."""
    return console.is_terminal and not console.is_dumb_terminal


def print_json(summary: Summary, *, code: int | None = None, error: str | None = None) -> None:
    """The `--json` object on stdout, the run's one line of it (see `summary_json`)."""
    print(json.dumps(summary_json(summary, code=code, error=error)), flush=True)


class Reporter:
    """Receives the pipeline's events; prints as the mode asks; keeps the Summary."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        console: Console | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.quiet = quiet
        self.console = console or Console(file=stream or sys.stderr, highlight=False)
        self.summary = Summary()
        #: stage per file in progress: "working" (reading, uploading) or "transcribing"
        self.stages: dict[Path, str] = {}
        self.found = 0
        #: the live progress line (a terminal, not --quiet)
        self._live: Live | None = None
        #: audio seconds per file found and not yet ended, from its header (for the ETA)
        self._lengths: dict[Path, float] = {}
        #: audio seconds heard so far per file under way (the local engine's segments)
        self._heard: dict[Path, float] = {}
        #: the summary was printed (`finish` or `interrupted`): nothing more to say
        self._ended = False
        #: --watch finished the walk (`watching`): a stop then may leave nothing to do
        self._caught_up = False
        #: files refused by the budget and not started since: a watcher's rescans offer the
        #: same waiting file again, and it is still one file left over (`over_budget`)
        self._over_budget: set[Path] = set()

    # -- lifecycle
    def __enter__(self) -> Reporter:
        if redraws(self.console) and not self.quiet:
            # transient: cleared when it stops, so a stop leaves no frozen copy on screen
            self._live = Live(
                LiveLine(self.snapshot), console=self.console, transient=True, refresh_per_second=4
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @property
    def wants_lengths(self) -> bool:
        """The live line is shown: its ETA wants each file's length (a header read each)."""
        return self._live is not None

    def snapshot(self) -> Snapshot:
        """The counts as they stand, for the live line (read from its refresh thread)."""
        s = self.summary
        stages = list(self.stages.values())
        heard = sum(list(self._heard.values()))
        lengths = list(self._lengths.values())
        return Snapshot(
            found=self.found,
            finished=s.done + len(s.failed) + len(s.still_running),
            failed=len(s.failed),
            uploading=stages.count("working"),
            transcribing=len(stages) if s.engine == "local" else stages.count("transcribing"),
            local=s.engine == "local",
            audio_heard=s.audio_seconds + heard,
            audio_left=sum(lengths) - heard if lengths else None,
            elapsed=s.elapsed,
        )

    # -- events
    def discovered(self, count: int, lengths: dict[Path, float | None] | None = None) -> None:
        """`count` more files need work; `lengths` their audio seconds where known (asked
        only while `wants_lengths`)."""
        self.found += count
        self._lengths.update({p: t for p, t in (lengths or {}).items() if t})
        self._refresh()

    def heard(self, source: Path, seconds: float, of: float | None) -> None:
        """The engine has transcribed `source` up to `seconds` of its `of` (local engine,
        from its decoding thread): the ETA and the audio heard move within a long file."""
        self._heard[source] = seconds
        if of and source not in self._lengths:
            self._lengths[source] = of

    def skipped(self, count: int) -> None:
        self.summary.skipped += count

    def started(self, source: Path | None = None) -> None:
        self.summary.in_progress += 1
        if source is not None:
            self.stages[source] = "working"
            if source in self._over_budget:  # a watcher's new day admitted it: not left over
                self._over_budget.discard(source)
                self.summary.over_budget -= 1
        self._refresh()

    def _idle(self) -> bool:
        """--watch caught up with the walk, and nothing it found since is under way."""
        return self._caught_up and self.summary.in_progress <= 0

    def watching(self, folders: int) -> None:
        """--watch caught up: say what it waits for (one line, not repeated while idle)."""
        self._caught_up = True
        self._line(
            f"batchscribe: watching {folders} folder(s) for new recordings; "
            "Ctrl-C or SIGTERM stops",
            show=not self.quiet,
        )

    def left_for_next_run(self, source: Path) -> None:
        """Started, then dropped by a stop before anything was paid for: the next run does it."""
        self._end(source)

    def over_budget(self, source: Path) -> None:
        """Not started: --max-files or --max-audio-hours was reached (the next run does it).
        Counted once per file, however often a watcher's rescans offer it again."""
        if source not in self._over_budget:
            self._over_budget.add(source)
            self.summary.over_budget += 1

    def failed_before(self, count: int) -> None:
        """Files that failed for good in an earlier run, not retried (see --retry-failed)."""
        self.summary.failed_before += count

    def requeued(self, count: int) -> None:
        """Files that waited for a copy and go again on their own: started again later."""
        self.summary.in_progress -= count

    def transcribing(self, source: Path) -> None:
        self.stages[source] = "transcribing"
        self._refresh()

    def done(
        self,
        source: Path,
        audio_seconds: float | None,
        reason: str = "",
        *,
        model: object = None,
        no_speech: bool = False,
        low_confidence: str | None = None,
        truncated: str | None = None,
        language: object = None,
    ) -> None:
        """`done    talk.mp3 (changed) (no speech) (universal-3-pro)`: `reason` as given, `no
        speech` when the transcript has no words, then the model that ran when the engine says
        (AssemblyAI's `speech_model_used`). `low_confidence` (what to say about it) adds a
        `warning` line, shown even with --quiet, once (the next run finds the file up to date):
        the transcript is written and done, so the exit status stays 0. `language`: the
        transcript's `language_code`, shown `(fr)` when it has words."""
        self.summary.done += 1
        self.summary.audio_seconds += audio_seconds or 0.0
        self._end(source)
        if no_speech:
            self.summary.no_speech.append(source)
        silent = " (no speech)" if no_speech else ""
        heard = ""
        if isinstance(language, str) and language and not no_speech:
            self.summary.languages.append((source, language))
            heard = f" ({language})"
        ran = f" ({model})" if isinstance(model, str) and model else ""
        self._line(f"done    {source}{reason}{silent}{heard}{ran}", show=not self.quiet)
        if low_confidence is not None:
            self.summary.low_confidence.append(source)
            self._line(f"warning {source}: {low_confidence}", style="yellow")
        if truncated is not None:  # the same, for a recording cut short
            self.summary.truncated.append(source)
            self._line(f"warning {source}: {truncated}", style="yellow")

    def failed(self, source: Path, message: str, *, started: bool = True) -> None:
        self.summary.failed.append((source, message))
        if started:
            self._end(source)
        self._line(f"failed  {source}: {message}", style="red")

    def notice(self, text: str, *, even_quiet: bool = True) -> None:
        """A line about the run, not a file: something it repaired on its own (a damaged
        journal moved aside: shown even with --quiet, since it explains what follows), or
        set aside (named files that are not recordings). Not a failure."""
        self._line(f"batchscribe: {text}", style="yellow", show=even_quiet or not self.quiet)

    def warn(self, source: Path, message: str) -> None:
        self.summary.warnings.append((source, message))
        self._line(f"warning {source}: {message}", style="yellow")

    def still_running(self, source: Path) -> None:
        self.summary.still_running.append(source)
        self._end(source)
        self._line(f"waiting {source}: still processing; the next run collects it")

    def stopping(self, grace: float, how: str = "Ctrl-C") -> None:
        """The first Ctrl-C or SIGTERM (`how`): one line saying what is finished within `grace`
        seconds and that a second one stops at once. Always shown, even with --quiet; the
        progress display goes on while the files under way finish."""
        stages = list(self.stages.values())
        self._line(format_stopping(self.summary, stages, grace, how, idle=self._idle()))

    def interrupted(self, *, as_json: bool = False) -> None:
        """Say what was done and what is left: always shown, even with --quiet. Called once the
        run has stopped (after `stopping`, or at once on a second signal); a second call, or
        one after `finish`, prints nothing. `as_json`: the `--json` object too, exit code 130."""
        if self._ended:
            return
        self.__exit__()
        self._ended = True
        self._line(format_summary(self.summary))
        self._line(format_interrupted(self.summary, idle=self._idle()))
        if as_json:
            print_json(self.summary, code=EXIT_INTERRUPTED)

    def finish(self, *, as_json: bool = False) -> None:
        """The summary (with --quiet only when something needs attention) and `--json`."""
        if self._ended:
            return
        self.__exit__()
        self._ended = True
        # --log-file keeps it either way: a cron log shows every night's summary
        self._line(format_summary(self.summary), show=not self.quiet or _notable(self.summary))
        if as_json:
            print_json(self.summary)

    # -- output
    def _end(self, source: Path) -> None:
        self.summary.in_progress -= 1
        self.stages.pop(source, None)
        self._heard.pop(source, None)
        self._lengths.pop(source, None)
        self._refresh()

    def _line(self, text: str, style: str | None = None, *, show: bool = True) -> None:
        text = one_line(text)  # a name with a newline must not split its line
        log.info(text)  # --log-file keeps every line, --quiet or not
        if not show:
            return
        if redraws(self.console):
            # Printed above the live display, which redraws below it. Soft-wrapped: the
            # terminal folds a long path, and copying it gives the path, not rich's newlines.
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        else:
            stamp = datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
            self.console.file.write(f"{stamp} {text}\n")
            self.console.file.flush()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()
