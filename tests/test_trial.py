"""The hostile trial of issue #28, case by case (docs/TRIAL.md lists them): hostile counts,
URLs, redirects, links, special files, odd recordings and terminals."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from batchscribe.config_file import RANGES, config_key
from batchscribe.errors import EXIT_INTERRUPTED, EXIT_SOME_FAILED, EXIT_USAGE
from tests.fakeapi import API_KEY, FakeServer
from tests.fakes import wait_for
from tests.kit import REPO, api_env, cli_process, run_cli, speech, start_cli, write_config

# -- 1. counts: every one has a range, checked before any work ------------------------------


def test_a_hundred_million_workers_is_one_line_and_exit_2_at_once(tmp_path: Path) -> None:
    """It once made 100 million tasks (23.8 GB within 4 minutes) and ignored SIGTERM."""
    config = tmp_path / "c.toml"
    config.write_text("concurrency = 100000000\n")
    (tmp_path / "r").mkdir()

    done = cli_process(str(tmp_path / "r"), "--config", str(config), timeout=30)

    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "batchscribe: error: --concurrency (config: concurrency) must be from 1 to 256 "
        "(files under way at once), not 100,000,000."
    ]


@pytest.mark.parametrize(
    ("config", "flags", "said"),
    [
        ("", ["--concurrency", "257"], "--concurrency (config: concurrency) must be from 1 to"),
        ("", ["--concurrency", "0"], "--concurrency (config: concurrency) must be from 1 to"),
        ("", ["--max-files", "0"], "--max-files must be from 1 to"),
        ("[local]\nspeakers_expected = 100000\n", [], "speakers_expected) must be from 1 to 32"),
        ("", ["--speakers-expected", "0"], "--speakers-expected (config: [local] speakers"),
        ("[local]\nbatch_size = 100000\n", [], "[local] batch_size must be from 0 to 64"),
        ("[local]\nworkers = 100000\n", [], "[local] workers must be from 0 to 64"),
        ("[local]\nbeam_size = 100000\n", [], "[local] beam_size must be from 1 to 20"),
        ("[ray]\nactors = 1000000\n", [], "[ray] actors must be from 0 to 128"),
        ("[ray]\nmax_file_bytes = 100000000000\n", [], "[ray] max_file_bytes must be"),
        ("[assemblyai]\nrequests_per_minute = 1000000000\n", [], "requests_per_minute must"),
        ("[assemblyai]\nretry_attempts = 100000\n", [], "retry_attempts must be from 1 to 100"),
        ("[output]\nmax_line_chars = 0\n", [], "[output] max_line_chars must be from 1"),
    ],
)
def test_every_count_out_of_its_range_is_one_line_and_exit_2(
    tmp_path: Path, config: str, flags: list[str], said: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config)
    (tmp_path / "r").mkdir()

    result = run_cli(str(tmp_path / "r"), "--config", str(path), *flags)

    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("batchscribe: error: ") and said in line


def test_every_range_is_documented_in_the_readme_and_the_example_config() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / "config.example.toml").read_text()
    for name, allowed in RANGES.items():
        where = ", ".join(f"`{n}`" for n in (allowed.flag, config_key(name)) if n)
        row = f"| {where} | {allowed.low:,} to {allowed.high:,} |"
        assert row in readme, row
        key = config_key(name)
        if key is not None:
            assert f"{key.split()[-1]}: {allowed.low:,} to {allowed.high:,}" in example, name


@pytest.mark.slow
def test_sigterm_stops_a_run_at_the_highest_concurrency_within_its_grace(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.api.processing_seconds = 3600  # nothing finishes: the grace time runs out
    root = tmp_path / "r"
    root.mkdir()
    for i in range(300):
        (root / f"{i}.mp3").write_bytes(speech(f"number {i}"))
    config = write_config(
        tmp_path / "c.toml", {"concurrency": 256}, assemblyai={"poll_interval": 0.05}
    )
    proc = start_cli(root, fake, "--config", str(config), "--grace", "2")
    wait_for(lambda: fake.api.transcript_count >= 64)

    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent

    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert took < 2 + 8, took  # the grace, and the journal closed and the process gone
    assert "Traceback" not in stderr


# -- 2. the key never travels in clear ----------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "url"),
    [
        ("flag", "http://example.invalid"),
        ("env", "http://10.1.2.3:8080"),
        ("config", "http://192.168.1.1"),
        ("flag", "http://127.0.0.1.example.invalid"),  # a name, not the loopback address
        ("flag", "http://0.0.0.0:9"),
        ("flag", "http://user:pw@example.invalid/"),
    ],
)
def test_plain_http_to_another_machine_is_refused_before_any_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, url: str
) -> None:
    looked_up: list[object] = []

    def no_lookup(*args: object, **kwargs: object) -> None:
        looked_up.append(args)
        raise OSError("no lookup in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket.socket, "connect", no_lookup)
    monkeypatch.setattr(socket.socket, "connect_ex", no_lookup)
    (tmp_path / "talk.mp3").write_bytes(speech("secret"))
    config = tmp_path / "c.toml"
    config.write_text(f'[assemblyai]\nbase_url = "{url}"\n' if where == "config" else "")
    flags = ["--api-url", url] if where == "flag" else []
    env = {
        "ASSEMBLYAI_API_KEY": API_KEY,
        **({"ASSEMBLYAI_BASE_URL": url} if where == "env" else {}),
    }

    result = run_cli(str(tmp_path), "--config", str(config), *flags, env=env)

    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = result.output.splitlines()
    assert "plain http to another machine" in line and "in clear" in line
    assert API_KEY not in line and ":pw@" not in line  # nor a password in the URL
    assert looked_up == []
    assert not (tmp_path / "talk.txt").exists()


@pytest.mark.parametrize(
    "url",
    ["https://api.example.invalid", "http://127.0.0.1:9", "http://[::1]:9", "http://localhost:9"],
)
def test_https_anywhere_and_plain_http_to_this_machine_are_accepted(
    tmp_path: Path, url: str
) -> None:
    from batchscribe.config import build_settings

    s = build_settings(flags={"base_url": url}, env={"ASSEMBLYAI_API_KEY": "k"}, cwd=tmp_path)
    assert s.base_url == url


def test_plain_http_elsewhere_does_not_stop_the_local_engine(tmp_path: Path) -> None:
    from batchscribe.config import build_settings

    s = build_settings(
        flags={"engine": "local"},
        env={"ASSEMBLYAI_BASE_URL": "http://example.invalid"},
        cwd=tmp_path,
    )
    assert s.chosen_engine() == "local"  # no key is sent anywhere


# -- 3. redirects ----------------------------------------------------------------------------


@pytest.fixture
def elsewhere() -> Iterator[FakeServer]:
    """A second API on 127.0.0.1, reached by another name (`localhost`): another host."""
    with FakeServer() as server:
        yield server


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_host_is_refused_and_the_key_never_goes_there(
    fake: FakeServer, elsewhere: FakeServer, tmp_path: Path, fast_config: Path, status: int
) -> None:
    other = elsewhere.url.replace("127.0.0.1", "localhost")
    fake.api.redirect_status, fake.api.redirect_to = status, f"{other}/v2/upload?token=x"
    (tmp_path / "talk.mp3").write_bytes(speech("secret") + os.urandom(300_000))

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = [line for line in result.output.splitlines() if "error" in line]
    assert f"redirected (HTTP {status}) to another host, {other};" in line
    assert "never sent there" in line and "token" not in line
    assert elsewhere.api.requests == [] and elsewhere.api.keys_seen == []
    assert len(fake.api.requests) == 1  # refused at once, not retried
    assert "Traceback" not in result.output and API_KEY not in result.output


def test_a_redirect_on_the_same_host_is_refused_too(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.redirect_status, fake.api.redirect_to = 307, "/v3/upload"
    (tmp_path / "talk.mp3").write_bytes(speech("secret"))

    result = run_cli(str(tmp_path), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_USAGE, result.output
    assert "redirected (HTTP 307) to /v3/upload on the same host; not followed" in result.output
    assert fake.api.keys_seen == [API_KEY]


# -- 4. never written through a link ----------------------------------------------------------


@pytest.mark.parametrize("claimed", [False, True])
@pytest.mark.parametrize("dangling", [False, True])
def test_an_output_that_is_a_link_is_neither_followed_nor_replaced(
    fake: FakeServer, tmp_path: Path, fast_config: Path, claimed: bool, dangling: bool
) -> None:
    root, outside = tmp_path / "r", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    source = root / "talk.mp3"
    source.write_bytes(speech("first"))
    if claimed:  # batchscribe wrote talk.txt once; then it became a link, and the source changed
        assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
        (root / "talk.txt").unlink()
        source.write_bytes(speech("second"))
    target = outside / "target.txt"
    if not dangling:
        target.write_text("precious\n")
    (root / "talk.txt").symlink_to(target)

    result = run_cli(str(root), "--config", str(fast_config), env=api_env(fake))

    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert "talk.txt is a symbolic link and was not written by batchscribe; kept it" in (
        result.output
    )
    assert (root / "talk.txt").is_symlink() and os.readlink(root / "talk.txt") == str(target)
    assert target.read_text() == "precious\n" if not dangling else not target.exists()


def precious(path: Path) -> Path:
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("name", ["lock", "journal.sqlite3", "journal.sqlite3-wal"])
def test_a_state_file_that_is_a_link_stops_the_run_and_its_target_is_untouched(
    tmp_path: Path, name: str
) -> None:
    from batchscribe.state.journal import JOURNAL_NAME

    assert JOURNAL_NAME == "journal.sqlite3"
    root = tmp_path / "r"
    (root / ".batchscribe").mkdir(parents=True, mode=0o700)
    (root / ".batchscribe" / name).symlink_to(precious(tmp_path / "precious"))
    (root / "talk.mp3").write_bytes(speech("x"))

    result = run_cli(str(root), "--engine", "local")

    assert result.exit_code == EXIT_USAGE, result.output
    assert f"{name} is a symbolic link; batchscribe never writes its state through one" in (
        result.output
    )
    assert (tmp_path / "precious").read_text() == "precious\n"


def test_a_state_folder_that_is_a_link_or_open_to_every_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "talk.mp3").write_bytes(speech("x"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / ".batchscribe").symlink_to(elsewhere)

    linked = run_cli(str(root), "--engine", "local")

    assert linked.exit_code == EXIT_USAGE and "is a symbolic link" in linked.output
    assert list(elsewhere.iterdir()) == []
    (root / ".batchscribe").unlink()
    (root / ".batchscribe").mkdir()
    (root / ".batchscribe").chmod(0o777)

    open_to_all = run_cli(str(root), "--engine", "local")

    assert open_to_all.exit_code == EXIT_USAGE, open_to_all.output
    assert "writable by every user (mode 777)" in open_to_all.output
    assert "chmod 700" in open_to_all.output
    assert list((root / ".batchscribe").iterdir()) == []


# -- 5. special files: named for what they are, never opened -----------------------------------


def special_files(root: Path) -> dict[str, str]:
    """Audio-named entries that are no recordings, each with what its line must call it."""
    (root / "zero.mp3").symlink_to("/dev/zero")
    (root / "random.wav").symlink_to("/dev/urandom")
    os.mkfifo(root / "pipe.mp3")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "s.wav"))
    sock.close()  # the socket file stays
    return {
        "zero.mp3": "a symbolic link to a character device (/dev/zero)",
        "random.wav": "a symbolic link to a character device (/dev/urandom)",
        "pipe.mp3": "a FIFO (named pipe)",
        "s.wav": "a socket",
    }


@pytest.mark.slow
def test_devices_fifos_and_sockets_in_a_folder_are_named_once_and_never_opened(
    fake: FakeServer, tmp_path: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "good.mp3").write_bytes(speech("fine"))
    kinds = special_files(root)
    config = write_config(tmp_path / "c.toml")  # the kit's timings: polls every 0.02 s

    first = cli_process(str(root), "--config", str(config), env=api_env(fake), timeout=60)

    assert first.returncode == EXIT_SOME_FAILED, first.stderr
    for name, kind in kinds.items():
        (line,) = [line for line in first.stderr.splitlines() if f"{root / name}:" in line]
        assert kind in line and "not a recording" in line, line
    assert (root / "good.txt").read_text() == "fine\n"
    assert fake.api.upload_count == 1
    assert "broken symlink" not in first.stderr and "Traceback" not in first.stderr

    again = cli_process(str(root), "--config", str(config), env=api_env(fake), timeout=60)

    assert again.returncode == 0, again.stderr  # reported once; --status lists them
    assert not any(name in again.stderr for name in kinds)


@pytest.mark.slow
def test_a_fifo_named_on_the_command_line_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.wav")

    done = cli_process(str(tmp_path / "pipe.wav"), "--engine", "local", timeout=60)

    assert done.returncode == EXIT_SOME_FAILED, done.stderr
    assert "a FIFO (named pipe), not a recording" in done.stderr


# -- 6. odd recordings, with the real local model -----------------------------------------------

#: Runs a command and prints the peak RSS (KiB) of what it ran, on its last stderr line.
PEAK_RSS = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(done.returncode)"
)


def measured(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """The CLI in a subprocess, and its peak memory in GiB."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "batchscribe", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    *lines, peak = done.stderr.splitlines()
    done.stderr = "\n".join(lines)
    return done, int(peak) / 2**20


def wav(path: Path, frames: bytes, *, rate: int = 16000, channels: int = 1, width: int = 2) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames)


@pytest.mark.model
@pytest.mark.slow
def test_odd_recordings_each_end_clearly_with_memory_bounded(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    noise = np.random.default_rng(1).normal(0, 300, 16000 * 3 * 8).astype(np.int16)
    (root / "empty.wav").write_bytes(b"")
    wav(root / "one-sample.wav", b"\x00\x00")
    wav(root / "eight-channels.wav", noise.tobytes(), channels=8)
    wav(root / "hi-res.wav", noise.astype("<i4").tobytes()[: 96000 * 2 * 3], rate=96000, width=3)
    (root / "text.mp3").write_text("this is not audio\n" * 100)
    with open(root / "sparse.wav", "wb") as sparse:
        sparse.truncate(5 * 2**30)  # 5 GB of nothing, no header; takes no disk

    done, peak_gib = measured(str(root), "--engine", "local", "--model", "tiny.en", timeout=300)

    assert done.returncode == EXIT_SOME_FAILED, done.stderr
    lines = done.stderr.splitlines()
    for name, outcome in [
        ("empty.wav", "failed"),
        ("one-sample.wav", "done"),
        ("eight-channels.wav", "done"),
        ("hi-res.wav", "done"),
        ("text.mp3", "failed"),
        ("sparse.wav", "failed"),
    ]:
        (line,) = [line for line in lines if f"{root / name}" in line]
        assert f" {outcome} " in line, line
    assert "cannot decode it as audio" in next(line for line in lines if "sparse.wav" in line)
    assert "Traceback" not in done.stderr
    assert peak_gib < 1.5, peak_gib  # measured 0.25 GiB


@pytest.mark.model
@pytest.mark.slow
def test_two_hours_of_silence_finish_fast_with_memory_bounded(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "silence.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for _ in range(120):
            out.writeframes(bytes(2 * 16000 * 60))

    done, peak_gib = measured(str(tmp_path), "--engine", "local", "--model", "tiny.en", timeout=300)

    assert done.returncode == 0, done.stderr
    assert "silence.wav (no speech)" in done.stderr
    # Was 1.8 GiB (the whole recording decoded to float32 first); heard in 5-minute windows
    # since issue #30 (engines/local/windows.py): bounded by a window, not by the length.
    assert peak_gib < 1.0, peak_gib


# -- 7. display and environment: no escape codes where no terminal is, names never raw ----------

#: A name that would drive a terminal (red text) and split a line, were it shown raw.
HOSTILE_NAME = "a\x1b[31mred\nline\x07.mp3"


def hostile_folder(root: Path) -> Path:
    root.mkdir()
    (root / HOSTILE_NAME).write_bytes(speech("hostile"))
    (root / "plain.mp3").write_bytes(speech("plain"))
    return root


def in_a_terminal(args: list[str], env: dict[str, str], columns: int) -> bytes:
    """What the CLI writes to a pseudo-terminal `columns` wide (stdout and stderr both)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchscribe", *args], stdout=child, stderr=child, env=env
    )
    os.close(child)
    seen = b""
    with contextlib.suppress(OSError):  # EIO once the child closed its side
        while chunk := os.read(main, 65536):
            seen += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0, seen
    return seen


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra_env", "flags"),
    [
        ({}, []),
        ({"NO_COLOR": "1"}, []),
        ({"TERM": "dumb"}, []),
        ({}, ["--quiet"]),
        ({}, ["--json"]),
    ],
)
def test_piped_output_has_no_escape_codes_and_names_are_escaped(
    fake: FakeServer, tmp_path: Path, extra_env: dict[str, str], flags: list[str]
) -> None:
    root = hostile_folder(tmp_path / "r")
    config = write_config(tmp_path / "c.toml")  # the kit's timings: polls every 0.02 s

    done = cli_process(
        str(root), "--config", str(config), *flags, env={**api_env(fake), **extra_env}
    )

    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr):
        assert not set(text) & {"\x1b", "\x07", "\r"}, text
    if flags == ["--quiet"]:
        assert done.stderr == "" and done.stdout == ""
    else:
        assert "a\\x1b[31mred\\nline\\x07.mp3" in done.stderr
        assert all(line.startswith("20") for line in done.stderr.splitlines())
    if flags == ["--json"]:
        assert json.loads(done.stdout)["done"] == 2


@pytest.mark.slow
def test_a_cron_like_empty_environment_runs_and_prints_plain_lines(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "notes.mp3").write_text("not audio")
    env = {"PATH": "/usr/bin:/bin"}  # cron's: no HOME, no TERM, no LANG

    done = subprocess.run(
        [sys.executable, "-m", "batchscribe", str(root), "--engine", "local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == EXIT_SOME_FAILED, done.stderr
    assert "cannot decode it as audio" in done.stderr and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("term", "columns"), [("dumb", 60), ("dumb", 200), ("xterm", 60), ("xterm", 200)]
)
def test_in_a_terminal_names_never_reach_it_raw(
    fake: FakeServer, tmp_path: Path, term: str, columns: int
) -> None:
    root = hostile_folder(tmp_path / "r")
    config = write_config(tmp_path / "c.toml")  # the kit's timings: polls every 0.02 s
    env = {**os.environ, **api_env(fake), "TERM": term}

    seen = in_a_terminal([str(root), "--config", str(config)], env, columns)

    assert b"\x1b[31mred" not in seen and b"\x07" not in seen
    # Shown escaped, shortened and wrapped to the width as it may be.
    assert b"line\\x07.mp3" in seen.replace(b"\r\n", b"")
    if term == "dumb":
        assert b"\x1b" not in seen  # no progress line, no colour: plain lines
