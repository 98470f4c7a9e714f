"""The last few of a list that would grow for months: a --watch summary's failures.

A nightly run lists every file that failed; a watcher running since spring would hold (and
print in `--json`, and store in the journal's run record) every failure since then. `Recent`
keeps the last `limit` and counts them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from batchscribe.report import Summary

T = TypeVar("T")

#: What a watcher's summary lists of each kind (failures, warnings, ...): a screenful.
WATCH_LISTED = 100


class Recent(Generic[T]):
    """A list that keeps its last `limit` items (every item when None) and counts every one.

    `len()` and truthiness count every item appended, kept or not (the summary's "3 failed");
    iterating yields the ones kept, oldest first.
    """

    __slots__ = ("_items", "count")

    def __init__(self, limit: int | None = None) -> None:
        self._items: deque[T] = deque(maxlen=limit)
        self.count = 0

    def append(self, item: T) -> None:
        self._items.append(item)
        self.count += 1

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __repr__(self) -> str:
        return f"Recent({list(self._items)!r}, count={self.count})"

    @property
    def dropped(self) -> int:
        """Items appended but no longer kept."""
        return self.count - len(self._items)


def keep_last(summary: Summary, limit: int = WATCH_LISTED) -> None:
    """A watcher's summary: each of its per-file lists keeps the last `limit` (counts stay
    whole). Called before anything is recorded in it."""
    summary.failed = Recent(limit)
    summary.warnings = Recent(limit)
    summary.still_running = Recent(limit)
    summary.no_speech = Recent(limit)
    summary.low_confidence = Recent(limit)
