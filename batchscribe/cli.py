"""The `batchscribe` command: parse flags, build Settings, run the pipeline, map to exit codes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from batchscribe import __version__
from batchscribe.config import (
    ENGINES,
    Settings,
    build_settings,
    parse_extensions,
    parse_formats,
    unknown_transcript_options,
)
from batchscribe.engines import check_engine_available, create_engine
from batchscribe.errors import EXIT_INTERRUPTED, BatchscribeError, ConfigError
from batchscribe.pipeline import run
from batchscribe.preview import format_preview, preview
from batchscribe.report import Reporter, exit_code
from batchscribe.status import format_status

EXAMPLES = """\b
Examples:
  batchscribe ./recordings                      # local Whisper, no key needed
  ASSEMBLYAI_API_KEY=... batchscribe ./recordings --concurrency 8
  batchscribe talk.mp3 --engine local --model ./my-whisper-model
  batchscribe ./recordings --quiet              # in cron: prints only failures

\b
Outputs go next to each recording: talk.mp3 -> talk.txt, talk.json.
Re-running transcribes only new or changed files.
Exit status: 0 all done, 1 some files failed, 2 usage or configuration error,
3 another run holds the folder, 130 interrupted.
"""


class RedactKey(logging.Filter):
    """Belt and braces: no log record may carry the API key, whatever a library logs."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), None
        return True


def setup_logging(settings: Settings) -> None:
    """Our loggers to stderr (warnings; everything with --verbose) and to --log-file (every
    file's line; with --verbose every request too). The key is redacted everywhere."""
    level = logging.DEBUG if settings.verbose else logging.WARNING
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    handlers: list[logging.Handler] = [console]
    if settings.log_file is not None:
        to_file = logging.FileHandler(settings.log_file, mode="a", encoding="utf-8")
        to_file.setLevel(logging.DEBUG if settings.verbose else logging.INFO)
        handlers.append(to_file)
    for handler in handlers:
        handler.setFormatter(formatter)
        if settings.api_key:
            handler.addFilter(RedactKey(settings.api_key))
    for name in ("batchscribe", "faster_whisper", "batchscribe.report"):
        for old in logging.getLogger(name).handlers:
            old.close()  # a previous invocation's --log-file in the same process
    for name in ("batchscribe", "faster_whisper"):
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    # The per-file lines already reach the terminal through the reporter: file only.
    report = logging.getLogger("batchscribe.report")
    report.handlers[:] = handlers[1:]
    report.propagate = False


async def _run_with_signals(settings: Settings, reporter: Reporter) -> None:
    # SIGTERM (systemd, kill) stops the run like Ctrl-C: cancel, journal stays consistent.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await run(settings, reporter, create_engine)


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Files uploaded or transcribed at once.  [default: 5]",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    help="auto: AssemblyAI when a key is set, else local.  [default: auto]",
)
@click.option(
    "--api-url",
    "base_url",
    metavar="URL",
    help="AssemblyAI base URL without /v2 (EU: https://api.eu.assemblyai.com). "
    "Env: ASSEMBLYAI_BASE_URL.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file.  [default: ./batchscribe.toml, then ~/.config/batchscribe/config.toml]",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Seconds between polls of one transcript.  [default: 3]",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Stop waiting for a transcript after S seconds; the next run collects it.  "
    "[default: 21600]",
)
@click.option(
    "--ext",
    "extensions",
    metavar="LIST",
    help="Comma-separated extensions to transcribe.  [default: mp3,mp4,m4a,wav,flac,"
    "ogg,opus,webm,aac,wma,aiff,amr,mov,mkv]",
)
@click.option(
    "--model",
    metavar="DIR|NAME",
    help="Local engine: a faster-whisper model directory or name.  "
    "[default: bundled Whisper tiny.en]",
)
@click.option(
    "--formats",
    metavar="LIST",
    help="Outputs to write: txt,json,srt,vtt.  [default: txt,json]",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write outputs (and the journal) under DIR, mirroring each file's path, "
    "instead of next to the recordings: for read-only archives.",
)
@click.option(
    "--language",
    metavar="CODE",
    help="Language of the recordings, e.g. en, fr (AssemblyAI language_code; local language).",
)
@click.option(
    "--speaker-labels",
    is_flag=True,
    default=None,
    help="AssemblyAI: label speakers; .txt gets one 'Speaker A:' paragraph per turn.",
)
@click.option("--speech-model", metavar="NAME", help="AssemblyAI speech_model, e.g. universal.")
@click.option(
    "--keep-existing",
    is_flag=True,
    default=None,
    help="Keep transcripts made with other options instead of transcribing again.",
)
@click.option(
    "--delete-after",
    is_flag=True,
    default=None,
    help="Delete each transcript from AssemblyAI once its outputs are written.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    default=None,
    help="List what would be transcribed and why, with total audio and estimated cost; "
    "no request, no model, nothing written.",
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Show what the journal knows (counts, failures, last run) and exit.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    default=None,
    help="Also retry files that failed for good before (not audio, empty, too big).",
)
@click.option(
    "--max-files",
    type=click.IntRange(min=1),
    metavar="N",
    help="Start at most N files this run; the rest waits for the next.",
)
@click.option(
    "--max-audio-hours",
    type=click.FloatRange(min=0, min_open=True),
    metavar="H",
    help="Stop starting files once H hours of audio are under way.",
)
@click.option("--json", is_flag=True, default=None, help="Print a JSON summary on stdout.")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Append log lines (every file, and with -v every request) to FILE.",
)
@click.option(
    "-q", "--quiet", is_flag=True, default=None, help="Print nothing unless something failed."
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    default=None,
    help="Log every request and retry (the key is never shown).",
)
@click.version_option(__version__, prog_name="batchscribe")
def cli(paths: tuple[Path, ...], config_path: Path | None, show_status: bool, **flags: Any) -> None:
    """Transcribe every recording under PATH... and write a transcript next to each.

    PATH may be a folder (walked recursively) or a single file.
    """
    for name, parse in (("extensions", parse_extensions), ("formats", parse_formats)):
        if flags[name] is not None:
            try:
                flags[name] = parse(flags[name])
            except ConfigError as err:
                raise click.BadParameter(str(err), param_hint=f"--{name[:3]}") from None
    request_options = {
        "language_code": flags["language"],
        "speaker_labels": flags.pop("speaker_labels"),
        "speech_model": flags.pop("speech_model"),
    }
    try:
        settings = build_settings(
            flags={**flags, "paths": paths},
            env=os.environ,
            cwd=Path.cwd(),
            config_path=config_path,
            transcript_options={k: v for k, v in request_options.items() if v is not None},
        )
        check_engine_available(settings)
    except ConfigError as err:
        _fail(err)
    try:
        setup_logging(settings)
    except OSError as err:
        _fail(ConfigError(f"{settings.log_file}: cannot open the log file ({err.strerror})."))
    if show_status or settings.dry_run:
        _inspect(settings, show_status=show_status)
    if settings.chosen_engine() == "assemblyai" and not settings.quiet:
        for name in unknown_transcript_options(settings.transcript_options):
            click.echo(
                f"batchscribe: warning: [assemblyai.transcript] {name} is not in the API "
                "reference; sending it anyway.",
                err=True,
            )
    reporter = Reporter(quiet=settings.quiet)
    reporter.summary.engine = settings.chosen_engine()
    try:
        with reporter:
            asyncio.run(_run_with_signals(settings, reporter))
    except BatchscribeError as err:
        _fail(err)
    except (KeyboardInterrupt, asyncio.CancelledError):
        reporter.interrupted()
        sys.exit(EXIT_INTERRUPTED)
    reporter.finish(as_json=settings.json)
    sys.exit(exit_code(reporter.summary))


def _inspect(settings: Settings, *, show_status: bool) -> None:
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
        click.echo(line)
    sys.exit(0)


def _fail(err: BatchscribeError) -> None:
    click.echo(f"batchscribe: error: {err}", err=True)
    sys.exit(err.exit_code)


def main() -> None:
    cli(prog_name="batchscribe")
