"""What both faces share: the settings, the store, the queue; an upload's bytes taken in,
a request's options checked, the queue-full answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from batchscribe.config import Settings
from batchscribe.errors import ConfigError
from batchscribe.serve.jobs import RETRY_AFTER_S, Jobs, request_settings
from batchscribe.serve.store import Store, new_id
from batchscribe.serve.uploads import CHUNK, TooLarge, save_stream, too_large_message


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    store: Store
    jobs: Jobs

    @property
    def max_upload_bytes(self) -> int:
        return self.settings.serve_max_upload_mb * 1024 * 1024

    def refuse(self, options: Mapping[str, Any]) -> str | None:
        """Why the engine cannot do what these options ask (a language its model cannot
        hear, translation with an English-only model); None when it can."""
        wanted = request_settings(self.settings, options)
        if self.settings.ray_address is not None:
            if options.get("decoding"):
                return "prompt and temperature are not passed to --ray workers; leave them out"
            return None  # the actors check their own model
        from batchscribe.engines.local.options import check_language

        try:
            check_language(wanted.local())
            if wanted.speaker_labels:
                from batchscribe.engines.speakers import clustering as speakers

                speakers.check_installed()
        except ConfigError as err:
            return str(err)
        return None


def queue_full(response: web.Response) -> web.Response:
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


Read = Callable[[int], Awaitable[bytes]]


async def _chunks(read: Read) -> AsyncIterator[bytes]:
    while chunk := await read(CHUNK):
        yield chunk


async def read_upload(
    context: Context, request: web.Request, read: Read
) -> tuple[str, tuple[str, int] | None]:
    """Stream a body (`request.content.read`, or a multipart part's `read_chunk`) to a new
    upload, `CHUNK` at a time; its id, or (message, HTTP status) when refused."""
    limit = context.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        return "", (too_large_message(context.settings.serve_max_upload_mb), 413)
    upload_id = new_id()
    try:
        size = await save_stream(_chunks(read), context.store.upload_path(upload_id), limit=limit)
    except TooLarge:
        return "", (too_large_message(context.settings.serve_max_upload_mb), 413)
    if size == 0:
        return "", ("the upload is empty; send the audio file's bytes", 400)
    await context.store.add_upload(upload_id, size)
    return upload_id, None
