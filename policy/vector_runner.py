"""Several envs stepping in worker processes, each executing its own chunk open loop, feeding one learner.

Rendering (the sim tasks' pixels mode) costs far more than a learner step on a small network, so one
env in the learner's process cannot keep up; N workers render side by side. Each worker holds one
env and a `ChunkRunner` (the single-env runner, unchanged): a command is a whole chunk, played until
it runs out or the episode ends, and the reply is what that runner did: the replay writes and the
observations it showed its observer, in order. The learner's process replays them into env i's own
buffer and env i's own observation history, so each env's stream is exactly what `ChunkRunner` on
that env alone would have written (one open episode per buffer; steps of two envs never meet).

    with VectorChunkRunner("chunkbot/SO101Lift-v0", {"obs_mode": "pixels"}, 2, buffers, seed=0) as vec:
        vec.send([chunk_0, chunk_1])    # the workers step; the learner is free meanwhile
        ...                             # updates
        taken = vec.receive()           # steps per env, now in buffers[i]

Workers are started with `spawn` (a fresh interpreter: no copy of the learner's threads, CUDA or GL
state); each makes its own env, so the sim renders through its own EGL context. MUJOCO_GL is chosen
before anything imports MuJoCo (below, and inherited through the environment). As with any spawned
process, the script that starts the workers is imported again in each: it needs an
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering in every worker; must precede `import mujoco`

from policy.envs import make_env  # noqa: E402
from policy.runner import ChunkRunner, EpisodeStats, Observer  # noqa: E402

if TYPE_CHECKING:
    from policy.replay import ChunkReplayBuffer

# env i's episode k starts from reset(seed + i * ENV_SEED_STRIDE + k): distinct scenes per env, far
# from the evaluation seeds (10 000 + k) and the toy env's demo seeds (seed + 1 000 000 + k)
ENV_SEED_STRIDE = 10_000_000
_CLOSE_TIMEOUT_S = 5.0


class _Recording:
    """What a worker's ChunkRunner writes and observes, in order, to be replayed by the learner."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def add(self, observation: dict[str, np.ndarray], action: np.ndarray, reward: float, terminated: bool,
            truncated: bool, next_observation: dict[str, np.ndarray] | None = None) -> None:
        self.events.append(("add", (observation, action, reward, terminated, truncated, next_observation)))

    def observe(self, observation: dict[str, np.ndarray], episode_start: bool) -> None:
        self.events.append(("observe", (observation, episode_start)))

    def take(self) -> list[tuple[str, tuple[Any, ...]]]:
        events, self.events = self.events, []
        return events


def _worker(conn: Any, env_name: str, env_kwargs: dict[str, Any], seed: int) -> None:
    """One env: reply to each chunk with the steps taken, the recorded events and the episodes ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the learner's to handle: it closes the workers
    env = None
    try:
        env = make_env(env_name, **env_kwargs)
        recording = _Recording()
        runner = ChunkRunner(env, recording, seed, recording.observe)
        reported = 0

        def reply(taken: int) -> None:
            nonlocal reported
            conn.send(("ok", {"taken": taken, "events": recording.take(), "finished": runner.finished[reported:],
                              "observation": runner.observation}))
            reported = len(runner.finished)

        reply(0)
        while True:
            command, chunk = conn.recv()
            if command == "close":
                return
            reply(runner.run_chunk(chunk))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):   # the learner is gone or closing
        return
    except Exception as e:  # noqa: BLE001 - any env failure is reported to the learner with its traceback
        try:
            conn.send(("error", (f"{type(e).__name__}: {e}", traceback.format_exc())))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if env is not None:
            env.close()
        conn.close()


class VectorChunkRunner:
    """`num_envs` envs in worker processes; env i's steps go to `buffers[i]`, its observations to
    `observers[i]` (both optional), exactly as `ChunkRunner(env_i, buffers[i], seed_i, observers[i])`
    would write them, with seed_i = seed + i * ENV_SEED_STRIDE."""

    def __init__(self, env_name: str, env_kwargs: dict[str, Any], num_envs: int,
                 buffers: Sequence[ChunkReplayBuffer] | None = None, seed: int = 0,
                 observers: Sequence[Observer] | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: use at least 1 env")
        for name, per_env in (("buffers", buffers), ("observers", observers)):
            if per_env is not None and len(per_env) != num_envs:
                raise ValueError(f"{len(per_env)} {name} for {num_envs} envs: give one per env")
        self.num_envs = num_envs
        self.buffers, self.observers = buffers, observers
        self.observations: list[dict[str, np.ndarray]] = [{} for _ in range(num_envs)]
        self.finished: list[EpisodeStats] = []   # every env's ended episodes, in the order they were received
        self._pending: list[bool] = [False] * num_envs
        context = mp.get_context("spawn")
        self._conns, self._workers = [], []
        try:
            for i in range(num_envs):
                parent, child = context.Pipe()
                worker = context.Process(target=_worker, args=(child, env_name, dict(env_kwargs),
                                                               seed + i * ENV_SEED_STRIDE),
                                         name=f"chunkbot-env-{i}", daemon=True)
                worker.start()
                child.close()
                self._conns.append(parent)
                self._workers.append(worker)
            self._pending = [True] * num_envs   # each worker first reports its reset
            self.receive()
        except BaseException:
            self.close()
            raise

    @property
    def worker_pids(self) -> list[int]:
        """The workers' process ids (for accounting their CPU time)."""
        return [w.pid for w in self._workers]

    def send(self, chunks: Sequence[np.ndarray | None]) -> None:
        """Start env i on chunks[i] ((n, A) robot units; None: env i sits this round out). Returns at once."""
        if len(chunks) != self.num_envs:
            raise ValueError(f"{len(chunks)} chunks for {self.num_envs} envs: give one per env (None to skip)")
        if any(self._pending):
            raise RuntimeError("send() while the previous chunks are still stepping: receive() them first")
        for i, chunk in enumerate(chunks):
            if chunk is not None:
                self._conns[i].send(("chunk", np.asarray(chunk, np.float32)))
                self._pending[i] = True

    def receive(self) -> list[int]:
        """Wait for the chunks sent; write their steps to the buffers and observers; steps taken per env."""
        taken = [0] * self.num_envs
        for i, conn in enumerate(self._conns):
            if not self._pending[i]:
                continue
            try:
                status, reply = conn.recv()
            except (EOFError, ConnectionResetError):
                self._workers[i].join(_CLOSE_TIMEOUT_S)
                raise RuntimeError(f"env worker {i} exited (exit code {self._workers[i].exitcode}) before replying; "
                                   "a script that starts workers needs `if __name__ == '__main__':` (spawn "
                                   "imports it again in each worker)") from None
            self._pending[i] = False
            if status == "error":
                why, where = reply
                error = RuntimeError(f"env worker {i} failed: {why}")
                error.add_note(f"in the worker:\n{where}")
                raise error
            self._replay(i, reply["events"])
            self.observations[i] = reply["observation"]
            self.finished.extend(reply["finished"])
            taken[i] = reply["taken"]
        return taken

    def run_chunks(self, chunks: Sequence[np.ndarray | None]) -> list[int]:
        """send() then receive()."""
        self.send(chunks)
        return self.receive()

    def _replay(self, i: int, events: list[tuple[str, tuple[Any, ...]]]) -> None:
        for kind, args in events:
            if kind == "add" and self.buffers is not None:
                self.buffers[i].add(*args)
            elif kind == "observe" and self.observers is not None:
                self.observers[i](*args)

    def close(self) -> None:
        """Stop the workers (a worker mid-chunk finishes it first; one that hangs is terminated)."""
        for i, conn in enumerate(self._conns):
            try:
                if self._pending[i] and conn.poll(_CLOSE_TIMEOUT_S):
                    conn.recv()   # drain the reply, so the worker is not blocked sending it
                conn.send(("close", None))
            except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
                pass
        for worker in self._workers:
            worker.join(_CLOSE_TIMEOUT_S)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for conn in self._conns:
            conn.close()
        self._conns, self._workers, self._pending = [], [], [False] * self.num_envs

    def __enter__(self) -> "VectorChunkRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
