"""Chunk replay: frames stored once, sampled as windows of h steps with discounted chunk returns.

Storage: a ring of `capacity` slots of torch tensors on one device (the learner's: the GPU learner
samples without a host round trip). Slot j holds an observation (state, uint8 images) and, for a step
the agent acted on, the action a_j, the reward r_j and two flags: `terminal` (an absorbing state
follows: no bootstrap past this step) and `last` (the trajectory's last step: slot j+1 holds the
observation after it, stored once in an extra slot without an action, so no next observation is ever
duplicated). A terminal step is usually also a last step; offline play data (OGBench) has terminal
steps in the middle of a trajectory (success states the play goes on from).

A window starting at slot i, for chunk length h and TD horizon n (n = h for the chunked critic, the
first-action critic's n-step horizon otherwise), W = max(h, n), e = the first k < W with last[i+k]
(e = W - 1 if none), n_eff = min(n, e + 1):

    discounted_return   R = sum_{k < n_eff} g^k r_{i+k}
    bootstrap_discount  g^{n_eff} if no terminal step among the first n_eff, else 0
    next_state          s_{i+n_eff}       (the stored observation after the last summed step)
    actions             a_{i..i+h-1}; steps after the trajectory's end repeat its last action
    terminated_early    a terminal end falls inside the chunk (e < h - 1)
    truncated_early     a time-limit end falls inside the chunk (e < h - 1)

These are the official QC code's `sample_sequence` values on every window its critic trains on
(`valid`: no trajectory end before the chunk's last step); tests/test_learner_parity.py checks them
against it. Where the official code sums rewards across a trajectory end into the next one (on
windows it then masks out), chunkbot stops at the end. The chunked critic drops windows with an end
inside (the learner's `valid`); the first-action critic keeps them and bootstraps at the end, which is
exact n-step TD with a shorter n.

Sampling is index arithmetic: candidate starts are drawn uniformly, the windows that are not complete
yet (an open episode's last W steps) or that reach overwritten slots are sorted behind the complete
ones, and the first `batch_size` are gathered: uniform over complete windows, on any device. On a GPU
with a mostly complete buffer nothing is read back to the host (twice the candidates, no check).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contract import IMAGE_PREFIX, STATE_KEY


@dataclass
class ChunkBatch:
    """A batch of chunk windows (torch tensors, images uint8)."""

    state: torch.Tensor                     # (B, L, D) observation history ending at s_t
    images: dict[str, torch.Tensor]         # cam -> (B, H, W, 3) uint8, at s_t
    actions: torch.Tensor                   # (B, h, A) in robot units
    discounted_return: torch.Tensor         # (B,)
    bootstrap_discount: torch.Tensor        # (B,) g^n_eff * (1 - terminal)
    terminated_early: torch.Tensor          # (B,) bool: a termination ends the trajectory inside the chunk
    truncated_early: torch.Tensor           # (B,) bool: a time limit ends it inside the chunk
    next_state: torch.Tensor                # (B, L, D) history ending at s_{t+n_eff}
    next_images: dict[str, torch.Tensor]
    n_step_used: torch.Tensor               # (B,) n_eff (for the first-action critic's metric)
    is_offline: torch.Tensor                # (B,) bool: drawn from the offline (demo) data

    def map(self, fn) -> "ChunkBatch":
        """The batch with `fn` applied to every tensor (the cameras' too)."""
        return ChunkBatch(**{f.name: _map(getattr(self, f.name), fn) for f in fields(self)})

    def to(self, device: torch.device | str) -> "ChunkBatch":
        return self.map(lambda t: t.to(device, non_blocking=True))

    @staticmethod
    def concat(a: "ChunkBatch", b: "ChunkBatch") -> "ChunkBatch":
        out = {}
        for f in fields(ChunkBatch):
            x, y = getattr(a, f.name), getattr(b, f.name)
            out[f.name] = {c: torch.cat([x[c], y[c]]) for c in x} if isinstance(x, dict) else torch.cat([x, y])
        return ChunkBatch(**out)


# the least share of complete windows (by the host's lower bound) at which a non-CPU buffer samples without reading
# anything back; below it (a nearly empty buffer) the exact rejection loop runs
_NO_SYNC_FRACTION = 0.9


def _map(x: Any, fn) -> Any:
    return {c: fn(v) for c, v in x.items()} if isinstance(x, dict) else fn(x)


class ChunkReplayBuffer:
    """Ring buffer of frames; `sample()` returns `ChunkBatch` windows (see the module docstring)."""

    _ARRAYS = ("state", "action", "reward", "terminal", "last", "acted", "step_in_episode")

    def __init__(self, capacity: int, state_dim: int, action_dim: int,
                 camera_shapes: dict[str, tuple[int, int, int]] | None = None, seed: int = 0,
                 is_offline: bool = False, device: str | torch.device = "cpu") -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = int(capacity)
        self.state_dim, self.action_dim = int(state_dim), int(action_dim)
        self.camera_shapes = {k: tuple(int(x) for x in v) for k, v in (camera_shapes or {}).items()}
        self.is_offline = is_offline
        self.device = torch.device(device)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        c, dev = self.capacity, self.device
        self.state = torch.zeros((c, self.state_dim), dtype=torch.float32, device=dev)
        self.images = {k: torch.zeros((c, *s), dtype=torch.uint8, device=dev) for k, s in self.camera_shapes.items()}
        self.action = torch.zeros((c, self.action_dim), dtype=torch.float32, device=dev)
        self.reward = torch.zeros(c, dtype=torch.float32, device=dev)
        self.terminal = torch.zeros(c, dtype=torch.bool, device=dev)
        self.last = torch.zeros(c, dtype=torch.bool, device=dev)
        self.acted = torch.zeros(c, dtype=torch.bool, device=dev)
        self.step_in_episode = torch.zeros(c, dtype=torch.int64, device=dev)
        self.cursor = 0          # next slot to write
        self.size = 0            # slots written (<= capacity)
        self.num_episodes = 0    # episodes started
        self.num_acted = 0       # slots holding an action (len())
        self._open_episode = False
        self._step = 0

    # ------------------------------------------------------------------ writing
    def _write_rows(self, states: np.ndarray, images: dict[str, np.ndarray], actions: np.ndarray | None,
                    rewards: np.ndarray, terminal: np.ndarray, last: np.ndarray) -> None:
        """Write T consecutive slots at the cursor (wrapping); `actions` None: observation-only slots."""
        t = len(states)
        if t > self.capacity:
            raise ValueError(f"{t} frames do not fit a buffer of {self.capacity} slots")
        slots = torch.arange(self.cursor, self.cursor + t, device=self.device) % self.capacity
        dev = self.device
        overwritten = int(self.acted[slots].sum())
        self.state[slots] = torch.as_tensor(np.asarray(states, np.float32), device=dev).reshape(t, self.state_dim)
        for k in self.camera_shapes:
            self.images[k][slots] = torch.as_tensor(np.asarray(images[k], np.uint8), device=dev)
        acted = actions is not None
        self.action[slots] = (torch.as_tensor(np.asarray(actions, np.float32), device=dev).reshape(t, self.action_dim)
                              if acted else 0.0)
        self.acted[slots] = acted
        self.reward[slots] = torch.as_tensor(np.asarray(rewards, np.float32), device=dev)
        self.terminal[slots] = torch.as_tensor(np.asarray(terminal, bool), device=dev)
        self.last[slots] = torch.as_tensor(np.asarray(last, bool), device=dev)
        self.step_in_episode[slots] = torch.arange(self._step, self._step + t, device=dev)
        self.num_acted += (t if acted else 0) - overwritten
        self.cursor = (self.cursor + t) % self.capacity
        self.size = min(self.size + t, self.capacity)
        self._step += t

    def _begin_episode(self) -> None:
        self.num_episodes += 1
        self._open_episode, self._step = True, 0

    def add(self, observation: dict[str, np.ndarray], action: np.ndarray, reward: float,
            terminated: bool, truncated: bool, next_observation: dict[str, np.ndarray] | None = None) -> None:
        """One env step (policy frames: `observation.state`, `observation.images.<cam>`).

        `next_observation` is stored only when the episode ends here (it is the next call's
        `observation` otherwise); it is required then.
        """
        ended = bool(terminated) or bool(truncated)
        if ended and next_observation is None:
            raise ValueError("the episode ended: pass next_observation (the observation after the last "
                             "action) so the buffer can bootstrap from it")
        state, images = self._split(observation)
        self._check_step(state, images, np.asarray(action, np.float32), reward)
        if ended:
            next_state, next_images = self._split(next_observation)
            self._check_step(next_state, next_images)
        if not self._open_episode:
            self._begin_episode()
        self._write_rows(state[None], {k: v[None] for k, v in images.items()}, np.asarray(action)[None],
                         np.array([reward]), np.array([terminated]), np.array([ended]))
        if ended:
            self._write_rows(next_state[None], {k: v[None] for k, v in next_images.items()}, None, np.zeros(1),
                             np.zeros(1, bool), np.zeros(1, bool))
            self._open_episode = False

    def add_episode(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: bool,
                    final_state: np.ndarray, images: dict[str, np.ndarray] | None = None,
                    final_images: dict[str, np.ndarray] | None = None,
                    terminals: np.ndarray | None = None) -> None:
        """A whole trajectory of T steps: states/images (T, ...), actions (T, A), rewards (T,) and the
        observation after the last action. `terminated` says how it ended (else: time limit);
        `terminals` (T,) marks absorbing steps inside it (offline play data), default: none but the end."""
        images, final_images = images or {}, final_images or {}
        t = len(actions)
        if t == 0:
            return
        if self._open_episode:
            raise RuntimeError("add_episode() while an online episode is still open")
        self._check_episode(states, actions, rewards, final_state, images, final_images)
        term = np.zeros(t, bool) if terminals is None else np.array(terminals, bool)
        term[-1] |= bool(terminated)
        last = np.zeros(t, bool)
        last[-1] = True
        self._begin_episode()
        self._write_rows(states, images, actions, rewards, term, last)
        self._write_rows(np.asarray(final_state)[None], {k: np.asarray(v)[None] for k, v in final_images.items()},
                         None, np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
        self._open_episode = False

    # Checked before anything is written, so a bad step or episode leaves the buffer as it was
    # (a write that failed half-way would leave an episode open and refuse every later one).
    def _check_step(self, state: np.ndarray, images: dict[str, np.ndarray], action: np.ndarray | None = None,
                    reward: float = 0.0) -> None:
        problems = []
        if state.shape != (self.state_dim,):
            problems.append(f"state {state.shape} (expected ({self.state_dim},))")
        if action is not None and action.shape != (self.action_dim,):
            problems.append(f"action {action.shape} (expected ({self.action_dim},))")
        problems += [f"image {k} {images[k].shape} (expected {s})" for k, s in self.camera_shapes.items()
                     if images[k].shape != s]
        if not (np.isfinite(state).all() and (action is None or np.isfinite(action).all()) and np.isfinite(reward)):
            problems.append("non-finite state, action or reward")
        if problems:
            raise ValueError(f"refused a step: {'; '.join(problems)}")

    def _check_episode(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, final_state: np.ndarray,
                       images: dict[str, np.ndarray], final_images: dict[str, np.ndarray]) -> None:
        t = len(actions)
        shapes = {"states": (np.shape(states), (t, self.state_dim)), "actions": (np.shape(actions), (t, self.action_dim)),
                  "rewards": (np.shape(rewards), (t,)), "final_state": (np.shape(final_state), (self.state_dim,))}
        for k, s in self.camera_shapes.items():
            shapes[f"images[{k}]"] = (np.shape(images[k]) if k in images else None, (t, *s))
            shapes[f"final_images[{k}]"] = (np.shape(final_images[k]) if k in final_images else None, s)
        wrong = [f"{name} {got} (expected {want})" for name, (got, want) in shapes.items() if got != want]
        if wrong:
            raise ValueError(f"refused an episode: {'; '.join(wrong)}")
        if not all(np.isfinite(np.asarray(x, np.float32)).all() for x in (states, actions, rewards, final_state)):
            raise ValueError("refused an episode: non-finite states, actions, rewards or final state")

    def close_open_episode(self) -> None:
        """End an episode that stopped without its final observation (a run resumed from a
        checkpoint): its last stored frame becomes the final observation and the step before it a
        time-limit end, so no window ever joins it to the next episode."""
        if not self._open_episode:
            return
        j = (self.cursor - 1) % self.capacity
        if self.acted[j]:
            self.num_acted -= 1
        self.acted[j], self.reward[j], self.terminal[j], self.last[j] = False, 0.0, False, False
        prev = (j - 1) % self.capacity
        if int(self.step_in_episode[j]) > 0 and bool(self.acted[prev]):
            self.last[prev] = True
        self._open_episode = False

    def _split(self, frame: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return (np.asarray(frame[STATE_KEY], np.float32).reshape(self.state_dim),
                {k: np.asarray(frame[IMAGE_PREFIX + k], np.uint8) for k in self.camera_shapes})

    def __len__(self) -> int:
        """Stored steps the agent acted on."""
        return self.num_acted

    def stored_states(self) -> np.ndarray:
        """Every stored observation's state (for fitting the normaliser)."""
        return self.state[: self.size].cpu().numpy()

    def to(self, device: str | torch.device, seed: int = 0) -> "ChunkReplayBuffer":
        """This buffer with its storage on `device` (itself when it is there already). A generator cannot
        cross devices: the moved buffer draws its windows from a new one seeded with `seed`."""
        device = torch.device(device)
        if device == self.device:
            return self
        out = copy.copy(self)
        out.device, out.generator = device, torch.Generator(device).manual_seed(seed)
        for name in self._ARRAYS:
            setattr(out, name, getattr(self, name).to(device))
        out.images = {k: v.to(device) for k, v in self.images.items()}
        return out

    @property
    def image_bytes_per_frame(self) -> int:
        return int(sum(a.numel() * a.element_size() for a in self.images.values()) // self.capacity)

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, chunk_size: int, horizon: int, discount: float,
               history: int = 1) -> ChunkBatch:
        """`batch_size` windows, uniform over complete windows (see the module docstring)."""
        if len(self) == 0:
            raise RuntimeError("sample() from an empty replay buffer")
        width = max(chunk_size, horizon)
        if self.device.type != "cpu" and self._complete_fraction_at_least(width, history) >= _NO_SYNC_FRACTION:
            return self.gather(self._starts_without_sync(batch_size, width, history), chunk_size, horizon, discount,
                               history)
        picked: list[torch.Tensor] = []
        need = batch_size
        for _ in range(100):
            cand = torch.randint(0, self.size, (need + need // 4 + 8,), device=self.device, generator=self.generator)
            ok = self._complete(cand, width, history)
            # complete windows first, in their (random) draw order: a uniform draw among them
            order = torch.argsort((~ok).to(torch.int8), stable=True)[:need]
            if bool(ok[order].all()):   # the usual case: one draw
                return self.gather(torch.cat([*picked, cand[order]]), chunk_size, horizon, discount, history)
            picked.append(cand[ok])
            need = batch_size - sum(len(p) for p in picked)
            if need <= 0:
                return self.gather(torch.cat(picked)[:batch_size], chunk_size, horizon, discount, history)
        raise RuntimeError("no complete chunk window in the replay buffer yet; add more steps")

    def _complete_fraction_at_least(self, width: int, history: int) -> float:
        """A lower bound on the share of slots that start a complete window, from what the host knows: only the
        extra final-observation slots, the open episode's last `width` steps and (history > 1) the windows whose
        history reaches past the ring's oldest slot start no complete window."""
        return (self.num_acted - width - history) / max(self.size, 1)

    def _starts_without_sync(self, batch_size: int, width: int, history: int) -> torch.Tensor:
        """`batch_size` complete window starts, uniform, with nothing read back to the host (a GPU learner's
        sampler then never waits for the device). Twice the candidates plus 64, complete ones first in draw order:
        with at least 90 % of the slots complete (the caller checks) fewer than `batch_size` complete candidates is
        dozens of standard deviations away; should it happen, the short places repeat the first complete one."""
        cand = torch.randint(0, self.size, (2 * batch_size + 64,), device=self.device, generator=self.generator)
        ok = self._complete(cand, width, history)
        order = torch.argsort((~ok).to(torch.int8), stable=True)[:batch_size]
        return torch.where(ok[order], cand[order], cand[order[0]])

    def all_windows(self, chunk_size: int, horizon: int, discount: float) -> ChunkBatch:
        """Every complete window, in slot order (for statistics of the data, e.g. its action steps)."""
        slots = torch.arange(self.size, device=self.device)
        slots = slots[self._complete(slots, max(chunk_size, horizon), 1)]
        return self.gather(slots, chunk_size, horizon, discount)

    def _age(self, slots: torch.Tensor) -> torch.Tensor:
        """How many writes ago each slot was written (0: the newest)."""
        return (self.cursor - 1 - slots) % self.capacity

    def _complete(self, start: torch.Tensor, width: int, history: int) -> torch.Tensor:
        """A start is complete when it is an acted step whose window (up to the trajectory's end and
        the observation after it) is written, and whose history slots are not overwritten."""
        age = self._age(start)
        k = torch.arange(width, device=self.device)
        slots = (start[:, None] + k) % self.capacity
        ends = self.last[slots] & (k[None] < age[:, None])                 # ends among written slots
        end_written = ends.any(1)                                           # then its final slot is written too
        ok = self.acted[start] & ((age >= width) | end_written)
        if history > 1:
            back = torch.clamp(self.step_in_episode[start], max=history - 1)
            ok &= age + back < self.size
        return ok

    def _history(self, slot: torch.Tensor, length: int) -> torch.Tensor:
        """(B, L) slots s_{t-L+1..t}, repeating the episode's first frame before its start."""
        back = torch.arange(length - 1, -1, -1, device=self.device)                       # L-1 .. 0
        back = torch.minimum(back[None], self.step_in_episode[slot][:, None])
        return (slot[:, None] - back) % self.capacity

    def gather(self, start: torch.Tensor | np.ndarray, h: int, n: int, discount: float,
               history: int = 1) -> ChunkBatch:
        """Windows at the given start slots (`sample()` picks them; tests name them)."""
        start = torch.as_tensor(np.asarray(start) if not isinstance(start, torch.Tensor) else start,
                                dtype=torch.int64, device=self.device)
        b, width = len(start), max(h, n)
        k = torch.arange(width, device=self.device)
        steps = (start[:, None] + k) % self.capacity                                   # (B, W)
        last = self.last[steps]
        end_step = torch.where(last.any(1), last.int().argmax(1), torch.full_like(start, width - 1))   # e
        n_eff = torch.clamp(end_step + 1, max=n)
        summed = k[None] < n_eff[:, None]
        disc = discount ** k.to(torch.float64)
        ret = ((self.reward[steps].double() * disc) * summed).sum(1)
        terminal_in = (self.terminal[steps] & summed).any(1)
        boot = torch.where(terminal_in, 0.0, discount ** n_eff.to(torch.float64))
        inside = end_step < h - 1
        ends_terminal = self.terminal[steps].gather(1, end_step[:, None])[:, 0]
        act_slots = steps[:, :h].gather(1, torch.clamp(k[None, :h], max=end_step[:, None]))
        next_slot = (start + n_eff) % self.capacity
        hist, next_hist = self._history(start, history), self._history(next_slot, history)
        return ChunkBatch(
            state=self.state[hist],
            images={c: self.images[c][start] for c in self.camera_shapes},
            actions=self.action[act_slots],
            discounted_return=ret.float(),
            bootstrap_discount=boot.float(),
            terminated_early=inside & ends_terminal,
            truncated_early=inside & ~ends_terminal,
            next_state=self.state[next_hist],
            next_images={c: self.images[c][next_slot] for c in self.camera_shapes},
            n_step_used=n_eff.float(),
            is_offline=torch.full((b,), self.is_offline, device=self.device),
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Atomic: write beside the target, then rename over it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # only the slots written: rows [0, size) until the ring wraps, all of it after (a pixel buffer's
        # capacity is gigabytes of frames that, early in a run, were never filled)
        n = self.size
        arrays = {name: getattr(self, name)[:n].cpu().numpy() for name in self._ARRAYS}
        arrays.update({f"image::{k}": v[:n].cpu().numpy() for k, v in self.images.items()})
        meta = {"capacity": self.capacity, "state_dim": self.state_dim, "action_dim": self.action_dim,
                "camera_shapes": self.camera_shapes, "cursor": self.cursor, "size": self.size,
                "num_episodes": self.num_episodes, "num_acted": self.num_acted,
                "open_episode": self._open_episode, "step": self._step, "is_offline": self.is_offline}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        arrays["rng"] = self.generator.get_state().numpy()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "ChunkReplayBuffer":
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes())
            buf = cls(meta["capacity"], meta["state_dim"], meta["action_dim"],
                      {k: tuple(v) for k, v in meta["camera_shapes"].items()}, is_offline=meta["is_offline"],
                      device=device)
            # a file holds the written rows (older ones the whole capacity); the rest stays as allocated
            for name in cls._ARRAYS:
                saved = torch.from_numpy(z[name])
                getattr(buf, name)[: len(saved)] = saved.to(buf.device)
            for k in buf.camera_shapes:
                saved = torch.from_numpy(z[f"image::{k}"])
                buf.images[k][: len(saved)] = saved.to(buf.device)
            if buf.device.type == "cpu":
                buf.generator.set_state(torch.from_numpy(z["rng"].copy()))
        buf.cursor, buf.size, buf.num_episodes = meta["cursor"], meta["size"], meta["num_episodes"]
        buf.num_acted = meta["num_acted"]
        buf._open_episode, buf._step = meta["open_episode"], meta["step"]
        return buf


def offline_buffer_from_dataset(dataset: Any, camera_keys: list[str] | None = None,
                                capacity: int | None = None, seed: int = 0,
                                device: str | torch.device = "cpu") -> ChunkReplayBuffer:
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
            imgs = np.stack([to_hwc_uint8(x) for x in column])
        else:                       # stored as video: decode frame by frame
            imgs = np.stack([to_hwc_uint8(dataset[i][key]) for i in range(len(dataset))])
        images[cam], cams[cam] = imgs, tuple(imgs.shape[1:])
    buf = ChunkReplayBuffer(capacity or len(states) + len(np.unique(episodes)) + 1, states.shape[1],
                            actions.shape[1], cams, seed=seed, is_offline=True, device=device)
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


def offline_buffer_from_transitions(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                                    masks: np.ndarray, terminals: np.ndarray, next_observations: np.ndarray,
                                    seed: int = 0, device: str | torch.device = "cpu") -> ChunkReplayBuffer:
    """Flat transitions in the D4RL / OGBench layout (a row per step; `terminals` = 1 on a trajectory's
    last step, `masks` = 0 on an absorbing step, which need not end the trajectory) into an offline
    buffer, one trajectory per run between terminals: the data as the official QC code reads it."""
    n = len(actions)
    ends = np.flatnonzero(np.asarray(terminals) > 0)
    if len(ends) == 0 or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)   # a file cut short ends on its last row
    absorbing = np.asarray(masks) == 0
    buf = ChunkReplayBuffer(n + len(ends) + 1, observations.shape[1], actions.shape[1], seed=seed,
                            is_offline=True, device=device)
    start = 0
    for end in ends:
        rows = slice(start, end + 1)
        buf.add_episode(observations[rows], actions[rows], rewards[rows], bool(absorbing[end]),
                        next_observations[end], terminals=absorbing[rows])
        start = end + 1
    return buf


def to_hwc_uint8(img: Any) -> np.ndarray:
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

    def __init__(self, online: ChunkReplayBuffer | ReplayStreams | None, offline: ChunkReplayBuffer | None,
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


class ReplayStreams:
    """The online data of several envs stepping side by side (policy/vector_runner.py): one
    ChunkReplayBuffer per env, so each keeps its own open episode and no window ever joins steps of
    two envs. Read as one buffer: `sample()` draws each window's stream in proportion to the streams'
    acted steps (a stream with no complete window yet sits out), then the windows within it as
    `ChunkReplayBuffer.sample` does."""

    is_offline = False

    def __init__(self, streams: list[ChunkReplayBuffer], seed: int = 0) -> None:
        if not streams:
            raise ValueError("ReplayStreams needs at least one buffer")
        self.streams = list(streams)
        self.generator = torch.Generator().manual_seed(seed)   # picks streams; each stream draws its own windows

    def __len__(self) -> int:
        return sum(len(s) for s in self.streams)

    def stored_states(self) -> np.ndarray:
        return np.concatenate([s.stored_states() for s in self.streams])

    def to(self, device: str | torch.device, seed: int = 0) -> "ReplayStreams":
        """The streams on `device` (stream i's generator seeded with seed + i); the stream picker stays."""
        moved = [s.to(device, seed + i) for i, s in enumerate(self.streams)]
        if all(m is s for m, s in zip(moved, self.streams)):
            return self
        out = copy.copy(self)
        out.streams = moved
        return out

    def all_windows(self, chunk_size: int, horizon: int, discount: float) -> ChunkBatch:
        return _concat([s.all_windows(chunk_size, horizon, discount) for s in self.streams])

    def close_open_episode(self) -> None:
        for s in self.streams:
            s.close_open_episode()

    def sample(self, batch_size: int, chunk_size: int, horizon: int, discount: float, history: int = 1) -> ChunkBatch:
        width = max(chunk_size, horizon)
        # more acted steps than a window is wide: the oldest acted step's window is complete
        weights = torch.tensor([float(len(s)) if len(s) > width else 0.0 for s in self.streams])
        if not weights.any():
            weights = torch.tensor([float(len(s)) for s in self.streams])
        if not weights.any():
            raise RuntimeError("sample() from an empty replay buffer")
        picks = torch.multinomial(weights, batch_size, replacement=True, generator=self.generator)
        counts = torch.bincount(picks, minlength=len(self.streams)).tolist()
        return _concat([s.sample(n, chunk_size, horizon, discount, history)
                        for s, n in zip(self.streams, counts) if n])


def _concat(batches: list[ChunkBatch]) -> ChunkBatch:
    out = batches[0]
    for b in batches[1:]:
        out = ChunkBatch.concat(out, b)
    return out
