"""Export a QChunkSAC checkpoint's deterministic chunk actor to one self-contained ONNX file, and
check it against torch.

    export_policy("outputs/train/checkpoints/last", "actor.onnx")   # export + parity check
    check_parity("outputs/train/checkpoints/last", "actor.onnx")    # parity check alone

The file is written to a temporary name beside the output, checked (torch vs onnxruntime on random
observations and, when a dataset is given, on recorded ones), stamped with the check's numbers and
only then renamed into place: a file at the output path has passed its parity check.

Parity is measured on the action chunk in the actor's normalised action space [-1, 1] (the tanh
output, before scaling to robot units), where float32 rounding is scale-free; the difference in
robot units (degrees, or [-100, 100]) is reported beside it. Critic outputs (when exported) and the
history output are compared too.

Imports torch and policy/ (the training side); the runtime side (`export.onnx_policy`) does not.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export import integrity
from export.graph import ChunkActorGraph, critic_description, reference_chunk
from export.metadata import (
    ACTION_CHUNK,
    CHUNK_Q_VALUES,
    CHUNK_VALUE,
    EXPORTER_VERSION,
    IMAGE_PREFIX,
    NEXT_STATE_HISTORY,
    STATE_HISTORY,
    STATE_KEY,
    ActorMetadata,
    TensorSpec,
)
from export.onnx_policy import load_session
from policy.checkpoint import load_critic  # the learner's layout of its critic

log = logging.getLogger("export")

PARITY_TOLERANCE = 1e-4
EXPORT_BATCH = 2  # example batch for tracing; not 1, which torch.export would specialise on


class ExportError(RuntimeError):
    """Neither torch exporter could trace the policy."""


class ParityError(RuntimeError):
    """onnxruntime and torch disagree beyond the tolerance: the export is not trustworthy."""


@dataclass
class ParityReport:
    tolerance: float
    samples: dict[str, int] = field(default_factory=dict)                 # source -> observations compared
    max_abs_diff: dict[str, float] = field(default_factory=dict)          # source -> max |Δ| in [-1, 1] action units
    max_abs_diff_robot_units: dict[str, float] = field(default_factory=dict)
    max_abs_diff_critic: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max([*self.max_abs_diff.values(), *self.max_abs_diff_critic.values(), 0.0])

    @property
    def passed(self) -> bool:
        return self.worst <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "space": "normalised actions [-1, 1]"}

    def summary(self) -> str:
        parts = [f"{src}: max|Δ| {self.max_abs_diff[src]:.2e} (robot units {self.max_abs_diff_robot_units[src]:.2e}"
                 + (f", critic {self.max_abs_diff_critic[src]:.2e}" if src in self.max_abs_diff_critic else "")
                 + f", n={self.samples[src]})" for src in self.max_abs_diff]
        return f"parity {'OK' if self.passed else 'FAILED'} (tolerance {self.tolerance:.0e}): " + "; ".join(parts)


@dataclass
class ExportResult:
    path: Path
    metadata: ActorMetadata
    parity: ParityReport | None
    method: str  # "dynamo" | "torchscript"


# ---------------------------------------------------------------------------------------------- loading
def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """(pretrained_model dir, training checkpoint dir or None) for an output dir, a checkpoint dir
    (`.../checkpoints/<step>` or `last`) or a pretrained_model dir."""
    path = Path(path)
    for pretrained in (path, path / "pretrained_model", path / "checkpoints" / "last" / "pretrained_model"):
        if (pretrained / "config.json").is_file() and (pretrained / "model.safetensors").is_file():
            checkpoint = pretrained.parent if pretrained.name == "pretrained_model" else None
            if checkpoint is not None and (checkpoint / "manifest.json").is_file():
                from policy.checkpoint import verify_checkpoint  # training side, as the policy itself

                verify_checkpoint(checkpoint)  # never export a damaged checkpoint
            if checkpoint is not None and not (checkpoint / "training_state").is_dir():
                checkpoint = None
            return pretrained, checkpoint
    raise FileNotFoundError(f"no policy at {path}: expected config.json + model.safetensors there, in "
                            "pretrained_model/, or in checkpoints/last/pretrained_model/ (a tools.train output dir)")


def load_policy(path: str | Path) -> torch.nn.Module:
    from policy.qchunk_sac import QChunkSACPolicy  # training side, imported only to export

    pretrained, _ = resolve_checkpoint(path)
    return QChunkSACPolicy.from_pretrained(pretrained).eval()


def training_step(pretrained: Path, checkpoint: Path | None) -> int | None:
    if checkpoint is not None:
        step_file = checkpoint / "training_state" / "training_step.json"
        if step_file.is_file():
            data = json.loads(step_file.read_text())
            for key in ("step", "env_step"):
                if isinstance(data.get(key), int):
                    return data[key]
        if re.fullmatch(r"\d+", checkpoint.resolve().name):
            return int(checkpoint.resolve().name)
    return None


def infer_robot(pretrained: Path) -> tuple[str | None, tuple[str, ...] | None]:
    """Robot type and state feature names from the training config when it trained on a chunkbot
    sim env: `chunkbot/SO101Lift-v0` -> `sim_so101` with the sim's state names; in `obs_mode=pixels`
    the sim arm's real counterpart (`so101_follower`) with its joint names, since the policy then reads
    exactly what that arm with two cameras gives. (None, None) when unknown."""
    train_config = pretrained / "train_config.json"
    if not train_config.is_file():
        return None, None
    train = json.loads(train_config.read_text())
    env_name = train.get("env_name")
    try:
        from robot.sim.tasks import ENV_IDS
    except ImportError:
        return None, None
    if env_name not in ENV_IDS:
        return None, None
    arm, task = ENV_IDS[env_name]
    from contract import ACTION_NAMES, arm_type
    from robot.config import robot_config_for
    from robot.features import state_names

    if train.get("obs_mode", "state") == "pixels":
        return arm_type(f"sim_{arm}").real_type, ACTION_NAMES
    robot = robot_config_for(f"sim_{arm}", task=task).build()
    try:
        return f"sim_{arm}", tuple(state_names(robot.observation_features))
    finally:
        robot.disconnect()


# ---------------------------------------------------------------------------------------------- inputs
def _specs(policy: torch.nn.Module, state_names: tuple[str, ...] | None) -> dict[str, TensorSpec]:
    cfg = policy.config
    if state_names is not None and len(state_names) != cfg.state_dim:
        log.warning("ignoring %d state names for a policy with state_dim %d", len(state_names), cfg.state_dim)
        state_names = None
    specs = {STATE_KEY: TensorSpec((int(cfg.state_dim),), "float32", state_names)}
    for cam in policy.camera_names:
        specs[IMAGE_PREFIX + cam] = TensorSpec(tuple(int(x) for x in cfg.camera_shapes[cam]), "uint8")
    return specs


def random_inputs(policy: torch.nn.Module, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Graph inputs drawn around the policy's state statistics (a few far outside, to exercise the
    normaliser's clip), random history and random camera bytes."""
    cfg = policy.config
    rng = np.random.default_rng(seed)
    mean = policy.normalizer.state_mean.cpu().numpy()
    std = policy.normalizer.state_std.cpu().numpy()
    L = int(cfg.obs_history_length)  # noqa: N806
    scale = np.where(rng.random((batch, L, 1)) < 0.1, 20.0, 2.0)
    states = (mean + std * scale * rng.standard_normal((batch, L, cfg.state_dim))).astype(np.float32)
    feeds = {STATE_KEY: states[:, -1]}
    if L > 1:
        feeds[STATE_HISTORY] = np.ascontiguousarray(states[:, :-1])
    for cam in policy.camera_names:
        feeds[IMAGE_PREFIX + cam] = rng.integers(0, 256, (batch, *cfg.camera_shapes[cam]), dtype=np.uint8)
    return feeds


def dataset_inputs(policy: torch.nn.Module, repo_id: str, root: str | Path | None, count: int = 64
                   ) -> dict[str, np.ndarray]:
    """Graph inputs from recorded frames, evenly spread over a LeRobotDataset; each history holds the
    frame's predecessors in its episode, the first frame repeated at the episode start (as at run time)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = policy.config
    dataset = LeRobotDataset(repo_id, root=root)
    hf = dataset.hf_dataset
    missing = [k for k in [STATE_KEY] + [IMAGE_PREFIX + c for c in policy.camera_names] if k not in dataset.features]
    if missing:
        raise ValueError(f"dataset {repo_id} lacks {missing} that the policy reads; it has {sorted(dataset.features)}")
    cols = hf.select_columns([STATE_KEY, "episode_index"]).with_format("numpy")[:]
    states = np.asarray(cols[STATE_KEY], np.float32)
    episodes = np.asarray(cols["episode_index"]).reshape(-1)
    if states.shape[1] != cfg.state_dim:
        raise ValueError(f"dataset {repo_id} has {states.shape[1]}-dim states; the policy expects {cfg.state_dim}")
    rows = np.unique(np.linspace(0, len(states) - 1, min(count, len(states))).astype(int))
    L = int(cfg.obs_history_length)  # noqa: N806
    windows = []
    for i in rows:
        idx = [i]
        for _ in range(L - 1):
            prev = idx[0] - 1
            idx.insert(0, prev if prev >= 0 and episodes[prev] == episodes[i] else idx[0])
        windows.append(states[idx])
    stacked = np.stack(windows)
    feeds = {STATE_KEY: stacked[:, -1]}
    if L > 1:
        feeds[STATE_HISTORY] = np.ascontiguousarray(stacked[:, :-1])
    for cam in policy.camera_names:
        key = IMAGE_PREFIX + cam
        frames = []
        for i in rows:
            img = dataset[int(i)][key]
            img = img.numpy() if hasattr(img, "numpy") else np.asarray(img)
            if img.dtype != np.uint8:  # LeRobot hands images out as float CHW in [0, 1]
                img = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
            if img.shape[0] == 3 and img.shape[-1] != 3:
                img = img.transpose(1, 2, 0)
            frames.append(img)
        feeds[key] = np.ascontiguousarray(np.stack(frames))
    return feeds


# ---------------------------------------------------------------------------------------------- parity
def _torch_outputs(policy, graph_with_critic, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = torch.from_numpy(feeds[STATE_KEY])
    history = torch.from_numpy(feeds[STATE_HISTORY]) if STATE_HISTORY in feeds else None
    images = [torch.from_numpy(feeds[IMAGE_PREFIX + c]) for c in policy.camera_names]
    out = {ACTION_CHUNK: reference_chunk(policy, state, history, images).numpy()}
    if graph_with_critic is not None:
        with torch.no_grad():
            args = [state, *([history] if history is not None else []), *images]
            res = graph_with_critic(*args)
        out[CHUNK_Q_VALUES], out[CHUNK_VALUE] = res[-2].numpy(), res[-1].numpy()
    return out


def compare(policy, session, feeds: dict[str, np.ndarray], graph_with_critic=None) -> tuple[float, float, float | None]:
    """(max |Δ| of the chunk in [-1, 1] units, in robot units, of the critic outputs) torch vs onnxruntime."""
    inputs = sorted(i.name for i in session.get_inputs())
    if inputs != sorted(feeds):
        raise ParityError(f"the ONNX graph takes {inputs} but the policy reads {sorted(feeds)}: the file was "
                          "exported from another policy")
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(names, {i.name: feeds[i.name] for i in session.get_inputs()})))
    want = _torch_outputs(policy, graph_with_critic, feeds)
    if got[ACTION_CHUNK].shape != want[ACTION_CHUNK].shape:
        raise ParityError(f"onnx {ACTION_CHUNK} has shape {got[ACTION_CHUNK].shape}, torch {want[ACTION_CHUNK].shape}: "
                          "the file was exported from another policy")
    span = (policy.normalizer.action_high - policy.normalizer.action_low).cpu().numpy()
    diff = np.abs(got[ACTION_CHUNK].astype(np.float64) - want[ACTION_CHUNK])
    diff_unit, diff_robot = float((2.0 * diff / span).max()), float(diff.max())
    if STATE_HISTORY in feeds:  # the history output must be the exact shift of the inputs
        expected = np.concatenate([feeds[STATE_HISTORY], feeds[STATE_KEY][:, None]], 1)[:, 1:]
        if not np.array_equal(got[NEXT_STATE_HISTORY], expected):
            raise ParityError(f"{NEXT_STATE_HISTORY} is not the shifted history: the graph mangles the history")
    critic = None
    if graph_with_critic is not None and CHUNK_VALUE in got:
        critic = max(float(np.abs(got[k] - want[k]).max()) for k in (CHUNK_Q_VALUES, CHUNK_VALUE))
    if not (np.isfinite(diff_unit) and np.isfinite(diff_robot)):
        diff_unit = diff_robot = float("inf")
    return diff_unit, diff_robot, critic


def check_parity(policy_path: str | Path | torch.nn.Module, onnx_path: str | Path, *, dataset_repo_id: str | None = None,
                 dataset_root: str | Path | None = None, num_random: int = 64, num_dataset: int = 64,
                 tolerance: float = PARITY_TOLERANCE, seed: int = 0, critic: torch.nn.Module | None = None,
                 raise_on_failure: bool = True) -> ParityReport:
    """Compare torch and onnxruntime on random observations (a batch and single frames: the batch axis
    is dynamic) and on dataset frames; raises ParityError above `tolerance` unless told not to."""
    from export.onnx_policy import session_options

    policy = load_policy(policy_path) if not isinstance(policy_path, torch.nn.Module) else policy_path.eval()
    session = load_session(onnx_path, session_options())
    outputs = [o.name for o in session.get_outputs()]
    if critic is None and CHUNK_VALUE in outputs:
        _, checkpoint = resolve_checkpoint(policy_path) if not isinstance(policy_path, torch.nn.Module) else (None, None)
        critic = load_critic(policy, checkpoint) if checkpoint is not None else None
    graph_with_critic = ChunkActorGraph(policy, critic, fuse_images=False) if critic is not None else None
    report = ParityReport(tolerance)

    def record(source: str, feeds: dict[str, np.ndarray]) -> None:
        n = len(feeds[STATE_KEY])
        unit, robot_units, crit = compare(policy, session, feeds, graph_with_critic)
        singles = [compare(policy, session, {k: v[i:i + 1] for k, v in feeds.items()}, graph_with_critic)
                   for i in range(min(n, 4))]
        report.samples[source] = n
        report.max_abs_diff[source] = max([unit] + [s[0] for s in singles])
        report.max_abs_diff_robot_units[source] = max([robot_units] + [s[1] for s in singles])
        if crit is not None:
            report.max_abs_diff_critic[source] = max([crit] + [s[2] for s in singles])

    record("random", random_inputs(policy, num_random, seed))
    if dataset_repo_id is not None:
        record("dataset", dataset_inputs(policy, dataset_repo_id, dataset_root, num_dataset))
    log.info(report.summary())
    if raise_on_failure and not report.passed:
        raise ParityError(f"{onnx_path}: onnxruntime and torch disagree; {report.summary()}. The export is not "
                          "trustworthy: check the exporter warnings above (a dynamo fallback, an unsupported op)")
    return report


# ---------------------------------------------------------------------------------------------- export
def _torch_to_onnx(graph: torch.nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str],
                   output_names: list[str], path: Path, opset: int, dynamo: bool) -> str:
    """Trace `graph` to `path`; returns the method used. dynamo=True falls back to the TorchScript
    exporter when torch.export cannot handle a module, and says so."""
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # pass-by-pass INFO chatter of the exporter
        logging.getLogger(noisy).setLevel(max(logging.ERROR, logging.getLogger(noisy).level))
    if dynamo:
        try:
            batch = torch.export.Dim("batch", min=1, max=1 << 16)
            # forward(state, *rest): torch.export sees (state, rest-tuple) when rest is not empty,
            # and the shapes must nest alike
            dynamic = ({0: batch}, tuple({0: batch} for _ in args[1:])) if len(args) > 1 else ({0: batch},)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(graph, args, str(path), dynamo=True, opset_version=opset, input_names=input_names,
                                  output_names=output_names, dynamic_shapes=dynamic,
                                  external_data=False, optimize=True, verbose=False, report=False)
            return "dynamo"
        except Exception as e:  # noqa: BLE001 - any failure of the new exporter: try the old one
            cause = e.__cause__ or e  # the ONNX wrapper's own message is a generic header
            log.warning("torch.onnx.export(dynamo=True) failed (%s: %s); falling back to the TorchScript exporter "
                        "(dynamo=False)", type(cause).__name__, " ".join(str(cause).split())[:500])
    axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, str(path), dynamo=False, opset_version=opset, input_names=input_names,
                              output_names=output_names, dynamic_axes=axes, do_constant_folding=True)
    except Exception as e:  # noqa: BLE001
        hint = (" (the TorchScript exporter cannot take the critic ensemble's LayerNorm widths from traced "
                "shapes: export with dynamo=True, or without --with_critic)") if "critic" in str(e) else ""
        raise ExportError(f"the TorchScript exporter failed: {type(e).__name__}: "
                          f"{' '.join(str(e).split())[:300]}{hint}") from None
    return "torchscript"


def _write_metadata(path: Path, metadata: ActorMetadata) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in {**metadata.to_props(), integrity.CHECKSUM_KEY: integrity.PLACEHOLDER}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (f"chunkbot chunk actor ({metadata.policy_type}, h={metadata.chunk_size}, "
                        f"A={len(metadata.action_names)}, robot {metadata.robot_type}); inputs {list(metadata.inputs)}")
    onnx.checker.check_model(model)
    # < 2 GB: everything stays inside the one file, sealed with the SHA-256 of its bytes
    path.write_bytes(integrity.seal(model.SerializeToString()))


def export_policy(policy_path: str | Path, output: str | Path, *, with_critic: bool = False,
                  robot_type: str | None = None, state_names: tuple[str, ...] | list[str] | None = None,
                  dataset_repo_id: str | None = None, dataset_root: str | Path | None = None,
                  opset: int = 20, dynamo: bool = True, fuse_image_normalisation: bool = True,
                  check: bool = True, tolerance: float = PARITY_TOLERANCE, num_random: int = 64,
                  num_dataset: int = 64, seed: int = 0) -> ExportResult:
    """Export the deterministic chunk actor (and optionally the critic's value of its chunk) of the
    policy at `policy_path` to the single file `output`; parity-checked unless check=False."""
    torch.manual_seed(seed)
    pretrained, checkpoint = resolve_checkpoint(policy_path)
    policy = load_policy(pretrained)
    cfg = policy.config
    critic = None
    if with_critic:
        if checkpoint is None:
            raise FileNotFoundError(f"--with_critic needs a training checkpoint (with training_state/), and "
                                    f"{policy_path} resolves to the bare policy {pretrained}")
        critic = load_critic(policy, checkpoint)
    inferred_type, inferred_names = (None, None) if robot_type and state_names else infer_robot(pretrained)
    if state_names is None and dataset_repo_id is not None:
        state_names = _dataset_state_names(dataset_repo_id, dataset_root)
    specs = _specs(policy, tuple(state_names) if state_names is not None else inferred_names)
    graph = ChunkActorGraph(policy, critic, fuse_images=fuse_image_normalisation).eval()
    fused = any(type(graph.policy.encoder.cameras[c]).__name__ == "NormalisationFusedImageEncoder"
                for c in graph.camera_names)
    example = random_inputs(policy, EXPORT_BATCH, seed)
    metadata = ActorMetadata(
        chunk_size=int(cfg.chunk_size), fps=float(cfg.fps), action_names=tuple(cfg.action_names),
        observations=specs, history_length=int(cfg.obs_history_length),
        robot_type=robot_type or inferred_type, policy_type=getattr(policy, "name", type(policy).__name__),
        policy_config=cfg.to_dict(), training_step=training_step(pretrained, checkpoint),
        critic=critic_description(policy) if critic is not None else None,
    )
    input_names, output_names = list(metadata.inputs), list(metadata.outputs)
    args = tuple(torch.from_numpy(example[name]) for name in input_names)

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        method = _torch_to_onnx(graph, args, input_names, output_names, tmp, opset, dynamo)
        metadata.exporter = {"name": "chunkbot.export", "version": EXPORTER_VERSION, "method": method,
                             "opset": opset, "torch": torch.__version__,
                             "fused_image_normalisation": fused,
                             "source": str(pretrained.resolve()),
                             "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        _write_metadata(tmp, metadata)
        parity = None
        if check:
            parity = check_parity(policy, tmp, dataset_repo_id=dataset_repo_id, dataset_root=dataset_root,
                                  num_random=num_random, num_dataset=num_dataset, tolerance=tolerance,
                                  seed=seed + 1, critic=critic)
            metadata.parity = parity.to_json()
            _write_metadata(tmp, metadata)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s (%s, %.1f kB)", output, method, output.stat().st_size / 1e3)
    return ExportResult(output, metadata, parity, method)


def _dataset_state_names(repo_id: str, root: str | Path | None) -> tuple[str, ...] | None:
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    names = LeRobotDatasetMetadata(repo_id, root=root).features.get(STATE_KEY, {}).get("names")
    if isinstance(names, dict):  # LeRobot sometimes nests names as {"axes": [...]}
        names = next(iter(names.values()), None)
    return tuple(names) if names else None
