"""--max-files and --max-audio-hours: once reached, nothing new starts; the next run does it.

With --watch there is no next run: the budget is per calendar day in local time, counted
afresh from the first file started after midnight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path

from batchscribe.run.durations import audio_seconds


def within(
    files: int, seconds: float, *, max_files: int | None, max_audio_hours: float | None
) -> bool:
    """Whether one more file may start after `files` files and `seconds` of audio started."""
    if max_files is not None and files >= max_files:
        return False
    return max_audio_hours is None or seconds < max_audio_hours * 3600


class RunBudget:
    """Counts what this run started (`daily`: what it started today, local time, as `today`
    tells); a file's duration is read from its headers (in a thread) only when an audio-hours
    budget is set."""

    def __init__(
        self,
        *,
        max_files: int | None,
        max_audio_hours: float | None,
        duration: Callable[[Path], float | None] = audio_seconds,
        daily: bool = False,
        today: Callable[[], date] = date.today,
    ) -> None:
        self._max_files, self._max_hours = max_files, max_audio_hours
        self._duration = duration
        self._today = today if daily else None
        self._day = today() if daily else None
        self.files = 0
        self.seconds = 0.0
        # The check, the duration read and the count are one step: workers asking at once
        # must not all pass the check before any is counted.
        self._counting = asyncio.Lock()

    async def admits(self, source: Path) -> bool:
        """True, and counted, when `source` may start; False once the budget is reached."""
        async with self._counting:
            return await self._admit(source)

    async def _admit(self, source: Path) -> bool:
        if self._today is not None and (day := self._today()) != self._day:
            self._day, self.files, self.seconds = day, 0, 0.0  # a new day, a new budget
        if not within(
            self.files, self.seconds, max_files=self._max_files, max_audio_hours=self._max_hours
        ):
            return False
        if self._max_hours is not None:
            seconds = await asyncio.to_thread(self._duration, source)
            self.seconds += seconds or 0.0
        self.files += 1
        return True
