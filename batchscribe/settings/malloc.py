"""glibc's malloc as a process that transcribes should have it: few arenas, and big buffers
mapped on their own so that a transcription's freed buffers go back to the system. Set by
whatever starts such a process (a run, a server, a Ray actor); a `MALLOC_ARENA_MAX` or
`MALLOC_MMAP_THRESHOLD_` in the user's environment is the user's choice and kept."""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc malloc arenas the process may spread over (`M_ARENA_MAX`). glibc's default, 8 a core,
#: gives each concurrent transcription arenas of its own whose freed buffers are kept: on the
#: 20 clips at 2 workers, 2 arenas lower the peak by about 60 MB at the same speed
#: (BENCHMARKS.md, issue #30). Capped before any thread exists: arenas already made stay.
MALLOC_ARENAS = 2
#: Blocks above this are mapped on their own and unmapped when freed (`M_MMAP_THRESHOLD`).
#: glibc's own threshold rises to the largest block freed (up to 32 MiB), so after the first
#: encoder pass a transcription's 12-32 MB buffers stay in the heap, fragmented, once freed.
#: Fixed at 8 MiB, 2 workers on the 20 clips peak at 489-509 MB instead of 543-602 for about
#: 6% more CPU; at 2 MiB, 446-463 MB but 25% more CPU, as every 3 MB activation is then
#: fresh pages (BENCHMARKS.md, "Issue #30: the mmap threshold").
MMAP_THRESHOLD = 8 * 1024 * 1024
_M_ARENA_MAX = -8  # malloc.h
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> None:
    """Cap glibc's malloc arenas and fix its mmap threshold: at a run's, a server's or a Ray
    actor's start, before its threads where it can. A `MALLOC_ARENA_MAX` or
    `MALLOC_MMAP_THRESHOLD_` the user set is theirs; without glibc's mallopt, nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    if not os.environ.get("MALLOC_ARENA_MAX"):
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
