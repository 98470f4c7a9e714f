"""One event, one line: control characters in what a line shows (a file name with a newline,
an escape sequence) are written escaped, so a log line is never split or a terminal driven."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: C0 and C1 controls, DEL, and the characters `str.splitlines` also splits at.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """`text` with every control character escaped (`\\n`, `\\x1b`, ...): what every plain,
    log and terminal line shows. The `--json` summary keeps names exact (JSON escapes them)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape, text)


def error_line(err: object) -> str:
    """The one line a run-wide error ends the command with (on stderr; its exit status says
    which kind): `batchscribe: error: ...`."""
    return one_line(f"batchscribe: error: {err}")


def shown_url(url: str) -> str:
    """`url` as a line may show it: without a user:password@ part (it may hold a key)."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
