"""Stopping as servers and job runners do: the first Ctrl-C or SIGTERM stops starting files and
lets the ones under way finish (within the grace time); a second one stops at once.

`Stop` is the run's shared flag. The pipeline stops feeding workers when it is set; a worker
drops work that has cost nothing yet when its engine says so (an upload in flight is not
billed); what is already paid for is collected within the grace time or left in the journal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from batchscribe.engines.base import DECODING_THREADS
from batchscribe.errors import EXIT_INTERRUPTED, Stopped

T = TypeVar("T")


class Stop:
    """Set once, by the first stop signal; read by every stage of the run."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        #: set when the run stops now (a second signal, or the grace time is over): blocking
        #: work in threads (hashing) gives up at its next step
        self.now = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def event(self) -> asyncio.Event:
        """Set on the first stop: for waiting on it (file watching ends there)."""
        return self._event

    def request(self) -> bool:
        """Ask the run to stop; True the first time only."""
        first = not self._event.is_set()
        self._event.set()
        return first

    async def unless_stopped(self, work: Awaitable[T], *, droppable: Callable[[], bool]) -> T:
        """Await `work`; when a stop is asked while `droppable()` holds (nothing paid for
        yet), cancel it and raise Stopped. Once it is no longer droppable, it runs to its end.
        """
        task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and droppable():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if not task.cancelled() or (current is not None and current.cancelling()):
                        raise  # our caller is being cancelled too: that wins
                    raise Stopped() from None
            return await task
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # seen: one worker's error while another's stops the run


#: How a stop is named to the user, by the signal that asked for it: the line says to send the
#: same again (SIGTERM's sender may have no keyboard).
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


async def under_stop_signals(
    work: Callable[[Stop], Awaitable[None]],
    *,
    grace: float,
    stopping: Callable[[str], None],
) -> bool:
    """Run `work(stop)` with SIGINT and SIGTERM handled as servers do: the first sets `stop`
    (and calls `stopping` with the signal's name, to say so) and gives work under way `grace`
    seconds; a second, or the end of the grace time, cancels the run at once. True when a
    stop was asked."""
    task = asyncio.current_task()
    assert task is not None
    loop, stop = asyncio.get_running_loop(), Stop()
    deadline: list[asyncio.TimerHandle] = []

    def stop_now() -> None:
        stop.now.set()
        task.cancel()

    def on_signal(sig: signal.Signals) -> None:
        if stop.request():
            stopping(SIGNAL_NAMES[sig])
            deadline.append(loop.call_later(grace, stop_now))
        else:
            exit_on_signal()  # a third one, while threads finish, ends the process
            stop_now()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await work(stop)
    finally:
        for handle in deadline:
            handle.cancel()
    return stop.requested


def exit_on_signal() -> None:
    """From here on a signal ends the process at once (after the run): no traceback from the
    interpreter joining threads (a decode finishing its segment), no abort in C++ teardown."""

    def now(signum: int, frame: object) -> None:
        os._exit(EXIT_INTERRUPTED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, now)


def exit_interrupted() -> NoReturn:
    """Exit 130 at once. Decoding threads still finishing their segment are not waited for:
    by now the journal is closed and every output was written whole or not at all, so nothing
    is lost, and leaving without the interpreter's teardown of a running CTranslate2 thread
    spares seconds and the abort it can end in."""
    if any(t.name.startswith(DECODING_THREADS) and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)
