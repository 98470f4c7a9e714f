"""--metrics-file: a file Prometheus' own parser reads, written atomically at the end of every
run, counting what the journal, the run and the engine's requests say; never failing a run."""

from __future__ import annotations

import re
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from batchscribe.cli import make_cli
from batchscribe.engines.stats import RequestStats
from batchscribe.errors import EXIT_OK, EXIT_SOME_FAILED
from batchscribe.run.metrics import Figures, format_metrics
from tests.fakeapi import API_KEY, FakeServer
from tests.fakes import FakeEngine
from tests.kit import api_env, run_cli, speech

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample, by name and its exact labels, as Prometheus reads it."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset(sample.labels.items())
            found[(sample.name, labels)] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_a_run_writes_a_metrics_file_prometheus_reads_and_nothing_else(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "one.wav").write_bytes(speech("the first recording"))
    (root / "two.mp3").write_bytes(speech("the second recording"))
    (root / "empty.wav").write_bytes(b"")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    metrics = textfiles / "batchscribe.prom"

    result = run_cli(
        str(root), "--config", str(fast_config), "--metrics-file", str(metrics),
        env=api_env(fake),
    )  # fmt: skip
    ended = time.time()

    assert result.exit_code == EXIT_SOME_FAILED, result.output
    text = metrics.read_text()
    found = samples(text)
    assert value(found, "batchscribe_files", state="done") == 2
    assert value(found, "batchscribe_files", state="failed") == 1
    assert value(found, "batchscribe_files", state="pending") == 0
    assert value(found, "batchscribe_run_files_total", result="done") == 2
    assert value(found, "batchscribe_run_files_total", result="failed") == 1
    assert value(found, "batchscribe_last_run_exit_code") == result.exit_code
    assert abs(value(found, "batchscribe_last_run_timestamp_seconds") - ended) < 5
    assert value(found, "batchscribe_last_success_timestamp_seconds") == 0  # never all done
    assert value(found, "batchscribe_up") == 0
    assert value(found, "batchscribe_engine_requests_total", engine="assemblyai") == (
        fake.api.request_count
    )
    assert list(textfiles.iterdir()) == [metrics]  # no temporary file left behind
    assert API_KEY not in text and fake.url not in text


def test_a_good_run_sets_the_last_success_and_a_rerun_keeps_it(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "one.wav").write_bytes(speech("all is well"))
    metrics = tmp_path / "b.prom"
    args = (str(root), "--config", str(fast_config), "--metrics-file", str(metrics))

    assert run_cli(*args, env=api_env(fake)).exit_code == EXIT_OK
    first = samples(metrics.read_text())
    (root / "broken.wav").write_bytes(b"")
    assert run_cli(*args, env=api_env(fake)).exit_code == EXIT_SOME_FAILED
    second = samples(metrics.read_text())

    success = value(first, "batchscribe_last_success_timestamp_seconds")
    assert abs(success - value(first, "batchscribe_last_run_timestamp_seconds")) < 1
    # The failed run does not move it: "no successful run in 26 hours" can fire.
    assert abs(value(second, "batchscribe_last_success_timestamp_seconds") - success) < 0.01
    assert value(second, "batchscribe_run_files_total", result="up_to_date") == 1
    assert value(second, "batchscribe_files", state="done") == 1


def test_requests_429s_and_retries_are_counted_by_the_engine(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    fake.api.throttle_rate = 0.25  # a 429 slows the run to a request a second: few files
    fake.api.error_rate = 0.25
    root = tmp_path / "recordings"
    root.mkdir()
    for i in range(2):
        (root / f"{i}.wav").write_bytes(speech(f"recording {i}"))
    metrics = tmp_path / "b.prom"

    result = run_cli(
        str(root), "--config", str(fast_config), "--metrics-file", str(metrics),
        env=api_env(fake),
    )  # fmt: skip

    assert result.exit_code == EXIT_OK, result.output
    found = samples(metrics.read_text())
    faults = fake.api.faults["429"] + fake.api.faults["500"]
    assert fake.api.faults["429"] > 0 and fake.api.faults["500"] > 0
    assert value(found, "batchscribe_engine_requests_total", engine="assemblyai") == (
        fake.api.request_count
    )
    assert (
        value(found, "batchscribe_engine_rate_limited_total", engine="assemblyai")
        == (fake.api.faults["429"])
    )
    assert value(found, "batchscribe_engine_retries_total", engine="assemblyai") == faults


def test_the_local_engines_model_is_a_label_of_an_info_series(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "a.wav").write_bytes(speech("offline"))
    metrics = tmp_path / "b.prom"
    cli = make_cli(lambda settings: FakeEngine())

    from click.testing import CliRunner

    result = CliRunner().invoke(
        cli, [str(root), "--engine", "local", "--model", "tiny", "--metrics-file", str(metrics)]
    )

    assert result.exit_code == EXIT_OK, result.output
    found = samples(metrics.read_text())
    assert value(found, "batchscribe_engine_info", engine="local", model="tiny") == 1
    assert not [name for name, _ in found if name.startswith("batchscribe_engine_requests")]


def test_an_unwritable_metrics_file_is_one_warning_and_never_fails_the_run(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "a.wav").write_bytes(speech("fine"))
    metrics = tmp_path / "no such folder" / "b.prom"

    result = run_cli(
        str(root), "--config", str(fast_config), "--metrics-file", str(metrics),
        env=api_env(fake),
    )  # fmt: skip

    assert result.exit_code == EXIT_OK, result.output
    warnings = [line for line in result.output.splitlines() if "metrics file" in line]
    assert len(warnings) == 1 and str(metrics) in warnings[0], result.output
    assert "Traceback" not in result.output and not metrics.parent.exists()


def test_the_metrics_file_from_the_config_file(
    fake: FakeServer, tmp_path: Path, fast_config: Path
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "a.wav").write_bytes(speech("configured"))
    metrics = tmp_path / "from-config.prom"
    fast_config.write_text(f'metrics_file = "{metrics}"\n' + fast_config.read_text())

    assert run_cli(str(root), "--config", str(fast_config), env=api_env(fake)).exit_code == 0
    assert value(samples(metrics.read_text()), "batchscribe_files", state="done") == 1


def test_a_running_watcher_has_no_exit_code_yet_and_is_up() -> None:
    figures = Figures(
        states={"done": 3}, results={"done": 1}, audio_seconds=61.5,
        timestamp=1_796_000_000.0, last_success=1_796_000_000.0, exit_code=None, up=True,
        engine="local", model="whisper-tiny.en",
    )  # fmt: skip

    found = samples(format_metrics(figures).decode())

    assert (
        value(found, "batchscribe_up") == 1 and value(found, "batchscribe_files", state="done") == 3
    )
    assert value(found, "batchscribe_audio_seconds_total") == 61.5
    assert not [name for name, _ in found if name == "batchscribe_last_run_exit_code"]


def test_the_readme_lists_every_series_the_file_has() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    listed = set(re.findall(r"^\| `(batchscribe_[a-z_]+)[{`]", readme, flags=re.MULTILINE))
    figures = Figures(
        states={}, results={}, audio_seconds=0.0, timestamp=0.0,
        last_success=0.0, exit_code=0, up=False, engine="assemblyai", model="universal-2",
        requests=RequestStats(),
    )  # fmt: skip
    written = {family.name for family in text_string_to_metric_families(
        format_metrics(figures).decode())}  # fmt: skip
    # The parser names a counter without its `_total`.
    assert {re.sub(r"_total$", "", name) for name in listed} == written
