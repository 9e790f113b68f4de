"""`ObservationHistory`: the last L policy frames of one episode, kept by whoever steps the episode.

A policy that reads an observation history of L frames (`obs_history_length`, the actor's s_{t-L+1..t})
keeps none itself: it is a function of one window (`predict_chunk(frame)`), and the loop that sees
every control step owns the window. That is the robot executor on an arm, the chunk runner and the
trainer in training (one history per env when several step side by side), the evaluation loop, the
HIL session. A window is a policy frame: the newest frame's `observation.state` and camera images,
plus `state_history`, the states of the previous L-1 steps, oldest first (only when L > 1; the
images of older frames are not read, so they are not kept).

An episode's first frame fills the whole window, so the policy sees the first state repeated until
the episode has L frames of its own: what training, the replay buffer's windows and the exported
actor all assume (`policy.replay`, `export.metadata`).

numpy only: the deploy path (executor, ONNX actor) uses it without torch.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from contract import STATE_HISTORY_KEY, STATE_KEY


class ObservationHistory:
    """The window of one episode's last `length` frames. `push` every control step (its signature is
    the training runner's observer's), `frame()` when a chunk is wanted, `clear()` between episodes."""

    def __init__(self, length: int = 1) -> None:
        if int(length) < 1:
            raise ValueError(f"an observation history holds at least 1 frame, got {length}")
        self.length = int(length)
        self._states: deque[np.ndarray] = deque(maxlen=self.length)
        self._newest: dict[str, Any] | None = None

    def clear(self) -> None:
        """A new episode: the next frame pushed fills the window."""
        self._states.clear()
        self._newest = None

    def push(self, frame: dict[str, Any], episode_start: bool = False) -> None:
        """One control step's policy frame (`observation.state`, `observation.images.<cam>`; other keys
        pass through to `frame()`). `episode_start` clears the window first."""
        if episode_start:
            self.clear()
        if STATE_KEY not in frame:
            raise KeyError(f"a policy frame needs {STATE_KEY!r}; this one has {sorted(frame)}")
        state = np.array(frame[STATE_KEY], dtype=np.float32).reshape(-1)  # a copy: drivers reuse buffers
        if self._states and state.shape != self._states[-1].shape:
            raise ValueError(f"{STATE_KEY} has {state.size} values, the episode's earlier frames "
                             f"{self._states[-1].size}: clear() the history between robots or tasks")
        if not self._states:  # episode start: the first frame fills the window
            self._states.extend([state] * self.length)
        else:
            self._states.append(state)
        self._newest = frame

    @property
    def empty(self) -> bool:
        return self._newest is None

    def frame(self) -> dict[str, Any]:
        """The window as a policy frame: the newest frame, plus `state_history` ((L-1, D) float32,
        oldest first) when L > 1. What `ChunkPolicy.predict_chunk` takes."""
        if self._newest is None:
            raise RuntimeError("the observation history is empty: push() the episode's first frame first")
        out = dict(self._newest)
        out[STATE_KEY] = self._states[-1]
        if self.length > 1:
            out[STATE_HISTORY_KEY] = np.stack(list(self._states)[:-1])
        return out



def missing_history_message(length: int, state_dim: int | str = "D") -> str:
    """What to do when a frame for a policy reading `length` > 1 states lacks `state_history`."""
    return (f"the policy reads the last {length} states but the frame has no {STATE_HISTORY_KEY!r} "
            f"(({length - 1}, {state_dim}) float32, oldest first): keep a robot.history.ObservationHistory"
            f"({length}) for the episode, push() every control step's frame and pass its frame()")


def window_states(frame: dict[str, Any], length: int) -> np.ndarray:
    """(L, D) float32: the states a policy reading `length` states sees in `frame` (its
    `state_history`, then its `observation.state`), or a ValueError that says what is missing."""
    state = np.asarray(frame[STATE_KEY], dtype=np.float32).reshape(1, -1)
    if length == 1:
        return state
    past = frame.get(STATE_HISTORY_KEY)
    if past is None:
        raise ValueError(missing_history_message(length, state.shape[1]))
    past = np.asarray(past, dtype=np.float32)
    if past.shape != (length - 1, state.shape[1]):
        raise ValueError(f"{STATE_HISTORY_KEY!r} has shape {past.shape}; the policy reads the previous "
                         f"{length - 1} states of {state.shape[1]} values, oldest first: "
                         f"({length - 1}, {state.shape[1]})")
    return np.concatenate([past, state])
