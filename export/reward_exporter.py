"""ONNX export of a success classifier (`policy.reward_classifier`), checked against torch on onnxruntime.

The graph takes what a robot gives (`observation.state` (B, D) float32, `observation.images.<cam>`
(B, H, W, 3) uint8, cameras sorted by name) and returns `success_probability` (B,); the joint
normalisation and image preprocessing are inside it. Its metadata names the cameras, the joint count
and the trained threshold, so `export.onnx_reward.OnnxRewardClassifier` needs nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from contract.features import IMAGE_PREFIX, STATE_KEY
from export.onnx_reward import METADATA_KEY, OUTPUT_NAME
from policy.reward_classifier import RewardClassifier

ONNX_NAME = "model.onnx"
OPSET = 17


class _Probability(torch.nn.Module):
    def __init__(self, model: RewardClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, state: torch.Tensor, *images: torch.Tensor) -> torch.Tensor:
        return self.model.probability(state, *images)


def example_inputs(model: RewardClassifier, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the right names, shapes and dtypes (the parity check's)."""
    rng = np.random.default_rng(seed)
    cfg = model.config
    out = {STATE_KEY: rng.normal(0, 30, (batch, max(cfg.state_dim, 1))).astype(np.float32)}
    for c in model.camera_names:
        out[IMAGE_PREFIX + c] = rng.integers(0, 256, (batch, *cfg.cameras[c]), dtype=np.uint8)
    return out


def export_reward_classifier(model: RewardClassifier, path: str | Path, check_inputs: dict[str, np.ndarray] | None = None,
                             tolerance: float = 1e-4) -> float:
    """Write `model` to `path` (atomically) and return the largest |onnxruntime - torch| probability on
    `check_inputs` (default: random frames); a larger one than `tolerance` is a ValueError."""
    import onnx

    from export.onnx_reward import OnnxRewardClassifier

    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    path = Path(path)
    model = model.cpu().eval()
    feeds = check_inputs or example_inputs(model)
    names = [STATE_KEY, *(IMAGE_PREFIX + c for c in model.camera_names)]
    args = tuple(torch.from_numpy(feeds[n][:1]) for n in names)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Probability(model), args, str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_axes={n: {0: "batch"} for n in [*names, OUTPUT_NAME]}, do_constant_folding=True)
    proto = onnx.load(str(tmp))
    meta = {"cameras": model.camera_names, "state_dim": model.config.state_dim,
            "state_names": list(model.config.state_names), "threshold": model.config.threshold}
    proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
    onnx.save(proto, str(tmp))
    with torch.no_grad():
        expected = model.probability(*(torch.from_numpy(feeds[n]) for n in names)).numpy()
    got = OnnxRewardClassifier(tmp).probabilities(feeds)
    diff = float(np.max(np.abs(got - expected)))
    if diff > tolerance:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"the ONNX reward classifier disagrees with torch by {diff:.2g} (> {tolerance:g}): "
                         "the export is not trustworthy")
    os.replace(tmp, path)
    return diff
