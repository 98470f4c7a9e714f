"""OpenAI's audio API (`/v1/audio/transcriptions`, `/v1/audio/translations`, `/v1/models`),
answered by the same queue as the AssemblyAI face: the request waits for its transcript.

`model` names what transcribes: "whisper-1" (what every client sends) or the server's own
`--model`, both listed by /v1/models, mean the server's model; any other name is a 400, not
a silent substitute. `prompt` becomes Whisper's initial prompt (spellings, vocabulary), and
a `temperature` above 0 decodes at that temperature; 0 or none keeps Whisper's fallback
(OpenAI's "0 raises it as needed").
"""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from batchscribe.config import DEFAULT_MODEL, Settings
from batchscribe.output.formats import render
from batchscribe.serve.context import Context, queue_full, read_upload
from batchscribe.serve.languages import language_name
from batchscribe.serve.sections import cut, sentence_starts
from batchscribe.serve.store import Status
from batchscribe.transcript import Transcript

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
#: The model name clients know, listed beside ours so default configurations work.
OPENAI_MODEL = "whisper-1"
#: A form field other than the file is a short string; more is no client of ours.
FIELD_LIMIT = 64 * 1024


def routes(context: Context) -> list[web.RouteDef]:
    face = _Face(context)
    return [
        web.post("/v1/audio/transcriptions", face.transcriptions),
        web.post("/v1/audio/translations", face.translations),
        web.get("/v1/models", face.models),
    ]


def error(message: str, status: int = 400, *, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param,
                      "code": None}}  # fmt: skip
    return web.json_response(body, status=status)


def served_models(settings: Settings) -> list[str]:
    """The model names a request may give, as /v1/models lists them."""
    return [OPENAI_MODEL, settings.model or DEFAULT_MODEL]


def check_form(form: dict[str, Any], models: list[str]) -> tuple[str, str] | None:
    """(message, param) for what is wrong with the form's fields; None when nothing."""
    if form.get("model", OPENAI_MODEL) not in models:
        served = " or ".join(models)
        return f"model '{form['model']}' is not served here; use {served}", "model"
    if form.get("response_format", "json") not in FORMATS:
        return f"response_format must be one of {', '.join(FORMATS)}", "response_format"
    if any(g not in GRANULARITIES for g in form.get("timestamp_granularities", [])):
        return "timestamp_granularities[] must be word or segment", "timestamp_granularities"
    try:
        temperature = float(form.get("temperature", 0))
    except ValueError:
        return "temperature must be a number between 0 and 1", "temperature"
    if not 0 <= temperature <= 1:
        return "temperature must be a number between 0 and 1", "temperature"
    return None


def decoding(form: dict[str, Any]) -> dict[str, Any]:
    """faster-whisper's options for the form's prompt and temperature (checked)."""
    options: dict[str, Any] = {}
    if form.get("prompt"):
        options["initial_prompt"] = form["prompt"]
    if float(form.get("temperature", 0)) > 0:
        options["temperature"] = float(form["temperature"])
    return options


def verbose(data: dict[str, Any], task: str, granularities: list[str]) -> dict[str, Any]:
    """OpenAI's verbose_json: text, language, duration (seconds), segments and, when asked,
    words; a segment is a sentence of the words."""
    words = list(data.get("words") or [])
    segments = [
        {"id": i, "seek": 0, "start": s["start"] / 1000, "end": s["end"] / 1000,
         "text": s["text"], "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
         "compression_ratio": 0.0, "no_speech_prob": 0.0}
        for i, s in enumerate(cut(words, sentence_starts(words)))
    ]  # fmt: skip
    body: dict[str, Any] = {
        "task": task,
        # the input's language, by name; a translation's is its output's ("always english")
        "language": "english" if task == "translate" else language_name(data.get("language_code")),
        "duration": float(data.get("audio_duration") or 0),
        "text": data.get("text") or "",
        "segments": segments,
    }
    if "word" in granularities:
        body["words"] = [
            {"word": w["text"], "start": w["start"] / 1000, "end": w["end"] / 1000} for w in words
        ]
    return body


def answer(data: dict[str, Any], form: dict[str, Any], task: str) -> web.Response:
    fmt = form.get("response_format", "json")
    if fmt == "json":
        return web.json_response({"text": data.get("text") or ""})
    if fmt == "verbose_json":
        return web.json_response(verbose(data, task, form.get("timestamp_granularities", [])))
    if fmt == "text":
        return web.Response(text=(data.get("text") or "") + "\n")
    return web.Response(text=render(fmt, Transcript(data)))


class _Face:
    def __init__(self, context: Context) -> None:
        self.context = context

    async def models(self, request: web.Request) -> web.Response:
        names = served_models(self.context.settings)
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "batchscribe"}
                for n in names]  # fmt: skip
        return web.json_response({"object": "list", "data": data})

    async def transcriptions(self, request: web.Request) -> web.Response:
        return await self._audio(request, "transcribe")

    async def translations(self, request: web.Request) -> web.Response:
        return await self._audio(request, "translate")

    async def _audio(self, request: web.Request, task: str) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            return error("send the audio as multipart/form-data with a 'file' field")
        if self.context.jobs.full():
            return queue_full(error("too many transcriptions queued; try again later", 429))
        form, upload_id, problem = await self._read_form(request)
        if problem is not None:
            return problem
        refused = check_form(form, served_models(self.context.settings))
        if refused is not None or upload_id is None:
            await self._forget(upload_id)
            message, param = refused or ("the 'file' field is required", "file")
            return error(message, param=param)
        options: dict[str, Any] = {"task": task, "echo": {"model": form.get("model")}}
        if decoding(form):
            options["decoding"] = decoding(form)
        if task == "transcribe" and form.get("language"):
            options["language"] = form["language"]
        why = self.context.refuse(options)
        if why is not None:
            await self._forget(upload_id)
            return error(why, param="language" if task == "transcribe" else "model")
        return await self._transcribe(upload_id, options, form, task)

    async def _transcribe(
        self, upload_id: str, options: dict[str, Any], form: dict[str, Any], task: str
    ) -> web.Response:
        store = self.context.store
        job = await store.create(upload_id, options)
        await self.context.jobs.submit(job).wait()
        done = await store.get(job.id)
        await store.delete_upload(upload_id)  # OpenAI keeps nothing; the row stays for the metrics
        if done is None or done.status != Status.completed or done.result is None:
            reason = done.error if done else "the transcript was lost"
            return error(f"could not transcribe the file: {reason}", param="file")
        return answer(dict(done.result), form, task)

    async def _forget(self, upload_id: str | None) -> None:
        if upload_id is not None:
            await self.context.store.delete_upload(upload_id)

    async def _read_form(
        self, request: web.Request
    ) -> tuple[dict[str, Any], str | None, web.Response | None]:
        """The form's fields, the file saved as an upload (streamed), or the refusal."""
        form: dict[str, Any] = {"timestamp_granularities": []}
        upload_id = None
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                if upload_id is not None:
                    await self._forget(upload_id)
                upload_id, refused = await read_upload(self.context, request, part.read_chunk)
                if refused is not None:
                    return form, None, error(refused[0], refused[1], param="file")
                continue
            value = await _field(part)
            if value is None:
                await self._forget(upload_id)
                return form, None, error(f"the field {part.name} is too long", param=part.name)
            if part.name in ("timestamp_granularities[]", "timestamp_granularities"):
                form["timestamp_granularities"].append(value)
            elif part.name:
                form[part.name] = value
        return form, upload_id, None


async def _field(part: BodyPartReader) -> str | None:
    """A form field's text, read at most FIELD_LIMIT bytes far; None when it is longer."""
    value = b""
    while chunk := await part.read_chunk(FIELD_LIMIT):
        value += chunk
        if len(value) > FIELD_LIMIT:
            return None
    return value.decode("utf-8", "replace")
