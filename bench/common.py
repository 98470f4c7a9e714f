"""What every benchmark here shares: run a contender as a subprocess, time it, read its RSS."""

from __future__ import annotations

import subprocess
import sys
import time

#: Runs a command; prints its peak RSS (KiB) and exit status: one wrapper per contender run,
#: so each figure is that run's own.
RSS_WRAPPER = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of `cmd`; exits if the command failed."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *cmd],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    seconds = time.perf_counter() - start
    rss, code = proc.stdout.split()
    if code != "0":
        raise SystemExit(f"{cmd[:3]} exited {code}")
    return seconds, int(rss) / 1024
