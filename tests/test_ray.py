"""--ray: the local engine on a real Ray cluster (a head on 127.0.0.1 started here, never a
mock), with the CLI in a subprocess as a user runs it. One head serves the module."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchscribe.config import RAY_CONCURRENCY, Settings, build_settings
from batchscribe.engines.cluster import plan as ray_options
from batchscribe.engines.cluster.plan import gcs_endpoint, plan_pool
from batchscribe.engines.factory import check_engine_available
from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, ConfigError
from tests import kit
from tests.fakes import journal_states, wait_for
from tests.kit import EXAMPLES, copy_recordings, events, run_cli, spawn_cli
from tests.rayhead import Head, free_port, ray_env, ray_head


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    with ray_head(num_cpus=2) as started:
        yield started
        # every actor of a run ends with its coordinator: none left over between tests
        assert not started.listening_off_loopback()


#: Whisper tiny.en on the actors: what is tested is the pool (stops, losses, the object
#: store), not the model; the default model only where a file must outlast a kill.
FAST_MODEL = ("--model", "tiny.en")


def start_cli(
    root: Path, head: Head, *args: str, model: tuple[str, ...] = FAST_MODEL
) -> subprocess.Popen[str]:
    given = () if "--model" in args else model
    return spawn_cli(
        str(root), "--engine", "local", "--ray", head.address, *given, *args, env=ray_env()
    )


def run_ray(root: Path, head: Head, *args: str) -> subprocess.CompletedProcess[str]:
    proc = start_cli(root, head, *args)
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def texts(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.txt"))}


def distinct_wavs(root: Path, count: int) -> list[Path]:
    """`count` different files of the same speech (a few bytes after the WAV data differ):
    each one is transcribed, none is another's copy."""
    root.mkdir(parents=True, exist_ok=True)
    speech = (EXAMPLES / "meeting-notes.wav").read_bytes()
    paths = [root / f"take {i}.wav" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_bytes(speech + bytes([i]) * 2)
    return paths


@pytest.mark.ray
@pytest.mark.slow
def test_a_folder_through_ray_has_the_same_text_as_without_it(head: Head, tmp_path: Path) -> None:
    here, there = copy_recordings(tmp_path / "here"), copy_recordings(tmp_path / "there")
    in_process = run_cli(str(here), "--engine", "local", *FAST_MODEL)
    assert in_process.exit_code == EXIT_OK, in_process.output

    proc = start_cli(there, head)
    off_loopback: list[str] = []
    while proc.poll() is None:  # the coordinator (a Ray driver) listens on loopback only too
        off_loopback += head.listening_off_loopback()
        time.sleep(0.5)
    _out, err = proc.communicate()

    assert proc.returncode == EXIT_OK, err
    assert "5 done" in err and "Traceback" not in err
    assert texts(there) == texts(here) and len(texts(there)) == 5
    for name in ("meeting-notes", "lecture/part-1"):
        data = json.loads((there / f"{name}.json").read_text())
        assert data["engine"] == "local" and data["words"]
    assert not off_loopback
    # the same options: a run without Ray finds the folder done
    again = run_cli(str(there), "--engine", "local", *FAST_MODEL)
    assert "0 done, 5 up to date" in again.output


@pytest.mark.ray
@pytest.mark.slow
def test_an_actor_killed_mid_file_loses_no_file(head: Head, tmp_path: Path) -> None:
    paths = distinct_wavs(tmp_path / "r", 6)
    proc = start_cli(tmp_path / "r", head, model=())  # base: each file outlasts the kill
    wait_for(lambda: head.actor_pids(".transcribe"))
    victim = head.actor_pids(".transcribe")[0]
    subprocess.run(["kill", "-9", str(victim)], check=True)
    _out, err = proc.communicate(timeout=240)

    assert proc.returncode == EXIT_OK, err
    assert "was lost" in err and "Traceback" not in err
    done = events(err, "done")
    assert len(done) == len(paths) and len(set(done)) == len(paths)  # each done, once
    assert all(p.with_suffix(".txt").read_text().strip() for p in paths)
    assert victim not in head.actor_pids()


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_coordinator_leaves_only_the_rest_for_the_next_run(
    head: Head, tmp_path: Path
) -> None:
    root = tmp_path / "r"
    paths = distinct_wavs(root, 6)
    proc = start_cli(root, head, "--concurrency", "2")
    wait_for(lambda: any(p.with_suffix(".txt").exists() for p in paths))
    proc.kill()
    proc.communicate()
    # done in the journal: written for good; a file whose outputs were being written when the
    # coordinator died is finished from the store by the next run (rendered, not transcribed)
    done = {root / key for key, state in journal_states(root).items() if state == "done"}
    written = {p: p.with_suffix(".txt").stat().st_mtime_ns for p in done}
    assert len(written) < len(paths)

    again = run_ray(root, head)

    assert again.returncode == EXIT_OK, again.stderr
    assert f"{len(paths) - len(written)} done, {len(written)} up to date" in again.stderr
    assert all(p.with_suffix(".txt").stat().st_mtime_ns == t for p, t in written.items())
    assert all(p.with_suffix(".txt").read_text().strip() for p in paths)


@pytest.mark.ray
@pytest.mark.slow
def test_bytes_go_through_the_object_store_and_a_file_over_the_limit_fails_alone(
    head: Head, tmp_path: Path
) -> None:
    root = copy_recordings(tmp_path / "r")
    config = tmp_path / "ray.toml"
    config.write_text("[ray]\nshared_storage = false\nmax_file_bytes = 200000\n")

    result = run_ray(root, head, "--config", str(config))

    assert result.returncode == EXIT_SOME_FAILED, result.stderr
    failed = events(result.stderr, "failed")
    assert len(failed) == 1 and "meeting-notes.wav" in failed[0]  # 234,862 bytes
    assert "max_file_bytes" in failed[0] and "shared_storage = true" in failed[0]
    assert "4 done" in result.stderr and "Traceback" not in result.stderr
    assert (root / "lecture" / "part-1.txt").read_text().strip()


@pytest.mark.ray
@pytest.mark.slow
def test_a_model_that_cannot_load_on_the_actors_stops_the_run(head: Head, tmp_path: Path) -> None:
    root = copy_recordings(tmp_path / "r")

    result = run_ray(root, head, "--model", str(tmp_path / "no-such-model"))

    assert result.returncode == EXIT_USAGE, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "on Ray node" in errors[0]
    assert "pass --model" in errors[0] and "Traceback" not in result.stderr
    assert not list(root.rglob("*.txt"))


@pytest.mark.ray
@pytest.mark.slow
def test_the_first_stop_finishes_the_files_on_the_actors(head: Head, tmp_path: Path) -> None:
    paths = distinct_wavs(tmp_path / "r", 6)
    proc = start_cli(tmp_path / "r", head, "--concurrency", "2")
    wait_for(lambda: head.actor_pids(".transcribe"))
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopping" in err
    written = [p for p in paths if p.with_suffix(".txt").exists()]
    assert 1 <= len(written) < len(paths)
    again = run_ray(tmp_path / "r", head)
    assert f"{len(paths) - len(written)} done, {len(written)} up to date" in again.stderr


@pytest.mark.ray
@pytest.mark.slow
def test_a_second_stop_ends_the_run_and_its_actors_at_once(head: Head, tmp_path: Path) -> None:
    distinct_wavs(tmp_path / "r", 6)
    proc = start_cli(tmp_path / "r", head)
    wait_for(lambda: head.actor_pids(".transcribe"))
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    began = time.monotonic()

    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert time.monotonic() - began < 5 and "Traceback" not in err
    wait_for(lambda: not head.actor_pids(), timeout=30)  # its actors are killed, not left


@pytest.mark.ray
def test_an_unreachable_cluster_is_one_line_exit_1_and_nothing_failed(tmp_path: Path) -> None:
    root = copy_recordings(tmp_path / "r")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there

    result = run_cli(str(root), "--engine", "local", "--ray", address, env=ray_env())

    assert result.exit_code == EXIT_SOME_FAILED, result.output
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"cannot reach the Ray cluster at {address}" in errors[0]
    assert not events(result.output, "failed") and "Traceback" not in result.output
    status = run_cli(str(root), "--status")
    assert "failed" not in status.output.split("files:")[1].splitlines()[0]


def test_ray_without_the_extra_exits_2_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_find_spec = ray_options.importlib.util.find_spec
    monkeypatch.setattr(
        ray_options.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ray" else real_find_spec(name, *a),
    )
    root = copy_recordings(tmp_path / "r")

    result = run_cli(str(root), "--engine", "local", "--ray", "127.0.0.1:6379")

    assert result.exit_code == EXIT_USAGE
    assert "pip install 'batchscribe[ray]'" in result.output
    assert not list(root.rglob("*.txt"))


@pytest.mark.ray
@pytest.mark.slow
def test_nothing_imports_ray_without_the_flag(tmp_path: Path) -> None:
    shutil.copyfile(EXAMPLES / "voicemail.ogg", tmp_path / "voicemail.ogg")
    check = (
        "import sys; from batchscribe.cli import cli\n"
        "try: cli([sys.argv[1], '--engine', 'local', '--dry-run'])\n"
        "except SystemExit as stop: assert stop.code == 0, f'dry run exited {stop.code}'\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", check, str(tmp_path)], capture_output=True)
    assert done.returncode == 0, done.stderr


def test_ray_auto_is_ray_address_and_concurrency_follows_the_pool(tmp_path: Path) -> None:
    def settings(flags: dict[str, object], env: dict[str, str] | None = None) -> Settings:
        return build_settings(flags={"engine": "local", **flags}, env=env or {}, cwd=tmp_path)

    assert settings({"ray_address": "auto"}, {"RAY_ADDRESS": "10.1.2.3:6379"}).ray_address == (
        "10.1.2.3:6379"
    )
    assert settings({"ray_address": "head:6379"}, {"RAY_ADDRESS": "x:1"}).ray_address == "head:6379"
    assert settings({}, {"RAY_ADDRESS": "10.1.2.3:6379"}).ray_address is None
    assert settings({"ray_address": "auto"}).concurrency == RAY_CONCURRENCY
    assert settings({"ray_address": "auto", "concurrency": 3}).concurrency == 3
    config = tmp_path / "c.toml"
    config.write_text('[ray]\naddress = "h:1"\nactors = 8\n')
    from_file = build_settings(flags={}, env={}, cwd=tmp_path, config_path=config)
    assert (from_file.ray_address, from_file.ray_actors, from_file.concurrency) == ("h:1", 8, 16)
    with pytest.raises(ConfigError, match="--engine local"):
        check_engine_available(Settings(api_key="k", ray_address="h:1"))


def test_the_pool_is_one_actor_per_cpu_slot_or_per_gpu() -> None:
    two_cpus = [{"CPU": 2.0}]
    assert plan_pool(Settings(ray_address="h:1").cluster(), two_cpus, where="h").actors == 2
    assert (
        plan_pool(
            Settings(ray_num_cpus=0.25, ray_address="h:1").cluster(), two_cpus, where="h"
        ).actors
        == 8
    )
    gpus = [{"CPU": 16.0, "GPU": 2.0}, {"CPU": 16.0, "GPU": 2.0}, {"CPU": 4.0}]
    on_gpus = plan_pool(Settings(ray_address="h:1").cluster(), gpus, where="h")
    assert (on_gpus.actors, on_gpus.num_gpus, on_gpus.device) == (4, 1.0, "auto")
    on_cpus = plan_pool(Settings(device="cpu", ray_address="h:1").cluster(), gpus, where="h")
    assert (on_cpus.actors, on_cpus.num_gpus, on_cpus.device) == (36, 0.0, "cpu")
    four = plan_pool(
        Settings(ray_actors=3, ray_num_cpus=4, ray_address="h:1").cluster(), gpus, where="h"
    )
    assert (four.actors, four.threads) == (3, 4)
    with pytest.raises(ConfigError, match="no node of the Ray cluster at h"):
        plan_pool(Settings(ray_num_gpus=1, ray_address="h:1").cluster(), two_cpus, where="h")


def test_the_head_is_asked_at_its_host_and_port() -> None:
    assert gcs_endpoint("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert gcs_endpoint("ray://head.lab:10001") == ("head.lab", 10001)
    assert gcs_endpoint("[::1]:6379") == ("::1", 6379)
    assert gcs_endpoint("auto") is None and gcs_endpoint("local") is None


@pytest.mark.ray
@pytest.mark.slow
def test_a_head_lost_mid_run_is_one_line_exit_1_and_nothing_failed(tmp_path: Path) -> None:
    paths = distinct_wavs(tmp_path / "r", 6)
    with ray_head(num_cpus=2) as lost:  # its own: this one is killed
        proc = start_cli(tmp_path / "r", lost, "--concurrency", "2")
        wait_for(lambda: lost.actor_pids(".transcribe"), timeout=90)
        for pid, cmd in lost.processes().items():
            if "gcs_server" in cmd:
                os.kill(pid, signal.SIGKILL)
        began = time.monotonic()
        _, err = proc.communicate(timeout=60)

    assert proc.returncode == EXIT_SOME_FAILED, err
    assert time.monotonic() - began < 20
    errors = [line for line in err.splitlines() if line.startswith("batchscribe: error:")]
    assert len(errors) == 1 and f"cannot reach the Ray cluster at {lost.address}" in errors[0]
    assert not events(err, "failed") and "Traceback" not in err
    status = run_cli(str(tmp_path / "r"), "--status")
    assert "failed" not in status.output.split("files:")[1].splitlines()[0]
    assert len(paths) == 6


#: A driver of its own: one real TranscriberActor on the head, holding a stand-in that runs
#: tests/kit.MAPPED_AFTER_A_BIG_FREE in the actor's process (defined here in __main__, so Ray
#: sends it by value). Prints what the actor saw.
ACTOR_MALLOC_PROBE = (
    kit.MAPPED_AFTER_A_BIG_FREE
    + """
import sys, ray
from batchscribe.config import Settings
from batchscribe.engines.cluster.actor import TranscriberActor
from batchscribe.engines.local.engine import ThreadPlan

class Probe:
    def load(self):
        pass
    def transcribe(self, audio):
        return {"mapped": mapped_after_a_big_free()}

def make(settings, plan):
    return Probe()

ray.init(address=sys.argv[1], logging_level="ERROR")
actor = ray.remote(TranscriberActor).options(num_cpus=1).remote(
    Settings().local(), ThreadPlan(1, 1), make)
print(ray.get(actor.transcribe.remote(b""), timeout=120)["data"]["mapped"])
ray.shutdown()
"""
)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mmap threshold")
def test_an_actor_s_process_has_the_run_s_malloc_tuning(head: Head) -> None:
    """Ray starts the actors' processes, not batchscribe: the actor tunes glibc's malloc
    itself, so a transcription's big freed buffers go back there as in a run."""
    done = subprocess.run(
        [sys.executable, "-c", ACTOR_MALLOC_PROBE, head.address],
        capture_output=True, text=True, env=ray_env(), timeout=180, check=True,
    )  # fmt: skip

    assert int(done.stdout.split()[-1]) >= 20_000_000
