"""ONNX export of the chunk actor and its torch-free runtime.

Runtime side (numpy + onnxruntime, never torch): `OnnxChunkPolicy`, `read_metadata`, `ActorMetadata`.
Export side (torch + policy/, loaded on first use so that importing `export` stays light):
`export_policy`, `check_parity`, `ExportError`, `ParityError`.
"""

from __future__ import annotations

import importlib
from typing import Any

from export.metadata import ActorMetadata, OnnxModelError, TensorSpec
from export.onnx_policy import ModelMismatchError, ObservationMismatchError, OnnxChunkPolicy, read_metadata

_EXPORTER_NAMES = ("export_policy", "check_parity", "ExportError", "ParityError", "ParityReport", "ExportResult")

__all__ = ["ActorMetadata", "ModelMismatchError", "ObservationMismatchError", "OnnxChunkPolicy", "OnnxModelError",
           "TensorSpec", "read_metadata", *_EXPORTER_NAMES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTER_NAMES:  # imports torch: only when asked for
        return getattr(importlib.import_module("export.exporter"), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
