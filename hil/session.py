"""The actor side of a human-in-the-loop session: episodes on the robot, takeovers, rewards, data.

    session = HILSession(cfg, robot, teleop, link)      # link: LocalLink or RemoteLink (hil.link)
    results = session.run()

Each episode:

1. between episodes: the learner link's turn (in-process updates), the newest sound weights are
   loaded (no chunk is being computed), the scene is reset (`Person.reset_scene`).
2. the chunk executor runs the policy through the safety layer and yields one record per step
   (the action sent, who drove, the chunk and the step within it). The person's
   `TakeoverController` is its intervention hook: a takeover flushes the queue mid-chunk and the
   follower eases onto the person's commands. Until the learner publishes weights the person
   drives the whole episode (the first episodes are demonstrations).
3. after each step: the session keys (success, failure, pause, quit), then its reward (`hil.scene`:
   the sim's success, or a learned success classifier's with `--reward.path`, unless a key decided).
4. the episode goes to the learner as one batch (`hil.batch`) and to the session's dataset with
   its intervention and chunk flags; `episodes.jsonl` gets a line.

Ctrl-C, the quit key or a fault ends the episode in progress as truncated, sends and writes it,
checkpoints and finalizes the dataset (a fault is raised after that).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hil.batch import robot_features
from hil.config import HILConfig
from hil.dataset import SessionDataset
from hil.episode import Episode, EpisodeResult
from hil.link import LearnerLink
from hil.person import Person
from hil.scene import make_scene
from hil.weights import ActorPolicy
from robot.executor import ChunkExecutor, StepRecord
from robot.features import camera_shapes, state_names, to_policy_frame
from robot.inference_worker import InlineInference
from robot.keyboard import KeyHub
from robot.timing import FakeClock

log = logging.getLogger(__name__)

EPISODES_LOG = "episodes.jsonl"
DATASET_DIR = "dataset"


class HILSession:
    def __init__(self, cfg: HILConfig, robot: Any, teleop: Any, link: LearnerLink, hub: KeyHub | None = None,
                 start_episode: int = 0, env_steps: int = 0) -> None:
        cfg.validate()
        self.cfg, self.robot, self.link = cfg, robot, link
        self.fps = float(getattr(robot.config, "fps", cfg.policy.fps)) if hasattr(robot, "config") else cfg.policy.fps
        self.scene = make_scene(cfg, robot, self.fps)
        self.action_names = tuple(robot.action_features)
        self.features = robot.observation_features
        self.person = Person(cfg, robot, teleop, hub or KeyHub(), self.action_names, self.fps)
        self.actor = ActorPolicy(cfg.policy.chunk_size, self.action_names, self.fps, cfg.actor_noise,
                                 cfg.policy.obs_history_length)   # each episode's executor keeps its history
        self.episode_index, self.env_steps = start_episode, env_steps
        self.results: list[EpisodeResult] = []
        self.output_dir = Path(cfg.output_dir)
        low, high = self._action_bounds()
        self.limits = {n: (float(lo), float(hi)) for n, lo, hi in zip(self.action_names, low, high)}
        self.robot_features = robot_features(len(state_names(self.features)), list(self.action_names),
                                             camera_shapes(self.features), self.fps, low, high)
        # Rerun view (--viz.display_data / --viz.rrd): chunks, takeovers and hand-backs on one timeline
        from robot.viz import ChunkView  # the viewer: loaded by the session that shows it

        self.view = ChunkView.for_robot(cfg.viz, robot, fps=self.fps, chunk_size=cfg.policy.chunk_size,
                                        name=f"hil {self.scene.task}", lossless=not self.scene.realtime)
        self._ep: Episode | None = None

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self.robot, "action_low", None) is not None:
            return np.asarray(self.robot.action_low, float), np.asarray(self.robot.action_high, float)
        limits = getattr(self.robot, "joint_limits", None)
        limits = limits() if callable(limits) else limits
        if not limits:
            raise ValueError("the robot gives no joint limits (calibrate it first: python -m tools.calibrate)")
        return (np.array([limits[n][0] for n in self.action_names], float),
                np.array([limits[n][1] for n in self.action_names], float))

    # ------------------------------------------------------------------ the session
    def run(self, episodes: int | None = None) -> list[EpisodeResult]:
        """Run `episodes` episodes (default cfg.episodes); Ctrl-C keeps everything done so far."""
        last = self.episode_index + (self.cfg.episodes if episodes is None else episodes)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = SessionDataset(f"local/hil_{self.scene.task}", self.output_dir / DATASET_DIR,
                                      int(round(self.fps)), self.features, self.action_names,
                                      getattr(self.robot, "name", None), self.cfg.use_videos, resume=self.cfg.resume)
        try:
            while self.episode_index < last and not self.person.quit:
                self._between_episodes()
                if self.person.quit:
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
                self.dataset.close()
                self.view.close()
        return self.results

    def session_state(self) -> dict[str, Any]:
        return {"episode": self.episode_index, "env_steps": self.env_steps}

    def _between_episodes(self) -> None:
        self.link.between_episodes()
        weights = self.link.latest_weights()
        if weights is not None:
            self.actor.load(*weights)      # unsound weights are refused: the running policy stays
        self.person.reset_scene(self.episode_index, first=not self.results)

    # ------------------------------------------------------------------ one episode
    def _run_episode(self) -> None:
        ep = self._ep = Episode(self.actor.chunk_size)
        e = self.cfg.eval_every
        self._evaluation = bool(e) and self.actor.policy is not None and (self.episode_index + 1) % e == 0
        self.actor.deterministic = self._evaluation
        self.person.start_episode(policy_ready=self.actor.policy is not None, evaluation=self._evaluation)
        self.scene.start_episode()
        self.actor.reset()
        self._t0, self._takeovers_before = time.perf_counter(), self.person.takeovers
        executor = self._executor()
        shown = None
        if self.view.enabled:
            from robot.viz import attach_view  # the viewer's bridge to the executor: only when a view is shown

            shown = attach_view(self.view, executor)
        try:
            with closing(executor.steps(self.scene.max_steps, stop=lambda: bool(ep.end))) as steps:
                for record in steps:
                    self._after_step(ep, record, executor)
            ep.end = ep.end or "time_limit"
        finally:
            if shown is not None:
                shown.detach()
            executor.close()
            self.person.controller.on_takeover = None

    def _executor(self) -> ChunkExecutor:
        # the limits the session already checked (and the learner normalises with), unless given
        safety = dataclasses.replace(self.cfg.safety, joint_limits=self.cfg.safety.joint_limits or self.limits)
        realtime = self.scene.realtime
        executor = ChunkExecutor(self.robot, self.actor, self.cfg.execution.to_config(), safety=safety,
                                 clock=None if realtime else FakeClock(),
                                 inference=None if realtime else InlineInference(self.actor, latency_s=0.0),
                                 intervention=self.person.controller)
        self.person.controller.on_takeover = executor.flush
        self.view.start_episode(str(self.episode_index))
        return executor

    def _after_step(self, ep: Episode, record: StepRecord, executor: ChunkExecutor) -> None:
        if record.observation is not None and record.action is not None:  # else nothing happened to learn from
            self.person.read_keys(ep)             # a success key pressed during this step rewards it
            frame = to_policy_frame(record.observation, self.features)
            reward = self.scene.reward(ep, frame)  # the sim's success or the learned one, unless a key decided
            ep.add(record, frame, reward)
            self.person.after_step()
        else:
            self.person.read_keys(ep)
        if self.person.hold_while_paused(ep):
            executor.restart_schedule()           # the pause is not a run of missed deadlines

    def _finish_episode(self) -> None:
        ep, self._ep = self._ep, None
        if ep is None or len(ep) == 0:
            return
        try:
            final = to_policy_frame(self.robot.get_observation(), self.features)
        except Exception as e:  # e.g. the bus went away with the Ctrl-C: the last step's frame ends it  # noqa: BLE001
            log.warning("could not read the observation after the episode (%s); its last step is dropped", e)
            final = ep.frames[-1]
            ep.drop_last()
            if len(ep) == 0:
                return
        batch = ep.batch(final, list(camera_shapes(self.features)))
        self.link.submit({"terminated": ep.terminated, "features": self.robot_features,
                          "episode": self.episode_index, "end": ep.end}, batch.arrays())
        flags = ep.dataset_columns()
        self.dataset.write_episode(ep.frames, batch.actions, batch.rewards, ep.success, ep.terminated,
                                   flags["intervention"], flags["chunk_index"], flags["chunk_step"],
                                   flags["chunk_interrupted"], self.scene.task)
        self.env_steps += len(ep)
        n_human = int(batch.human.sum())
        result = EpisodeResult(
            episode=self.episode_index, steps=len(ep), success=ep.success, policy_success=ep.success and n_human == 0,
            intervention_steps=n_human, takeovers=self.person.takeovers - self._takeovers_before,
            interrupted_chunks=len(ep.interrupted), evaluation=self._evaluation, end=ep.end,
            weights_version=self.actor.version, env_steps=self.env_steps,
            wall_s=round(time.perf_counter() - self._t0, 3), task_success=self.scene.task_success())
        self.results.append(result)
        with (self.output_dir / EPISODES_LOG).open("a") as f:
            f.write(json.dumps(asdict(result)) + "\n")
        if self.cfg.progress:
            log.info("episode %d: %s in %d steps, %d human steps (%d takeovers, %d chunks cut), weights v%d",
                     result.episode, result.end, result.steps, n_human, result.takeovers,
                     result.interrupted_chunks, result.weights_version)
        self.episode_index += 1
