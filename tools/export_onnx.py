r"""Export a trained policy's chunk actor to ONNX, parity-checked against torch.

    python -m tools.export_onnx --policy.path=outputs/train/checkpoints/last --output=actor.onnx
    python -m tools.export_onnx --policy.path=outputs/train --output=actor.onnx --with_critic=true \
        --dataset.repo_id=local/so101_lift --dataset.root=outputs/datasets/so101_lift
    python -m tools.export_onnx --policy.path=outputs/train --output=actor.onnx --check_only=true

One self-contained file: observation normalisation, observation history, image preprocessing and
action un-normalisation are inside the graph, so the robot feeds raw observations and gets raw joint
targets (`export.OnnxChunkPolicy`, no torch). After every export torch and onnxruntime are compared
on random (and dataset) observations; above the tolerance nothing is written and the exit code is 1.
Dashes in option names are accepted and the flags may stand alone (--check-only = --check_only=true).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tools._common import fail, init_tool, parse_config

log = logging.getLogger("tools.export_onnx")


@dataclass
class PolicyRef:
    # A tools.train output dir, a checkpoint dir (.../checkpoints/<step> or last) or a pretrained_model dir.
    path: Path | None = None


@dataclass
class DatasetRef:
    # LeRobotDataset to draw parity-check observations from (optional; random observations are always used).
    repo_id: str | None = None
    # Local root of that dataset.
    root: Path | None = None
    # Frames drawn from it, evenly spread.
    num_frames: int = 64


@dataclass
class ExportOnnxConfig:
    """Export a chunkbot policy's deterministic chunk actor to one ONNX file (parity-checked against torch)."""

    policy: PolicyRef = field(default_factory=PolicyRef)
    # The .onnx file to write (one self-contained file, weights inside).
    output: Path = Path("actor.onnx")
    # Also export the critic: extra outputs chunk_q_values (B, K) and chunk_value (B,) for each predicted chunk
    # (needs a training checkpoint, with training_state/).
    with_critic: bool = False
    # Only compare an existing --output file against the policy (nothing is written).
    check_only: bool = False
    dataset: DatasetRef = field(default_factory=DatasetRef)
    # Robot type to record (e.g. so101_follower); default: inferred from the training env (sim_so101, ...).
    robot_type: str | None = None
    # ONNX opset.
    opset: int = 20
    # torch.onnx.export(dynamo=True) (falls back to the TorchScript exporter if it fails; false forces that).
    dynamo: bool = True
    # Fold the image scaling (x / 255 - 0.5) into the first convolution.
    fuse_image_normalisation: bool = True
    # Largest accepted |torch - onnxruntime| on the chunk, in normalised action units [-1, 1].
    tolerance: float = 1e-4
    # Random observations for the parity check.
    num_random: int = 64
    # Seed of the random observations of the parity check.
    seed: int = 0


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_config(ExportOnnxConfig, argv, tool="export_onnx", doc=__doc__)
    if cfg.policy.path is None:
        fail("--policy.path is required (a tools.train output dir, a checkpoint or a pretrained_model dir)")
    if not Path(cfg.policy.path).exists():
        fail(f"--policy.path={cfg.policy.path} does not exist: give a tools.train output dir, a checkpoint or a "
             "pretrained_model dir")
    if cfg.check_only and not cfg.output.is_file():
        fail(f"--check_only=true compares an existing --output file, and {cfg.output} does not exist")
    log.info("%s %s %s %s", "checking" if cfg.check_only else "exporting", cfg.policy.path,
             "against" if cfg.check_only else "to", cfg.output)

    from export.exporter import ExportError, ParityError, check_parity, export_policy  # torch: only now

    dataset = dict(dataset_repo_id=cfg.dataset.repo_id, dataset_root=cfg.dataset.root)
    try:
        if cfg.check_only:
            report = check_parity(cfg.policy.path, cfg.output, num_random=cfg.num_random,
                                  num_dataset=cfg.dataset.num_frames, tolerance=cfg.tolerance, seed=cfg.seed,
                                  raise_on_failure=False, **dataset)
            print(json.dumps({"output": str(cfg.output), "parity": report.to_json()}, indent=2))
            if not report.passed:
                fail(f"{cfg.output} fails the parity check: {report.summary()}", code=1)
            return
        result = export_policy(cfg.policy.path, cfg.output, with_critic=cfg.with_critic, robot_type=cfg.robot_type,
                               opset=cfg.opset, dynamo=cfg.dynamo, fuse_image_normalisation=cfg.fuse_image_normalisation,
                               tolerance=cfg.tolerance, num_random=cfg.num_random,
                               num_dataset=cfg.dataset.num_frames, seed=cfg.seed, **dataset)
    except (ParityError, ExportError) as e:
        fail(str(e), code=1)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    print(json.dumps({"output": str(result.path), "method": result.method,
                      "parity": result.parity.to_json() if result.parity else None,
                      "metadata": result.metadata.describe()}, indent=2, default=str))


if __name__ == "__main__":
    main()
