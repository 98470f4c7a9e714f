"""--max-files and --max-audio-hours: the decision, and what a run counts."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

from batchscribe.run.budget import RunBudget, within


def test_within_counts_files_and_hours() -> None:
    assert within(0, 0.0, max_files=None, max_audio_hours=None)
    assert within(1, 0.0, max_files=2, max_audio_hours=None)
    assert not within(2, 0.0, max_files=2, max_audio_hours=None)
    assert within(5, 3599.0, max_files=None, max_audio_hours=1.0)
    assert not within(5, 3600.0, max_files=None, max_audio_hours=1.0)


async def test_a_file_starts_while_under_the_hours_and_counts_its_duration() -> None:
    measured: list[Path] = []

    def duration(path: Path) -> float | None:
        measured.append(path)
        return 2400.0 if path.name != "unknown.mp3" else None

    budget = RunBudget(max_files=None, max_audio_hours=1.0, duration=duration)

    assert await budget.admits(Path("unknown.mp3"))  # unknown duration counts as none
    assert await budget.admits(Path("a.mp3"))
    assert await budget.admits(Path("b.mp3"))  # 40 min started: still under the hour
    assert not await budget.admits(Path("c.mp3"))
    assert budget.files == 3 and budget.seconds == 4800.0
    assert [p.name for p in measured] == ["unknown.mp3", "a.mp3", "b.mp3"]


async def test_without_an_hours_budget_no_duration_is_read() -> None:
    def duration(path: Path) -> float | None:
        raise AssertionError("read a duration")

    budget = RunBudget(max_files=2, max_audio_hours=None, duration=duration)

    assert [await budget.admits(Path(f"{i}.mp3")) for i in range(3)] == [True, True, False]


async def test_workers_asking_at_once_never_pass_the_hours_budget_together() -> None:
    def duration(path: Path) -> float | None:
        time.sleep(0.01)  # a header read in a thread: every worker is waiting at once
        return 3600.0

    budget = RunBudget(max_files=None, max_audio_hours=1.0, duration=duration)
    admitted = await asyncio.gather(*(budget.admits(Path(f"{i}.mp3")) for i in range(8)))

    assert admitted.count(True) == 1  # one hour of audio, not eight


class Calendar:
    """Today's date, as the test says (the watcher's budget is per local calendar day)."""

    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


async def test_a_watchers_budget_counts_afresh_each_calendar_day() -> None:
    calendar = Calendar(date(2026, 12, 1))
    budget = RunBudget(
        max_files=2, max_audio_hours=1.0, duration=lambda _: 1800.0, daily=True, today=calendar
    )

    today = [await budget.admits(Path(f"a{i}.mp3")) for i in range(3)]
    calendar.day = date(2026, 12, 2)  # past midnight, local time
    tomorrow = [await budget.admits(Path(f"b{i}.mp3")) for i in range(3)]

    assert today == [True, True, False] and tomorrow == [True, True, False]
    assert budget.files == 2 and budget.seconds == 3600.0  # the second day's


async def test_a_runs_budget_never_starts_again_however_long_it_runs() -> None:
    calendar = Calendar(date(2026, 12, 1))
    budget = RunBudget(max_files=1, max_audio_hours=None, today=calendar)

    assert await budget.admits(Path("a.mp3"))
    calendar.day = date(2026, 12, 2)
    assert not await budget.admits(Path("b.mp3"))
