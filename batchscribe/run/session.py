"""A whole run as a person or a cron job lives it: the reporter, the metrics, the stop
signals, the summary and the exit status. A front (the command line) calls `session` and
exits with what it returns; what the run does inside is `pipeline.run`'s."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.errors import EXIT_INTERRUPTED, BatchscribeError, LockHeld
from batchscribe.lines import error_line, one_line
from batchscribe.report import Reporter, exit_code, keep_last, print_json
from batchscribe.run.live import Live
from batchscribe.run.named import format_set_aside
from batchscribe.run.pipeline import EngineFactory, run
from batchscribe.run.stopping import exit_on_signal, under_stop_signals
from batchscribe.settings.malloc import tune_malloc


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
        if settings.json:  # a script reads one object whatever the end
            print_json(reporter.summary, code=err.exit_code, error=one_line(str(err)))
        return err.exit_code
    except (KeyboardInterrupt, asyncio.CancelledError):
        stopped = True
    finally:
        exit_on_signal()
    if stopped:
        reporter.interrupted(as_json=settings.json)
        live.ended(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    reporter.finish(as_json=settings.json)
    code = exit_code(reporter.summary)
    live.ended(code)
    return code
