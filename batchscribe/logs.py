"""Logging for a run: where our loggers write, at which level, and the API key redacted."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from batchscribe.config import Settings
from batchscribe.errors import ConfigError
from batchscribe.lines import one_line

#: Loggers a run configures: ours, and the local engine's library (it logs what it loads).
LOGGERS = ("batchscribe", "faster_whisper")
#: Per-file lines already reach the terminal through the reporter, so this one logs to file only.
REPORT_LOGGER = "batchscribe.report"
#: A --log-file line is a plain-output line: ISO time with its offset, then the text (the
#: README's sample), so runs sharing a log read in order and a grep finds the same words.
LOG_FORMAT = "%(asctime)s %(message)s"
#: Other loggers' lines (requests, retries, a library) also say whose they are and how bad.
DETAIL_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
#: As the reporter's plain lines: 2026-11-28T02:00:07+0000
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class LineFormatter(logging.Formatter):
    """`LOG_FORMAT` for the reporter's lines, `DETAIL_FORMAT` for every other logger's."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT, DATE_FORMAT)
        self._detail = logging.Formatter(DETAIL_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if one_line(message) != message:  # one event, one line, whoever logs a file name
            record = logging.makeLogRecord({**record.__dict__, "msg": one_line(message)})
            record.args = None
        if record.name == REPORT_LOGGER:
            return super().format(record)
        return self._detail.format(record)


class RedactKey(logging.Filter):
    """Belt and braces: no log record may carry the API key, whatever a library logs.

    Attached to every handler rather than to loggers, so records propagated from child loggers
    (which bypass a parent logger's filters) are redacted too.
    """

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
    file's line; with --verbose every request too). The key is redacted everywhere.

    Safe to call again in one process (tests): the previous call's handlers are closed and
    replaced. Raises ConfigError when the --log-file cannot be opened.
    """
    # --quiet: cron mails only what needs attention, not warnings the run coped with.
    quiet_level = logging.ERROR if settings.quiet else logging.WARNING
    level = logging.DEBUG if settings.verbose else quiet_level
    formatter = LineFormatter()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    handlers: list[logging.Handler] = [console]
    if settings.log_file is not None:
        try:
            # Reopened when the file is moved or deleted (logrotate), at the next line.
            to_file = logging.handlers.WatchedFileHandler(
                settings.log_file, mode="a", encoding="utf-8"
            )
        except OSError as err:
            raise ConfigError(
                f"{settings.log_file}: cannot open the log file ({err.strerror})."
            ) from None
        to_file.setLevel(logging.DEBUG if settings.verbose else logging.INFO)
        handlers.append(to_file)
    for handler in handlers:
        handler.setFormatter(formatter)
        for secret in (settings.api_key, settings.server_key):
            if secret:
                handler.addFilter(RedactKey(secret))
    for name in (*LOGGERS, REPORT_LOGGER):
        for old in logging.getLogger(name).handlers:
            old.close()  # a previous invocation's --log-file in the same process
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    report = logging.getLogger(REPORT_LOGGER)
    report.handlers[:] = handlers[1:]
    report.propagate = False
