"""The command line's parameters as one table: names, types, metavars, help texts, the epilog.

Every option defaults to None (flags too), so `config.build_settings` can tell "not given"
from "given" and let the config file and environment fill in the rest. The `[default: ...]` in
each help text is written by hand for the same reason: click cannot show a default it does not
hold. Keep README and tests/test_cli.py in step with this table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from batchscribe.config import ENGINES, parse_extensions, parse_formats
from batchscribe.errors import ConfigError
from batchscribe.settings.request_flags import parse_speech_models

EXAMPLES = """\b
Examples:
  batchscribe ./recordings                      # local Whisper, no key needed
  ASSEMBLYAI_API_KEY=... batchscribe ./recordings --concurrency 8
  batchscribe talk.mp3 --engine local --model ./my-whisper-model
  batchscribe ./recordings --quiet              # in cron: prints only new failures
  batchscribe -- -interview.mp3                 # a name starting with '-': after --

\b
Outputs go next to each recording: talk.mp3 -> talk.txt, talk.json.
Re-running transcribes only new or changed files.
Exit status: 0 all done (a file that failed for good in an earlier run is
listed by --status, not failed again), 1 some files failed in this run,
2 usage or configuration error, 3 another run holds the folder, 130 interrupted.
"""

_SECONDS = click.FloatRange(min=0, min_open=True)
_FILE = click.Path(dir_okay=False, path_type=Path)
_EXISTING = click.Path(exists=True, path_type=Path)


def _option(*decls: str, **attrs: Any) -> click.Option:
    """`click.option`'s arguments, as a parameter for the table rather than a decorator."""
    return click.Option(decls, **attrs)


def _switch(*decls: str, help: str) -> click.Option:
    """An on/off flag that is None when not given, so the config file's value stands."""
    return click.Option(decls, is_flag=True, default=None, help=help)


def parameters() -> list[click.Parameter]:
    """PATH... and every option, in --help order; new objects on each call (one per command)."""
    return [
        click.Argument(["paths"], nargs=-1, required=True, type=_EXISTING),
        _option("-c", "--concurrency", type=int, metavar="N",
                help="Files uploaded or transcribed at once, 1 to 256.  [default: 5]"),
        _option("--engine", type=click.Choice(ENGINES),
                help="auto: AssemblyAI when a key is set, else local.  [default: auto]"),
        _option("--api-url", "base_url", metavar="URL",
                help="AssemblyAI base URL without /v2 (EU: https://api.eu.assemblyai.com). "
                "Env: ASSEMBLYAI_BASE_URL."),
        _option("--config", "config_path", type=_FILE,
                help="TOML config file.  [default: ./batchscribe.toml, then "
                "~/.config/batchscribe/config.toml]"),
        _option("--poll-interval", type=_SECONDS, metavar="S",
                help="Seconds between polls of one transcript.  [default: 3]"),
        _option("--max-wait", type=_SECONDS, metavar="S",
                help="Stop waiting for a transcript after S seconds; the next run collects it.  "
                "[default: 21600]"),
        _option("--ext", "extensions", metavar="LIST",
                help="Comma-separated extensions to transcribe.  [default: mp3,mp4,m4a,wav,flac,"
                "ogg,opus,webm,aac,wma,aiff,amr,mov,mkv]"),
        _option("--model", metavar="DIR|NAME",
                help="Local engine: a faster-whisper model directory or name (tiny.en, base "
                "are installed; small, large-v3, turbo... download once).  "
                "[default: bundled Whisper base, every language]"),
        _option("--ray", "ray_address", metavar="ADDRESS",
                help="Local engine on a Ray cluster's actors: the head's host:port, or auto "
                "(RAY_ADDRESS). Needs the ray extra; see [ray] in config.example.toml."),
        *_output_options(),
    ]  # fmt: skip


def _output_options() -> list[click.Parameter]:
    """The options after --model, in --help order."""
    return [
        _option("--formats", metavar="LIST",
                help="Outputs to write: txt,json,srt,vtt.  [default: txt,json]"),
        _option("--output-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                help="Write outputs (and the journal) under DIR, mirroring each file's path, "
                "instead of next to the recordings: for read-only archives."),
        _option("--language", metavar="CODE",
                help="Language of the recordings, e.g. en, fr (AssemblyAI language_code; "
                "local language; auto or unset: detected per file)."),
        _option("--task", type=click.Choice(["transcribe", "translate"]),
                help="Local engine: translate writes English text from speech in any "
                "language.  [default: transcribe]"),
        _switch("--speaker-labels",
                help="Label speakers; .txt gets one 'Speaker A:' paragraph per turn (local: "
                "the speakers extra)."),
        _option("--speakers-expected", type=int, metavar="N",
                help="With --speaker-labels: how many speakers there are, when you know."),
        _option("--min-speakers", type=int, metavar="N", help="With --speaker-labels: at least N."),
        _option("--max-speakers", type=int, metavar="N", help="With --speaker-labels: at most N."),
        _option("--speech-model", metavar="NAME[,NAME...]", help="AssemblyAI speech models, "
                "a comma list in priority order (the service falls back to the next).  "
                "[default: universal-3-pro,universal-2]"),
        _switch("--keep-existing",
                help="Keep transcripts made with other options instead of transcribing again."),
        _switch("--delete-after",
                help="Delete each transcript from AssemblyAI once its outputs are written."),
        _switch("--dry-run",
                help="List what would be transcribed and why, with total audio and estimated "
                "cost; no request, no model, nothing written."),
        # --status is a mode of the command, not a setting: False, never None.
        _option("--status", "show_status", is_flag=True,
                help="Show what the journal knows (counts, failures, last run) and exit."),
        _switch("--retry-failed",
                help="Also retry files that failed for good before (not audio, empty, too big)."),
        _option("--max-files", type=int, metavar="N",
                help="Start at most N files this run (with --watch: per calendar day, local "
                "time); the rest waits for the next."),
        _option("--max-audio-hours", type=_SECONDS, metavar="H",
                help="Stop starting files once H hours of audio are under way (with --watch: "
                "per calendar day, local time)."),
        _option("--grace", type=_SECONDS, metavar="S", help="On the first Ctrl-C or SIGTERM, "
                "wait up to S seconds for files under way; a second stops at once.  [default: 60]"),
        _switch("--watch", help="After the run, keep transcribing recordings as they arrive "
                "(each once complete), until Ctrl-C or SIGTERM."),
        _switch("--watch-poll", help="With --watch: poll the folders instead of waiting for file "
                "events (network mounts)."),
        _switch("--json", help="Print a JSON summary on stdout."),
        _option("--log-file", type=_FILE, metavar="FILE",
                help="Append log lines (every file, and with -v every request) to FILE; "
                "reopened when logrotate moves it."),
        _option("--metrics-file", type=_FILE, metavar="PATH",
                help="Write Prometheus metrics (node_exporter textfile format, e.g. "
                "/var/lib/node_exporter/textfile/batchscribe.prom) at the end of the run; "
                "with --watch, kept current."),
        _switch("-q", "--quiet", help="Print nothing unless something new failed."),
        _switch("-v", "--verbose", help="Log every request and retry (the key is never shown)."),
    ]  # fmt: skip


def parse_lists(flags: dict[str, Any]) -> dict[str, Any]:
    """`--ext`, `--formats` and `--speech-model` text -> their values; a bad list is a click
    usage error (exit 2)."""
    parsed = dict(flags)
    lists: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
        ("extensions", "--ext", parse_extensions),
        ("formats", "--formats", parse_formats),
        ("speech_model", "--speech-model", parse_speech_models),
    )
    for name, flag, parse in lists:
        if parsed.get(name) is not None:
            try:
                parsed[name] = parse(parsed[name])
            except ConfigError as err:
                raise click.BadParameter(str(err), param_hint=flag) from None
    return parsed
