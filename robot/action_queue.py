"""Which action to send at each control step, given the chunks the policy has delivered so far.

Pure bookkeeping: no threads, no clock, no robot. Everything is indexed by the *control step* k
(the k-th deadline of the fixed-rate loop), so time is an integer and the logic is exact:

- a chunk predicted from the observation read at step `obs_step` holds targets for steps
  `obs_step, obs_step + 1, ..., obs_step + h - 1` (action 0 is what the policy would have sent at
  once, had inference taken no time). That is its *origin*.
- it arrives (is handed to the queue) at step `arrival_step >= obs_step`. With latency
  compensation on, its first `arrival_step - obs_step` actions are already in the past and are
  dropped; since the loop hands a chunk over at the first step whose deadline is not before its
  arrival time, that count is ceil(L * fps) for a chunk that arrives L seconds after the
  observation. With compensation off, the chunk is replayed from action 0 at its arrival step
  (origin = arrival step), as a naive loop would.

Three modes:

- `open_loop`: play all h actions, then hold the last one while the next chunk is computed from
  the observation taken after the chunk finished. This is what Q-chunking trains for: the arm
  holds during inference, so the new chunk's origin is the step it starts playing, and nothing
  is dropped (latency compensation does not apply: nothing moved while the policy thought).
- `receding`: play the first n actions of each chunk, then switch to the next chunk. The next
  chunk is requested `lead` steps before the switch (lead from the measured inference latency),
  so it normally arrives in time; until it does, the current chunk keeps playing (it has h - n
  actions of slack), and a chunk that arrives early waits for the switch step.
- `temporal_ensemble` (ACT, Zhao et al. 2023, Algorithm 2): every step, average the actions of
  all chunks that cover it, with weights exp(-m * i) where i = 0 is the OLDEST prediction
  (m = 0.01 in ACT weighs older predictions slightly more).

Optional linear blending over `blend_steps` steps at chunk switches (open_loop / receding): the
j-th step after a switch sends (1 - w) * old + w * new with w = (j + 1) / (blend_steps + 1),
where "old" is the previous chunk's plan for that step (its last action once it has run out).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np

MODES = ("open_loop", "receding", "temporal_ensemble")


@dataclass(frozen=True)
class Chunk:
    """A predicted chunk and when it was asked for / delivered, on the control clock."""

    actions: np.ndarray   # (h, A) float32 joint targets in robot units
    obs_step: int         # control step whose observation the policy saw
    obs_time: float       # clock time that observation was read
    arrival_step: int     # control step at which the chunk was handed to the queue
    arrival_time: float   # clock time the chunk became available
    generation: int = 0   # executor generation (bumped by flush) it was requested in

    @property
    def latency(self) -> float:
        return self.arrival_time - self.obs_time


@dataclass(frozen=True)
class Admission:
    """What the queue did with a chunk: the step its action 0 belongs to, how many of its actions
    were already in the past on arrival, and whether any of it will be played."""

    origin: int
    stale: int
    accepted: bool


def ensemble_weights(n: int, m: float) -> np.ndarray:
    """ACT's temporal-ensemble weights for n predictions of one step, oldest first, normalised."""
    w = np.exp(-m * np.arange(n, dtype=np.float64))
    return w / w.sum()


class _Placed:
    """A chunk pinned to the control clock: actions[j] is the target for step origin + j."""

    __slots__ = ("actions", "origin", "chunk_id")

    def __init__(self, actions: np.ndarray, origin: int, chunk_id: int = -1):
        self.actions = actions
        self.origin = origin
        self.chunk_id = chunk_id

    @property
    def end(self) -> int:
        return self.origin + len(self.actions)

    def at(self, step: int) -> np.ndarray | None:
        j = step - self.origin
        return self.actions[j] if 0 <= j < len(self.actions) else None

    def at_or_last(self, step: int) -> np.ndarray:
        """The plan for `step`, or its last action once it has run out (what the arm is holding)."""
        return self.actions[-1] if step >= self.end else self.actions[max(0, step - self.origin)]


class ActionQueue(abc.ABC):
    """Chunks in, one action per control step out. `pop` is called once per executed step with a
    strictly increasing step index (steps may be skipped when the loop misses deadlines)."""

    def __init__(self, chunk_size: int, latency_compensation: bool = True):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self.latency_compensation = latency_compensation
        self.admitted = 0    # chunks accepted so far: the next one's id
        # (chunk id, index of the action in it) of the last action `pop` returned, None if it returned none
        self.played: tuple[int, int] | None = None

    def _place(self, chunk: Chunk, origin: int) -> _Placed:
        self.admitted += 1
        return _Placed(chunk.actions, origin, self.admitted - 1)

    def _origin(self, chunk: Chunk) -> int:
        return chunk.obs_step if self.latency_compensation else chunk.arrival_step

    def _check(self, chunk: Chunk) -> None:
        if chunk.actions.ndim != 2 or chunk.actions.shape[0] != self.chunk_size:
            raise ValueError(
                f"chunk has shape {chunk.actions.shape}; expected ({self.chunk_size}, A) "
                f"(the policy's chunk_size is {self.chunk_size})"
            )
        if chunk.arrival_step < chunk.obs_step:
            raise ValueError(f"chunk arrived at step {chunk.arrival_step} before its observation step {chunk.obs_step}")

    @abc.abstractmethod
    def add(self, chunk: Chunk) -> Admission:
        """Hand over a chunk at its arrival step."""

    @abc.abstractmethod
    def pop(self, step: int) -> tuple[np.ndarray | None, bool]:
        """(action for `step` or None if the queue is dry, True if it is the first action of a new plan)."""

    @abc.abstractmethod
    def wants_chunk(self, step: int, lead_steps: int) -> bool:
        """Should inference be started from the observation read at `step`? `lead_steps`: how many
        steps a chunk is expected to take to arrive."""

    @abc.abstractmethod
    def depth(self, step: int) -> int:
        """Planned actions left, `step` included."""

    @abc.abstractmethod
    def clear(self) -> None: ...


class RecedingQueue(ActionQueue):
    """Play the first `n_execute` actions of each chunk, then switch to the next one."""

    def __init__(self, chunk_size: int, n_execute: int, latency_compensation: bool = True, blend_steps: int = 0):
        super().__init__(chunk_size, latency_compensation)
        if not 1 <= n_execute <= chunk_size:
            raise ValueError(f"actions played per chunk (ExecutionConfig.n_receding) must be in "
                             f"[1, chunk_size={chunk_size}], got {n_execute}")
        if blend_steps < 0:
            raise ValueError(f"blend_steps must be >= 0, got {blend_steps}")
        self.n_execute = n_execute
        self.blend_steps = blend_steps
        self.clear()

    def clear(self) -> None:
        self._active: _Placed | None = None
        self._pending: _Placed | None = None
        self._activated_at = 0
        self._blend_from: _Placed | None = None
        self._fresh = False  # the active chunk has not produced an action yet

    def _switch_step(self) -> int:
        """Step at which the active chunk gives way: after n actions, or when it runs out."""
        assert self._active is not None
        return min(self._activated_at + self.n_execute, self._active.end)

    def _activate(self, placed: _Placed, step: int) -> None:
        self._blend_from = self._active if self.blend_steps > 0 else None
        self._active = placed
        self._activated_at = step
        self._fresh = True

    def add(self, chunk: Chunk) -> Admission:
        self._check(chunk)
        k = chunk.arrival_step
        origin = self._origin(chunk)
        stale = max(0, k - origin)
        if stale >= self.chunk_size:
            return Admission(origin, stale, accepted=False)
        placed = self._place(chunk, origin)
        if self._active is None or k >= self._switch_step():
            self._activate(placed, k)
            self._pending = None
        else:
            self._pending = placed  # a newer chunk replaces a waiting older one
        return Admission(origin, stale, accepted=True)

    def pop(self, step: int) -> tuple[np.ndarray | None, bool]:
        if self._pending is not None and self._active is not None and step >= self._switch_step():
            if step < self._pending.end:
                self._activate(self._pending, step)
            self._pending = None
        self.played = None
        if self._active is None:
            return None, False
        action = self._active.at(step)
        if action is None:
            return None, False
        self.played = (self._active.chunk_id, step - self._active.origin)
        j = step - self._activated_at
        if self._blend_from is not None and j < self.blend_steps:
            w = (j + 1) / (self.blend_steps + 1)
            action = (1.0 - w) * self._blend_from.at_or_last(step) + w * action
        started, self._fresh = self._fresh, False
        return np.asarray(action, dtype=np.float32), started

    def wants_chunk(self, step: int, lead_steps: int) -> bool:
        lead = max(0, lead_steps)
        if self._pending is not None:
            if self._active is None or step < self._switch_step() or step >= self._pending.end:
                return False
            # The waiting chunk takes over at this very step: plan for the one after it now.
            return step >= min(step + self.n_execute, self._pending.end) - lead
        if self._active is None:
            return True
        return step >= self._switch_step() - lead

    def depth(self, step: int) -> int:
        ends = [p.end for p in (self._active, self._pending) if p is not None]
        return max(0, max(ends) - step) if ends else 0


class OpenLoopQueue(RecedingQueue):
    """Play each chunk whole from its first action, then ask for the next one."""

    def __init__(self, chunk_size: int, blend_steps: int = 0):
        # The arm holds while the next chunk is computed, so the chunk starts when it arrives:
        # no action of it is stale, whatever the latency.
        super().__init__(chunk_size, n_execute=chunk_size, latency_compensation=False, blend_steps=blend_steps)

    def wants_chunk(self, step: int, lead_steps: int) -> bool:
        # Re-plan only from the observation after the whole chunk ran (no early request).
        return super().wants_chunk(step, 0)


class TemporalEnsembleQueue(ActionQueue):
    """ACT temporal ensembling over every chunk that covers the step."""

    def __init__(self, chunk_size: int, m: float = 0.01, latency_compensation: bool = True):
        super().__init__(chunk_size, latency_compensation)
        if not math.isfinite(m):
            raise ValueError(f"ensemble coefficient m must be finite, got {m}")
        self.m = m
        self.clear()

    def clear(self) -> None:
        self._chunks: list[_Placed] = []  # oldest prediction first
        self._was_dry = True

    def add(self, chunk: Chunk) -> Admission:
        self._check(chunk)
        k = chunk.arrival_step
        origin = self._origin(chunk)
        stale = max(0, k - origin)
        if stale >= self.chunk_size:
            return Admission(origin, stale, accepted=False)
        self._chunks.append(self._place(chunk, origin))
        self._chunks.sort(key=lambda p: p.origin)  # stable: equal origins keep arrival order
        return Admission(origin, stale, accepted=True)

    def pop(self, step: int) -> tuple[np.ndarray | None, bool]:
        self._chunks = [p for p in self._chunks if p.end > step]
        placed = [p for p in self._chunks if p.origin <= step]
        covering = [p.actions[step - p.origin] for p in placed]
        if not covering:
            self._was_dry = True
            self.played = None
            return None, False
        newest = max(placed, key=lambda p: p.chunk_id)     # the step is reported as the newest chunk's
        self.played = (newest.chunk_id, step - newest.origin)
        w = ensemble_weights(len(covering), self.m)
        action = np.tensordot(w, np.stack(covering).astype(np.float64), axes=1).astype(np.float32)
        started, self._was_dry = self._was_dry, False
        return action, started

    def wants_chunk(self, step: int, lead_steps: int) -> bool:
        return True  # a fresh prediction every step the policy can keep up with

    def depth(self, step: int) -> int:
        return max((p.end - step for p in self._chunks), default=0) if self._chunks else 0


def make_action_queue(mode: str, chunk_size: int, *, n_receding: int | None = None, ensemble_m: float = 0.01,
                      blend_steps: int = 0, latency_compensation: bool = True) -> ActionQueue:
    if mode == "open_loop":
        return OpenLoopQueue(chunk_size, blend_steps=blend_steps)
    if mode == "receding":
        n = n_receding if n_receding is not None else max(1, chunk_size // 2)
        return RecedingQueue(chunk_size, n, latency_compensation=latency_compensation, blend_steps=blend_steps)
    if mode == "temporal_ensemble":
        return TemporalEnsembleQueue(chunk_size, m=ensemble_m, latency_compensation=latency_compensation)
    raise ValueError(f"unknown execution mode {mode!r}; choose one of {', '.join(MODES)}")
