"""An upload's bytes to the state folder, streamed (never whole in memory), capped in size,
and in place only once complete (a temporary name, then a rename).

No fsync: what the server promises is to survive its own death (kill -9), and the kernel
keeps a dead process's written pages; a power cut may lose an upload, which then ends as
an error, never as another file's words. (An fsync per upload cost a disk flush per clip.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles
import aiofiles.os

#: Read the body this much at a time: memory per upload stays at one chunk.
CHUNK = 1 << 20


class TooLarge(Exception):
    """The upload passed the cap; nothing of it is kept."""


async def save_stream(chunks: AsyncIterator[bytes], path: Path, *, limit: int) -> int:
    """Write `chunks` to `path` (a temporary sibling first); raises TooLarge past `limit`
    bytes. Returns the size. A failure or cancellation leaves nothing behind."""
    partial = path.with_name(path.name + ".part")
    size = 0
    try:
        async with aiofiles.open(partial, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge()
                await out.write(chunk)
            await out.flush()
        await aiofiles.os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


def too_large_message(limit_mb: int) -> str:
    return f"upload too large: the limit is {limit_mb} MB (set [serve] max_upload_mb)"
