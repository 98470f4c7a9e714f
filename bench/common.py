"""What every benchmark here shares: run a contender as a subprocess, time it, read its RSS."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Runs a command; prints its peak RSS (KiB), its CPU seconds (user + sys) and its exit status:
#: one wrapper per contender run, so each figure is that run's own.
RSS_WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime, code)"
)


@dataclass(frozen=True, slots=True)
class Measured:
    """One run of a contender: wall seconds, peak RSS (MB), CPU seconds (user + sys)."""

    seconds: float
    rss_mb: float
    cpu_s: float


def measure(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Measured:
    """One run of `cmd` (in `cwd`), measured; exits if the command failed."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *cmd],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=True,
    )
    seconds = time.perf_counter() - start
    rss, cpu, code = proc.stdout.split()
    if code != "0":
        raise SystemExit(f"{cmd[:3]} exited {code}")
    return Measured(seconds, int(rss) / 1024, float(cpu))


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of `cmd`; exits if the command failed."""
    run = measure(cmd, env)
    return run.seconds, run.rss_mb
