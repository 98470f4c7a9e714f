"""A real Ray head on 127.0.0.1 for tests and benches: started with `ray start --block` in a
session of its own, so that every process it starts (GCS, raylet, workers, actors) is found
by its session id and stopped by pid, never by name (other work on the machine is left alone).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

#: Without it Ray may take the machine's interface address; only loopback carries test traffic.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ray_env(**extra: str) -> dict[str, str]:
    """The environment for a process talking to the test head: loopback only, no key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI", "RAY_"))}
    return {**env, **LOOPBACK_ENV, **extra}


@dataclass
class Head:
    address: str
    session: int
    temp_dir: Path

    def processes(self) -> dict[int, str]:
        """pid -> command line of every live process of the head's session."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if fields[0] != "Z" and int(fields[3]) == self.session:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    found[int(entry.name)] = cmd.strip()
            except (OSError, ValueError, IndexError):
                continue
        return found

    def actor_pids(self, doing: str = "") -> list[int]:
        """The pids of the head's actor processes (titled `ray::TranscriberActor[.method]`)."""
        return [
            pid
            for pid, cmd in self.processes().items()
            if cmd.startswith("ray::TranscriberActor") and doing in cmd
        ]

    def listening_off_loopback(self) -> list[str]:
        """Sockets of the head's processes listening on anything but 127.0.0.1 (`ss -tlnp`)."""
        pids = self.processes()
        out = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True).stdout
        bad = []
        for line in out.splitlines():
            parts = line.split()
            local = parts[3] if len(parts) > 3 else ""
            owner = any(f"pid={pid}," in line for pid in pids)
            if owner and not local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")):
                bad.append(line)
        return bad

    def stop(self) -> None:
        """Every process of the session: SIGTERM, then SIGKILL for what is left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.processes()
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + (3 if sig == signal.SIGTERM else 10)
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not self.processes():
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[Head]:
    """A head on 127.0.0.1 with `num_cpus` CPU slots, stopped (every process) on exit."""
    ray = Path(sys.executable).parent / "ray"
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="bs-ray-", dir="/tmp"))
    proc = subprocess.Popen(
        [str(ray), "start", "--head", "--block", "--port", str(port),
         "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus),
         "--include-dashboard", "false", "--disable-usage-stats",
         "--temp-dir", str(temp_dir)],
        env=ray_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    head = Head(f"127.0.0.1:{port}", proc.pid, temp_dir)
    try:
        _wait_until_up(head, proc)
        yield head
    finally:
        head.stop()
        proc.wait(timeout=10)


def _wait_until_up(head: Head, proc: subprocess.Popen[bytes]) -> None:
    """Until a driver can connect (the raylet is up, not only the GCS port)."""
    deadline = time.monotonic() + 60
    check = "import ray; ray.init(address=%r, logging_level='ERROR'); ray.shutdown()"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", int(head.address.split(":")[1])), 1):
                break
        except OSError:
            time.sleep(0.2)
    subprocess.run(
        [sys.executable, "-c", check % head.address],
        env=ray_env(),
        check=True,
        timeout=60,
        capture_output=True,
    )
