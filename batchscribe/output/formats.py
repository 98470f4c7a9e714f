"""The pure renderers: a transcript as .txt, .json, .srt or .vtt text (nothing touches the disk)."""

from __future__ import annotations

import json

from batchscribe.output.paragraphs import paragraphs
from batchscribe.output.subtitles import DEFAULT_LIMITS, CueLimits, render_srt, render_vtt
from batchscribe.transcript import Transcript, spans_of


def render_txt(transcript: Transcript) -> str:
    """Paragraphs separated by a blank line, then one newline (see `paragraph_starts`).

    Its words are exactly the transcript's `text` (joining the paragraphs with single spaces
    gives it back); word timings place the breaks, and without words the text is cut by its
    sentences. With speaker labels each turn starts `Speaker A: `; a transcript with turns
    (`utterances`) but no words to place them gets one or more paragraphs per turn.
    """
    spans = transcript.spans()
    turns = transcript.utterances if transcript.data.get("speaker_labels") else []
    if turns and not any(span.speaker for span in spans):
        parts = []
        for who, text in turns:
            said = paragraphs(spans_of(text))
            parts.extend([f"Speaker {who}: {said[0]}", *said[1:]] if said else [])
        return "\n\n".join(parts) + "\n"
    return "\n\n".join(paragraphs(spans)) + "\n"


def render_json(transcript: Transcript) -> str:
    """The transcript object, pretty-printed, UTF-8 characters kept as they are."""
    return json.dumps(transcript.data, ensure_ascii=False, indent=2) + "\n"


def render(fmt: str, transcript: Transcript, limits: CueLimits = DEFAULT_LIMITS) -> str:
    """One output format of a transcript, as text."""
    if fmt == "txt":
        return render_txt(transcript)
    if fmt == "json":
        return render_json(transcript)
    if fmt == "srt":
        return render_srt(transcript, limits)
    if fmt == "vtt":
        return render_vtt(transcript, limits)
    raise ValueError(f"unknown format {fmt!r}")
