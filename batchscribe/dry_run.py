"""--dry-run: what a run would transcribe and why, how much audio, what it would cost.

Reads the journals without creating or locking them, reads durations from headers, and makes
no request and loads no model.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from batchscribe.config import LIST_PRICES, LIST_PRICES_DATE, Settings
from batchscribe.engines.assemblyai.request import to_send
from batchscribe.errors import ConfigError
from batchscribe.fingerprint import Interrupted, content_digest
from batchscribe.run.durations import audio_seconds
from batchscribe.run.job import Job, Root, Wanted
from batchscribe.run.walk import WalkPlan, resolve_roots
from batchscribe.state.journal_view import peek
from batchscribe.state.lock import STATE_DIR
from batchscribe.state.store import TRANSCRIPTS_DIR


@dataclass(slots=True)
class Preview:
    work: list[tuple[Job, float | None]] = field(default_factory=list)
    #: files whose transcript is kept in the store: re-rendered, at no cost
    rerender: list[Job] = field(default_factory=list)
    up_to_date: int = 0
    failed_before: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return sum(seconds or 0.0 for _, seconds in self.work)


def preview(settings: Settings) -> Preview:
    """Plan the run as `pipeline.run` would, without doing any of it. Blocking."""
    result = Preview()
    wanted = Wanted.of(settings)
    walk_plan = WalkPlan(
        resolve_roots(settings.paths, settings.output_dir),
        wanted,
        settings.extensions,
        nested=settings.output_dir is None,
        clean=False,  # --dry-run changes nothing, not even a killed run's temporary files
    )
    while (root := walk_plan.next_root()) is not None:
        if not root.walk_from.exists():
            raise ConfigError(f"{root.walk_from}: no such file or folder.")
        walk_plan.start(root, peek(root.path)[0])
        kept = _kept_digests(root, wanted.options)
        while (batch := walk_plan.next_batch()) is not None:
            walk_plan.add_roots(Root(path=p, walk_from=p, base=p) for p in batch.nested)
            result.up_to_date += batch.skipped
            result.failed_before += batch.failed_before
            result.unreadable += [(p.path, p.reason) for p in batch.problems]
            for job in batch.jobs:
                if _kept(job, kept):
                    result.rerender.append(job)
                else:
                    result.work.append((job, audio_seconds(job.source)))
    return result


def _kept_digests(root: Root, options: str) -> frozenset[str]:
    """The contents whose transcript with these options the root's store keeps."""
    folder = root.path / STATE_DIR / TRANSCRIPTS_DIR
    suffix = f"-{options}.json"
    try:
        names = os.listdir(folder)
    except OSError:
        return frozenset()
    return frozenset(n.removesuffix(suffix) for n in names if n.endswith(suffix))


def _kept(job: Job, kept: frozenset[str]) -> bool:
    """The run would render this file from the store: its digest is the journal's (the
    bytes are unchanged) or, when the store has anything to offer, read from the file."""
    if not kept:
        return False
    record = job.record
    if record is not None and record.digest and record.fingerprint == job.fingerprint:
        return record.digest in kept
    try:
        return content_digest(job.source, threading.Event()) in kept
    except (OSError, Interrupted):
        return False


def format_preview(result: Preview, settings: Settings) -> list[str]:
    """The lines --dry-run prints: one per file to transcribe, then the totals."""
    lines = []
    for job, seconds in result.work:
        length = f"{seconds / 60:.1f} min" if seconds is not None else "length unknown"
        lines.append(f"would transcribe {job.source} ({job.reason}, {length})")
    for job in result.rerender:
        lines.append(f"would re-render {job.source} ({job.reason}; transcript kept, no cost)")
    for path, reason in result.unreadable:
        lines.append(f"cannot read {path} ({reason})")
    hours = result.audio_seconds / 3600
    total = (
        f"batchscribe: dry run: {len(result.work)} to transcribe ({hours:.2f} h of audio), "
        f"{result.up_to_date} up to date"
    )
    if result.rerender:
        total += f", {len(result.rerender)} to re-render (no cost)"
    if result.failed_before:
        total += f", {result.failed_before} failed before (--retry-failed to retry)"
    if settings.chosen_engine() == "assemblyai":
        rate = rate_for(settings)
        total += f"; estimated AssemblyAI cost ${hours * rate.total:.2f} at {format_rate(rate)}"
    else:
        total += "; local engine, no cost"
    unknown = sum(1 for _, seconds in result.work if seconds is None)
    if unknown:
        total += f" ({unknown} file(s) of unknown length not counted)"
    return [*lines, total]


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per audio hour a run would cost, and where each figure comes from."""

    #: the first of the speech models sent: the one the service tries first
    model: str
    per_hour: float
    #: "list price 2026-03", "[assemblyai.prices]", "price_per_hour", or why it is a guess
    source: str
    #: keyterms prompting, added when keyterms_prompt is sent; 0 otherwise
    keyterms: float = 0.0

    @property
    def total(self) -> float:
        return self.per_hour + self.keyterms


def rate_for(settings: Settings) -> Rate:
    """The rate of the first model sent: [assemblyai.prices], else `price_per_hour` (any model),
    else the list price. A model the table does not know is priced at the highest list price,
    so that the estimate errs high, and says so."""
    sent = to_send(settings.transcript_options)
    model = str(sent["speech_models"][0])
    keyterms = 0.0
    if sent.get("keyterms_prompt"):
        keyterms = settings.prices.get("keyterms", LIST_PRICES["keyterms"])
    if model in settings.prices:
        return Rate(model, settings.prices[model], "[assemblyai.prices]", keyterms)
    if settings.price_per_hour is not None:
        return Rate(model, settings.price_per_hour, "price_per_hour", keyterms)
    if model in LIST_PRICES and model != "keyterms":
        return Rate(model, LIST_PRICES[model], f"list price {LIST_PRICES_DATE}", keyterms)
    highest = max(price for name, price in LIST_PRICES.items() if name != "keyterms")
    guess = (
        f'not in the price table, so at the highest list price; set [assemblyai.prices] "{model}"'
    )
    return Rate(model, highest, guess, keyterms)


def format_rate(rate: Rate) -> str:
    """`$0.21/h for universal-3-pro (list price 2026-03)`, with keyterms prompting:
    `$0.25/h for universal-3-pro ($0.21/h, list price 2026-03; + $0.04/h keyterms prompting)`."""
    head = f"${rate.total:.2f}/h for {rate.model}"
    if not rate.keyterms:
        return f"{head} ({rate.source})"
    keyterms = f"+ ${rate.keyterms:.2f}/h keyterms prompting"
    return f"{head} (${rate.per_hour:.2f}/h, {rate.source}; {keyterms})"
