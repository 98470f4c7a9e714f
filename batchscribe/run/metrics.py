"""--metrics-file: what a run (or a watcher, kept current) tells Prometheus, in node_exporter's
textfile format.

`format_metrics` is pure: the figures in (`Figures`), the file's text out, built with
prometheus_client's own registry and exposition so the format is the one Prometheus reads.
`write_metrics` puts it in place atomically (a temporary file in the same folder, then a
rename: node_exporter never reads half a file); a file that cannot be written is one warning
line, never a failed run. No figure holds the key: only counts, times, paths and model names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from batchscribe.engines.stats import RequestStats
from batchscribe.state.journal import State

log = logging.getLogger("batchscribe.run.metrics")

#: The results a run counts per file (`batchscribe_run_files_total{result=...}`): each file
#: the run saw ends in one of them (done includes no speech and low confidence).
RESULTS = ("done", "failed", "up_to_date", "still_processing", "failed_before", "over_budget")


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything one metrics file says, gathered at one moment."""

    #: journal state -> files, over every journal folder of the run
    states: Mapping[str, int]
    #: result (RESULTS) -> files, this run (a watcher: since it started)
    results: Mapping[str, int]
    audio_seconds: float
    #: when the run ended (a watcher: this update), seconds since the epoch
    timestamp: float
    #: when a run last ended with exit status 0 (a watcher: its last update while up); 0: never
    last_success: float
    #: the exit status; None while a watcher runs (its status is known only at its end)
    exit_code: int | None
    #: a watcher running (True) or stopped (False); a run is over when it writes: False
    up: bool
    engine: str
    #: the model as the user knows it (local), or the speech models asked for (AssemblyAI)
    model: str
    requests: RequestStats | None = None


def format_metrics(figures: Figures) -> bytes:
    """The file's text: `batchscribe_*` series, each with a HELP and TYPE line."""
    return generate_latest(_registry(figures))


def write_metrics(path: Path, figures: Figures, *, warn: bool = True) -> bool:
    """Write the file atomically (temporary file beside it, then a rename; the temporary file
    is removed when anything fails). False when it cannot be written, after one warning line
    (`warn`: a watcher says it once, not every update): the metrics never fail a run."""
    try:
        write_to_textfile(str(path), _registry(figures))
    except (OSError, ValueError) as err:  # ValueError: a name that is not UTF-8
        if not warn:
            return False
        log.warning(
            "cannot write the metrics file %s (%s); the run goes on without it: check "
            "--metrics-file's folder exists and is writable",
            path,
            getattr(err, "strerror", None) or err,
        )
        return False
    return True


def _registry(figures: Figures) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(list(_families(figures))))
    return registry


class _Collected(Collector):
    """Metric families already built, for a registry of their own."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _families(f: Figures) -> Iterator[Metric]:
    files = GaugeMetricFamily(
        "batchscribe_files",
        "Files in the journals of the run's folders, by state.",
        labels=["state"],
    )
    for state in State:
        files.add_metric([state.value], f.states.get(state.value, 0))
    yield files
    results = CounterMetricFamily(
        "batchscribe_run_files",
        "Files this run (a watcher: since it started) ended with, by result.",
        labels=["result"],
    )
    for result in RESULTS:
        results.add_metric([result], f.results.get(result, 0))
    yield results
    yield _one(CounterMetricFamily, "batchscribe_audio_seconds",
               "Seconds of audio transcribed by this run (a watcher: since it started).",
               f.audio_seconds)  # fmt: skip
    yield _one(GaugeMetricFamily, "batchscribe_last_run_timestamp_seconds",
               "When the run ended (a watcher: its last update), in seconds since the epoch.",
               f.timestamp)  # fmt: skip
    yield _one(GaugeMetricFamily, "batchscribe_last_success_timestamp_seconds",
               "When a run last ended with exit status 0 (a watcher: its last update while "
               "running); 0: never.", f.last_success)  # fmt: skip
    if f.exit_code is not None:
        yield _one(GaugeMetricFamily, "batchscribe_last_run_exit_code",
                   "The run's exit status (0 all done, 1 some failed, 2 usage, 130 "
                   "interrupted); a watcher writes it when it stops.",
                   f.exit_code)  # fmt: skip
    yield _one(GaugeMetricFamily, "batchscribe_up",
               "1 while a watcher (--watch) runs, 0 once it has stopped or the run is over.",
               1.0 if f.up else 0.0)  # fmt: skip
    yield from _engine_families(f)


def _engine_families(f: Figures) -> Iterator[Metric]:
    info = InfoMetricFamily(
        "batchscribe_engine", "The engine the run uses, and its model.", labels=[]
    )
    info.add_metric([], {"engine": f.engine, "model": f.model})
    yield info
    if f.requests is None:
        return
    counts = (
        ("batchscribe_engine_requests", "HTTP requests sent to the API, retries included.",
         f.requests.requests),
        ("batchscribe_engine_rate_limited", "Requests the API answered 429 Too Many Requests.",
         f.requests.rate_limited),
        ("batchscribe_engine_retries", "Requests sent again after a 429, 5xx, reset or "
         "timeout.", f.requests.retries),
    )  # fmt: skip
    for name, help_text, value in counts:
        family = CounterMetricFamily(name, help_text, labels=["engine"])
        family.add_metric([f.engine], value)
        yield family


def _one(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    help_text: str,
    value: float,
) -> Metric:
    family = kind(name, help_text, labels=[])
    family.add_metric([], value)
    return family
