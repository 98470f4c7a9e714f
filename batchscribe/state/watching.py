"""What a running watcher is doing, for `--status`: `.batchscribe/watch.json` in each of its
journal folders.

The journal says what happened; only the watcher knows what waits in its queue. It writes
this small file (atomically, user-only) whenever that changes, and removes it when it stops;
`--status` trusts it only while the pid in it holds the folder's lock, so a file left by a
watcher that was killed is never shown.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from batchscribe.output.atomic import write_atomic
from batchscribe.state.lock import STATE_DIR

WATCH_FILE = "watch.json"
#: Files named per list: --status stays a screenful however much is queued.
LISTED = 10


@dataclass(frozen=True, slots=True)
class Watching:
    """A watcher's queue at one moment."""

    pid: int
    #: when the watcher started, seconds since the epoch
    since: float
    #: when this was written
    updated: float
    #: (path, stage) of the files under way, at most LISTED
    under_way: list[tuple[str, str]] = field(default_factory=list)
    under_way_count: int = 0
    #: files waiting for a worker, at most LISTED
    queued: list[str] = field(default_factory=list)
    queued_count: int = 0


def write_watching(root: Path, watching: Watching) -> None:
    """Replace `root`'s watch file. Raises OutputError when it cannot be written."""
    write_atomic(root / STATE_DIR / WATCH_FILE, json.dumps(asdict(watching)), private=True)


def remove_watching(root: Path) -> None:
    """The watcher stopped: nothing is queued any more."""
    with contextlib.suppress(OSError):
        os.unlink(root / STATE_DIR / WATCH_FILE)


def read_watching(root: Path) -> Watching | None:
    """`root`'s watch file, or None when there is none or it cannot be read (never an
    error: --status then says what the journal says)."""
    try:
        data = json.loads((root / STATE_DIR / WATCH_FILE).read_text(encoding="utf-8"))
        return Watching(
            pid=int(data["pid"]),
            since=float(data["since"]),
            updated=float(data["updated"]),
            under_way=[(str(p), str(s)) for p, s in data.get("under_way", [])],
            under_way_count=int(data.get("under_way_count", 0)),
            queued=[str(p) for p in data.get("queued", [])],
            queued_count=int(data.get("queued_count", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
