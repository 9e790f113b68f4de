"""Checkpoints in LeRobot's layout, written atomically, checksummed, and resumed from the newest readable one.

    <output_dir>/checkpoints/<step:09d>/pretrained_model/{config.json, model.safetensors, train_config.json}
                                       /training_state/{learner.safetensors, optimizers.pt,
                                                        training_step.json, <name>_buffer.npz}
                                       /manifest.json   (sha256 of every file above; written last)
    <output_dir>/checkpoints/last -> <step:09d>      (symlink, as LeRobot)
    <output_dir>/checkpoints/best -> <step:09d>      (tools.train: the best-evaluated one)

A checkpoint is assembled in a hidden temp folder beside its final place, fsynced and renamed into
it, then `last` is repointed with an atomic symlink replace: a crash or a power cut leaves either
the previous checkpoint or the new one, never half of one. Damage after that (a truncated copy, a
bad disk) is caught on load by the manifest, and `load_newest_checkpoint` falls back to the newest
checkpoint that verifies and loads, saying in one line which one it skipped and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from policy.critic import CriticEnsemble
from policy.learner import QChunkSACLearner, critic_weights, make_critic
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
LAST = "last"
BEST = "best"      # the checkpoint with the highest evaluation success (tools.train)
PRETRAINED = "pretrained_model"
TRAINING_STATE = "training_state"
LEARNER_STATE = "learner.safetensors"   # in TRAINING_STATE: `QChunkSACLearner.training_state()`
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint that is damaged (checksum mismatch, missing or unreadable file) or absent: bad input,
    which the tools report in one line like any other ValueError."""


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
              str(state_dir / LEARNER_STATE))
    torch.save({k: opt.state_dict() for k, opt in learner.optimizers.items()}, state_dir / "optimizers.pt")
    torch.save({"torch": torch.get_rng_state(),
                "learner_generator": learner.generator.get_state() if learner.generator is not None else None},
               state_dir / "rng_state.pt")
    for buf_name, buf in (buffers or {}).items():
        buf.save(state_dir / f"{buf_name}_buffer.npz")
    (state_dir / "training_step.json").write_text(json.dumps({"step": step, **(extra or {})}, indent=2))
    _write_manifest(tmp)  # last, after every file it vouches for is on disk
    # a checkpoint of the same step is replaced by two renames, and deleted only after: a kill at any
    # point leaves `last` pointing at a complete checkpoint (or, between the renames, at none for an instant)
    old = root / f".old-{name}-{os.getpid()}"
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    point_link(root, LAST, name)
    return final


def point_link(root: Path, link: str, name: str) -> None:
    """Point `root/link` at the checkpoint folder `name` with an atomic symlink replace."""
    link_tmp = root / f".tmp-{link}-{os.getpid()}"
    link_tmp.unlink(missing_ok=True)
    os.symlink(name, link_tmp)
    os.replace(link_tmp, root / link)
    _fsync_dir(root)


def mark_best(output_dir: str | Path, step: int) -> Path:
    """Point `checkpoints/best` at checkpoint `step` (already written); returns its folder."""
    root = Path(output_dir) / CHECKPOINTS
    name = f"{step:09d}"
    if not (root / name).is_dir():
        raise CheckpointError(f"cannot mark checkpoint {name} as best: {root / name} does not exist")
    point_link(root, BEST, name)
    return root / name


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint `last` points at; the newest step folder when `last` is missing or dangling."""
    found = checkpoints_newest_first(output_dir)
    return found[0] if found else None


def checkpoints_newest_first(output_dir: str | Path) -> list[Path]:
    """Every checkpoint folder of a run: the one `last` points at first, then by step, newest first."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    steps = sorted((p for p in root.iterdir() if p.name.isdigit() and p.is_dir()), key=lambda p: int(p.name),
                   reverse=True)
    last = root / LAST
    first = [last.resolve()] if last.exists() else []
    return first + [p.resolve() for p in steps if p.resolve() not in first]


def load_newest_checkpoint(output_dir: str | Path, device: str | torch.device = "cpu"
                           ) -> tuple[Path, tuple[QChunkSACPolicy, QChunkSACLearner, dict[str, ChunkReplayBuffer],
                                                  dict[str, Any]]]:
    """(checkpoint, load_checkpoint(checkpoint)) of the newest checkpoint that verifies and loads.

    A damaged newer one is skipped with a one-line warning; none readable raises CheckpointError."""
    skipped: list[str] = []
    for checkpoint in checkpoints_newest_first(output_dir):
        try:
            loaded = load_checkpoint(checkpoint, device)
        except (CheckpointError, FileNotFoundError) as e:
            skipped.append(str(e))
            continue
        if skipped:
            log.warning("skipped damaged checkpoint(s) %s; resuming from %s, the newest readable one",
                        "; ".join(skipped), checkpoint)
        return checkpoint, loaded
    if not skipped:
        raise CheckpointError(f"no checkpoint in {Path(output_dir) / CHECKPOINTS}")
    raise CheckpointError(f"no readable checkpoint in {Path(output_dir) / CHECKPOINTS} ({'; '.join(skipped)}); "
                          "restore a copy of the run, or start a new --output_dir")


def verify_checkpoint(checkpoint: str | Path) -> None:
    """Check every file of a checkpoint against its manifest; CheckpointError names the first bad one."""
    checkpoint = Path(checkpoint)
    try:
        manifest = json.loads((checkpoint / MANIFEST).read_text())["sha256"]
    except FileNotFoundError:
        log.warning("%s has no %s (written by an older chunkbot): its files cannot be verified", checkpoint, MANIFEST)
        return
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{checkpoint}: {MANIFEST} is unreadable ({type(e).__name__})") from None
    for rel, digest in manifest.items():
        path = checkpoint / rel
        if not path.is_file():
            raise CheckpointError(f"{checkpoint}: {rel} is missing")
        if _sha256(path) != digest:
            raise CheckpointError(f"{checkpoint}: {rel} does not match its checksum (changed or truncated after "
                                  "it was written)")


def load_checkpoint(checkpoint: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[QChunkSACPolicy, QChunkSACLearner, dict[str, ChunkReplayBuffer], dict[str, Any]]:
    """Policy, learner (critics, targets, temperature, optimiser state), buffers and the extra state.

    The files are verified against the checkpoint's manifest first; a damaged checkpoint raises
    CheckpointError (`load_newest_checkpoint` then falls back to an older one)."""
    checkpoint = Path(checkpoint)
    state_dir = checkpoint / TRAINING_STATE
    if not state_dir.is_dir():
        raise FileNotFoundError(f"{checkpoint} has no {TRAINING_STATE}/ folder; is it a training checkpoint?")
    verify_checkpoint(checkpoint)
    try:
        return _load(checkpoint, state_dir, device)
    except Exception as e:  # noqa: BLE001 - safetensors, torch.load, json and numpy raise their own types
        reason = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{checkpoint} cannot be loaded ({type(e).__name__}: {reason})") from e


def learner_state_path(checkpoint: str | Path) -> Path:
    """Where a training checkpoint keeps the learner's tensors (critics, targets, temperature, step)."""
    return Path(checkpoint) / TRAINING_STATE / LEARNER_STATE


def load_critic(policy: QChunkSACPolicy, checkpoint: str | Path) -> CriticEnsemble:
    """The online critic ensemble of a training checkpoint, in eval mode, without building the learner
    (its optimisers, buffers and RNG state): what the export's chunk value and tools.visualize_chunks score
    chunks with. The checkpoint's manifest is not checked here; `export.exporter.resolve_checkpoint` does."""
    path = learner_state_path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"the critic lives in the learner state {path}, which is missing; point at a "
                                "training checkpoint (<output_dir>/checkpoints/<step>), not a bare pretrained_model")
    critic = make_critic(policy)
    critic.load_state_dict(critic_weights(load_file(str(path))))
    return critic.eval()


def _load(checkpoint: Path, state_dir: Path, device: str | torch.device
          ) -> tuple[QChunkSACPolicy, QChunkSACLearner, dict[str, ChunkReplayBuffer], dict[str, Any]]:
    policy = QChunkSACPolicy.from_pretrained(checkpoint / PRETRAINED, device).train()
    rng = torch.load(state_dir / "rng_state.pt", weights_only=False)
    generator = None
    if rng["learner_generator"] is not None:
        generator = torch.Generator(device=device)
        generator.set_state(rng["learner_generator"])
    learner = QChunkSACLearner(policy, generator).to(device)
    learner.load_training_state(load_file(str(state_dir / LEARNER_STATE)))
    opt_states = torch.load(state_dir / "optimizers.pt", weights_only=False)
    for k, opt in learner.optimizers.items():
        opt.load_state_dict(opt_states[k])
    torch.set_rng_state(rng["torch"])
    buffers = {p.name[: -len("_buffer.npz")]: ChunkReplayBuffer.load(p) for p in state_dir.glob("*_buffer.npz")}
    extra = json.loads((state_dir / "training_step.json").read_text())
    return policy, learner, buffers, extra


def _write_manifest(checkpoint: Path) -> None:
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file())
    digests = {}
    for path in files:
        digests[path.relative_to(checkpoint).as_posix()] = _sha256(path)
        _fsync(path)
    manifest = checkpoint / MANIFEST
    manifest.write_text(json.dumps({"sha256": digests}, indent=1))
    _fsync(manifest)
    for directory in {p.parent for p in files} | {checkpoint}:
        _fsync_dir(directory)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:  # not every filesystem can fsync a directory; the renames stay atomic
        pass
    finally:
        os.close(fd)
