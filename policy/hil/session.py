"""The actor side of a human-in-the-loop session: episodes on the robot, takeovers, rewards, data.

Each episode:

1. reset phase: the sim resets itself (seeded); on a real arm the person resets the scene for
   `reset_time_s` (any session key but pause ends it early). The newest learner weights are
   loaded here, while no chunk is being computed.
2. the chunk executor runs the policy (stochastic chunks, open loop by default) through the safety
   layer; `TakeoverController` is its intervention hook, so a takeover (leader arm, key, or the
   scripted person in sim) flushes the queue mid-chunk and the follower eases onto the person's
   commands. Until the learner has published weights the person drives the whole episode (the
   first episodes are demonstrations).
3. rewards: the sim's success (or its dense reward with --reward=dense), or the success / failure
   keys on a real arm; success terminates the episode, failure and the time limit truncate it (the
   state is not absorbing, so the critic still bootstraps from it).
4. the episode goes to the learner as one batch (in process, or over the transport) and to the
   session's LeRobotDataset with its intervention and chunk flags; `episodes.jsonl` gets a line.

Ctrl-C (or the quit key) at any point ends the episode in progress as truncated, sends and writes
it, checkpoints, and finalizes the dataset; `--resume=true` continues the step count and buffers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from policy.hil.config import HILConfig
from policy.hil.dataset import SessionDataset
from policy.hil.learner import HILLearner, robot_features
from policy.hil.scripted_person import ScriptedPerson
from policy.hil.weights import policy_from_bytes
from policy.qchunk_sac import QChunkSACPolicy
from robot.executor import ChunkExecutor, StepRecord
from robot.viz import ChunkView, attach_view
from robot.features import IMAGE_PREFIX, STATE_KEY, camera_shapes, state_names, to_policy_frame
from robot.inference_worker import InlineInference
from robot.keyboard import KeyHub
from robot.takeover import TakeoverController
from robot.timing import FakeClock

log = logging.getLogger(__name__)

EPISODES_LOG = "episodes.jsonl"
DATASET_DIR = "dataset"


class ActorPolicy:
    """The `ChunkPolicy` the executor runs: the latest weights from the learner, sampled
    (exploration) or deterministic. Holds no weights until the learner publishes the first."""

    def __init__(self, chunk_size: int, action_names: tuple[str, ...], fps: float, noise: float = 1.0) -> None:
        self.chunk_size = int(chunk_size)
        self.action_names = tuple(action_names)
        self.fps = float(fps)
        self.deterministic = False
        # Exploration: 1 samples the policy's own distribution, 0 plays its mean, in between moves the
        # sample that fraction of the way from the mean (a person is there to correct it anyway).
        self.noise = float(noise)
        self.policy: QChunkSACPolicy | None = None
        self.version = 0

    def load(self, version: int, blob: bytes) -> None:
        self.policy = policy_from_bytes(blob, self.policy)
        if self.policy.chunk_size != self.chunk_size or tuple(self.policy.action_names) != self.action_names:
            raise ValueError(f"the learner's policy predicts {self.policy.chunk_size} x {self.policy.action_names}; "
                             f"this actor runs {self.chunk_size} x {self.action_names}: use the same policy config")
        self.version = version

    def predict_chunk(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        if self.policy is None:
            raise RuntimeError("no policy weights yet (the person drives until the learner publishes some)")
        self.policy.observe(observation)
        chunk = self.policy.exploration_chunk(0.0 if self.deterministic else self.noise)
        return chunk.cpu().numpy().astype(np.float32)

    def reset(self) -> None:
        if self.policy is not None:
            self.policy.reset()


class LearnerLink(Protocol):
    def submit(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None: ...
    def latest_weights(self) -> tuple[int, bytes] | None: ...
    def between_episodes(self) -> None: ...
    def checkpoint(self, output_dir: Path, session_state: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class LocalLink:
    """The learner in this process: updates in a background thread, or between episodes."""

    def __init__(self, learner: HILLearner, background: bool) -> None:
        self.learner = learner
        self._taken = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._updating = threading.Lock()
        if background:
            self._thread = threading.Thread(target=self._train, name="hil-learner", daemon=True)
            self._thread.start()

    def _train(self) -> None:
        try:
            while not self._stop.is_set():
                if self.learner.updates_due() > 0:
                    with self._updating:  # a checkpoint waits for the update in progress
                        self.learner.update()
                else:
                    time.sleep(0.01)
        except BaseException as e:  # surfaced to the session at the next episode boundary
            self._error = e

    def submit(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.learner.add_episode(header, arrays)

    def latest_weights(self) -> tuple[int, bytes] | None:
        w = self.learner.weights()
        if w is None or w[0] == self._taken:
            return None
        self._taken = w[0]
        return w

    def between_episodes(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the learner thread failed: {self._error}") from self._error
        if self._thread is None:
            self.learner.run_due_updates()

    def checkpoint(self, output_dir: Path, session_state: dict[str, Any]) -> None:
        with self._updating:
            self.learner.save(output_dir, {"session": session_state})

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)


@dataclass
class EpisodeResult:
    episode: int
    steps: int
    success: bool
    policy_success: bool          # succeeded with no human step
    intervention_steps: int
    takeovers: int
    interrupted_chunks: int
    evaluation: bool
    end: str                      # success | time_limit | failure_key | quit | interrupted | fault
    weights_version: int
    env_steps: int                # total after this episode
    wall_s: float


class _Episode:
    """Per-step record of the episode in progress."""

    def __init__(self) -> None:
        self.frames: list[dict[str, np.ndarray]] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.human: list[bool] = []
        self.chunk_index: list[int] = []
        self.chunk_step: list[int] = []
        self.interrupted: set[int] = set()
        self.success = False
        self.terminated = False
        self.end = ""
        self.next_chunk = 0
        self.takeovers = 0

    def __len__(self) -> int:
        return len(self.actions)


class HILSession:
    def __init__(self, cfg: HILConfig, robot: Any, teleop: Any, link: LearnerLink, hub: KeyHub | None = None,
                 start_episode: int = 0, env_steps: int = 0) -> None:
        cfg.validate()
        self.cfg = cfg
        self.robot = robot
        self.teleop = teleop
        self.link = link
        self.hub = hub or KeyHub()
        self.sim = hasattr(robot, "is_success") and hasattr(robot, "reset") and hasattr(robot, "dense_reward")
        self.realtime = (not self.sim) if cfg.realtime is None else cfg.realtime
        self.fps = float(getattr(robot.config, "fps", cfg.policy.fps)) if hasattr(robot, "config") else cfg.policy.fps
        self.action_names = tuple(robot.action_features)
        self.features = robot.observation_features
        self.max_steps = robot.task.max_episode_steps if self.sim else int(round(cfg.episode_time_s * self.fps))
        self.task_name = cfg.task or (robot.config.task if self.sim else "hil")
        self.actor = ActorPolicy(cfg.policy.chunk_size, self.action_names, self.fps, cfg.actor_noise)
        scripted = self.sim and getattr(teleop, "name", "") == "scripted"
        takeover = cfg.takeover
        if scripted or getattr(teleop, "name", "") == "keyboard":
            # the scripted person / the takeover key decide when to take over: neither "leader" rests
            takeover = dataclasses.replace(takeover, trigger="none", handback_still_s=0.0)
        self.controller = TakeoverController(teleop, self.action_names, self.fps, takeover,
                                             keys=self.hub.subscribe(), session_keys=cfg.keys)
        self.person = ScriptedPerson(robot, self.controller, cfg.person) if scripted else None
        self._keys = self.hub.subscribe()
        self.episode_index = start_episode
        self.env_steps = env_steps
        self.results: list[EpisodeResult] = []
        self._record: StepRecord | None = None
        self._ep: _Episode | None = None
        self.quit = False
        self.paused = False
        low, high = self._action_bounds()
        self.limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(self.action_names, low, high)}
        self.robot_features = robot_features(len(state_names(self.features)), list(self.action_names),
                                             camera_shapes(self.features), self.fps, low, high)
        self.output_dir = Path(cfg.output_dir)
        # Rerun view (--viz.display_data / --viz.rrd): chunks, takeovers and hand-backs on one timeline
        self.view = ChunkView.for_robot(cfg.viz, robot, fps=self.fps, chunk_size=cfg.policy.chunk_size,
                                        name=f"hil {self.task_name}", lossless=not self.realtime)

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(self.robot, "action_low"):
            return np.asarray(self.robot.action_low, float), np.asarray(self.robot.action_high, float)
        limits = getattr(self.robot, "joint_limits", None)
        limits = limits() if callable(limits) else limits
        if not limits:
            raise ValueError("the robot gives no joint limits (calibrate it first: python -m tools.calibrate)")
        return (np.array([limits[n][0] for n in self.action_names], float),
                np.array([limits[n][1] for n in self.action_names], float))

    # ------------------------------------------------------------------ keys
    def _session_keys(self) -> list[str]:
        return self._keys.drain()

    def _handle_keys(self, ep: _Episode | None) -> None:
        k = self.cfg.keys
        for key in self._session_keys():
            if key == k.quit:
                self.quit = True
            elif key == k.pause:
                self.paused = not self.paused
                log.info("session %s", "paused (press the pause key to resume)" if self.paused else "resumed")
            elif ep is not None and key == k.success:
                ep.success, ep.terminated, ep.end = True, True, "success"
            elif ep is not None and key == k.failure:
                ep.end = "failure_key"

    # ------------------------------------------------------------------ the loop
    def run(self, episodes: int | None = None) -> list[EpisodeResult]:
        """Run `episodes` episodes (default cfg.episodes); Ctrl-C keeps everything done so far."""
        episodes = self.cfg.episodes if episodes is None else episodes
        self.output_dir.mkdir(parents=True, exist_ok=True)
        dataset = SessionDataset(f"local/hil_{self.task_name}", self.output_dir / DATASET_DIR, int(round(self.fps)),
                                 self.features, self.action_names, getattr(self.robot, "name", None),
                                 self.cfg.use_videos, resume=self.cfg.resume)
        self.dataset = dataset
        last = self.episode_index + episodes
        try:
            while self.episode_index < last and not self.quit:
                self._reset_phase()
                if self.quit:
                    break
                self._run_episode()
                self._finish_episode()
                if self.cfg.checkpoint_every and self.episode_index % self.cfg.checkpoint_every == 0:
                    self.link.checkpoint(self.output_dir, self.session_state())
        except BaseException as e:  # Ctrl-C ends the session; a fault (bus, policy) is raised after saving
            interrupted = isinstance(e, KeyboardInterrupt)
            log.warning("%s: keeping the episode in progress (as truncated) and everything before it",
                        "interrupted" if interrupted else f"stopped by {type(e).__name__}")
            if self._ep is not None and len(self._ep):
                self._ep.end = "interrupted" if interrupted else "fault"
                self._finish_episode()
            if not interrupted:
                raise
        finally:
            self._ep = None
            try:  # updates still owed are not run here (Ctrl-C should be quick): a resume runs them
                self.link.checkpoint(self.output_dir, self.session_state())
            finally:
                dataset.close()
                self.view.close()
        return self.results

    def session_state(self) -> dict[str, Any]:
        return {"episode": self.episode_index, "env_steps": self.env_steps}

    def _reset_phase(self) -> None:
        self.link.between_episodes()
        weights = self.link.latest_weights()
        if weights is not None:
            self.actor.load(*weights)
        if self.sim:
            self.robot.reset(self.cfg.seed + self.episode_index)
            expert = getattr(self.teleop, "expert", None)
            if expert is not None:
                expert.reset(self.cfg.seed + self.episode_index)
        elif self.results:
            log.info("reset the scene: the next episode starts in %.0f s (any session key starts it now)",
                     self.cfg.reset_time_s)
            deadline = time.monotonic() + self.cfg.reset_time_s
            while time.monotonic() < deadline and not self.quit:
                keys = self._session_keys()
                if self.cfg.keys.quit in keys:
                    self.quit = True
                if keys:
                    break
                time.sleep(0.05)

    def _is_evaluation(self) -> bool:
        e = self.cfg.eval_every
        return bool(e) and self.actor.policy is not None and (self.episode_index + 1) % e == 0

    def _on_step(self, record: StepRecord) -> None:
        self._record = record

    def _run_episode(self) -> None:
        cfg = self.cfg
        ep = self._ep = _Episode()
        evaluation = self._is_evaluation()
        self.actor.deterministic = evaluation
        self.controller.reset()
        self.controller.force(self.actor.policy is None)  # no weights yet: the person demonstrates
        if self.actor.policy is None and not self.sim:
            log.info("episode %d: no policy weights yet, drive the arm with the leader for this episode",
                     self.episode_index)
        if self.person is not None:
            self.person.reset()
            self.person.enabled = not evaluation
        self.actor.reset()
        # the limits the session already checked (and the learner normalises with), unless given
        safety = dataclasses.replace(cfg.safety, joint_limits=cfg.safety.joint_limits or self.limits)
        clock = None if self.realtime else FakeClock()
        inference = None if self.realtime else InlineInference(self.actor, latency_s=0.0)
        executor = ChunkExecutor(self.robot, self.actor, cfg.execution.to_config(), safety=safety, clock=clock,
                                 inference=inference, intervention=self.controller, on_step=self._on_step)
        self.controller.on_takeover = executor.flush
        self.view.start_episode(str(self.episode_index))
        shown = attach_view(self.view, executor) if self.view.enabled else None
        self._t0 = time.perf_counter()
        self._evaluation = evaluation
        self._takeovers_before = self.controller.takeovers
        h = self.actor.chunk_size
        prev_source, prev_chunk_step = None, 0
        try:
            while len(ep) < self.max_steps and not ep.end:
                self._handle_keys(ep)
                while self.paused and not self.quit:
                    time.sleep(0.05)
                    self._handle_keys(ep)
                if self.quit:
                    ep.end = ep.end or "quit"
                    break
                if ep.end:
                    break
                self._record = None
                executor.run(max_steps=1)
                record = self._record
                if record is None or record.observation is None or record.action is None:
                    continue  # a failed read: nothing happened that could be learned from
                frame = to_policy_frame(record.observation, self.features)
                human = record.source == "override"
                if record.source == "policy":
                    if record.new_plan or prev_source != "policy" or prev_chunk_step >= h - 1:
                        ep.next_chunk += 1
                        chunk_step = 0
                    else:
                        chunk_step = prev_chunk_step + 1
                    chunk = ep.next_chunk - 1
                else:
                    chunk, chunk_step = -1, -1
                    if human and prev_source == "policy" and prev_chunk_step < h - 1:
                        ep.interrupted.add(ep.next_chunk - 1)  # the takeover cut this chunk short
                prev_source, prev_chunk_step = record.source, chunk_step
                if self.sim:
                    ep.success = ep.success or bool(self.robot.is_success())
                    reward = float(self.robot.dense_reward()) if cfg.reward == "dense" else float(ep.success)
                    if ep.success:
                        ep.terminated, ep.end = True, "success"
                else:
                    self._handle_keys(ep)  # a success key pressed during this step rewards this step
                    reward = 1.0 if ep.success else 0.0
                ep.frames.append(frame)
                ep.actions.append(np.asarray(record.action, np.float32))
                ep.rewards.append(reward)
                ep.human.append(human)
                ep.chunk_index.append(chunk)
                ep.chunk_step.append(chunk_step)
                if self.person is not None:
                    self.person.after_step()
            if not ep.end:
                ep.end = "time_limit"
        finally:
            if shown is not None:
                shown.detach()
            executor.close()
            self.controller.on_takeover = None

    def _finish_episode(self) -> None:
        ep = self._ep
        self._ep = None
        if ep is None or len(ep) == 0:
            return
        try:
            final = to_policy_frame(self.robot.get_observation(), self.features)
        except Exception as e:  # e.g. the bus went away with the Ctrl-C: the last step's frame ends it
            log.warning("could not read the observation after the episode (%s); its last step is dropped", e)
            final = ep.frames[-1]
            for column in (ep.frames, ep.actions, ep.rewards, ep.human, ep.chunk_index, ep.chunk_step):
                column.pop()
            ep.terminated = ep.success = False
            if len(ep) == 0:
                return
        cams = list(camera_shapes(self.features))
        arrays: dict[str, np.ndarray] = {
            "state": np.stack([f[STATE_KEY] for f in ep.frames]).astype(np.float32),
            "action": np.stack(ep.actions).astype(np.float32),
            "reward": np.asarray(ep.rewards, np.float32),
            "intervention": np.asarray(ep.human, bool),
            "final_state": final[STATE_KEY][None].astype(np.float32),
        }
        for c in cams:
            arrays[f"image.{c}"] = np.stack([f[IMAGE_PREFIX + c] for f in ep.frames])
            arrays[f"final_image.{c}"] = final[IMAGE_PREFIX + c][None]
        header = {"terminated": ep.terminated, "features": self.robot_features, "episode": self.episode_index,
                  "end": ep.end}
        self.link.submit(header, arrays)
        chunk_index = np.asarray(ep.chunk_index, np.int64)
        interrupted = np.isin(chunk_index, sorted(ep.interrupted)) & (chunk_index >= 0)
        self.dataset.write_episode(ep.frames, arrays["action"], arrays["reward"], ep.success, ep.terminated,
                                   arrays["intervention"], chunk_index, np.asarray(ep.chunk_step, np.int64),
                                   interrupted, self.task_name)
        self.env_steps += len(ep)
        n_human = int(arrays["intervention"].sum())
        result = EpisodeResult(
            episode=self.episode_index, steps=len(ep), success=ep.success, policy_success=ep.success and n_human == 0,
            intervention_steps=n_human, takeovers=self.controller.takeovers - self._takeovers_before,
            interrupted_chunks=len(ep.interrupted), evaluation=self._evaluation, end=ep.end,
            weights_version=self.actor.version, env_steps=self.env_steps,
            wall_s=round(time.perf_counter() - self._t0, 3))
        self.results.append(result)
        with (self.output_dir / EPISODES_LOG).open("a") as f:
            f.write(json.dumps(asdict(result)) + "\n")
        if self.cfg.progress:
            log.info("episode %d: %s in %d steps, %d human steps (%d takeovers, %d chunks cut), weights v%d",
                     result.episode, result.end, result.steps, n_human, result.takeovers,
                     result.interrupted_chunks, result.weights_version)
        self.episode_index += 1
