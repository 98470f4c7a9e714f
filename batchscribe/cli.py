"""The `batchscribe` command: parse flags, build Settings, run the pipeline, map to exit codes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from batchscribe import __version__
from batchscribe.config import Settings, build_settings, format_unknown_options
from batchscribe.dry_run import format_preview, preview
from batchscribe.engines.factory import check_engine_available, create_engine
from batchscribe.errors import EXIT_INTERRUPTED, BatchscribeError, ConfigError, LockHeld
from batchscribe.flags import EXAMPLES, parameters, parse_lists
from batchscribe.lines import one_line
from batchscribe.logs import setup_logging
from batchscribe.report import Reporter, exit_code, keep_last
from batchscribe.run.live import Live
from batchscribe.run.named import format_set_aside, keep_recordings
from batchscribe.run.pipeline import EngineFactory, run
from batchscribe.run.stopping import exit_interrupted, exit_on_signal, under_stop_signals
from batchscribe.status import format_status


def make_cli(engine_factory: EngineFactory = create_engine) -> click.Command:
    """The `batchscribe` command, running files through engines made by `engine_factory`.

    Tests pass a factory (a fake engine, or one that fails if a model is loaded) instead of
    patching engine classes; `check_engine_available` still runs first either way.
    """

    @click.command(
        epilog=EXAMPLES,
        params=parameters(),
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.version_option(__version__, prog_name="batchscribe")
    def cli(
        paths: tuple[Path, ...], config_path: Path | None, show_status: bool, **flags: Any
    ) -> None:
        """Transcribe every recording under PATH... and write a transcript next to each.

        PATH may be a folder (walked recursively) or a single file. A name that starts
        with '-' goes after '--' (batchscribe -- -take1.mp3), or as ./-take1.mp3.
        """
        flags = parse_lists(flags)
        try:
            settings = build_settings(
                flags={**flags, "paths": paths},
                env=os.environ,
                cwd=Path.cwd(),
                config_path=config_path,
            )
            settings, not_recordings = keep_recordings(settings)
            check_engine_available(settings)
            setup_logging(settings)
        except ConfigError as err:
            _fail(err)
        if show_status or settings.dry_run:
            _inspect(settings, show_status=show_status)
        if not settings.quiet:
            for line in format_unknown_options(settings):
                click.echo(line, err=True)
        _run(settings, engine_factory, not_recordings)

    return cli


def _run(settings: Settings, engine_factory: EngineFactory, not_recordings: list[Path]) -> NoReturn:
    """Run the pipeline under the reporter, print the summary and exit with the run's status."""
    reporter = Reporter(quiet=settings.quiet)
    reporter.summary.engine = settings.chosen_engine()
    if settings.watch:  # months of failures would pile up in its summary: the last few
        keep_last(reporter.summary)
    live = Live(settings, reporter)
    if not_recordings:
        reporter.notice(format_set_aside(not_recordings), even_quiet=False)
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
        _fail(err)
    except (KeyboardInterrupt, asyncio.CancelledError):
        stopped = True
    finally:
        exit_on_signal()
    if stopped:
        reporter.interrupted()
        live.ended(EXIT_INTERRUPTED)
        exit_interrupted()
    reporter.finish(as_json=settings.json)
    code = exit_code(reporter.summary)
    live.ended(code)
    sys.exit(code)


def _inspect(settings: Settings, *, show_status: bool) -> NoReturn:
    """--status and --dry-run: read, print, exit 0; nothing is written or requested."""
    try:
        lines = (
            format_status(settings) if show_status else format_preview(preview(settings), settings)
        )
    except BatchscribeError as err:
        _fail(err)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    for line in lines:
        click.echo(one_line(line))
    sys.exit(0)


def _fail(err: BatchscribeError) -> NoReturn:
    """One line on stderr, then the error's exit status (2 usage/config, 3 locked, ...)."""
    click.echo(one_line(f"batchscribe: error: {err}"), err=True)
    sys.exit(err.exit_code)


cli = make_cli()


def main() -> None:
    """The console script (`batchscribe.cli:main`): the default engines; `batchscribe serve
    ...` is the server's own command (a folder named serve is `./serve`)."""
    if sys.argv[1:2] == ["serve"]:
        from batchscribe.serve.command import serve_command

        serve_command(sys.argv[2:], prog_name="batchscribe serve")
        return
    cli(prog_name="batchscribe")
