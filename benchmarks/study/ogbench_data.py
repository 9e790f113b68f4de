"""OGBench cube tasks for the study: a local play-data generator and the env / offline-buffer adapters.

The official OGBench datasets cannot be downloaded here, and the ogbench wheel ships the scripted
oracles but not the script that made the datasets. `generate_play_dataset` is our own generator,
following the official recipe as far as the wheel lets us read it:

* env `<domain>-v0` in `mode="data_collection"`, `terminate_at_goal=False`, fixed-length episodes;
* the plan oracle (`ogbench.manipspace.oracles.plan.CubePlanOracle`, noise 0.1, smoothing 0.5)
  chases a random target; whenever it finishes, `set_new_target()` draws the next one ("play");
* stored per step: the observation *before* the action, the action, `terminals` = 1 on an
  episode's last step, and `qpos` / `qvel` of that observation (the env's `prev_qpos`/`prev_qvel`).

How ours differs from the official data (say so wherever results are quoted):
* size: the official play datasets hold ~1M transitions (1000 episodes x 1000 steps); ours hold
  what the study budget can afford (`num_episodes` x `episode_length`, e.g. 100 x 1000 = 100k);
* the validation split ('-val') is 2 % of the episodes instead of 10 % (the study never reads it;
  OGBench's loader wants the file);
* stacking probability for multi-cube domains: the official value is not in the wheel; we draw
  p_stack ~ U(0, 0.25) per episode for cube-double (the single-cube domain never stacks);
* random seeds differ, so the exact trajectories do.

The files load with `ogbench.make_env_and_datasets(name, dataset_path=PATH)` (and `PATH` with
`-val` before `.npz` for the validation split), which relabels rewards for a single-task env.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")  # headless: ogbench imports mujoco, which otherwise probes GLFW/X11
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from contract import STATE_KEY
from policy.replay import ChunkReplayBuffer, offline_buffer_from_transitions

ACTION_CLIP_EPS = 1e-5   # the official code clips dataset actions to +-(1 - eps) when it loads them


def domain_of(dataset_name: str) -> str:
    """'cube-single-play-singletask-task1-v0' -> 'cube-single' (the env family the data is drawn in)."""
    return dataset_name.split("-play-")[0] if "-play-" in dataset_name else dataset_name.rsplit("-", 1)[0]


def _oracle(env: gym.Env, kind: str, noise: float) -> Any:
    if kind == "plan":
        from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle

        return CubePlanOracle(env=env, noise=noise, noise_smoothing=0.5)
    if kind == "markov":
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        return CubeMarkovOracle(env=env, min_norm=0.4)
    raise ValueError(f"unknown oracle {kind!r}; use 'plan' (the official play data) or 'markov'")


def collect_play_episodes(domain: str, num_episodes: int, episode_length: int = 1000, noise: float = 0.1,
                          seed: int = 0, oracle: str = "plan") -> dict[str, np.ndarray]:
    """Roll the scripted oracle for `num_episodes` play episodes; arrays in OGBench's file layout."""
    import ogbench  # noqa: F401  (registers the envs)

    if not domain.startswith("cube-"):
        raise ValueError(f"only the cube domains are supported, got {domain!r}")
    env = gym.make(f"{domain}-v0", terminate_at_goal=False, mode="data_collection",
                   max_episode_steps=episode_length)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)  # the oracles draw their keyframes and noise from numpy's global generator
    agent = _oracle(env, oracle, noise)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "terminals", "qpos", "qvel")}
    for _episode in range(num_episodes):
        ob, info = env.reset(seed=int(rng.integers(2**31)))
        p_stack = 0.0 if domain == "cube-single" else float(rng.uniform(0.0, 0.25))
        agent.reset(ob, info)
        for step in range(episode_length):
            action = np.clip(np.asarray(agent.select_action(ob, info), np.float32), -1.0, 1.0)
            next_ob, _, terminated, truncated, info = env.step(action)
            done = step == episode_length - 1 or terminated or truncated
            cols["observations"].append(np.asarray(ob, np.float32))
            cols["actions"].append(action)
            cols["terminals"].append(np.float32(done))
            cols["qpos"].append(np.asarray(info["prev_qpos"], np.float32))
            cols["qvel"].append(np.asarray(info["prev_qvel"], np.float32))
            ob = next_ob
            if done:
                break
            if agent.done:  # play: a new random target whenever the oracle finishes the last one
                ob, info = env.unwrapped.set_new_target(p_stack=p_stack)
                agent.reset(ob, info)
    env.close()
    return {k: np.stack(v) for k, v in cols.items()}


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an npz so that a reader never sees half a file (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def concatenate_shards(shards: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}


def val_path(path: str | Path) -> Path:
    """OGBench's convention: the validation split sits beside the training file with a '-val' suffix."""
    return Path(str(path).replace(".npz", "-val.npz"))


def generate_play_dataset(dataset_name: str, path: str | Path, num_episodes: int, episode_length: int = 1000,
                          noise: float = 0.1, seed: int = 0, oracle: str = "plan",
                          val_episodes: int | None = None) -> Path:
    """Generate train (+ '-val') npz files for `dataset_name` in one process; returns the train path."""
    domain = domain_of(dataset_name)
    val_episodes = max(1, num_episodes // 50) if val_episodes is None else val_episodes  # never trained on
    save_npz_atomic(val_path(path), collect_play_episodes(domain, val_episodes, episode_length, noise,
                                                          seed + 7_919, oracle))
    save_npz_atomic(path, collect_play_episodes(domain, num_episodes, episode_length, noise, seed, oracle))
    return Path(path)


class OGBenchStateEnv(gym.Wrapper):
    """An OGBench single-task env in chunkbot's env shape: observation {'observation.state': obs},
    info['is_success'] from OGBench's info['success'], `action_names` for the policy config."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        dim = env.observation_space.shape[0]
        self.observation_space = gym.spaces.Dict(
            {STATE_KEY: gym.spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)})
        self.action_names = [f"a{i}" for i in range(env.action_space.shape[0])]

    def reset(self, **kwargs: Any):
        ob, info = self.env.reset(**kwargs)
        return {STATE_KEY: np.asarray(ob, np.float32)}, info

    def step(self, action: np.ndarray):
        ob, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info, is_success=bool(info.get("success", False)))
        return {STATE_KEY: np.asarray(ob, np.float32)}, float(reward), terminated, truncated, info


def make_ogbench_env(dataset_name: str) -> OGBenchStateEnv:
    """The single-task env of `dataset_name` (no download: env_only)."""
    import ogbench

    return OGBenchStateEnv(ogbench.make_env_and_datasets(dataset_name, env_only=True))


def offline_buffer_from_npz(dataset_name: str, path: str | Path, seed: int = 0,
                            env: gym.Env | None = None) -> ChunkReplayBuffer:
    """Load our npz as the official QC code loads OGBench data: OGBench's own loader and single-task
    relabelling as they are, actions clipped to +-(1 - 1e-5), one trajectory per play episode.

    The relabelled reward and mask of step t describe the state s_t (OGBench computes them from the
    qpos stored with the observation), one step before the env's convention (the reward of the state
    after the action); a success state has mask 0 and the play goes on from it. The official code
    trains on the data this way, so parity does too. Pass the task's `env` to save building another
    one (relabelling resets it).
    """
    import ogbench

    if env is None:
        env, train, _ = ogbench.make_env_and_datasets(dataset_name, dataset_path=str(path))
        env.close()
    else:
        train, _ = ogbench.make_env_and_datasets(dataset_name, dataset_path=str(path), dataset_only=True,
                                                 cur_env=env)
    actions = np.clip(train["actions"], -1 + ACTION_CLIP_EPS, 1 - ACTION_CLIP_EPS)
    return offline_buffer_from_transitions(train["observations"], actions, train["rewards"], train["masks"],
                                           train["terminals"], train["next_observations"], seed=seed)
