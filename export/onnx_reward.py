"""`OnnxRewardClassifier`: an exported success classifier on onnxruntime, with no torch anywhere.

    classifier = OnnxRewardClassifier("outputs/reward/lift/model.onnx")
    p = classifier.predict_proba(frame)        # a policy frame, as robot.features.to_policy_frame builds it

`export.reward_exporter` writes the file; a session takes it as `--reward.path=.../model.onnx`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.features import IMAGE_PREFIX, STATE_KEY
from export.onnx_policy import session_options

METADATA_KEY = "chunkbot_reward_classifier"
OUTPUT_NAME = "success_probability"


class OnnxRewardClassifier:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX reward classifier at {path}: tools.train_reward writes one as "
                                    "<output_dir>/model.onnx")
        try:
            self.session = ort.InferenceSession(path.read_bytes(), session_options(), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own error classes  # noqa: BLE001
            raise ValueError(f"{path} is not a readable ONNX model ({' '.join(str(e).split())[:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise ValueError(f"{path} is not a reward classifier exported by tools.train_reward (no "
                             f"{METADATA_KEY} metadata)")
        meta = json.loads(meta)
        self.camera_names: list[str] = list(meta["cameras"])
        self.state_dim: int = int(meta["state_dim"])
        self.state_names: list[str] = list(meta.get("state_names") or [])
        self.threshold: float = float(meta["threshold"])

    def probabilities(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Batched inputs by name (`observation.state` (B, D), `observation.images.<cam>` (B, H, W, 3)) -> (B,)."""
        names = [STATE_KEY, *(IMAGE_PREFIX + c for c in self.camera_names)]
        return self.session.run([OUTPUT_NAME], {n: feeds[n] for n in names})[0]

    def predict_proba(self, frame: dict[str, np.ndarray]) -> float:
        """The success probability of one policy frame."""
        missing = [c for c in self.camera_names if IMAGE_PREFIX + c not in frame]
        if missing:
            raise ValueError(f"the reward classifier reads cameras {self.camera_names} but the robot gives no "
                             f"{missing}: give the robot those cameras (the sim arm: --robot.obs_mode=pixels)")
        state = np.asarray(frame.get(STATE_KEY, np.zeros(0)), np.float32).reshape(1, -1)
        if not self.state_dim:
            state = np.zeros((1, 1), np.float32)
        elif state.shape[1] != self.state_dim:
            raise ValueError(f"the reward classifier reads {self.state_dim} joint values but the robot gives "
                             f"{state.shape[1]}: train it on this robot's recordings")
        feeds = {STATE_KEY: state}
        for c in self.camera_names:
            feeds[IMAGE_PREFIX + c] = np.ascontiguousarray(frame[IMAGE_PREFIX + c], dtype=np.uint8)[None]
        return float(self.probabilities(feeds)[0])
