"""The training job: offline demos + online RL on a gymnasium env, chunks executed open-loop.

Follows the official QC-RLPD loop: `warmup_steps` uniform-random env steps before the first
update, then `utd_ratio` updates (critic, actor and temperature, each on its own batch, as the
official `batch_update`) per env step, each batch half offline / half online. Where chunkbot departs
from the paper, for runs of minutes on a CPU from scripted demos, the policy starts from `TRAIN_RECIPE`
(policy/config.py: relative joint actions, BC weight 2 towards the demos, a fixed temperature of 0.01,
terminated chunks kept, min over critics, three updates per env step), Lift episodes are cut to 60
steps (`max_episode_steps`), and evaluation plays the mean chunk, as the robot will.
`--preset=qc --policy.bc_weight=0.01 ... --eval_deterministic=false` is the paper's protocol (docs/parity.md).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import draccus
import gymnasium as gym
import numpy as np
import torch

from contract import IMAGE_PREFIX, STATE_KEY
from policy.checkpoint import (
    BEST,
    CHECKPOINTS,
    PRETRAINED,
    last_checkpoint,
    load_newest_checkpoint,
    mark_best,
    save_checkpoint,
)
from policy.config import PIXELS_RECIPE, TRAIN_EXPLORATION_NOISE, TRAIN_RECIPE, QChunkSACConfig
from policy.envs import IMAGE_SIZE, check_observation_mode, make_env, observation_kwargs
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer, MixedSampler, ReplayStreams, offline_buffer_from_dataset
from policy.runner import ChunkRunner, evaluate
from policy.vector_runner import VectorChunkRunner
from robot.history import ObservationHistory
from robot.viz import VizConfig

log = logging.getLogger("policy.training")

EVAL_SEED = 10_000      # evaluations during the run replay the same scenes (comparable across steps)
CONFIRM_SEED = 20_000   # ... and the best checkpoint is confirmed on others


@dataclass
class TrainConfig:
    # the policy recipe an observation mode layers over the defaults (tools._policy_cli applies it)
    POLICY_RECIPE_BY_OBS_MODE: ClassVar[dict[str, dict[str, Any]]] = {"pixels": PIXELS_RECIPE}

    env_name: str = "chunkbot/SO101Lift-v0"   # gymnasium id: chunkbot/SO101{Reach,Lift,PickPlace}-v0, ...
    env_kwargs: dict[str, Any] = field(default_factory=dict)   # gymnasium.make keywords, e.g. {"reward_type": "dense"}
    # episode length of the training and evaluation envs; None: the sim task's training length (Lift: 60
    # steps), else the env's own limit
    max_episode_steps: int | None = None
    # What the policy observes on a chunkbot sim task: "state" (the privileged state: joints, velocities,
    # TCP and cube pose; the studies' setting) or "pixels" (the joint positions and the front and wrist
    # cameras, exactly what a real so101_follower / koch_follower with two cameras gives: the policy
    # learns from images and exports for that arm)
    obs_mode: str = "state"
    image_size: int = IMAGE_SIZE              # pixels mode: square camera frames, this many pixels a side
    policy: QChunkSACConfig = field(default_factory=lambda: QChunkSACConfig(**TRAIN_RECIPE))
    dataset_repo_id: str | None = None        # offline data: a LeRobotDataset (repo id + local root)
    dataset_root: str | None = None
    num_demos: int = 200                      # scripted demos recorded when no dataset is given (0: none)
    demo_noise: float = 0.0                   # std (rad) of the scripted expert's joint-target noise in the demos
    steps: int = 8_000                        # online env steps (the default: about 5 minutes of one CPU core)
    warmup_steps: int = 500                   # uniform-random env steps before the first update (paper: 5000)
    online_buffer_capacity: int = 200_000     # all envs together (--num_envs > 1: split evenly between them)
    # envs stepping side by side in worker processes, each playing its own chunks open loop into its own
    # part of the online replay, so rendering (pixels mode) keeps up with the learner; utd_ratio updates
    # per env step counted over all envs. 1: the env steps in the learner's process (exactly as before)
    num_envs: int = 1
    eval_every: int = 2_000                   # env steps; 0: only at the end
    eval_episodes: int = 30
    eval_deterministic: bool = True           # evaluate the mean chunk (the paper samples: false)
    actor_noise: float = TRAIN_EXPLORATION_NOISE  # exploration: 1 samples the policy, 0 plays its mean
    save_every: int = 2_000                   # env steps; a final checkpoint is always written
    # Keep the best-evaluated policy as checkpoints/best (BC + RL success can dip late in a run), then
    # evaluate it on `confirm_episodes` scenes no evaluation used (0: skip): the figure to quote for it
    keep_best: bool = True
    confirm_episodes: int = 50
    save_buffers: bool = True                 # online buffer in checkpoints (exact resume)
    log_every: int = 100
    output_dir: str = "outputs/train"         # checkpoints/, metrics.jsonl and demos/ go here
    resume: bool = False                      # continue the run in output_dir from checkpoints/last
    seed: int = 0                             # torch, replay sampling, envs and demos (runs are repeatable)
    device: str = "cpu"                       # torch device of the learner: cpu | cuda | cuda:1 | mps
    # where the replay buffers live: "learner" (the --device: a GPU learner gathers its batches, images
    # included, without a host round trip) or a torch device, e.g. cpu when the frames outgrow GPU memory
    replay_device: str = "learner"
    num_threads: int | None = None            # torch CPU threads (set 1-2 on a shared machine)
    progress_bar: bool = True                 # a tqdm bar of env steps on stderr
    preset: str | None = None                 # recorded for reference; tools.train applies it
    # Rerun view of the evaluation episodes: predicted chunks against the joints (--viz.rrd=FILE,
    # --viz.display_data=true)
    viz: VizConfig = field(default_factory=VizConfig)

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ValueError(f"--num_envs={self.num_envs}: use 1 (the env in the learner's process) or more "
                             "(envs in worker processes)")
        check_observation_mode(self.obs_mode, self.image_size)
        if self.replay_device != "learner":
            try:
                torch.device(self.replay_device)
            except RuntimeError:
                raise ValueError(f"--replay_device={self.replay_device}: use learner (the --device) or a torch "
                                 "device such as cpu or cuda") from None
        if self.obs_mode == "pixels":
            self.policy.use_images = True   # pixels mode is learning from the cameras

    def observation_kwargs(self) -> dict[str, Any]:
        """The sim env's (and sim robot config's) keywords for `obs_mode`: none in state mode, which
        keeps each task's own defaults."""
        return observation_kwargs(self.obs_mode, self.image_size)

    def make_env_kwargs(self) -> dict[str, Any]:
        """gymnasium.make keywords: the observation mode's, then `env_kwargs` (which win)."""
        return {**self.observation_kwargs(), **self.env_kwargs}


def episode_steps(cfg: TrainConfig) -> int | None:
    """The training envs' time limit: --max_episode_steps, else the sim task's training length, else None
    (the env's registered limit)."""
    if cfg.max_episode_steps is not None or "max_episode_steps" in cfg.env_kwargs:
        return cfg.max_episode_steps
    try:
        from robot.sim.task_spec import TASKS
        from robot.sim.tasks import ENV_IDS
    except ModuleNotFoundError:
        return None
    return TASKS[ENV_IDS[cfg.env_name][1]].train_episode_steps if cfg.env_name in ENV_IDS else None


def sim_env_ids() -> list[str]:
    """The gymnasium ids of the sim arm tasks (robot.sim), [] where MuJoCo is not installed."""
    try:
        from robot.sim.tasks import ENV_IDS
    except ModuleNotFoundError:
        return []
    return list(ENV_IDS)


def env_features(env: gym.Env) -> tuple[int, list[str], dict[str, tuple[int, int, int]]]:
    obs_space = env.observation_space
    if not isinstance(obs_space, gym.spaces.Dict) or STATE_KEY not in obs_space.spaces:
        raise ValueError(f"the env's observation must be a Dict with {STATE_KEY!r}; got {obs_space}")
    cams = {k[len(IMAGE_PREFIX):]: tuple(v.shape) for k, v in obs_space.spaces.items() if k.startswith(IMAGE_PREFIX)}
    names = getattr(env.unwrapped, "action_names", None) or [f"a{i}" for i in range(env.action_space.shape[0])]
    return int(obs_space[STATE_KEY].shape[0]), list(names), cams


def scripted_expert(env: gym.Env, noise: float = 0.0, seed: int = 0
                    ) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """The env's scripted demonstrator, if it has one: robot.sim.expert for the sim arm tasks (with
    `noise` rad of joint-target noise), or an `expert_action()` method on the env (the toy env)."""
    if hasattr(env.unwrapped, "expert_action"):
        return lambda obs: env.unwrapped.expert_action()
    try:
        from robot.sim import expert as sim_expert
    except ModuleNotFoundError:
        return None
    make = getattr(sim_expert, "make_env_expert", None)
    return make(env, noise=noise, seed=seed) if make is not None else None


def generate_demos(env: gym.Env, episodes: int, capacity: int, seed: int, noise: float = 0.0
                   ) -> ChunkReplayBuffer | None:
    """Roll the scripted expert for `episodes` episodes into an offline buffer."""
    expert = scripted_expert(env, noise=noise, seed=seed)
    if expert is None:
        log.warning("the env %s has no scripted expert: training without demos", env.spec.id if env.spec else env)
        return None
    state_dim, _, cams = env_features(env)
    buf = ChunkReplayBuffer(capacity, state_dim, env.action_space.shape[0], cams, seed=seed, is_offline=True)
    runner = ChunkRunner(env, buf, seed=seed + 1_000_000)
    while len(runner.finished) < episodes:
        runner.run_chunk(np.asarray(expert(runner.observation), np.float32)[None])
    successes = np.mean([e.success for e in runner.finished])
    log.info("generated %d scripted demos (%d steps, success %.0f%%)", episodes, len(buf), 100 * successes)
    return buf


def _offline_data(cfg: TrainConfig, env: gym.Env, policy_cfg: QChunkSACConfig) -> ChunkReplayBuffer | None:
    if cfg.dataset_repo_id is not None:
        from robot.recording import open_dataset

        if cfg.dataset_root is None:
            raise ValueError("--dataset_repo_id needs --dataset_root: datasets are read from local disk only")
        dataset = open_dataset(cfg.dataset_repo_id, cfg.dataset_root)
        buf = offline_buffer_from_dataset(dataset, sorted(policy_cfg.camera_shapes), seed=cfg.seed)
        if (buf.state_dim, buf.action_dim) != (policy_cfg.state_dim, policy_cfg.action_dim):
            raise ValueError(f"dataset {cfg.dataset_repo_id} has state/action dims ({buf.state_dim}, {buf.action_dim}) "
                             f"but env {cfg.env_name} has ({policy_cfg.state_dim}, {policy_cfg.action_dim}); "
                             "record the dataset on the same robot/task")
        return buf
    if cfg.num_demos > 0:
        return generate_demos(env, cfg.num_demos, capacity=max(10_000, 2_000 * cfg.num_demos), seed=cfg.seed,
                              noise=cfg.demo_noise)
    return None


def check_joint_state(env: gym.Env, cfg: QChunkSACConfig) -> None:
    """Relative actions read the joints from the first action_dim state values: check the names agree."""
    names = list(getattr(env.unwrapped, "state_names", []) or [])
    if names and names[: cfg.action_dim] != list(cfg.action_names):
        raise ValueError(f"relative_actions=true needs the state to start with the joint positions "
                         f"{list(cfg.action_names)}, but it starts with {names[: cfg.action_dim]}; "
                         "use --policy.relative_actions=false for this env")


def check_td_target_bounds(env: gym.Env, cfg: QChunkSACConfig) -> None:
    """Clipping the TD target to [lo, hi] is right only where every return lies there: a sim task's returns
    do when its reward is the sparse success (1 once, then the episode ends), not with a dense or step-cost
    reward."""
    reward_type = getattr(env.unwrapped, "reward_type", "sparse")
    if cfg.td_target_bounds is not None and reward_type != "sparse":
        raise ValueError(f"td_target_bounds={list(cfg.td_target_bounds)} clips the TD target to the returns of a "
                         f"sparse success reward, but this env pays reward_type={reward_type!r}: pass "
                         "--policy.td_target_bounds=null (or bounds that hold every return of this reward)")


def confirm_best(out: Path, env: gym.Env, cfg: TrainConfig, step: int, success: float) -> dict[str, float]:
    """Evaluate checkpoints/best on scenes no evaluation during the run saw: choosing the best of several
    evaluations on the same scenes overstates it, these scenes do not."""
    best = QChunkSACPolicy.from_pretrained(out / CHECKPOINTS / BEST / PRETRAINED, cfg.device)
    result = evaluate(env, lambda frame: best.action_chunk(frame, cfg.eval_deterministic).cpu().numpy(),
                      cfg.confirm_episodes, seed=CONFIRM_SEED, history_length=best.history_length)
    log.info("best checkpoint: step %d (evaluation success %.2f); on %d fresh scenes: success %.2f",
             step, success, cfg.confirm_episodes, result["success_rate"])
    return {"best/step": step, "best/eval_success_rate": success,
            **{f"best/confirm_{k}": v for k, v in result.items()}}


def _online_buffer(cfg: TrainConfig, state_dim: int, action_dim: int,
                   camera_shapes: dict[str, tuple[int, int, int]]) -> ChunkReplayBuffer | ReplayStreams:
    """A new online replay: one buffer, or one per env when several step side by side."""
    if cfg.num_envs == 1:
        return ChunkReplayBuffer(cfg.online_buffer_capacity, state_dim, action_dim, camera_shapes, seed=cfg.seed)
    per_env = max(2, cfg.online_buffer_capacity // cfg.num_envs)
    return ReplayStreams([ChunkReplayBuffer(per_env, state_dim, action_dim, camera_shapes, seed=cfg.seed + i)
                          for i in range(cfg.num_envs)], seed=cfg.seed)


def _online_to_save(online: ChunkReplayBuffer | ReplayStreams) -> dict[str, ChunkReplayBuffer]:
    """Checkpoint names: `online`, or `online_<i>` per env."""
    if isinstance(online, ReplayStreams):
        return {f"online_{i}": s for i, s in enumerate(online.streams)}
    return {"online": online}


def _saved_online(buffers: dict[str, ChunkReplayBuffer], num_envs: int,
                  seed: int) -> ChunkReplayBuffer | ReplayStreams | None:
    """The online replay a checkpoint holds (None: it was saved without buffers)."""
    if num_envs == 1:
        return buffers.get("online")
    streams = [buffers.get(f"online_{i}") for i in range(num_envs)]
    if any(s is None for s in streams):
        return None
    return ReplayStreams(streams, seed=seed)


def _crossed(every: int, before: int, after: int) -> bool:
    """A multiple of `every` (0: never) lies in (before, after]."""
    return bool(every) and after // every > before // every


def train(cfg: TrainConfig) -> dict[str, float]:
    """Run (or resume) a training job; returns the last evaluation."""
    if not 0.0 <= cfg.actor_noise <= 1.0:
        raise ValueError(f"--actor_noise={cfg.actor_noise}: use a value in [0, 1] (1 samples the policy, 0 plays its mean)")
    out = Path(cfg.output_dir)
    torch.manual_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if cfg.obs_mode != "state":
        sim_envs = sim_env_ids()
        if cfg.env_name not in sim_envs:
            raise ValueError(f"--obs_mode={cfg.obs_mode} is a setting of the chunkbot sim arm tasks "
                             f"({', '.join(sim_envs)}); {cfg.env_name} has observations of its own: drop --obs_mode")
    env_kwargs = cfg.make_env_kwargs()
    if (limit := episode_steps(cfg)) is not None:
        env_kwargs["max_episode_steps"] = limit
    env, eval_env = make_env(cfg.env_name, **env_kwargs), make_env(cfg.env_name, **env_kwargs)
    eval_robot = getattr(eval_env.unwrapped, "robot", None)
    from robot.viz import ChunkView  # the viewer: loaded by the run that shows it, not by importing the job

    view = ChunkView.for_robot(cfg.viz, eval_robot, fps=eval_robot.config.fps, chunk_size=cfg.policy.chunk_size,
                               name="train eval", lossless=True) if eval_robot is not None else None
    state_dim, action_names, cams = env_features(env)
    fps = float(env.metadata.get("render_fps") or cfg.policy.fps)
    warmup_generator = torch.Generator(device=cfg.device).manual_seed(cfg.seed)

    checkpoint = last_checkpoint(out)
    if checkpoint is not None and not cfg.resume:
        raise FileExistsError(f"{out} already holds checkpoints; pass --resume=true to continue it, or choose "
                              "another --output_dir")
    if cfg.resume and checkpoint is None:
        raise FileNotFoundError(f"--resume=true but {out}/checkpoints/last does not exist")
    if checkpoint is not None:
        checkpoint, (policy, learner, buffers, extra) = load_newest_checkpoint(out, cfg.device)
        env_step, normalizer_fitted = int(extra["env_step"]), bool(extra["normalizer_fitted"])
        if int(extra.get("num_envs", 1)) != cfg.num_envs:
            raise ValueError(f"{out} was collected with --num_envs={extra.get('num_envs', 1)}: resume it with "
                             "the same --num_envs (its online replay has one part per env)")
        online = _saved_online(buffers, cfg.num_envs, cfg.seed + env_step) or _online_buffer(
            cfg, state_dim, len(action_names), policy.config.camera_shapes)
        offline = buffers.get("offline")
        online.close_open_episode()  # the interrupted episode cannot continue: the env restarts
        best_success, best_step = float(extra.get("best_success", -1.0)), extra.get("best_step")
        warmup_generator = torch.Generator(device=cfg.device).manual_seed(cfg.seed + env_step)
        log.info("resumed from %s at env step %d", checkpoint, env_step)
    else:
        pcfg = cfg.policy.with_features(state_dim, action_names, cams, fps)
        policy = QChunkSACPolicy(pcfg)
        policy.encoder.load_pretrained()   # image_encoder.pretrained_path: a new run starts from those weights
        policy = policy.to(cfg.device)
        # the generator lives where the sampling happens (a CPU generator cannot drive CUDA randn)
        learner = QChunkSACLearner(policy, torch.Generator(device=cfg.device).manual_seed(cfg.seed)).to(cfg.device)
        online = _online_buffer(cfg, state_dim, len(action_names), pcfg.camera_shapes)
        offline = _offline_data(cfg, env, pcfg)
        env_step, normalizer_fitted = 0, False
        best_success, best_step = -1.0, None
    pcfg = policy.config
    replay_device = cfg.device if cfg.replay_device == "learner" else cfg.replay_device
    online = online.to(replay_device, cfg.seed + env_step)
    offline = offline.to(replay_device, cfg.seed + env_step + 1_000) if offline is not None else None
    out.mkdir(parents=True, exist_ok=True)

    def fit_normalizer(buf: ChunkReplayBuffer) -> None:
        policy.fit_normalizer(buf, env.action_space.low, env.action_space.high)

    if pcfg.relative_actions:
        check_joint_state(env, pcfg)
    check_td_target_bounds(env, pcfg)
    if not normalizer_fitted and offline is not None:
        fit_normalizer(offline)
        normalizer_fitted = True
    elif not normalizer_fitted:   # the warm-up's random chunks need the action bounds already
        policy.normalizer.fit(None, env.action_space.low, env.action_space.high)
    sampler = MixedSampler(online, offline, pcfg.offline_ratio)
    # the training loop owns the observation history of the env it steps (one per env with num_envs > 1)
    history = ObservationHistory(pcfg.obs_history_length)
    runner = ChunkRunner(env, online, seed=cfg.seed + env_step, observer=history.push) if cfg.num_envs == 1 else None
    vector: VectorChunkRunner | None = None
    metrics_file = (out / "metrics.jsonl").open("a")
    train_dict = draccus.encode(cfg)
    last_eval: dict[str, float] = {}
    t0 = time.time()

    def chunk_fn(deterministic: bool):
        return lambda frame: policy.action_chunk(frame, deterministic).cpu().numpy()

    def log_line(record: dict[str, Any], step: int | None = None) -> None:
        metrics_file.write(json.dumps({"env_step": env_step if step is None else step, "update_step": learner.step,
                                       "time_s": round(time.time() - t0, 2), **record}) + "\n")
        metrics_file.flush()

    saved_at = -1

    def checkpoint_now() -> None:
        nonlocal saved_at
        if saved_at == env_step:
            return
        buffers = _online_to_save(online) if cfg.save_buffers else {}
        if offline is not None:
            buffers["offline"] = offline
        save_checkpoint(out, env_step, policy, learner, buffers,
                        {"env_step": env_step, "normalizer_fitted": normalizer_fitted, "num_envs": cfg.num_envs,
                         "best_success": best_success, "best_step": best_step}, train_dict)
        saved_at = env_step

    def next_chunk(frame: dict[str, np.ndarray]) -> np.ndarray:
        """The chunk to play from an env's window `frame`: random in the warm-up, then explored."""
        nonlocal normalizer_fitted
        if env_step < cfg.warmup_steps:
            return policy.random_chunk(frame, warmup_generator).cpu().numpy()
        if not normalizer_fitted:  # no offline data: statistics of the warm-up steps
            fit_normalizer(online)
            normalizer_fitted = True
        return policy.exploration_chunk(frame, cfg.actor_noise).cpu().numpy()

    def learn(step: int) -> None:
        """The updates of env step `step`: utd_ratio of them from the warm-up's last step on."""
        if step < cfg.warmup_steps:   # the official loop's first update is at step start_training
            return
        batches = [sampler.sample(pcfg.batch_size, pcfg.chunk_size, pcfg.td_horizon, pcfg.discount,
                                  pcfg.obs_history_length).to(cfg.device)
                   for _ in range(pcfg.utd_ratio)]
        metrics = learner.update(batches)
        if step % cfg.log_every == 0:
            metrics = {k: float(v) for k, v in metrics.items()}   # read the device once per log
            recent = (runner or vector).finished[-10:]
            if recent:
                metrics["train/success_rate"] = float(np.mean([e.success for e in recent]))
                metrics["train/return"] = float(np.mean([e.episode_return for e in recent]))
            log_line(metrics, step)
            if progress is not None:
                progress.set_postfix(q=f"{metrics['q_mean']:.2f}", alpha=f"{metrics['alpha']:.3f}")

    def evaluate_now() -> None:
        nonlocal last_eval
        last_eval = evaluate(eval_env, chunk_fn(cfg.eval_deterministic), cfg.eval_episodes, seed=EVAL_SEED,
                             history_length=pcfg.obs_history_length, view=view)  # with a history of its own
        log_line({f"eval/{k}": v for k, v in last_eval.items()})
        log.info("env step %d: eval %s", env_step, last_eval)
        keep_if_best(last_eval)

    def collect_in_parallel() -> None:
        """--num_envs > 1: rounds of one chunk per env, played in the workers while the learner makes
        the updates owed for the previous round's steps (utd_ratio per env step, counted over all
        envs); evaluations and checkpoints at the end of the round that reaches their step."""
        nonlocal env_step, vector
        histories = [ObservationHistory(pcfg.obs_history_length) for _ in range(cfg.num_envs)]
        vector = VectorChunkRunner(cfg.env_name, env_kwargs, cfg.num_envs, online.streams, cfg.seed + env_step,
                                   [h.push for h in histories])
        learned_to = env_step
        while True:
            budget, chunks = cfg.steps - env_step, []
            for env_history in histories:   # stop exactly at cfg.steps
                chunks.append(next_chunk(env_history.frame())[:budget] if budget > 0 else None)
                budget -= pcfg.chunk_size
            if any(c is not None for c in chunks):
                vector.send(chunks)
            for step in range(learned_to + 1, env_step + 1):   # while the workers step
                learn(step)
            if _crossed(cfg.eval_every, learned_to, env_step) and normalizer_fitted:
                evaluate_now()
            if _crossed(cfg.save_every, learned_to, env_step):
                checkpoint_now()
            learned_to = env_step
            if all(c is None for c in chunks):
                return
            taken = sum(vector.receive())
            env_step += taken
            if progress is not None:
                progress.update(taken)

    def keep_if_best(evaluation: dict[str, float]) -> None:
        # ties go to the later policy: it has learned from more data
        nonlocal best_success, best_step
        if cfg.keep_best and evaluation["success_rate"] >= best_success:
            best_success, best_step = evaluation["success_rate"], env_step
            checkpoint_now()
            mark_best(out, env_step)

    final_evaluated = False
    progress = None
    if cfg.progress_bar:
        from tqdm import tqdm

        progress = tqdm(total=cfg.steps, initial=env_step, desc="env steps", unit="step", dynamic_ncols=True)
    try:
        if runner is None:
            collect_in_parallel()
        while runner is not None and env_step < cfg.steps:
            chunk = next_chunk(history.frame())
            taken = runner.run_chunk(chunk[: cfg.steps - env_step])  # stop exactly at cfg.steps
            for _ in range(taken):
                env_step += 1
                learn(env_step)
                if cfg.eval_every and env_step % cfg.eval_every == 0 and normalizer_fitted:
                    evaluate_now()
                if cfg.save_every and env_step % cfg.save_every == 0:
                    checkpoint_now()
            if progress is not None:
                progress.update(taken)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was learned; --resume=true continues from this checkpoint
        log.warning("interrupted at env step %d: writing a checkpoint to resume from", env_step)
        interrupted = True
    else:
        interrupted = False
        evaluated_last = cfg.eval_every and env_step % cfg.eval_every == 0
        if normalizer_fitted and cfg.eval_episodes > 0 and not evaluated_last:
            # the run ends with an evaluated checkpoint, whatever eval_every was
            last_eval = evaluate(eval_env, chunk_fn(cfg.eval_deterministic), cfg.eval_episodes, seed=EVAL_SEED,
                                 history_length=pcfg.obs_history_length, view=view)
            log_line({f"eval/{k}": v for k, v in last_eval.items()})
            log.info("env step %d: final eval %s", env_step, last_eval)
            final_evaluated = True
    finally:
        if progress is not None:
            progress.close()
        if vector is not None:
            vector.close()
    try:
        if normalizer_fitted:
            checkpoint_now()
            if final_evaluated:
                keep_if_best(last_eval)
        if not interrupted and cfg.keep_best and cfg.confirm_episodes > 0 and best_step is not None:
            confirmed = confirm_best(out, eval_env, cfg, best_step, best_success)
            log_line(confirmed)
            last_eval = {**last_eval, **confirmed}
    finally:
        metrics_file.close()
        if view is not None:
            view.close()
    if interrupted:
        raise KeyboardInterrupt
    return last_eval
