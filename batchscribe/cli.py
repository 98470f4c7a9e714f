"""The `batchscribe` command, a thin front: flags -> Settings -> `run/session` -> exit status."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from batchscribe import __version__
from batchscribe.config import Settings, build_settings
from batchscribe.dry_run import format_preview, preview
from batchscribe.engines.factory import check_engine_available, create_engine
from batchscribe.errors import EXIT_INTERRUPTED, BatchscribeError, ConfigError
from batchscribe.flags import EXAMPLES, parameters, parse_lists
from batchscribe.lines import error_line, one_line
from batchscribe.logs import setup_logging
from batchscribe.run.named import keep_recordings
from batchscribe.run.pipeline import EngineFactory
from batchscribe.run.session import session
from batchscribe.run.stopping import exit_interrupted
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
            warnings = check_engine_available(settings)
            setup_logging(settings)
        except ConfigError as err:
            _fail(err)
        if show_status or settings.dry_run:
            _inspect(settings, show_status=show_status)
        if not settings.quiet:
            for line in warnings:
                click.echo(line, err=True)
        _run(settings, engine_factory, not_recordings)

    return cli


def _run(settings: Settings, engine_factory: EngineFactory, not_recordings: list[Path]) -> NoReturn:
    """The run's session, then its exit status (130 at once after a stop)."""
    code = session(settings, engine_factory, set_aside=not_recordings)
    if code == EXIT_INTERRUPTED:
        exit_interrupted()
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
    click.echo(error_line(err), err=True)
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
