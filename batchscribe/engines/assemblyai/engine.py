"""The AssemblyAI engine: upload, create a transcript, then leave it to the poller.

It carries on from a `Resume` value (the journal decides it) and never re-creates a
transcript: a create whose answer was lost is adopted from the API's list before any retry.
The HTTP layer is `assemblyai_http.AssemblyAIClient`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

from batchscribe.engines.assemblyai.client import AssemblyAIClient, field_of
from batchscribe.engines.assemblyai.request import to_send
from batchscribe.engines.base import Checkpoint, Finished, StillRunning, Submitted, pages_to_list
from batchscribe.errors import (
    InputError,
    PermanentApiError,
    TranscriptionFailed,
)
from batchscribe.fingerprint import Fingerprint
from batchscribe.recording import Recording
from batchscribe.settings.parts import AssemblyAISettings
from batchscribe.transcript import Transcript

__all__ = ["AssemblyAIClient", "AssemblyAIEngine", "create_engine"]

log = logging.getLogger("batchscribe.assemblyai")

#: The `audio_url` of a deleted transcript (DeleteTranscriptResponse in the API reference).
DELETED_AUDIO_URL = "http://deleted_by_user"
#: Transcripts to a page of `GET /v2/transcript`: the list endpoint's largest `limit`.
LIST_PAGE = 200
#: Pages listed beyond `pages_to_list` (the budget's figure): room for others' transcripts.
LIST_EXTRA_PAGES = 1
#: Pages of `GET /v2/transcript` searched when adopting a transcript created before a crash.
ADOPT_SEARCH_PAGES = 5


class AssemblyAIEngine:
    """The Engine for AssemblyAI: upload, create, then leave it to the poller."""

    name = "assemblyai"
    listing_page = LIST_PAGE

    def __init__(
        self,
        client: AssemblyAIClient,
        settings: AssemblyAISettings,
        *,
        options: dict[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._options = options or {}
        self._session = session
        #: requests, 429s and retries, for --metrics-file
        self.stats = client.stats

    async def start(self, recording: Recording, checkpoint: Checkpoint) -> Submitted:
        resume = recording.resume
        if resume is not None and resume.transcript_id:
            return Submitted(resume.transcript_id)  # never re-create: only poll it
        if resume is not None and resume.upload_url:
            adopted = await self._find_existing(resume.upload_url)
            if adopted is not None:
                await checkpoint.submitted(adopted)
                return Submitted(adopted)
            try:
                return await self._create(resume.upload_url, checkpoint)
            except PermanentApiError as err:
                log.info("%s: stored upload unusable (%s); uploading again", recording.path, err)
        url = await self._upload(recording)
        await checkpoint.uploaded(url)
        return await self._create(url, checkpoint)

    async def poll(self, transcript_id: str) -> Finished | StillRunning:
        body = await self._client.get_transcript(transcript_id)
        status = body.get("status")
        if status == "completed" and body.get("audio_url") == DELETED_AUDIO_URL:
            # What GET returns for a deleted transcript: "Deleted by user.", never a result.
            raise TranscriptionFailed(
                "its transcript was deleted from AssemblyAI before the outputs were written; "
                "it will be transcribed again on the next run",
                permanent=False,
            )
        if status == "completed":
            return Finished(Transcript(body))
        if status == "error":
            raise TranscriptionFailed(f"AssemblyAI could not transcribe it: {body.get('error')}")
        return StillRunning()

    async def finished(self, transcript_ids: set[str]) -> dict[str, bool]:
        """Page back through `GET /v2/transcript` (newest first) until every id is seen."""
        seen: dict[str, bool] = {}
        params: dict[str, str | int] = {"limit": LIST_PAGE}
        for _ in range(pages_to_list(len(transcript_ids), page=LIST_PAGE) + LIST_EXTRA_PAGES):
            page = await self._client.list_transcripts(**params)
            items = page.get("transcripts") or []
            for item in items:
                if item.get("id") in transcript_ids:
                    seen[str(item["id"])] = item.get("status") in ("completed", "error")
            if len(seen) == len(transcript_ids) or not items:
                break
            if not (page.get("page_details") or {}).get("prev_url"):
                break
            params = {"limit": LIST_PAGE, "before_id": str(items[-1]["id"])}
        return seen

    async def delete(self, transcript_id: str) -> None:
        await self._client.delete_transcript(transcript_id)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _upload(self, recording: Recording) -> str:
        path, fingerprint = recording.path, recording.fingerprint
        limit = self._settings.max_upload_bytes
        size = await asyncio.to_thread(_check_source, path, fingerprint, limit)
        url = await self._client.upload(path, size)
        # The bytes sent must be the bytes fingerprinted, or the transcript belongs to no file.
        if await asyncio.to_thread(_fingerprint_now, path) != fingerprint:
            raise InputError("changed or disappeared during upload; it will be redone next run")
        return url

    async def _create(self, upload_url: str, checkpoint: Checkpoint) -> Submitted:
        async def adopt() -> dict[str, Any] | None:
            found = await self._find_existing(upload_url)
            return {"id": found} if found else None

        body = await self._client.create_transcript(upload_url, self._options, recover=adopt)
        transcript_id = field_of(body, "id", "POST transcript")
        await checkpoint.submitted(transcript_id)
        return Submitted(transcript_id)

    async def _find_existing(self, upload_url: str) -> str | None:
        """A transcript created for this upload before a crash kept us from journaling its id.

        Raises RetryableApiError when the list cannot be read: then nobody can tell whether
        one exists, and creating another could pay twice; the file waits for the next run.
        """
        params: dict[str, str | int] = {"limit": LIST_PAGE}
        for _ in range(ADOPT_SEARCH_PAGES):
            try:
                page = await self._client.list_transcripts(**params)
            except PermanentApiError:
                return None  # the service cannot list: no way to adopt, nothing to fear
            for item in page.get("transcripts") or []:
                if item.get("audio_url") == upload_url and item.get("status") != "error":
                    return str(item["id"])
            items = page.get("transcripts") or []
            prev_url = (page.get("page_details") or {}).get("prev_url")
            if not prev_url or not items:
                return None
            params = {"limit": LIST_PAGE, "before_id": str(items[-1]["id"])}
        return None


def _fingerprint_now(path: Path) -> Fingerprint | None:
    try:
        return Fingerprint.of(os.stat(path))
    except OSError:
        return None


def _check_source(path: Path, expected: Fingerprint, limit: int) -> int:
    """Refuse files that cannot or must not be uploaded, before a byte is sent."""
    try:
        st = os.stat(path)
        with open(path, "rb"):
            pass
    except OSError as err:
        raise InputError(f"cannot read it ({err.strerror}); check its permissions") from None
    if Fingerprint.of(st) != expected:
        raise InputError("changed since it was scanned; it will be redone next run")
    if st.st_size == 0:
        raise InputError("empty file (0 bytes); nothing to transcribe", permanent=True)
    if st.st_size > limit:
        raise InputError(
            f"{st.st_size / 1e9:.2f} GB is over the {limit / 1e9:.2f} GB upload limit "
            "(max_upload_bytes); split or compress it",
            permanent=True,
        )
    return st.st_size


def create_engine(settings: AssemblyAISettings) -> AssemblyAIEngine:
    """The engine with its own session: pooled connections sized for the workers and poller."""
    assert settings.api_key, "config.validate guarantees a key for this engine"
    connector = aiohttp.TCPConnector(limit=settings.concurrency + POLL_CONNECTIONS)
    session = aiohttp.ClientSession(connector=connector)
    client = AssemblyAIClient(
        session, base_url=settings.base_url, api_key=settings.api_key, settings=settings
    )
    options = to_send(settings.transcript_options)  # today's fields, default models included
    return AssemblyAIEngine(client, settings, options=options, session=session)


#: Connections kept for the poller beside the workers' uploads.
POLL_CONNECTIONS = 8
