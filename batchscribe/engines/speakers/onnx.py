"""The speaker models shipped in batchscribe/engines/speakers/data, as onnxruntime sessions."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


def data_path(name: str) -> Path:
    """A file shipped in batchscribe/engines/speakers/data (package data)."""
    return Path(str(resources.files("batchscribe.engines.speakers") / "data" / name))


def onnx_session(path: Path, threads: int) -> Any:
    """An onnxruntime session of `path` on `threads` CPU cores. Blocking to run; sessions
    may be run from several threads at once."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings about unused initialisers are noise
    # Inputs change length (CAM++'s stretches of a voice, a region's windows): the arena and
    # the memory patterns keep the largest. Measured without both, CAM++ and the segmentation
    # over the 3-minute podcast: 257 MB peak against 304, the same CPU (BENCHMARKS.md, #27).
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
