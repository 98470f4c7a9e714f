"""Issue #29's moved modules: behaviour no fast test held, found by mutation testing
(BENCHMARKS.md, "Issue #29: mutation score of the moved modules"). Each test fails with one or
more of the surviving mutants of that run: the [ray] checks, the pool's edge cases, the head's
address, the local transcript's fields, the request fields' messages, the flags' merge, and
what one file's attempt writes to the journal and tells the reporter."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.engines.assemblyai.request import check_settings
from batchscribe.engines.cluster.plan import check_ray, gcs_endpoint, plan_pool
from batchscribe.engines.local.options import to_transcript_data, transcribe_options
from batchscribe.errors import ConfigError
from batchscribe.output.subtitles import CueLimits
from batchscribe.report import Reporter
from batchscribe.run.attempt import Attempt, Attempts
from batchscribe.run.job import Job, Wanted
from batchscribe.settings.request_flags import merge, parse_speech_models
from batchscribe.state.journal import Start, State
from batchscribe.state.state_dirs import StateDirs
from tests.fakes import job

# -- the request fields (settings/request_flags.py, engines/assemblyai/request.py)


def test_flags_that_name_no_model_keep_the_config_files_models() -> None:
    from_file = {"speech_models": ["universal-2"], "punctuate": False}
    assert merge(from_file, {"language_code": "fr"}) == {**from_file, "language_code": "fr"}
    assert merge(from_file, {"speech_model": "slam-1"}) == {"punctuate": False,
                                                            "speech_model": "slam-1"}  # fmt: skip


def test_an_empty_speech_model_flag_is_one_line_naming_the_flag_and_an_example() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_speech_models(" , ")
    line = str(refused.value)
    assert line.startswith("--speech-model needs") and "universal-3-pro,universal-2" in line


def test_a_bad_field_in_the_config_file_names_the_file_and_the_table() -> None:
    bad = {"speech_models": "universal-2"}  # a name, not a list
    part = Settings(api_key="k", file_transcript_options=bad, transcript_options=bad,
                    config_path=Path("c.toml")).assemblyai()  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        check_settings(part)
    line = str(refused.value)
    assert line.startswith("c.toml: [assemblyai.transcript] speech_models must be a list")
    assert line.endswith('e.g. ["universal-3-pro", "universal-2"].')  # what to write instead


@pytest.mark.parametrize("name", ["keyterms_prompt", "word_boost"])
def test_terms_given_as_one_string_are_refused_naming_the_table(name: str) -> None:
    """Set by a flag or the file, a string would be sent as a string: AssemblyAI refuses it
    at the first file, after the run began."""
    part = Settings(api_key="k", transcript_options={name: "batchscribe"}).assemblyai()
    with pytest.raises(ConfigError) as refused:
        check_settings(part)
    assert str(refused.value) == (
        f"[assemblyai.transcript] {name} must be a list of words or phrases."
    )


# -- the Ray pool (engines/cluster/plan.py)


def ray_settings(**given: Any) -> Settings:
    return Settings(engine="local", ray_address="h:1", **given)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra")
@pytest.mark.parametrize(
    "given", [{"ray_actors": 0}, {"ray_num_cpus": 0.25}, {"ray_num_gpus": 0.0},
              {"ray_num_gpus": 0.5}, {"ray_max_file_bytes": 1}], ids=str)  # fmt: skip
def test_ray_values_a_pool_can_have_are_taken(given: dict[str, Any]) -> None:
    check_ray(ray_settings(**given).cluster())


@pytest.mark.parametrize(
    "given", [{"ray_actors": -1}, {"ray_num_cpus": 0.0}, {"ray_num_cpus": -1.0},
              {"ray_num_gpus": -0.5}, {"ray_max_file_bytes": 0}], ids=str)  # fmt: skip
def test_ray_values_no_pool_can_have_are_one_line_before_any_work(given: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as refused:
        check_ray(ray_settings(**given).cluster())
    name = next(iter(given)).removeprefix("ray_")
    assert str(refused.value).startswith("[ray] ") and name in str(refused.value)


def test_one_gpu_is_one_actor_on_it_and_no_gpu_keeps_the_actor_on_the_cpu() -> None:
    one_gpu = plan_pool(ray_settings().cluster(), [{"CPU": 4.0, "GPU": 1.0}], where="h")
    assert (one_gpu.actors, one_gpu.num_gpus, one_gpu.device) == (1, 1.0, "auto")
    no_gpu = plan_pool(ray_settings().cluster(), [{"CPU": 4.0}], where="h")
    assert (no_gpu.actors, no_gpu.num_gpus, no_gpu.device) == (4, 0.0, "cpu")
    halves = plan_pool(ray_settings(ray_num_gpus=0.5).cluster(), [{"CPU": 8.0, "GPU": 2.0}],
                       where="h")  # fmt: skip
    assert (halves.actors, halves.device) == (4, "auto")


def test_an_actor_that_fills_a_node_exactly_fits_and_small_actors_get_one_thread() -> None:
    whole = plan_pool(ray_settings(ray_num_cpus=2).cluster(), [{"CPU": 2.0}], where="h")
    assert (whole.actors, whole.num_cpus, whole.threads) == (1, 2.0, 2)
    halves = plan_pool(ray_settings(ray_num_cpus=0.5).cluster(), [{"CPU": 1.0}], where="h")
    assert (halves.actors, halves.num_cpus, halves.threads) == (2, 0.5, 1)


def test_a_node_without_cpus_counts_none_and_holds_no_actor() -> None:
    """`ray start --num-cpus 0` (a GPU or storage node) lists no "CPU" at all."""
    nodes = [{"CPU": 2.0}, {"memory": 8e9}]
    assert plan_pool(ray_settings(device="cpu").cluster(), nodes, where="h").actors == 2
    with pytest.raises(ConfigError, match="has 1 CPU for an actor"):
        plan_pool(ray_settings(device="cpu").cluster(), [{"GPU": 1.0}], where="h")


def test_a_pool_no_node_can_hold_says_what_an_actor_asks() -> None:
    with pytest.raises(ConfigError) as cpus:
        plan_pool(ray_settings(ray_num_cpus=8).cluster(), [{"CPU": 2.0}], where="h:1")
    assert "at h:1 has 8 CPU for an actor (the cluster has 2 CPU, 0 GPU)" in str(cpus.value)
    with pytest.raises(ConfigError) as gpus:
        plan_pool(ray_settings(ray_num_gpus=1).cluster(), [{"CPU": 2.0}], where="h:1")
    assert "has 1 CPU and 1 GPU for an actor" in str(gpus.value)


def test_the_heads_address_may_end_in_a_slash_and_a_port_must_be_a_number() -> None:
    assert gcs_endpoint("ray://head.lab:10001/") == ("head.lab", 10001)
    assert gcs_endpoint(" 10.0.0.5:6379// ") == ("10.0.0.5", 6379)
    assert gcs_endpoint("head.lab:client") is None  # left to Ray, never int("client")


# -- the local transcript (engines/local/options.py)


def word(text: str, start: float, end: float, probability: float) -> SimpleNamespace:
    return SimpleNamespace(word=text, start=start, end=end, probability=probability)


def test_the_local_transcript_has_assemblyais_fields_in_milliseconds() -> None:
    segments = [
        SimpleNamespace(text=" Hello", words=[word(" Hello", 0.5, 0.94, 0.912345)]),
        SimpleNamespace(text=" big world. ", words=[word(" big", 1.0, 1.25, 0.8),
                                                    word(" world.", 1.25, 1.5, 0.8)]),
        SimpleNamespace(text="  ", words=None),  # a segment with no words heard
    ]  # fmt: skip
    info = SimpleNamespace(language="en", language_probability=0.987654, duration=12.34567)
    data = to_transcript_data(segments, info, model="tiny.en")
    assert data["words"] == [
        {"text": "Hello", "start": 500, "end": 940, "confidence": 0.9123, "speaker": None},
        {"text": "big", "start": 1000, "end": 1250, "confidence": 0.8, "speaker": None},
        {"text": "world.", "start": 1250, "end": 1500, "confidence": 0.8, "speaker": None},
    ]
    assert (data["text"], data["confidence"], data["audio_duration"]) == (
        "Hello big world.", 0.8374, 12.346)  # fmt: skip
    assert (data["engine"], data["model"]) == ("local", "tiny.en")
    # not detected (given, or an English-only model): the language, never a probability
    assert (data["language_code"], data["language_probability"]) == ("en", None)
    detected = to_transcript_data(segments, info, model="base", detected=True)
    assert (detected["language_code"], detected["language_probability"]) == ("en", 0.9877)


def test_the_beam_size_reaches_faster_whisper() -> None:
    assert transcribe_options(Settings(beam_size=2).local())["beam_size"] == 2


# -- the output part (settings/parts.py)


def test_the_configured_cue_limits_reach_the_subtitles() -> None:
    output = Settings(max_line_chars=30, max_lines=3, max_cue_seconds=4.5,
                      pause_seconds=0.3).output()  # fmt: skip
    assert output.cue_limits() == CueLimits(max_chars=30, max_lines=3, max_seconds=4.5, pause=0.3)


# -- one file's attempt and the run's attempts in flight (run/attempt.py)


class SeenReporter(Reporter):
    """A reporter that also keeps what it was told, and about which file."""

    def __init__(self) -> None:
        super().__init__(stream=io.StringIO())
        self.seen: list[tuple[Any, ...]] = []

    def started(self, source: Path | None = None) -> None:
        self.seen.append(("started", source))
        super().started(source)

    def transcribing(self, source: Path) -> None:
        self.seen.append(("transcribing", source))
        super().transcribing(source)

    def heard(self, source: Path, seconds: float, of: float | None) -> None:
        self.seen.append(("heard", source, seconds, of))
        super().heard(source, seconds, of)


@pytest.fixture
async def state_dirs(tmp_path: Path) -> AsyncIterator[StateDirs]:
    state_dirs = StateDirs()
    for root in ("a", "b"):
        (tmp_path / root).mkdir()
        await state_dirs.open(tmp_path / root)
    yield state_dirs
    state_dirs.close("completed", {})


def held(attempts: Attempts, each: Job) -> Attempt:
    """`each` opened as a fresh attempt: its start held back until its first record."""
    attempt = attempts.open(each)
    names = tuple(p.name for p in each.outputs.values())
    attempt.hold(Start(each.key, each.fingerprint, "assemblyai", names, "o", each.digest))
    return attempt


async def test_an_attempt_is_reached_at_its_first_step_which_carries_its_start(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    """`reached` is what lets a stop finish the file instead of leaving it (run/worker)."""
    attempts, root = Attempts(state_dirs, SeenReporter()), tmp_path / "a"
    journal = state_dirs[root].journal
    uploading, resumed, local = (held(attempts, job(root, f"{n}.mp3")) for n in "url")
    assert not (uploading.reached or resumed.reached or local.reached)

    await uploading.uploaded("https://cdn.example/up/1")
    await resumed.submitted("t-2")  # its first record: the start goes with it
    local.transcribing()

    assert uploading.reached and resumed.reached and local.reached
    first, second = await journal.get("u.mp3"), await journal.get("r.mp3")
    assert first is not None and first.upload_url == "https://cdn.example/up/1"
    assert second is not None and second.transcript_id == "t-2"
    await uploading.submitted("t-1")  # its start is written: the step alone
    assert (await journal.get("u.mp3")).transcript_id == "t-1"  # type: ignore[union-attr]


async def test_the_attempts_in_flight_report_each_files_own_progress(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    reporter = SeenReporter()
    attempts = Attempts(state_dirs, reporter)
    one, two = job(tmp_path / "a", "1.mp3"), job(tmp_path / "a", "2.mp3")
    first, _ = attempts.open(one), attempts.open(two)
    first.transcribing()
    first.heard(3.5, 10.0)
    assert reporter.seen == [
        ("started", one.source),
        ("started", two.source),
        ("transcribing", one.source),
        ("heard", one.source, 3.5, 10.0),
    ]
    attempts.close(one)
    assert one.source not in attempts and two.source in attempts


async def test_a_file_failed_before_it_began_is_remembered_claiming_no_output(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    attempts, each = Attempts(state_dirs, SeenReporter()), job(tmp_path / "a", "x.mp3")
    wanted = Wanted(formats=("txt",), engine="local", options="opts-1")
    await attempts.of(each).failed_unbegun(each, wanted)
    record = await state_dirs[each.state_root].journal.get(each.key)
    assert record is not None
    assert (record.fingerprint, record.engine, record.outputs, record.options, record.digest) == (
        each.fingerprint, "local", (), "opts-1", None)  # fmt: skip


async def test_an_adopted_transcript_is_journaled_for_the_copy(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    attempts, copy = Attempts(state_dirs, SeenReporter()), job(tmp_path / "a", "copy.mp3")
    await held(attempts, copy).begin()
    await attempts.of(copy).adopt("t-original")
    record = await state_dirs[copy.state_root].journal.get(copy.key)
    assert record is not None and record.transcript_id == "t-original"


async def test_files_done_together_are_recorded_in_each_ones_own_journal(
    state_dirs: StateDirs, tmp_path: Path
) -> None:
    """A file and its identical copy under another root: each root's journal says done."""
    attempts = Attempts(state_dirs, SeenReporter())
    made, copy = job(tmp_path / "a", "m.mp3"), job(tmp_path / "b", "c.mp3")
    making, copying = held(attempts, made), held(attempts, copy)
    await making.submitted("t-1")
    await copying.begin()
    await Attempt.done_together([making, copying])
    for each in (made, copy):
        record = await state_dirs[each.state_root].journal.get(each.key)
        assert record is not None and record.state is State.DONE, each.key
