"""The transcript store: kept by content and options, private, and never a reason to fail."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from batchscribe.errors import OutputError
from batchscribe.state.store import TranscriptStore, options_id
from batchscribe.transcript import Transcript

TRANSCRIPT = Transcript({"id": "t1", "text": "Grüße, world.", "status": "completed"})


def test_options_id_is_stable_and_ignores_key_order() -> None:
    assert options_id({"a": 1, "b": [2]}) == options_id({"b": [2], "a": 1})
    assert options_id({"a": 1}) != options_id({"a": 2})
    assert len(options_id({})) == 16


def test_a_saved_transcript_loads_back_by_content_and_options(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path)
    store.save("d1", "o1", TRANSCRIPT)

    assert store.load("d1", "o1") == TRANSCRIPT
    assert store.load("d1", "o2") is None  # other options: transcribe again
    assert store.load("d2", "o1") is None  # other bytes
    kept = store.folder / "d1-o1.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # it may hold private speech
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_a_damaged_transcript_counts_as_absent(tmp_path: Path, content: str) -> None:
    store = TranscriptStore(tmp_path)
    store.folder.mkdir()
    (store.folder / "d1-o1.json").write_text(content)

    assert store.load("d1", "o1") is None


def test_a_store_that_cannot_be_written_says_how_to_go_on(tmp_path: Path) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("a file where the folder should be")
    store = TranscriptStore(blocked)

    with pytest.raises(OutputError, match="fetched again without paying"):
        store.save("d1", "o1", TRANSCRIPT)
    assert not os.path.isdir(store.folder)
