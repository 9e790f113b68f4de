"""Checkpoints in LeRobot's layout, written atomically.

    <output_dir>/checkpoints/<step:09d>/pretrained_model/{config.json, model.safetensors, train_config.json}
                                       /training_state/{learner.safetensors, optimizers.pt,
                                                        training_step.json, <name>_buffer.npz}
    <output_dir>/checkpoints/last -> <step:09d>      (symlink, as LeRobot)

A checkpoint is assembled in a hidden temp folder beside its final place and renamed into it,
then `last` is repointed with an atomic symlink replace: a crash leaves either the previous
checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer

CHECKPOINTS = "checkpoints"
LAST = "last"
PRETRAINED = "pretrained_model"
TRAINING_STATE = "training_state"


def save_checkpoint(output_dir: str | Path, step: int, policy: QChunkSACPolicy, learner: QChunkSACLearner,
                    buffers: dict[str, ChunkReplayBuffer] | None = None, extra: dict[str, Any] | None = None,
                    train_config: dict[str, Any] | None = None) -> Path:
    """Write checkpoint `step`; returns its folder. `extra` (JSON) and RNG states go to training_step.json
    / rng_state.pt."""
    root = Path(output_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"{step:09d}"
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(tmp / PRETRAINED)
    if train_config is not None:
        (tmp / PRETRAINED / "train_config.json").write_text(json.dumps(train_config, indent=2))
    state_dir = tmp / TRAINING_STATE
    state_dir.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in learner.training_state().items()},
              str(state_dir / "learner.safetensors"))
    torch.save({k: opt.state_dict() for k, opt in learner.optimizers.items()}, state_dir / "optimizers.pt")
    torch.save({"torch": torch.get_rng_state(),
                "learner_generator": learner.generator.get_state() if learner.generator is not None else None},
               state_dir / "rng_state.pt")
    for buf_name, buf in (buffers or {}).items():
        buf.save(state_dir / f"{buf_name}_buffer.npz")
    (state_dir / "training_step.json").write_text(json.dumps({"step": step, **(extra or {})}, indent=2))
    # a checkpoint of the same step is replaced by two renames, and deleted only after: a kill at any
    # point leaves `last` pointing at a complete checkpoint (or, between the renames, at none for an instant)
    old = root / f".old-{name}-{os.getpid()}"
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    link_tmp = root / f".tmp-last-{os.getpid()}"
    link_tmp.unlink(missing_ok=True)
    os.symlink(name, link_tmp)
    os.replace(link_tmp, root / LAST)
    return final


def last_checkpoint(output_dir: str | Path) -> Path | None:
    last = Path(output_dir) / CHECKPOINTS / LAST
    return last.resolve() if last.exists() else None


def load_checkpoint(checkpoint: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[QChunkSACPolicy, QChunkSACLearner, dict[str, ChunkReplayBuffer], dict[str, Any]]:
    """Policy, learner (critics, targets, temperature, optimiser state), buffers and the extra state."""
    checkpoint = Path(checkpoint)
    state_dir = checkpoint / TRAINING_STATE
    if not state_dir.is_dir():
        raise FileNotFoundError(f"{checkpoint} has no {TRAINING_STATE}/ folder; is it a training checkpoint?")
    policy = QChunkSACPolicy.from_pretrained(checkpoint / PRETRAINED, device).train()
    rng = torch.load(state_dir / "rng_state.pt", weights_only=False)
    generator = None
    if rng["learner_generator"] is not None:
        generator = torch.Generator(device=device)
        generator.set_state(rng["learner_generator"])
    learner = QChunkSACLearner(policy, generator).to(device)
    learner.load_training_state(load_file(str(state_dir / "learner.safetensors")))
    opt_states = torch.load(state_dir / "optimizers.pt", weights_only=False)
    for k, opt in learner.optimizers.items():
        opt.load_state_dict(opt_states[k])
    torch.set_rng_state(rng["torch"])
    buffers = {p.name[: -len("_buffer.npz")]: ChunkReplayBuffer.load(p) for p in state_dir.glob("*_buffer.npz")}
    extra = json.loads((state_dir / "training_step.json").read_text())
    return policy, learner, buffers, extra
