"""The run's decoding threads, shared by files and the windows of a lone long file.

The default plan gives each core a file (one thread each: that beats every core on one file,
BENCHMARKS.md). A folder keeps them all busy; one long recording alone kept one busy and left
the rest idle. Here each file holds one decoder while it is transcribed, and a long recording
heard window by window (windows.py) borrows the decoders no file holds for its later windows.
A file that comes meanwhile waits for a borrowed decoder to end its window (minutes of audio,
not the whole recording) and then has it back, so files never share a core.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from batchscribe.engines.base import DECODING_THREADS
from batchscribe.errors import Stopped

T = TypeVar("T")

#: How often a file waiting for its decoder looks whether the run is stopping now.
STOP_CHECK_S = 0.2


class Decoders:
    """`count` decoders: a file holds one (`held`), a long file's later windows borrow an idle
    one (`borrow`) until a file wants it (`wanted`). One set may serve several engines (a
    server's, one per option set), so that together they never decode more at once."""

    def __init__(self, count: int) -> None:
        self._free = threading.Semaphore(count)
        self._count = count
        self._lock = threading.Lock()
        self._borrowers: ThreadPoolExecutor | None = None  # made when first borrowed
        self._closed = False
        self._waiting = 0  # files waiting in `held`

    @contextlib.contextmanager
    def held(self, stopping: threading.Event) -> Iterator[None]:
        """One decoder for a file's transcription; raises Stopped when `stopping` (its run
        stops now) is set while it waits (a borrowed decoder ends its window first)."""
        with self._lock:
            self._waiting += 1
        try:
            while not self._free.acquire(timeout=STOP_CHECK_S):
                if stopping.is_set():
                    raise Stopped()
        finally:
            with self._lock:
                self._waiting -= 1
        try:
            yield
        finally:
            self._free.release()

    def wanted(self) -> bool:
        """A file waits for a decoder: a borrowed one gives it back after its window."""
        return self._waiting > 0

    def borrow(self, work: Callable[[], T]) -> Future[T] | None:
        """`work` on an idle decoder, or None when every one is held or lent (the caller then
        does it itself, later)."""
        if self._count < 2 or self.wanted() or not self._free.acquire(blocking=False):
            return None
        with self._lock:
            if self._closed:
                self._free.release()
                return None
            future = self._executor().submit(work)
        future.add_done_callback(lambda _done: self._free.release())
        return future

    def _executor(self) -> ThreadPoolExecutor:
        if self._borrowers is None:
            # named as the files' threads: a stop's exit knows a decode may be in them
            self._borrowers = ThreadPoolExecutor(
                max_workers=self._count - 1, thread_name_prefix=f"{DECODING_THREADS}-window"
            )
        return self._borrowers

    def close(self) -> None:
        """Lend no more; a window under way ends at its next segment (the run stops)."""
        with self._lock:
            self._closed = True
            if self._borrowers is not None:
                self._borrowers.shutdown(wait=False, cancel_futures=True)
