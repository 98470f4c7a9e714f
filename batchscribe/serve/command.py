"""The `batchscribe serve` command: its options, Settings built as a folder run builds them
(config file < environment < flags, `[serve]` in the file), then the server until stopped.

`cli.main` hands it argv when the first argument is `serve`; a folder named serve is reached
as `./serve`, so `batchscribe DIR` is unchanged.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from batchscribe.config import build_settings
from batchscribe.engines.factory import check_engine_available
from batchscribe.errors import EXIT_INTERRUPTED, BatchscribeError, ConfigError
from batchscribe.lines import one_line
from batchscribe.logs import setup_logging
from batchscribe.run.session import tune_malloc
from batchscribe.serve.app import serve
from batchscribe.serve.auth import check_bind

EXAMPLES = """\b
Examples:
  batchscribe serve                              # http://127.0.0.1:8765, no key needed
  BATCHSCRIBE_SERVER_KEY=... batchscribe serve --host 0.0.0.0 --model small
\b
Clients: AssemblyAI's SDK with aai.settings.base_url = "http://127.0.0.1:8765";
OpenAI's with base_url="http://127.0.0.1:8765/v1". With a key set, clients send it as
their API key. Exit status: 0 stopped, 2 usage or configuration error.
"""


def _option(*decls: str, **attrs: Any) -> click.Option:
    return click.Option(decls, **attrs)


def parameters() -> list[click.Parameter]:
    return [
        _option("--host", "serve_host", metavar="ADDRESS",
                help="Address to listen on; off loopback needs BATCHSCRIBE_SERVER_KEY.  "
                "[default: 127.0.0.1]"),
        _option("--port", "serve_port", type=int, metavar="N", help="[default: 8765]"),
        _option("--state-dir", "serve_state_dir",
                type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                help="Uploads and transcripts, kept across restarts.  "
                "[default: ~/.local/state/batchscribe/serve]"),
        _option("--model", metavar="DIR|NAME",
                help="Local engine model, as for a folder run.  [default: bundled Whisper base]"),
        _option("-c", "--concurrency", type=click.IntRange(min=1),
                help="Transcriptions at once.  [default: 5]"),
        _option("--ray", "ray_address", metavar="ADDRESS",
                help="Transcribe on a Ray cluster's actors (the ray extra)."),
        _option("--max-upload-mb", "serve_max_upload_mb", type=click.IntRange(min=1),
                metavar="MB", help="Larger uploads get 413.  [default: 1024]"),
        _option("--max-queue", "serve_max_queue", type=click.IntRange(min=1), metavar="N",
                help="Transcripts waiting; more get 429.  [default: 100]"),
        _option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                help="TOML config file ([serve] section).  [default: as a folder run]"),
        _option("--metrics-file", type=click.Path(dir_okay=False, path_type=Path),
                metavar="PATH", help="Prometheus metrics (node_exporter textfile), kept current."),
        _option("--log-file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                help="Append log lines (every transcript) to FILE."),
        click.Option(["-v", "--verbose"], is_flag=True, default=None,
                     help="Log every transcript (the key is never shown)."),
    ]  # fmt: skip


@click.command(
    name="serve",
    params=parameters(),
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
def serve_command(config_path: Path | None, **flags: Any) -> None:
    """Serve AssemblyAI's v2 API and OpenAI's audio API on this machine, with the local engine."""
    try:
        settings = build_settings(
            flags={**flags, "engine": "local"}, env=os.environ, cwd=Path.cwd(),
            config_path=config_path,
        )  # fmt: skip
        check_bind(settings)
        check_engine_available(settings)
        setup_logging(settings)
    except ConfigError as err:
        _fail(err)
    tune_malloc()  # before the server's threads, as a run does
    try:
        asyncio.run(serve(settings, ready=lambda line: click.echo(line, err=True)))
    except BatchscribeError as err:
        _fail(err)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)


def _fail(err: BatchscribeError) -> NoReturn:
    click.echo(one_line(f"batchscribe serve: error: {err}"), err=True)
    sys.exit(err.exit_code)
