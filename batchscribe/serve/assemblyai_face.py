"""AssemblyAI's v2 API, the subset the official SDK uses for pre-recorded audio, served from
this machine (shared/reference/assemblyai-openapi.yml).

`audio_url` must be one of our own uploads (`.../v2/upload/<id>`): the server never fetches a
URL a client gives. Fields the local engine cannot honour are accepted and echoed back, as
AssemblyAI echoes its request fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from batchscribe.engines.local.options import model_label
from batchscribe.output.formats import render
from batchscribe.output.subtitles import CueLimits
from batchscribe.serve.context import Context, queue_full, read_upload
from batchscribe.serve.sections import cut, paragraph_word_starts, sentence_starts
from batchscribe.serve.store import ID_PATTERN, Job, Status
from batchscribe.transcript import Transcript

#: The only audio_url accepted: the path of one of our uploads (any host: behind a proxy
#: the client may know us by another name).
_OWN_UPLOAD = re.compile(rf"/v2/upload/({ID_PATTERN})")
#: AssemblyAI's list page size: default and most.
LIST_LIMIT, LIST_MAX = 10, 200
#: Request fields echoed back on the transcript, as AssemblyAI does.
ECHOED = ("language_code", "language_detection", "speaker_labels", "speakers_expected",
          "speech_models", "punctuate", "format_text")  # fmt: skip


def routes(context: Context) -> list[web.RouteDef]:
    face = _Face(context)
    return [
        web.post("/v2/upload", face.upload),
        web.post("/v2/transcript", face.create),
        web.get("/v2/transcript", face.list),
        web.get("/v2/transcript/{id}", face.get),
        web.delete("/v2/transcript/{id}", face.delete),
        web.get("/v2/transcript/{id}/sentences", face.sentences),
        web.get("/v2/transcript/{id}/paragraphs", face.paragraphs),
        web.get("/v2/transcript/{id}/srt", face.srt),
        web.get("/v2/transcript/{id}/vtt", face.vtt),
    ]


def error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def options_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The engine options a create asks for (jobs.PER_REQUEST), plus what is echoed."""
    options: dict[str, Any] = {"echo": {k: body[k] for k in ECHOED if k in body}}
    if body.get("language_detection"):
        options["language"] = "auto"
    elif body.get("language_code"):
        options["language"] = str(body["language_code"])
    if body.get("speaker_labels"):
        options["speaker_labels"] = True
        if isinstance(body.get("speakers_expected"), int):
            options["speakers_expected"] = body["speakers_expected"]
    return options


def check_body(body: Any) -> str | None:
    """What is wrong with a create's body, in AssemblyAI's words; None when nothing."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if not isinstance(body.get("audio_url"), str):
        return "audio_url is required"
    expected = body.get("speakers_expected")
    if expected is not None and (not isinstance(expected, int) or expected < 1):
        return "speakers_expected must be a positive integer"
    models = body.get("speech_models")
    if models is not None and not (
        isinstance(models, list) and all(isinstance(m, str) for m in models)
    ):
        return "speech_models must be a list of model names"
    return None


def own_upload(audio_url: str) -> str | None:
    """The upload id an audio_url names, if it is the path of one of ours; else None."""
    match = _OWN_UPLOAD.fullmatch(urlsplit(audio_url).path)
    return match.group(1) if match else None


def transcript_object(job: Job, base: str, model: str) -> dict[str, Any]:
    """`GET /v2/transcript/{id}`'s object: the request echoed, then what the engine heard."""
    echo = dict(job.request.get("echo") or {})
    data: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "audio_url": f"{base}/v2/upload/{job.upload}",
        "text": None,
        "words": None,
        "utterances": None,
        "confidence": None,
        "audio_duration": None,
        "language_code": echo.get("language_code"),
        "speech_model_used": model,
        "error": job.error,
        **echo,
    }
    if job.status == Status.completed and job.result is not None:
        result = dict(job.result)
        duration = result.get("audio_duration")
        data.update(result, id=job.id, status=job.status.value)
        data["audio_duration"] = round(duration) if duration is not None else None
        data.setdefault("utterances", None)
    return data


class _Face:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.store = context.store

    def _base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def _object(self, request: web.Request, job: Job) -> dict[str, Any]:
        return transcript_object(
            job, self._base(request), model_label(self.context.settings.local())
        )

    async def upload(self, request: web.Request) -> web.Response:
        upload_id, problem = await read_upload(self.context, request, request.content.read)
        if problem is not None:
            return error(*problem)
        return web.json_response({"upload_url": f"{self._base(request)}/v2/upload/{upload_id}"})

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return error("the request body must be JSON")
        problem = check_body(body)
        if problem is not None:
            return error(problem)
        upload_id = own_upload(body["audio_url"])
        if upload_id is None or not await self.store.has_upload(upload_id):
            return error(
                "audio_url must be an upload_url this server returned from POST /v2/upload; "
                "it never fetches other URLs"
            )
        options = options_of(body)
        refused = self.context.refuse(options)
        if refused is not None:
            return error(refused)
        if self.context.jobs.full():
            return queue_full(error("too many transcripts queued; try again later", 429))
        job = await self.store.create(upload_id, options)
        self.context.jobs.submit(job)
        return web.json_response(self._object(request, job))

    async def _job(self, request: web.Request) -> Job | None:
        return await self.store.get(request.match_info["id"])

    async def get(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        if job is None:
            return error("Transcript lookup error, transcript id not found", 404)
        return web.json_response(self._object(request, job))

    async def delete(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        if job is None:
            return error("Transcript lookup error, transcript id not found", 404)
        if job.status in (Status.queued, Status.processing):
            return error("Transcript is still processing; delete it once it has completed")
        await self.store.delete(job.id)
        deleted = await self.store.get(job.id)
        return web.json_response(self._object(request, deleted or job))

    async def list(self, request: web.Request) -> web.Response:
        try:
            limit = min(int(request.query.get("limit", LIST_LIMIT)), LIST_MAX)
        except ValueError:
            return error("limit must be an integer")
        status = request.query.get("status")
        if status is not None and status not in Status.__members__:
            return error(f"status must be one of {', '.join(Status.__members__)}")
        base = self._base(request)
        items = [
            {
                "id": job.id,
                "resource_url": f"{base}/v2/transcript/{job.id}",
                "status": job.status.value,
                "created": _iso(job.created),
                "completed": _iso(job.completed) if job.completed else None,
                "audio_url": f"{base}/v2/upload/{job.upload}",
                "error": job.error,
            }
            for job in await self.store.newest(limit=max(limit, 1), status=status)
        ]
        page = {"limit": limit, "result_count": len(items), "current_url": str(request.url),
                "prev_url": None, "next_url": None}  # fmt: skip
        return web.json_response({"page_details": page, "transcripts": items})

    async def _completed(self, request: web.Request) -> tuple[Job | None, web.Response | None]:
        job = await self._job(request)
        if job is None:
            return None, error("Transcript lookup error, transcript id not found", 404)
        if job.status != Status.completed or job.result is None:
            return None, error(f"Transcript is not completed (status: {job.status.value})")
        return job, None

    async def _sections(self, request: web.Request, name: str) -> web.Response:
        job, refused = await self._completed(request)
        if job is None or job.result is None:
            return refused or error("not completed")
        words = list(job.result.get("words") or [])
        starts = sentence_starts(words) if name == "sentences" else paragraph_word_starts(words)
        data = self._object(request, job)
        return web.json_response(
            {
                "id": job.id,
                name: cut(words, starts),
                "confidence": data.get("confidence") or 0.0,
                "audio_duration": data.get("audio_duration") or 0,
                "speech_model_used": data.get("speech_model_used"),
            }
        )

    async def sentences(self, request: web.Request) -> web.Response:
        return await self._sections(request, "sentences")

    async def paragraphs(self, request: web.Request) -> web.Response:
        return await self._sections(request, "paragraphs")

    async def _subtitles(self, request: web.Request, fmt: str) -> web.Response:
        job, refused = await self._completed(request)
        if job is None or job.result is None:
            return refused or error("not completed")
        limits = CueLimits()
        chars = request.query.get("chars_per_caption")
        if chars is not None:
            if not chars.isdigit() or int(chars) < 1:
                return error("chars_per_caption must be a positive integer")
            limits = CueLimits(max_chars=int(chars), max_lines=1)
        return web.Response(text=render(fmt, Transcript(job.result), limits))

    async def srt(self, request: web.Request) -> web.Response:
        return await self._subtitles(request, "srt")

    async def vtt(self, request: web.Request) -> web.Response:
        return await self._subtitles(request, "vtt")


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat()
