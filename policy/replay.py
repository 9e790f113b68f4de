"""Chunk replay: frames stored once, sampled as windows of h steps with discounted chunk returns.

Storage (a ring of `capacity` slots): slot j holds one observation (state, uint8 images) and, for a
step the agent acted on, the action a_j, reward r_j and whether the episode ended after it
(`terminated` = the task reached an absorbing state, `truncated` = time limit). The observation
after an episode's last action gets one extra slot with `has_action=False`, so no next observation
is ever duplicated: per stored image frame the ring costs exactly H*W*3 bytes, plus 1/T for an
episode of T steps.

Sampling a window at slot i for chunk length h and TD horizon n (n = h for the paper's chunked
critic, the seed's n-step horizon for the first-action critic). With e the first step k < W at
which the episode ends (W = max(h, n); e = W - 1 if none) and n_eff = min(n, e + 1):

    discounted_return   R = sum_{k < n_eff} g^k r_{i+k}
    bootstrap_discount  g^{n_eff} if no termination within the first n_eff steps, else 0
    next_state          s_{i+n_eff}       (the stored observation after the last summed step)
    actions             a_{i..i+h-1}, steps after the episode end padded with the last real action
    action_is_real      (h,) mask of the real actions
    truncated_early     a time limit ended the episode before the chunk's last action (k < h - 1)

How this differs from the official QC code (`sample_sequence`), on purpose:
* a chunk cut by a *termination* stays valid for the critic: after an absorbing state nothing the
  agent does changes the return, so Q(s, a_{0:h}) = R for any padding. The official code drops
  these (valid = 0), which throws away the chunks that carry a sparse task's success reward.
* a chunk cut by a *time limit* cannot be scored by the chunked critic (its remaining actions
  never happened): the learner drops it from the critic loss (`truncated_early`), like the
  official code. The first-action critic keeps it and bootstraps at the truncation step,
  R + g^{e+1} V(s_{i+e+1}), which is exact n-step TD with a shorter n.
* rewards of the next episode never leak into R (the official code sums across the boundary and
  relies on the mask).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."


@dataclass
class ChunkBatch:
    """A batch of chunk windows (torch tensors, images uint8)."""

    state: torch.Tensor                     # (B, L, D) observation history ending at s_t
    images: dict[str, torch.Tensor]         # cam -> (B, H, W, 3) uint8, at s_t
    actions: torch.Tensor                   # (B, h, A) in robot units
    action_is_real: torch.Tensor            # (B, h) float
    discounted_return: torch.Tensor         # (B,)
    bootstrap_discount: torch.Tensor        # (B,) g^n_eff * (1 - terminated)
    truncated_early: torch.Tensor           # (B,) bool
    next_state: torch.Tensor                # (B, L, D) history ending at s_{t+n_eff}
    next_images: dict[str, torch.Tensor]
    n_step_used: torch.Tensor               # (B,) n_eff (for the seed's metric)
    is_offline: torch.Tensor                # (B,) bool: drawn from the offline (demo) data

    def to(self, device: torch.device | str) -> "ChunkBatch":
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return ChunkBatch(**{k: ({c: move(v) for c, v in x.items()} if isinstance(x, dict) else move(x))
                             for k, x in self.__dict__.items()})

    @staticmethod
    def concat(a: "ChunkBatch", b: "ChunkBatch") -> "ChunkBatch":
        out = {}
        for k, x in a.__dict__.items():
            y = getattr(b, k)
            out[k] = {c: torch.cat([x[c], y[c]]) for c in x} if isinstance(x, dict) else torch.cat([x, y])
        return ChunkBatch(**out)


class ChunkReplayBuffer:
    """Ring buffer of frames; `sample()` returns `ChunkBatch` windows (see module docstring)."""

    def __init__(self, capacity: int, state_dim: int, action_dim: int,
                 camera_shapes: dict[str, tuple[int, int, int]] | None = None, seed: int = 0,
                 is_offline: bool = False) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = int(capacity)
        self.state_dim, self.action_dim = int(state_dim), int(action_dim)
        self.camera_shapes = {k: tuple(int(x) for x in v) for k, v in (camera_shapes or {}).items()}
        self.is_offline = is_offline
        self.rng = np.random.default_rng(seed)
        c = self.capacity
        self.state = np.zeros((c, self.state_dim), np.float32)
        self.images = {k: np.zeros((c, *s), np.uint8) for k, s in self.camera_shapes.items()}
        self.action = np.zeros((c, self.action_dim), np.float32)
        self.reward = np.zeros(c, np.float32)
        self.terminated = np.zeros(c, bool)
        self.truncated = np.zeros(c, bool)
        self.has_action = np.zeros(c, bool)
        self.episode_id = np.full(c, -1, np.int64)
        self.step_in_episode = np.zeros(c, np.int64)
        self.cursor = 0          # next slot to write
        self.size = 0            # slots written (<= capacity)
        self.num_episodes = 0    # episodes started (ids are 0..num_episodes-1)
        self._open_episode = False
        self._step = 0

    # ------------------------------------------------------------------ writing
    def _write(self, state: np.ndarray, images: dict[str, np.ndarray], action: np.ndarray | None,
               reward: float, terminated: bool, truncated: bool) -> None:
        j = self.cursor
        self.state[j] = state
        for k in self.camera_shapes:
            self.images[k][j] = images[k]
        self.has_action[j] = action is not None
        self.action[j] = 0.0 if action is None else action
        self.reward[j] = reward
        self.terminated[j] = terminated
        self.truncated[j] = truncated
        self.episode_id[j] = self.num_episodes - 1
        self.step_in_episode[j] = self._step
        self.cursor = (j + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._step += 1

    def add(self, observation: dict[str, np.ndarray], action: np.ndarray, reward: float,
            terminated: bool, truncated: bool, next_observation: dict[str, np.ndarray] | None = None) -> None:
        """One env step (policy frames: `observation.state`, `observation.images.<cam>`).

        `next_observation` is stored only when the episode ends here (it is the next call's
        `observation` otherwise); it is required then.
        """
        if not self._open_episode:
            self.num_episodes += 1
            self._open_episode, self._step = True, 0
        self._write(*self._split(observation), np.asarray(action, np.float32), float(reward),
                    bool(terminated), bool(truncated) and not terminated)
        if terminated or truncated:
            if next_observation is None:
                raise ValueError("the episode ended: pass next_observation (the observation after the last "
                                 "action) so the buffer can bootstrap from it")
            self._write(*self._split(next_observation), None, 0.0, False, False)
            self._open_episode = False

    def add_episode(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: bool,
                    final_state: np.ndarray, images: dict[str, np.ndarray] | None = None,
                    final_images: dict[str, np.ndarray] | None = None) -> None:
        """A whole episode of T steps: states/images (T, ...), actions (T, A), rewards (T,) and the
        observation after the last action. `terminated` says how it ended (else: time limit)."""
        images, final_images = images or {}, final_images or {}
        t = len(actions)
        if t == 0:
            return
        if self._open_episode:
            raise RuntimeError("add_episode() while an online episode is still open")
        self.num_episodes += 1
        self._open_episode, self._step = True, 0
        for i in range(t):
            last = i == t - 1
            self._write(states[i], {k: v[i] for k, v in images.items()}, actions[i], float(rewards[i]),
                        last and terminated, last and not terminated)
        self._write(final_state, final_images, None, 0.0, False, False)
        self._open_episode = False

    def close_open_episode(self) -> None:
        """End an episode that stopped without its final observation (a run resumed from a
        checkpoint): its last stored frame becomes the final observation and the step before it a
        time-limit end, so no window ever joins it to the next episode."""
        if not self._open_episode:
            return
        last = (self.cursor - 1) % self.capacity
        self.has_action[last], self.reward[last] = False, 0.0
        self.terminated[last] = self.truncated[last] = False
        prev = (last - 1) % self.capacity
        if self.episode_id[prev] == self.episode_id[last] and self.has_action[prev]:
            self.truncated[prev] = True
        self._open_episode = False

    def _split(self, frame: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return (np.asarray(frame[STATE_KEY], np.float32),
                {k: np.asarray(frame[IMAGE_PREFIX + k], np.uint8) for k in self.camera_shapes})

    def __len__(self) -> int:
        """Stored steps the agent acted on."""
        return int(self.has_action[: self.size].sum()) if self.size < self.capacity else int(self.has_action.sum())

    @property
    def image_bytes_per_frame(self) -> int:
        return int(sum(a.nbytes for a in self.images.values()) // self.capacity)

    # ------------------------------------------------------------------ sampling
    def _history(self, idx: np.ndarray, length: int) -> np.ndarray:
        """(B, L) slots s_{t-L+1..t}; before the episode start (or an overwritten slot) repeat the
        earliest frame available."""
        out = np.empty((len(idx), length), np.int64)
        out[:, -1] = idx
        for k in range(1, length):
            prev = (out[:, -k] - 1) % self.capacity
            same = (self.episode_id[prev] == self.episode_id[idx]) & (
                self.step_in_episode[prev] == self.step_in_episode[out[:, -k]] - 1) & (
                self.step_in_episode[out[:, -k]] > 0)
            out[:, -k - 1] = np.where(same, prev, out[:, -k])
        return out

    def sample(self, batch_size: int, chunk_size: int, horizon: int, discount: float,
               history: int = 1) -> ChunkBatch:
        """`batch_size` windows, uniform over valid start slots (see the module docstring)."""
        if len(self) == 0:
            raise RuntimeError("sample() from an empty replay buffer")
        width = max(chunk_size, horizon)
        starts = np.empty(0, np.int64)
        for _ in range(100):  # rejection sampling: only windows whose slots are all present are valid
            cand = self.rng.integers(0, self.size, size=max(2 * batch_size, 64))
            starts = np.concatenate([starts, cand[self._valid_starts(cand, width)]])
            if len(starts) >= batch_size:
                break
        if len(starts) < batch_size:
            raise RuntimeError("no complete chunk window in the replay buffer yet; add more steps")
        return self.gather(starts[:batch_size], chunk_size, horizon, discount, history)

    def _valid_starts(self, start: np.ndarray, width: int) -> np.ndarray:
        """A start is valid when it is an acted step and the window's slots up to the episode end (or
        up to the bootstrap observation) are this episode's following steps."""
        ok = self.has_action[start]  # fancy indexing: already a copy
        alive = ok.copy()          # still inside the episode before step k
        for k in range(1, width + 1):
            j = (start + k) % self.capacity
            prev = (start + k - 1) % self.capacity
            # step k-1 happened, so slot k (the next step, or the final observation when step k-1
            # ended the episode) must be this episode's and already written
            cont = ((self.episode_id[j] == self.episode_id[start])
                    & (self.step_in_episode[j] == self.step_in_episode[start] + k))
            ok &= ~alive | cont
            alive &= ~(self.terminated[prev] | self.truncated[prev])
        return ok

    def gather(self, start: np.ndarray, h: int, n: int, discount: float, history: int = 1) -> ChunkBatch:
        """Windows at the given start slots (`sample()` picks them; tests name them)."""
        b, width = len(start), max(h, n)
        steps = (start[:, None] + np.arange(width)[None]) % self.capacity            # (B, W)
        ended = self.terminated[steps] | self.truncated[steps]
        # real[k]: step k happened in this episode (no end strictly before it)
        before_end = np.concatenate([np.zeros((b, 1), bool), np.cumsum(ended, 1)[:, :-1] > 0], 1)
        real = ~before_end
        end_step = np.where(ended.any(1), ended.argmax(1), width - 1)                 # e
        n_eff = np.minimum(n, end_step + 1)
        k = np.arange(width)[None]
        summed = real & (k < n_eff[:, None])
        disc = discount ** k.astype(np.float64)
        ret = (self.reward[steps] * summed * disc).sum(1)
        terminated_in = (self.terminated[steps] & summed).any(1)
        boot = np.where(terminated_in, 0.0, discount ** n_eff.astype(np.float64))
        trunc_early = (self.truncated[steps] & real & (k < h - 1)).any(1)
        # actions: pad steps after the end with the last real action
        last_real = np.minimum(np.arange(h)[None], end_step[:, None])
        act_slots = np.take_along_axis(steps[:, :h], last_real, 1)
        next_slot = (start + n_eff) % self.capacity
        hist, next_hist = self._history(start, history), self._history(next_slot, history)
        t = torch.from_numpy
        return ChunkBatch(
            state=t(self.state[hist]),
            images={c: t(self.images[c][start]) for c in self.camera_shapes},
            actions=t(self.action[act_slots]),
            action_is_real=t(real[:, :h].astype(np.float32)),
            discounted_return=t(ret.astype(np.float32)),
            bootstrap_discount=t(boot.astype(np.float32)),
            truncated_early=t(trunc_early),
            next_state=t(self.state[next_hist]),
            next_images={c: t(self.images[c][next_slot]) for c in self.camera_shapes},
            n_step_used=t(n_eff.astype(np.float32)),
            is_offline=torch.full((b,), self.is_offline),
        )

    # ------------------------------------------------------------------ persistence
    _ARRAYS = ("state", "action", "reward", "terminated", "truncated", "has_action", "episode_id",
               "step_in_episode")

    def save(self, path: str | Path) -> None:
        """Atomic: write beside the target, then rename over it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        arrays.update({f"image::{k}": v for k, v in self.images.items()})
        meta = {"capacity": self.capacity, "state_dim": self.state_dim, "action_dim": self.action_dim,
                "camera_shapes": self.camera_shapes, "cursor": self.cursor, "size": self.size,
                "num_episodes": self.num_episodes, "open_episode": self._open_episode, "step": self._step,
                "is_offline": self.is_offline}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        arrays["rng"] = np.frombuffer(json.dumps(self.rng.bit_generator.state).encode(), np.uint8)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> "ChunkReplayBuffer":
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes())
            buf = cls(meta["capacity"], meta["state_dim"], meta["action_dim"],
                      {k: tuple(v) for k, v in meta["camera_shapes"].items()}, is_offline=meta["is_offline"])
            for name in cls._ARRAYS:
                setattr(buf, name, z[name])  # np.load hands back fresh, writable arrays
            for k in buf.camera_shapes:
                buf.images[k] = z[f"image::{k}"]
            buf.rng.bit_generator.state = json.loads(z["rng"].tobytes())
        buf.cursor, buf.size, buf.num_episodes = meta["cursor"], meta["size"], meta["num_episodes"]
        buf._open_episode, buf._step = meta["open_episode"], meta["step"]
        return buf


def offline_buffer_from_dataset(dataset: Any, camera_keys: list[str] | None = None,
                                capacity: int | None = None, seed: int = 0) -> ChunkReplayBuffer:
    """Load a LeRobotDataset (features of `robot.features.dataset_features`) into a buffer.

    A dataset frame holds (s_t, a_t, r_t, done_t) but not the observation after an episode's last
    action. An episode that terminated needs none (its bootstrap is masked). One that ended on time
    gives up its last action: its last state becomes the final observation, so the buffer can
    bootstrap from it.
    """
    camera_keys = list(camera_keys or [])
    numeric = [STATE_KEY, "action", "next.reward", "next.done", "episode_index", "frame_index"]
    hf = dataset.hf_dataset
    cols = hf.select_columns(numeric).with_format("numpy")[:]
    states = np.asarray(cols[STATE_KEY], np.float32)
    actions = np.asarray(cols["action"], np.float32)
    rewards = np.asarray(cols["next.reward"], np.float32).reshape(-1)
    done = np.asarray(cols["next.done"], bool).reshape(-1)
    episodes = np.asarray(cols["episode_index"]).reshape(-1)
    frames = np.asarray(cols["frame_index"]).reshape(-1)
    cams: dict[str, tuple[int, int, int]] = {}
    images: dict[str, np.ndarray] = {}
    for cam in camera_keys:
        key = IMAGE_PREFIX + cam
        if key in hf.column_names:  # stored as images: read the column without decoding video
            column = hf.select_columns([key]).with_format("numpy")[:][key]
            imgs = np.stack([_to_hwc_uint8(x) for x in column])
        else:                       # stored as video: decode frame by frame
            imgs = np.stack([_to_hwc_uint8(dataset[i][key]) for i in range(len(dataset))])
        images[cam], cams[cam] = imgs, tuple(imgs.shape[1:])
    buf = ChunkReplayBuffer(capacity or len(states) + len(np.unique(episodes)) + 1, states.shape[1],
                            actions.shape[1], cams, seed=seed, is_offline=True)
    for ep in np.unique(episodes):
        rows = np.flatnonzero(episodes == ep)
        rows = rows[np.argsort(frames[rows])]
        term = bool(done[rows[-1]])
        acted = rows if term else rows[:-1]
        final = rows[-1]
        if len(acted) == 0:
            continue
        buf.add_episode(states[acted], actions[acted], rewards[acted], term, states[final],
                        {c: images[c][acted] for c in camera_keys}, {c: images[c][final] for c in camera_keys})
    return buf


def _to_hwc_uint8(img: Any) -> np.ndarray:
    """LeRobot returns images as float CHW in [0, 1]; the buffer keeps HWC uint8."""
    a = img.numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    return a


class MixedSampler:
    """RLPD batches: `offline_ratio` of each batch from the offline buffer, the rest online.

    Before any online data exists (or with no offline buffer) the whole batch comes from the one
    that has data.
    """

    def __init__(self, online: ChunkReplayBuffer | None, offline: ChunkReplayBuffer | None,
                 offline_ratio: float = 0.5) -> None:
        if online is None and offline is None:
            raise ValueError("MixedSampler needs an online or an offline buffer")
        self.online, self.offline, self.offline_ratio = online, offline, offline_ratio

    def sample(self, batch_size: int, chunk_size: int, horizon: int, discount: float, history: int = 1) -> ChunkBatch:
        has_on = self.online is not None and len(self.online) > 0
        has_off = self.offline is not None and len(self.offline) > 0
        n_off = round(batch_size * self.offline_ratio) if (has_on and has_off) else (batch_size if has_off else 0)
        n_on = batch_size - n_off
        parts = []
        if n_off:
            parts.append(self.offline.sample(n_off, chunk_size, horizon, discount, history))
        if n_on:
            parts.append(self.online.sample(n_on, chunk_size, horizon, discount, history))
        return parts[0] if len(parts) == 1 else ChunkBatch.concat(*parts)
