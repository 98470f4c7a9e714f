"""What an engine's requests did in one run, for `--metrics-file`: counted where they happen.

The HTTP client counts each request it sends and each 429 it is answered; the retry policy
counts each request it sends again. The run reads the figures once an update is due; nothing
here ever holds the key, a URL or a body.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RequestStats:
    """Counts since the engine was made (for --watch: since the watcher started)."""

    #: HTTP requests sent (uploads, creates, polls, listings, deletes), retries included
    requests: int = 0
    #: of those, answered 429 Too Many Requests
    rate_limited: int = 0
    #: requests sent again after a failure (429, 5xx, reset, timeout)
    retries: int = 0


def request_stats(engine: object) -> RequestStats | None:
    """The engine's request counts, when it makes requests (AssemblyAI); None otherwise (the
    local engine). Not part of the Engine protocol: an engine without requests has none."""
    stats = getattr(engine, "stats", None)
    return stats if isinstance(stats, RequestStats) else None
