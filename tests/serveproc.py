"""A real `batchscribe serve` in a subprocess on a free port of 127.0.0.1, for the tests that
use the real AssemblyAI and OpenAI clients, kill -9 and SIGTERM. Every process is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        assert self.proc.poll() is None, self.proc.communicate()[1]
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> str:
        """Signal it, wait for it; its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.communicate(timeout=timeout)[1]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[1]


def start(
    state: Path,
    *args: str,
    port: int | None = None,
    key: str | None = None,
    env_extra: Mapping[str, str] | None = None,
) -> Served:
    """`batchscribe serve --model tiny.en` (fast; the language is not what these test) on
    `state`, up and answering /health."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSEMBLYAI", "BATCHSCRIBE"))}
    if key is not None:
        env["BATCHSCRIBE_SERVER_KEY"] = key
    env.update(env_extra or {})
    port = port or free_port()
    command = [sys.executable, "-m", "batchscribe", "serve", "--model", "tiny.en",
               "--port", str(port), "--state-dir", str(state), *args]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    served = Served(proc, port)
    try:
        wait_for(served.up, timeout=60)
    except BaseException:
        served.stop(signal.SIGKILL)
        raise
    return served


@contextmanager
def serving(
    state: Path, *args: str, key: str | None = None, env_extra: Mapping[str, str] | None = None
) -> Iterator[Served]:
    served = start(state, *args, key=key, env_extra=env_extra)
    try:
        yield served
    finally:
        served.stop(signal.SIGKILL)
