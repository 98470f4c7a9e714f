"""A whole run as a person or a cron job lives it: the reporter, the metrics, the stop
signals, the summary and the exit status. A front (the command line) calls `session` and
exits with what it returns; what the run does inside is `pipeline.run`'s."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.errors import EXIT_INTERRUPTED, BatchscribeError, LockHeld
from batchscribe.lines import error_line
from batchscribe.report import Reporter, exit_code, keep_last
from batchscribe.run.live import Live
from batchscribe.run.named import format_set_aside
from batchscribe.run.pipeline import EngineFactory, run
from batchscribe.run.stopping import exit_on_signal, under_stop_signals

#: glibc malloc arenas the process may spread over (`M_ARENA_MAX`). glibc's default, 8 a core,
#: gives each concurrent transcription arenas of its own whose freed buffers are kept: on the
#: 20 clips at 2 workers, 2 arenas lower the peak by about 60 MB at the same speed
#: (BENCHMARKS.md, issue #30). Capped before any thread exists: arenas already made stay.
MALLOC_ARENAS = 2
#: Blocks above this are mapped on their own and unmapped when freed (`M_MMAP_THRESHOLD`).
#: glibc's own threshold rises to the largest block freed (up to 32 MiB), so after the first
#: encoder pass a transcription's 12-32 MB buffers stay in the heap, fragmented, once freed.
#: Fixed at 8 MiB, 2 workers on the 20 clips peak at 489-509 MB instead of 543-602 for about
#: 6% more CPU; at 2 MiB, 446-463 MB but 25% more CPU, as every 3 MB activation is then
#: fresh pages (BENCHMARKS.md, "Issue #30: the mmap threshold").
MMAP_THRESHOLD = 8 * 1024 * 1024
_M_ARENA_MAX = -8  # malloc.h
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> None:
    """Cap glibc's malloc arenas and fix its mmap threshold (at a run's or a server's start,
    before its threads). A `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` the user set is
    theirs; without glibc's mallopt, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    if not os.environ.get("MALLOC_ARENA_MAX"):
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def session(
    settings: Settings, engine_factory: EngineFactory, *, set_aside: Sequence[Path] = ()
) -> int:
    """Run the pipeline under the reporter and the stop signals; print the summary (or the
    run's one error line) and return the exit status: 130 once a stop was asked. From its end
    on, a signal ends the process at once (`stopping.exit_on_signal`)."""
    tune_malloc()
    reporter = Reporter(quiet=settings.quiet)
    reporter.summary.engine = settings.chosen_engine()
    if settings.watch:  # months of failures would pile up in its summary: the last few
        keep_last(reporter.summary)
    live = Live(settings, reporter)
    if set_aside:
        reporter.notice(format_set_aside(list(set_aside)), even_quiet=False)
    try:
        with reporter:
            stopped = asyncio.run(
                under_stop_signals(
                    lambda stop: run(settings, reporter, engine_factory, stop=stop, live=live),
                    grace=settings.grace,
                    stopping=lambda how: reporter.stopping(settings.grace, how),
                )
            )
    except BatchscribeError as err:
        if not isinstance(err, LockHeld):  # the metrics file is the lock holder's
            live.ended(err.exit_code)
        print(error_line(err), file=sys.stderr)
        return err.exit_code
    except (KeyboardInterrupt, asyncio.CancelledError):
        stopped = True
    finally:
        exit_on_signal()
    if stopped:
        reporter.interrupted()
        live.ended(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    reporter.finish(as_json=settings.json)
    code = exit_code(reporter.summary)
    live.ended(code)
    return code
