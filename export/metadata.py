"""What an exported chunk actor says about itself: the ONNX `metadata_props` schema.

Every value is JSON (ONNX metadata is string -> string). The runtime reads it through
onnxruntime's `custom_metadata_map`, so nothing here needs torch or the `onnx` package.

Graph interface (what `metadata.inputs` / `metadata.outputs` name):

    inputs   observation.state            (B, D)        float32  raw robot units, as robot.features builds it
             observation.images.<camera>  (B, H, W, 3)  uint8    one per camera the policy uses
             state_history                (B, L-1, D)   float32  only when obs_history_length L > 1: the
                                                                 previous L-1 raw states, oldest first
    outputs  action_chunk                 (B, h, A)     float32  joint targets in robot units
             next_state_history           (B, L-1, D)   float32  only when L > 1: the window moved on by this
                                                                 state (a caller that calls every step can feed it back)
             chunk_q_values, chunk_value  (B, K), (B,)  float32  only with the critic exported

The observation history is a pure function inside the graph (concatenate, shift) with its
buffer carried by the caller, so one ONNX file stays stateless and a batch of episodes can run
through it at once. At an episode start the caller fills the history with the first state
repeated, as `robot.history.ObservationHistory` does for the torch policy and the ONNX actor alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from contract import IMAGE_PREFIX, STATE_KEY

ACTION_CHUNK = "action_chunk"
STATE_HISTORY = "state_history"
NEXT_STATE_HISTORY = "next_state_history"
CHUNK_Q_VALUES = "chunk_q_values"
CHUNK_VALUE = "chunk_value"

FORMAT = "chunkbot.chunk_actor"
FORMAT_VERSION = 1
EXPORTER_VERSION = "1.0"


class OnnxModelError(RuntimeError):
    """An .onnx file that cannot serve as a chunk actor (unreadable, truncated, not ours, inconsistent)."""


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]   # without the batch axis
    dtype: str               # numpy dtype name: "float32" | "uint8"
    names: tuple[str, ...] | None = None  # per-entry names of a vector (observation.state), when known

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.names is not None:
            out["names"] = list(self.names)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TensorSpec":
        names = data.get("names")
        return cls(tuple(int(x) for x in data["shape"]), str(data["dtype"]),
                   tuple(names) if names is not None else None)


@dataclass
class ActorMetadata:
    """Everything the runtime needs to feed the graph and to refuse a model made for something else."""

    chunk_size: int
    fps: float
    action_names: tuple[str, ...]
    observations: dict[str, TensorSpec]       # the graph's observation inputs (policy-frame keys)
    history_length: int = 1                   # L: raw states the actor sees, the current one included
    robot_type: str | None = None             # e.g. "sim_so101", "so101_follower"; None: not recorded
    policy_type: str = "qchunk_sac"
    policy_config: dict[str, Any] = field(default_factory=dict)
    training_step: int | None = None
    critic: dict[str, Any] | None = None      # {"mode", "aggregation", "num_critics"} when exported
    exporter: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] | None = None      # the export-time torch-vs-onnxruntime check

    @property
    def state_dim(self) -> int:
        return int(self.observations[STATE_KEY].shape[0])

    @property
    def camera_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.observations if k.startswith(IMAGE_PREFIX))

    @property
    def inputs(self) -> tuple[str, ...]:
        """Graph input names, in graph order."""
        history = (STATE_HISTORY,) if self.history_length > 1 else ()
        return (STATE_KEY, *history, *self.camera_keys)

    @property
    def outputs(self) -> tuple[str, ...]:
        history = (NEXT_STATE_HISTORY,) if self.history_length > 1 else ()
        critic = (CHUNK_Q_VALUES, CHUNK_VALUE) if self.critic else ()
        return (ACTION_CHUNK, *history, *critic)

    def to_props(self) -> dict[str, str]:
        """ONNX metadata_props: key -> JSON string."""
        values: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "chunk_size": self.chunk_size,
            "fps": self.fps,
            "action_names": list(self.action_names),
            "observations": {k: v.to_json() for k, v in self.observations.items()},
            "history_length": self.history_length,
            "robot_type": self.robot_type,
            "policy_type": self.policy_type,
            "policy_config": self.policy_config,
            "training_step": self.training_step,
            "critic": self.critic,
            "exporter": self.exporter,
            "parity": self.parity,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
        }
        return {k: json.dumps(v) for k, v in values.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "the model") -> "ActorMetadata":
        """Decode metadata_props; a file without chunkbot metadata or with a newer format is refused."""
        if props.get("format") is None or _json(props, "format", source) != FORMAT:
            raise OnnxModelError(
                f"{source} carries no chunkbot chunk-actor metadata (metadata key 'format' is "
                f"{props.get('format')!r}, expected {json.dumps(FORMAT)}); export the policy with "
                "`python -m tools.export_onnx --policy.path=CHECKPOINT --output=actor.onnx`")
        version = _json(props, "format_version", source)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise OnnxModelError(f"{source} has metadata format_version {version!r}; this runtime reads up to "
                                 f"{FORMAT_VERSION}: update chunkbot on the robot, or re-export with this version")
        try:
            meta = cls(
                chunk_size=int(_json(props, "chunk_size", source)),
                fps=float(_json(props, "fps", source)),
                action_names=tuple(_json(props, "action_names", source)),
                observations={k: TensorSpec.from_json(v) for k, v in _json(props, "observations", source).items()},
                history_length=int(_json(props, "history_length", source)),
                robot_type=_json(props, "robot_type", source),
                policy_type=str(_json(props, "policy_type", source)),
                policy_config=_json(props, "policy_config", source) or {},
                training_step=_json(props, "training_step", source),
                critic=_json(props, "critic", source),
                exporter=_json(props, "exporter", source) or {},
                parity=_json(props, "parity", source, required=False),
            )
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise OnnxModelError(f"{source} has malformed chunkbot metadata ({type(e).__name__}: {e}); "
                                 "re-export it with `python -m tools.export_onnx`") from None
        if STATE_KEY not in meta.observations:
            raise OnnxModelError(f"{source} metadata lists no {STATE_KEY!r} observation; re-export it")
        return meta

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (what `tools.export_onnx` prints)."""
        d = asdict(self)
        d["observations"] = {k: v.to_json() for k, v in self.observations.items()}
        d.pop("policy_config")
        return d


def _json(props: dict[str, str], key: str, source: str, required: bool = True) -> Any:
    if key not in props:
        if not required:
            return None
        raise OnnxModelError(f"{source} lacks metadata key {key!r}; re-export it with `python -m tools.export_onnx`")
    try:
        return json.loads(props[key])
    except json.JSONDecodeError as e:
        raise OnnxModelError(f"{source} metadata key {key!r} is not JSON ({e}): {props[key][:80]!r}") from None
