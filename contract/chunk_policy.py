"""The `ChunkPolicy` protocol: what the runtime needs from any policy that predicts action chunks.

Implemented by the torch policy (`policy.QChunkSACPolicy`), the torch-free ONNX actor
(`export.OnnxChunkPolicy`) and the sim's scripted expert; the executor (`robot.executor`) runs any
of them. Here, below both, so the deploy path never imports training code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class ChunkPolicy(Protocol):
    chunk_size: int                  # h: actions per predicted chunk
    action_names: tuple[str, ...]    # e.g. ("shoulder_pan.pos", ..., "gripper.pos")
    fps: float                       # control rate the policy was trained at
    # Optional: `history_length` (int, default 1). A policy that reads L > 1 consecutive states keeps no
    # history: it gets the previous L-1 in `frame["state_history"]` ((L-1, D), oldest first) from the
    # caller, who sees every control step (the executor's `robot.history.ObservationHistory`).

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """One policy frame (`observation.state`, `observation.images.<cam>`, unbatched) ->
        (h, A) float32 joint targets in robot units."""
        ...

    def reset(self) -> None: ...
