"""`OnnxChunkPolicy`: the exported chunk actor on onnxruntime, with no torch anywhere.

It implements `contract.ChunkPolicy`, so the chunk executor runs it exactly like the
torch policy: one raw policy frame in (`observation.state` float32, `observation.images.<cam>`
uint8 H x W x 3, as `robot.features.to_policy_frame` builds it), one (h, A) chunk of joint
targets in robot units out. Normalisation, image preprocessing and action scaling live in the graph.
It keeps no observation history: an actor that reads L > 1 states takes the previous L-1 in the
frame (`state_history`), from the caller's `robot.history.ObservationHistory` (the executor's).

Latency: one intra-op thread (a batch-1 actor is far too small to gain from a thread pool, and
the control loop needs the other cores), sequential execution, all graph optimisations, and the
input checks are a handful of dict lookups and shape compares, done before onnxruntime is called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from export import integrity
from export.metadata import ACTION_CHUNK, IMAGE_PREFIX, STATE_HISTORY, STATE_KEY, ActorMetadata, OnnxModelError
from robot.history import missing_history_message

_ORT_DTYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


class ObservationMismatchError(ValueError):
    """A policy frame that does not fit the exported actor (missing key, wrong shape or dtype)."""


class ModelMismatchError(ValueError):
    """The exported actor was made for another robot, action set or observation layout."""


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """onnxruntime settings for the lowest batch-1 latency on a CPU shared with a control loop."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: the loop's console is for the operator
    return opts


def load_session(path: str | Path, options: ort.SessionOptions | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session, or an OnnxModelError that says what is wrong with the file. The file's
    bytes are checked against the SHA-256 sealed into it at export (export.integrity) first."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}; export one with "
                                "`python -m tools.export_onnx --policy.path=CHECKPOINT --output=actor.onnx`")
    data = path.read_bytes()
    sealed = integrity.has_checksum(data)
    if sealed:
        integrity.verify(data, str(path))  # before onnxruntime sees a byte of it
    try:
        session = ort.InferenceSession(data, options or session_options(), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own pybind classes (InvalidProtobuf, Fail, ...)  # noqa: BLE001
        raise OnnxModelError(
            f"cannot load {path} ({len(data)} bytes) as an ONNX model: the file is corrupted, truncated or not ONNX "
            f"(onnxruntime: {type(e).__name__}: {str(e).strip()[:300]}); copy it again or re-export it with "
            "`python -m tools.export_onnx`") from None
    if not sealed and "format" in session.get_modelmeta().custom_metadata_map:
        raise OnnxModelError(
            f"{path} is a chunkbot actor without the {integrity.CHECKSUM_KEY!r} checksum entry (exported by an older "
            "chunkbot, or the entry is damaged), so it cannot be verified; re-export it with "
            "`python -m tools.export_onnx`")
    return session


def read_metadata(path: str | Path) -> ActorMetadata:
    """The chunk-actor metadata of an exported file (loads the graph to read it)."""
    session = load_session(path)
    return ActorMetadata.from_props(dict(session.get_modelmeta().custom_metadata_map), str(path))


class OnnxChunkPolicy:
    """A chunk actor exported by `export.export_policy`, run on onnxruntime (CPU)."""

    def __init__(self, path: str | Path, intra_op_threads: int = 1) -> None:
        self.path = Path(path)
        self._session = load_session(self.path, session_options(intra_op_threads))
        props = dict(self._session.get_modelmeta().custom_metadata_map)
        self.metadata = ActorMetadata.from_props(props, str(self.path))
        self._check_graph_matches_metadata()
        meta = self.metadata
        self._observation_specs = [(k, tuple(s.shape), np.dtype(s.dtype)) for k, s in meta.observations.items()]
        self._output_names = list(meta.outputs)
        self._has_history = meta.history_length > 1
        self.last_value: float | None = None      # critic's value of the last chunk (critic exports only)
        self.last_q_values: np.ndarray | None = None

    # ------------------------------------------------------------------ ChunkPolicy
    @property
    def chunk_size(self) -> int:
        return self.metadata.chunk_size

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.metadata.action_names

    @property
    def fps(self) -> float:
        return self.metadata.fps

    @property
    def history_length(self) -> int:
        """States the actor reads (L); the caller hands over the previous L-1 with each frame."""
        return self.metadata.history_length

    @property
    def has_critic(self) -> bool:
        return self.metadata.critic is not None

    def reset(self) -> None:
        """New episode: forget the last chunk's critic values (the policy keeps no history)."""
        self.last_value = None
        self.last_q_values = None

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """One unbatched window frame -> (h, A) float32 joint targets in robot units.

        With a history (L > 1) the frame carries the L-1 states before this one as
        `observation["state_history"]` ((L-1, D) float32, oldest first; an episode's first frame
        repeated until it has its own), as `robot.history.ObservationHistory.frame()` builds it."""
        feeds = {key: value[None] for key, value in self.check_observation(observation).items()}
        if self._has_history:
            given = observation.get(STATE_HISTORY)
            if given is None:
                raise ObservationMismatchError(missing_history_message(self.metadata.history_length,
                                                                       self.metadata.state_dim))
            feeds[STATE_HISTORY] = self._check_history(given)[None]
        outputs = self._session.run(self._output_names, feeds)
        if self.has_critic:
            self.last_q_values = outputs[-2][0]
            self.last_value = float(outputs[-1][0])
        return outputs[0][0]

    # ------------------------------------------------------------------ batched / raw access
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Batched graph call on raw inputs (names as in `metadata.inputs`); no history is kept."""
        missing = [k for k in self.metadata.inputs if k not in feeds]
        if missing:
            raise ObservationMismatchError(f"missing graph input(s) {missing}; the graph takes {list(self.metadata.inputs)}")
        outputs = self._session.run(self._output_names, {k: feeds[k] for k in self.metadata.inputs})
        return dict(zip(self._output_names, outputs))

    # ------------------------------------------------------------------ checks
    def check_observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        """The frame's arrays the graph reads, each checked against the metadata (extra keys are ignored)."""
        out: dict[str, np.ndarray] = {}
        for key, shape, dtype in self._observation_specs:
            value = observation.get(key)
            if value is None:
                raise ObservationMismatchError(
                    f"the observation lacks {key!r}; the model {self.path.name} needs "
                    f"{[k for k, _, _ in self._observation_specs]} and the frame has {sorted(observation)}"
                    + (" (is the camera configured on the robot?)" if key.startswith(IMAGE_PREFIX) else ""))
            if not isinstance(value, np.ndarray):
                value = np.asarray(value)
            if value.shape != shape:
                raise ObservationMismatchError(
                    f"{key!r} has shape {value.shape}; the model {self.path.name} expects {shape} (one unbatched "
                    "frame)" + (" - different camera resolution?" if key.startswith(IMAGE_PREFIX) else
                                " - different robot or state features?"))
            if value.dtype != dtype:
                raise ObservationMismatchError(
                    f"{key!r} has dtype {value.dtype}; the model expects {dtype}"
                    + (" (raw H x W x 3 camera bytes, not a float image)" if dtype == np.uint8 else
                       f" (convert with np.asarray(x, np.{dtype}))"))
            if key == STATE_KEY and not np.isfinite(value).all():
                raise ObservationMismatchError(f"{key!r} holds non-finite values {value.tolist()}; "
                                               "refusing to plan from a broken sensor reading")
            out[key] = value
        return out

    def _check_history(self, history: Any) -> np.ndarray:
        history = np.asarray(history)
        shape = (self.metadata.history_length - 1, self.metadata.state_dim)
        if history.shape != shape or history.dtype != np.float32:
            raise ObservationMismatchError(f"{STATE_HISTORY!r} must be {shape} float32 (the previous states, oldest "
                                           f"first); got {history.shape} {history.dtype}")
        return history

    def check_robot(self, observation_features: dict[str, Any], action_names: tuple[str, ...] | list[str],
                    robot_type: str | None = None, allow_other_robot_type: bool = False) -> None:
        """Refuse a robot this model was not made for: other action set, state size or names,
        cameras, or (unless allowed, e.g. for sim-to-real) another robot type."""
        meta = self.metadata
        name = self.path.name
        if set(action_names) != set(meta.action_names):  # the executor maps chunk columns by name
            raise ModelMismatchError(f"{name} predicts actions {list(meta.action_names)} but the robot takes "
                                     f"{list(action_names)}: this model was exported for another action set")
        state_features = [k for k, v in observation_features.items() if v is float]
        state_spec = meta.observations[STATE_KEY]
        if len(state_features) != meta.state_dim:
            raise ModelMismatchError(f"{name} expects {meta.state_dim} state values but the robot has "
                                     f"{len(state_features)} ({state_features}): another robot or task")
        if state_spec.names is not None and tuple(state_features) != state_spec.names:
            diff = [(a, b) for a, b in zip(state_spec.names, state_features) if a != b]
            raise ModelMismatchError(f"{name} was trained on state features {list(state_spec.names)}; the robot's "
                                     f"differ (model vs robot: {diff[:4]}): another robot or task")
        cameras = {IMAGE_PREFIX + k: tuple(v) for k, v in observation_features.items() if isinstance(v, tuple)}
        for key in meta.camera_keys:
            if key not in cameras:
                raise ModelMismatchError(f"{name} needs camera {key[len(IMAGE_PREFIX):]!r} but the robot has "
                                         f"{sorted(k[len(IMAGE_PREFIX):] for k in cameras)}: configure it")
            if cameras[key] != meta.observations[key].shape:
                raise ModelMismatchError(f"{name} expects {key} frames of {meta.observations[key].shape}, the robot "
                                         f"gives {cameras[key]}: set the camera resolution to match")
        if (robot_type is not None and meta.robot_type is not None and robot_type != meta.robot_type
                and not allow_other_robot_type):
            raise ModelMismatchError(f"{name} was exported for robot type {meta.robot_type!r}, not {robot_type!r}; "
                                     "if that is intended (e.g. sim-to-real on the same arm), allow it explicitly "
                                     "(tools.run_policy: --allow_other_robot_type=true)")

    def _check_graph_matches_metadata(self) -> None:
        """The graph's own signature must agree with its metadata (a hand-edited or mixed-up file fails here)."""
        meta, name = self.metadata, self.path.name
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        if set(inputs) != set(meta.inputs):
            raise OnnxModelError(f"{name}: graph inputs {sorted(inputs)} differ from its metadata {list(meta.inputs)}")
        if outputs != list(meta.outputs):
            raise OnnxModelError(f"{name}: graph outputs {outputs} differ from its metadata {list(meta.outputs)}")
        for key, spec in meta.observations.items():
            node = inputs[key]
            if node.type != _ORT_DTYPES.get(spec.dtype):
                raise OnnxModelError(f"{name}: input {key!r} is {node.type} in the graph, {spec.dtype} in the metadata")
            fixed = [d for d in node.shape[1:]]
            if fixed != list(spec.shape):
                raise OnnxModelError(f"{name}: input {key!r} has shape {node.shape} in the graph, "
                                     f"(batch, *{list(spec.shape)}) in the metadata")
        chunk = self._session.get_outputs()[outputs.index(ACTION_CHUNK)].shape
        if list(chunk[1:]) != [meta.chunk_size, len(meta.action_names)]:
            raise OnnxModelError(f"{name}: {ACTION_CHUNK} has shape {chunk}, metadata says "
                                 f"(batch, {meta.chunk_size}, {len(meta.action_names)})")

    def __repr__(self) -> str:
        m = self.metadata
        return (f"OnnxChunkPolicy({os.fspath(self.path)!r}, robot_type={m.robot_type!r}, h={m.chunk_size}, "
                f"A={len(m.action_names)}, fps={m.fps}, inputs={list(m.inputs)})")
