"""An episode batch: what the actor sends the learner after each episode, and the learner's check
of it. This module owns the format; both ends import it.

Arrays (T steps; images per camera):

    state         (T, D)        float32   observation.state at each step
    action        (T, A)        float32   what was sent (policy or person)
    reward        (T,)          float32
    intervention  (T,)          bool      the person drove this step
    final_state   (1, D)        float32   the observation after the last action
    image.<cam>   (T, H, W, 3)  uint8     final_image.<cam> (1, H, W, 3) uint8

Meta: `terminated` (bool: success ended it; else a time-limit style end), `features` (the robot:
`robot_features`), `episode`, `end`.

`check_episode` refuses (`BatchRejected`, so the link answers "rejected" and the actor's stream
moves on) anything that is not exactly this: wrong names, dtypes or shapes, lengths that disagree,
NaN or infinite values, features of another robot. It runs before any buffer is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from link import BatchRejected

MAX_STEPS = 1_000_000
MAX_STATE_DIM = 4096
MAX_IMAGE_SIDE = 4096
ROBOT_KEYS = ("state_dim", "action_names", "camera_shapes")


def robot_features(state_dim: int, action_names: list[str], camera_shapes: dict[str, tuple[int, int, int]],
                   fps: float, action_low: np.ndarray, action_high: np.ndarray) -> dict[str, Any]:
    """What the learner needs to know about the robot (sent in each episode batch's meta)."""
    return {"state_dim": int(state_dim), "action_names": list(action_names),
            "camera_shapes": {k: list(v) for k, v in camera_shapes.items()}, "fps": float(fps),
            "action_low": [float(x) for x in action_low], "action_high": [float(x) for x in action_high]}


@dataclass
class EpisodeBatch:
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    human: np.ndarray
    final_state: np.ndarray
    images: dict[str, np.ndarray]
    final_images: dict[str, np.ndarray]
    terminated: bool

    def __len__(self) -> int:
        return len(self.actions)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"state": self.states, "action": self.actions, "reward": self.rewards, "intervention": self.human,
               "final_state": self.final_state[None]}
        for c in self.images:
            out[f"image.{c}"] = self.images[c]
            out[f"final_image.{c}"] = self.final_images[c][None]
        return out


def _reject(message: str) -> BatchRejected:
    return BatchRejected(f"not a valid episode batch: {message}")


def check_features(f: Any) -> dict[str, Any]:
    """The robot description of a batch, checked (types, sizes, finite bounds)."""
    if not isinstance(f, dict):
        raise _reject("meta.features must be an object")
    d, names, cams, fps = f.get("state_dim"), f.get("action_names"), f.get("camera_shapes"), f.get("fps")
    if type(d) is not int or not 1 <= d <= MAX_STATE_DIM:
        raise _reject(f"state_dim must be an integer in [1, {MAX_STATE_DIM}]")
    if not (isinstance(names, list) and 1 <= len(names) <= 64 and len(set(map(str, names))) == len(names)
            and all(isinstance(n, str) and 0 < len(n) <= 64 for n in names)):
        raise _reject("action_names must be 1 to 64 distinct names")
    if not (isinstance(cams, dict) and len(cams) <= 8 and all(
            isinstance(k, str) and 0 < len(k) <= 64 and isinstance(v, list) and len(v) == 3 and v[2] == 3
            and all(type(x) is int and 1 <= x <= MAX_IMAGE_SIDE for x in v) for k, v in cams.items())):
        raise _reject("camera_shapes must map at most 8 camera names to [H, W, 3]")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 1000):
        raise _reject("fps must be a number in (0, 1000]")
    low, high = f.get("action_low"), f.get("action_high")
    for bound in (low, high):
        if not (isinstance(bound, list) and len(bound) == len(names)
                and all(isinstance(x, (int, float)) and math.isfinite(x) for x in bound)):
            raise _reject("action_low/high must be finite numbers, one per action")
    if not all(lo < hi for lo, hi in zip(low, high)):
        raise _reject("action_low must be below action_high for every action")
    return f


def check_episode(meta: dict[str, Any], arrays: dict[str, np.ndarray],
                  robot: dict[str, Any] | None) -> tuple[EpisodeBatch, dict[str, Any]]:
    """(the episode, its robot features), or BatchRejected. `robot`: the features this learner
    trains for (None before the first batch)."""
    features = check_features(meta.get("features"))
    if robot is not None:
        mine = {k: robot[k] for k in ROBOT_KEYS}
        theirs = {k: features[k] for k in ROBOT_KEYS}
        if mine != theirs:
            raise BatchRejected(f"this learner trains a policy for {mine}; the actor's robot gives {theirs}: start "
                                "a learner with a new --output_dir for this robot")
    if type(meta.get("terminated", False)) is not bool:
        raise _reject("meta.terminated must be true or false")
    d, a = features["state_dim"], len(features["action_names"])
    cams = {c: tuple(s) for c, s in features["camera_shapes"].items()}
    action = arrays.get("action")
    t = len(action) if isinstance(action, np.ndarray) and action.ndim >= 1 else 0
    if not 1 <= t <= MAX_STEPS:
        raise _reject(f"it needs 1 to {MAX_STEPS} steps of 'action'")
    expected = {"state": ("float32", (t, d)), "action": ("float32", (t, a)), "reward": ("float32", (t,)),
                "intervention": ("bool", (t,)), "final_state": ("float32", (1, d))}
    for c, shape in cams.items():
        expected[f"image.{c}"] = ("uint8", (t, *shape))
        expected[f"final_image.{c}"] = ("uint8", (1, *shape))
    if set(arrays) != set(expected):
        raise _reject(f"arrays {sorted(arrays)}; expected {sorted(expected)}")
    for name, (dtype, shape) in expected.items():
        x = arrays[name]
        if x.dtype.name != dtype or x.shape != shape:
            raise _reject(f"{name} is {x.dtype.name} {x.shape}; expected {dtype} {shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise _reject(f"{name} holds NaN or infinite values")
    copy = {k: np.array(v) for k, v in arrays.items()}   # own the memory (the arrays may view a request)
    episode = EpisodeBatch(copy["state"], copy["action"], copy["reward"], copy["intervention"], copy["final_state"][0],
                           {c: copy[f"image.{c}"] for c in cams}, {c: copy[f"final_image.{c}"][0] for c in cams},
                           meta.get("terminated", False))
    return episode, features
