"""A recording cut short (an interrupted copy or download): its transcript is written, and
flagged, as a low confidence is, so nobody takes 54 s of a 3-minute call for the whole call.

Two signs, measured on real truncations (BENCHMARKS.md, "Truncated recordings"):

- the container says how long it is (WAV's data size, MP3's Xing/Info frame count, MP4's
  `moov` at the front), and the engine heard much less (`audio_duration`);
- an Ogg stream (Vorbis, Opus) whose last page is not marked as the end of the stream.

A header that only estimates the length from the file's size (MP3 without Xing, Ogg's last
granule) says nothing about a cut, so it is never taken as a sign.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen
import mutagen.mp3
import mutagen.wave

from batchscribe.transcript import OUR_KEY

#: Heard less than this share of what the container says: cut short. Whole files came out at
#: 0.999-1.000 of their header (MP3, M4A, WAV); a cut at 90% of the bytes at 0.90.
MIN_SHARE = 0.95
#: ... and at least this many seconds less: AssemblyAI gives whole seconds, so a 3-second
#: file may read 2/3.4 without being cut.
MIN_MISSING_S = 2.0
#: Ogg's pages: the last one carries the end-of-stream flag in its header-type byte.
_OGG_PAGE = b"OggS"
_OGG_EOS = 0x04
_OGG_TAIL = 64 * 1024


@dataclass(frozen=True, slots=True)
class Container:
    """What a recording's container says of its end, read before the engine ran."""

    #: its length in seconds, when the container counts it (not estimated from the size)
    seconds: float | None = None
    #: an Ogg stream with no end-of-stream page: cut short whatever the length says
    unended: bool = False


def read_container(path: Path) -> Container:
    """The container's own word on the recording's length and end. Blocking (reads headers
    and, for Ogg, the last 64 KiB); never raises: a file it cannot read says nothing."""
    try:
        found = mutagen.File(path)
        if found is None and path.suffix.lower() in (".wav", ".wave"):
            found = mutagen.wave.WAVE(path)  # type: ignore[no-untyped-call]  # not sniffed
    except (mutagen.MutagenError, OSError, ValueError):
        return Container()
    info = getattr(found, "info", None)
    if info is None:
        return Container()
    if type(found).__module__.startswith("mutagen.ogg"):
        return Container(unended=not _ogg_ends(path))
    if isinstance(info, mutagen.mp3.MPEGInfo) and (
        info.bitrate_mode is mutagen.mp3.BitrateMode.UNKNOWN  # no Xing/Info: estimated
    ):
        return Container()
    length = getattr(info, "length", None)
    return Container(seconds=float(length) if length else None)


def _ogg_ends(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - _OGG_TAIL))
            tail = fh.read()
    except OSError:
        return True
    last = tail.rfind(_OGG_PAGE)
    return last < 0 or len(tail) <= last + 5 or bool(tail[last + 5] & _OGG_EOS)


def flag_truncated(data: Mapping[str, Any], container: Container) -> Mapping[str, Any]:
    """`data` with `"batchscribe": {"truncated": true, ...}` added (beside any other flag)
    when the engine heard much less than the container says, or the Ogg stream has no end;
    else `data` itself, untouched."""
    heard = data.get("audio_duration")
    heard_s = float(heard) if isinstance(heard, int | float) and heard else None
    if container.unended:
        said: dict[str, Any] = {"truncated": True, "stream_ended": False}
    elif (
        container.seconds
        and heard_s is not None
        and heard_s < container.seconds * MIN_SHARE
        and container.seconds - heard_s >= MIN_MISSING_S
    ):
        said = {"truncated": True, "container_seconds": round(container.seconds, 1)}
    else:
        return data
    ours = dict(data.get(OUR_KEY) or {})
    return {**data, OUR_KEY: {**ours, **said}}


def truncated_note(data: Mapping[str, Any]) -> str | None:
    """What the per-file warning says of a transcript `flag_truncated` flagged; else None."""
    ours = data.get(OUR_KEY)
    if not isinstance(ours, Mapping) or ours.get("truncated") is not True:
        return None
    heard = data.get("audio_duration")
    heard_text = f"{float(heard):.0f} s" if isinstance(heard, int | float) else "less"
    if isinstance(ours.get("container_seconds"), int | float):
        whole = f"its header says {ours['container_seconds']:.0f} s and {heard_text} was heard"
    else:
        whole = f"its stream has no end ({heard_text} heard)"
    return (
        f"the recording looks cut short: {whole}; the transcript covers only that part "
        "(an interrupted copy or download? copy it again and the next run transcribes it)"
    )
