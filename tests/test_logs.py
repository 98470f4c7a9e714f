"""Logging: the key is redacted in every sink, whichever logger writes it; --log-file errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.errors import EXIT_USAGE, ConfigError
from batchscribe.logs import LOGGERS, REPORT_LOGGER, RedactKey, setup_logging
from tests.kit import run_cli

KEY = "sk-live-0123456789abcdef"


@pytest.fixture(autouse=True)
def restore_loggers() -> Iterator[None]:
    """setup_logging configures process-wide loggers: close its handlers, put back the old."""
    names = (*LOGGERS, REPORT_LOGGER)
    saved = {name: logging.getLogger(name) for name in names}
    before = {name: (lg.handlers[:], lg.propagate, lg.level) for name, lg in saved.items()}
    yield
    for name, logger in saved.items():
        handlers, propagate, level = before[name]
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:], logger.propagate, logger.level = handlers, propagate, level


def test_key_is_redacted_in_stderr_and_log_file_from_our_loggers_and_libraries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "run.log"
    setup_logging(Settings(api_key=KEY, log_file=log_file))

    # A child logger's records reach the parent's handlers without its filters: the filter must
    # sit on the handlers for this one to be redacted.
    logging.getLogger("batchscribe.engines.assemblyai.engine").warning(
        "sent Authorization: %s", KEY
    )
    logging.getLogger("faster_whisper").warning(f"library echoed {KEY} in a message")

    stderr = capsys.readouterr().err
    written = log_file.read_text(encoding="utf-8")
    for sink in (stderr, written):
        assert KEY not in sink
        assert "sent Authorization: ***" in sink and "library echoed *** in a message" in sink


def test_report_lines_go_to_the_log_file_not_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "run.log"
    setup_logging(Settings(log_file=log_file))

    logging.getLogger(REPORT_LOGGER).warning("failed  a.mp3: not audio")

    assert "failed  a.mp3: not audio" in log_file.read_text(encoding="utf-8")
    assert capsys.readouterr().err == ""


def test_redact_key_rewrites_the_formatted_message_and_keeps_every_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s url=%s", (KEY, "u"), None)
    assert RedactKey(KEY).filter(record) is True
    assert record.getMessage() == "key=*** url=u"


def test_unopenable_log_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "run.log"
    with pytest.raises(ConfigError, match="cannot open the log file"):
        setup_logging(Settings(log_file=missing))

    result = run_cli(str(tmp_path), "--log-file", str(missing), env={"ASSEMBLYAI_API_KEY": KEY})

    assert result.exit_code == EXIT_USAGE
    assert result.output.startswith("batchscribe: error: ") and str(missing) in result.output


def test_log_file_moved_or_deleted_mid_run_is_reopened_at_its_name(tmp_path: Path) -> None:
    """logrotate moves the file (or deletes it): the next line starts a new file at the name."""
    log_file = tmp_path / "batchscribe.log"
    setup_logging(Settings(log_file=log_file))
    report = logging.getLogger(REPORT_LOGGER)

    report.info("before the rotation")
    log_file.rename(tmp_path / "batchscribe.log.1")
    report.info("after the rotation")
    rotated_again = log_file.read_text()
    log_file.unlink()
    report.info("after a delete")

    assert (tmp_path / "batchscribe.log.1").read_text().endswith("before the rotation\n")
    assert rotated_again.endswith("after the rotation\n") and "before" not in rotated_again
    assert log_file.read_text().endswith("after a delete\n")
