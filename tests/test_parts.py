"""The settings' parts (settings/parts.py): each engine and stage is handed its own small
value, cut from `Settings` by name, and nothing of another part travels with it."""

from __future__ import annotations

import pickle
from dataclasses import fields
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.engines.cluster.plan import PoolPlan, actor_settings
from batchscribe.engines.factory import check_engine_available
from batchscribe.errors import ConfigError
from batchscribe.settings import parts

PARTS = [
    parts.AssemblyAISettings,
    parts.LocalSettings,
    parts.ClusterSettings,
    parts.OutputSettings,
    parts.WatchSettings,
]


def test_every_field_of_a_part_is_the_settings_field_of_that_name() -> None:
    given = Settings(model="tiny.en", api_key="k", ray_address="h:1", formats=("srt",),
                     watch_settle=5.0, retry_attempts=2, workers=3)  # fmt: skip
    cut = {
        parts.AssemblyAISettings: given.assemblyai(),
        parts.LocalSettings: given.local(),
        parts.ClusterSettings: given.cluster(),
        parts.OutputSettings: given.output(),
        parts.WatchSettings: given.watching(),
    }
    assert set(cut) == set(PARTS)
    for part, value in cut.items():
        for f in fields(part):
            if f.name != "local":
                assert getattr(value, f.name) == getattr(given, f.name), (part, f.name)
    assert given.cluster().local == given.local()  # the cluster's actors get the local part


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.__name__)
def test_a_part_has_no_default_of_its_own(part: type) -> None:
    """Settings is the one place a default lives: a part is only ever cut from it."""
    assert all(f.default is f.default_factory for f in fields(part))  # both MISSING


def test_the_local_engines_part_carries_no_key_nor_anything_of_the_service() -> None:
    local = Settings(api_key="secret-key", server_key="server-secret", engine="local").local()
    sent = pickle.dumps(local)
    assert b"secret-key" not in sent and b"server-secret" not in sent
    assert not {"api_key", "base_url", "server_key", "paths"} & {f.name for f in fields(local)}


def test_a_ray_actor_is_given_the_model_settings_only_never_a_key() -> None:
    """What is pickled to every node of the cluster: the local part with the actor's device,
    not the server's key (`batchscribe serve --ray`) nor the API key."""
    settings = Settings(engine="local", api_key="secret-key", server_key="server-secret",
                        ray_address="h:1", model="tiny.en", threads=4)  # fmt: skip
    plan = PoolPlan(actors=2, num_cpus=1.0, num_gpus=0.0, threads=1, device="cpu")
    given = actor_settings(settings.cluster(), plan)
    sent = pickle.dumps(given)
    assert b"secret-key" not in sent and b"server-secret" not in sent
    assert (given.model, given.device, given.threads, given.workers) == ("tiny.en", "cpu", 1, 1)


def test_audio_url_in_the_request_fields_is_refused_before_any_work(tmp_path: Path) -> None:
    settings = Settings(api_key="k", transcript_options={"audio_url": "https://x/a.mp3"})
    with pytest.raises(ConfigError, match="must not set audio_url"):
        check_engine_available(settings)
