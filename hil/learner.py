"""The learner side of a human-in-the-loop session: episodes in, QC-SAC updates, weights out.

Each finished (or interrupted) episode arrives as one batch of arrays (`hil.batch`, checked in
full before any buffer is touched, so the in-process and the networked learner run the same code):

* every step goes to the online buffer (policy and human steps alike: they all happened);
* every run of human steps (a takeover) also goes to the demo buffer as its own short episode,
  ending where the person handed back (a time-limit style end: the critic bootstraps from the
  observation after the takeover), so each batch is half demos, half online (RLPD, the learner's
  `offline_ratio`) and takeovers weigh as much as the whole online stream.

The normaliser is fitted once, on the first `learning_starts` steps (the first episodes, driven by
the person while the actor has no weights yet), and fixed afterwards: moving it later would shift
every input under the critic. Weights are published (version 1, 2, ...) only after that, so an
actor never runs an unnormalised network.

An update whose losses are not finite stops the learning (`diverged` says why, an error is
logged): nothing is published after it, the last good weights stay out, and no checkpoint is
written over the last good one. Batches keep arriving and are kept (the link's journal holds
them until a checkpoint does), so a fix and `--resume` from that checkpoint loses nothing.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hil.batch import EpisodeBatch, check_episode
from hil.weights import policy_to_bytes
from link import BatchRejected
from policy.checkpoint import last_checkpoint, load_newest_checkpoint, save_checkpoint
from policy.config import QChunkSACConfig
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer, MixedSampler

log = logging.getLogger(__name__)


@dataclass
class HILLearnerConfig:
    online_capacity: int = 200_000
    demo_capacity: int = 100_000
    learning_starts: int = 300          # env steps received before the normaliser is fitted and updates start
    # Updates on the first data (the person's demonstrations) before the first weights go out, so
    # the policy's first episodes start from a fitted policy instead of a random network.
    initial_updates: int = 1000
    updates_per_step: float = 1.0       # learner steps per env step received (each = utd_ratio updates)
    publish_every: int = 100            # updates between weight versions
    log_every: int = 100                # updates between lines of metrics.jsonl (0: none)
    seed: int = 0
    device: str = "cpu"


def intervention_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive True values."""
    f = np.concatenate([[False], np.asarray(flags, bool), [False]]).astype(np.int8)
    d = np.diff(f)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


class HILLearner:
    def __init__(self, policy_config: QChunkSACConfig, config: HILLearnerConfig | None = None) -> None:
        self.policy_config = policy_config
        self.config = config or HILLearnerConfig()
        self.policy: QChunkSACPolicy | None = None
        self.learner: QChunkSACLearner | None = None
        self.online: ChunkReplayBuffer | None = None
        self.demos: ChunkReplayBuffer | None = None
        self.features: dict[str, Any] | None = None
        self.env_steps = 0
        self.episodes = 0
        self.intervention_steps = 0
        self.normalizer_fitted = False
        self.version = 0
        self.diverged: str | None = None           # why learning stopped (a non-finite loss), None while healthy
        self._blob: bytes | None = None
        self._lock = threading.Lock()              # buffers: written by the receiver, read by updates
        self._updates_since_publish = 0
        self.last_metrics: dict[str, float] = {}
        self.metrics_path: Path | None = None      # where update metrics go (metrics.jsonl)

    # ------------------------------------------------------------------ building
    def _build(self, features: dict[str, Any]) -> None:
        cams = {k: tuple(v) for k, v in features["camera_shapes"].items()}
        pcfg = self.policy_config.with_features(features["state_dim"], features["action_names"], cams, features["fps"])
        torch.manual_seed(self.config.seed)
        self.policy = QChunkSACPolicy(pcfg).to(self.config.device)
        # the generator lives where the sampling happens (a CPU generator cannot drive CUDA randn)
        generator = torch.Generator(device=self.config.device).manual_seed(self.config.seed)
        self.learner = QChunkSACLearner(self.policy, generator).to(self.config.device)
        a = len(features["action_names"])
        self.online = ChunkReplayBuffer(self.config.online_capacity, features["state_dim"], a, pcfg.camera_shapes,
                                        seed=self.config.seed)
        self.demos = ChunkReplayBuffer(self.config.demo_capacity, features["state_dim"], a, pcfg.camera_shapes,
                                       seed=self.config.seed + 1, is_offline=True)
        self.features = features

    # ------------------------------------------------------------------ data in
    def add_episode(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
        """One episode (or the interrupted part of one) from the actor; returns its steps. Checked in
        full first (`hil.batch.check_episode`): a batch that fails changes nothing here."""
        episode, features = check_episode(meta, arrays, self.features)
        if self.features is None:
            try:
                self._build(features)
            except MemoryError:
                raise BatchRejected(f"buffers for cameras {features['camera_shapes']} do not fit in memory: "
                                    "lower --learner.online_capacity") from None
        with self._lock:
            self._store(episode)
        return len(episode)

    def _store(self, ep: EpisodeBatch) -> None:
        t, cams = len(ep), list(ep.images)
        self.online.add_episode(ep.states, ep.actions, ep.rewards, ep.terminated, ep.final_state, ep.images,
                                ep.final_images)
        for start, end in intervention_runs(ep.human):
            last = end == t
            nxt_state = ep.final_state if last else ep.states[end]
            nxt_images = ep.final_images if last else {c: ep.images[c][end] for c in cams}
            self.demos.add_episode(ep.states[start:end], ep.actions[start:end], ep.rewards[start:end],
                                   ep.terminated and last, nxt_state, {c: ep.images[c][start:end] for c in cams},
                                   nxt_images)
        self.env_steps += t
        self.episodes += 1
        self.intervention_steps += int(ep.human.sum())

    # ------------------------------------------------------------------ learning
    def updates_due(self) -> int:
        """Learner steps owed to the data received so far (0 before learning_starts). Each step runs
        utd_ratio updates, and every env step is owed updates_per_step of them: utd_ratio * updates_per_step
        updates per env step (the learner counts updates, so the debt is in updates, paid in whole steps)."""
        if self.learner is None or self.env_steps < self.config.learning_starts or self.diverged:
            return 0
        utd = max(1, int(self.policy_config.utd_ratio))
        owed = self.config.initial_updates + int((self.env_steps - self.config.learning_starts)
                                                 * self.config.updates_per_step * utd) + 1
        return max(0, math.ceil((owed - self.learner.step) / utd))

    def _fit_normalizer(self) -> None:
        with self._lock:
            states = np.concatenate([self.online.stored_states(), self.demos.stored_states()])
            # relative actions: the person's largest per-step motion (every step so far is theirs: the actor
            # has no weights before this), as tools.train takes it from its demos
            step = self.policy.relative_action_step(self.demos if len(self.demos) else self.online)
        self.policy.normalizer.fit(states, self.features["action_low"], self.features["action_high"], step)
        self.normalizer_fitted = True
        log.info("normaliser fitted on %d observations", len(states))

    def update(self) -> dict[str, float]:
        """One learner step: utd_ratio whole updates (critic, actor and temperature), each on its own batch."""
        if not self.normalizer_fitted:
            self._fit_normalizer()
        pcfg = self.policy.config
        sampler = MixedSampler(self.online, self.demos if len(self.demos) else None, pcfg.offline_ratio)
        with self._lock:
            batches = [sampler.sample(pcfg.batch_size, pcfg.chunk_size, pcfg.td_horizon, pcfg.discount,
                                      pcfg.obs_history_length).to(self.config.device)
                       for _ in range(pcfg.utd_ratio)]
        metrics = {k: float(v) for k, v in self.learner.update(batches).items()}
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if bad:
            self.diverged = (f"update {self.learner.step} gave non-finite {bad}: learning stopped, the last "
                             f"published weights (v{self.version}) stay out (lower the learning rates or check the rewards, "
                             "then --resume=true from the last checkpoint)")
            log.error("the learner diverged: %s", self.diverged)
            return metrics
        self.last_metrics = metrics
        self._updates_since_publish += 1
        if self.metrics_path is not None and self.config.log_every and self.learner.step % self.config.log_every == 0:
            line = {"update": self.learner.step, "env_steps": self.env_steps, "episodes": self.episodes,
                    "demo_steps": len(self.demos), **{k: round(v, 5) for k, v in self.last_metrics.items()}}
            with self.metrics_path.open("a") as f:
                f.write(json.dumps(line) + "\n")
        warm = self.learner.step >= self.config.initial_updates
        if warm and (self._blob is None or self._updates_since_publish >= self.config.publish_every):
            self.publish()
        return self.last_metrics

    def run_due_updates(self, limit: int | None = None) -> int:
        n = self.updates_due() if limit is None else min(limit, self.updates_due())
        for i in range(n):
            if self.diverged:
                return i
            self.update()
        return n

    def publish(self, above: int = 0) -> None:
        """Publish the current policy as the next version (above `above`: a version an actor already had)."""
        self.version = max(self.version, above) + 1
        self._blob = policy_to_bytes(self.policy, self.version)
        self._updates_since_publish = 0

    def weights(self) -> tuple[int, bytes] | None:
        """(version, safetensors bytes) of the latest published weights; None before the first."""
        blob = self._blob
        return None if blob is None else (self.version, blob)

    # ------------------------------------------------------------------ checkpoints
    def save(self, output_dir: str | Path, extra: dict[str, Any] | None = None) -> Path | None:
        if self.policy is None:
            return None
        if self.diverged:
            log.error("not checkpointing a diverged learner (the last good checkpoint stays): %s", self.diverged)
            return None
        with self._lock:
            state = {"env_steps": self.env_steps, "episodes": self.episodes, "version": self.version,
                     "intervention_steps": self.intervention_steps, "normalizer_fitted": self.normalizer_fitted,
                     "features": self.features, **(extra or {})}
            return save_checkpoint(output_dir, self.env_steps, self.policy, self.learner,
                                   {"online": self.online, "demos": self.demos}, state,
                                   {"policy": self.policy.config.to_dict()})

    @classmethod
    def resume(cls, output_dir: str | Path, config: HILLearnerConfig | None = None) -> tuple["HILLearner", dict[str, Any]]:
        """The learner of the last checkpoint in `output_dir` and that checkpoint's extra state."""
        if last_checkpoint(output_dir) is None:
            raise FileNotFoundError(f"--resume=true but {output_dir}/checkpoints/last does not exist")
        device = (config or HILLearnerConfig()).device
        ckpt, (policy, learner, buffers, extra) = load_newest_checkpoint(output_dir, device)
        self = cls(policy.config, config)
        self.policy, self.learner = policy, learner
        self.online, self.demos = buffers["online"], buffers["demos"]
        self.features = extra["features"]
        self.env_steps, self.episodes = int(extra["env_steps"]), int(extra["episodes"])
        self.version, self.intervention_steps = int(extra["version"]), int(extra["intervention_steps"])
        self.normalizer_fitted = bool(extra["normalizer_fitted"])
        if self.normalizer_fitted:
            self.publish()
        log.info("resumed the learner from %s: %d env steps, %d updates", ckpt, self.env_steps, learner.step)
        return self, extra
