"""The fingerprint and the content hash: one rule, and a hash a stop can interrupt."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from batchscribe.fingerprint import HASH_CHUNK, Fingerprint, Interrupted, content_digest


def test_the_fingerprint_is_size_and_mtime_in_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"12345")
    os.utime(path, ns=(1, 1_700_000_000_123_456_789))
    assert Fingerprint.of(path.stat()) == Fingerprint(5, 1_700_000_000_123_456_789)


def test_the_digest_is_the_sha256_of_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    content = os.urandom(HASH_CHUNK * 2 + 17)
    path.write_bytes(content)
    assert content_digest(path) == hashlib.sha256(content).hexdigest()
    assert content_digest(path, threading.Event()) == hashlib.sha256(content).hexdigest()


def test_a_stop_interrupts_hashing_between_two_reads(tmp_path: Path) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(os.urandom(HASH_CHUNK * 3))
    stop = threading.Event()
    stop.set()
    with pytest.raises(Interrupted):
        content_digest(path, stop)
