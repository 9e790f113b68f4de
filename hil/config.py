"""Configuration of a human-in-the-loop session (draccus, as LeRobot's configs)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from hil.learner import HILLearnerConfig
from hil.scripted_person import ScriptedPersonConfig
from link import TransportConfig
from policy.config import SHORT_RUN_EXPLORATION_NOISE, TRAIN_RECIPE, QChunkSACConfig
from policy.envs import IMAGE_SIZE, check_observation_mode, observation_kwargs
from robot.config import RobotConfig, TeleoperatorConfig
from robot.executor import ExecutionConfig
from robot.safety import SafetyConfig
from robot.sim.robot import SimRobotConfig
from robot.takeover import SessionKeys, TakeoverConfig
from robot.viz import VizConfig


def _sim_robot() -> RobotConfig:
    return RobotConfig.get_choice_class("sim_so101")()


def _scripted_teleop() -> TeleoperatorConfig:
    return TeleoperatorConfig.get_choice_class("scripted")()


def session_policy() -> QChunkSACConfig:
    # tools.train's recipe (TRAIN_RECIPE: relative joint actions, BC weight 2 towards the person's takeovers
    # only, a fixed temperature of 0.01, min over 2 critics of 256x256, terminated chunks kept, three
    # updates per env step), QC-RLPD's structure (chunked critic, h = 5, half of each batch from the
    # takeovers). On the sim lift session (seed 2000, hil.evaluate: 20 person-free episodes per
    # checkpoint) it reached 0.75 person-free success after 100 episodes; the previous session recipe
    # (SHORT_RUN_RECIPE, 2 critics of 128x128, batch 64, one update per step) stayed at 0-0.1 over 150.
    # --preset=qc or --config-path give the paper's 10 x 4x512 critics.
    return QChunkSACConfig(**TRAIN_RECIPE)


@dataclass
class ExecutionOptions:
    mode: str = "open_loop"             # the paper trains and acts with whole chunks open loop
    n_receding: int | None = None

    def to_config(self) -> ExecutionConfig:
        return ExecutionConfig(mode=self.mode, n_receding=self.n_receding)


@dataclass
class RewardConfig:
    # "success": 1 on the step the episode succeeds (the sim's task, the person's success key, or the
    # learned classifier below), else 0; "dense": the sim task's shaped reward every step (sim only)
    signal: str = "success"
    # A success classifier (tools.train_reward's output dir, or its model.onnx): its success ends the
    # episode and pays the reward, in place of the sim's own success; a session key still overrides it.
    path: Path | None = None
    threshold: float | None = None      # probability a frame needs (default: the one the classifier was trained with)
    consecutive_frames: int = 2         # frames in a row at or above the threshold that end the episode

    def validate(self) -> None:
        if self.signal not in ("success", "dense"):
            raise ValueError(f"--reward.signal={self.signal!r}; choose success or dense")
        if self.consecutive_frames < 1:
            raise ValueError(f"--reward.consecutive_frames must be >= 1, got {self.consecutive_frames}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"--reward.threshold must be between 0 and 1, got {self.threshold}")


@dataclass
class HILConfig:
    robot: RobotConfig = field(default_factory=_sim_robot)
    # What the policy learns from, as tools.train --obs_mode: "state" (the robot's float features; on the
    # sim arm its privileged state) or "pixels" (the joint positions and the cameras: on the sim arm
    # the front and wrist cameras at --image_size pixels a side, exactly what a real follower with two
    # cameras gives; on a real arm the cameras it is configured with)
    obs_mode: str = "state"
    image_size: int = IMAGE_SIZE
    teleop: TeleoperatorConfig = field(default_factory=_scripted_teleop)
    policy: QChunkSACConfig = field(default_factory=session_policy)
    learner: HILLearnerConfig = field(default_factory=HILLearnerConfig)
    takeover: TakeoverConfig = field(default_factory=TakeoverConfig)
    keys: SessionKeys = field(default_factory=SessionKeys)
    person: ScriptedPersonConfig = field(default_factory=ScriptedPersonConfig)  # sim + scripted teleop only
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)
    transport: TransportConfig = field(default_factory=TransportConfig)
    viz: VizConfig = field(default_factory=VizConfig)   # --viz.display_data=true / --viz.rrd=FILE
    output_dir: Path = Path("outputs/hil")  # dataset/, episodes.jsonl, metrics.jsonl, checkpoints/ go here
    episodes: int = 50                  # episodes in this run (a resumed run adds this many more)
    episode_time_s: float = 30.0        # real arms (the sim uses its task's time limit)
    reset_time_s: float = 10.0          # real arms: time for the person to reset the scene (a key skips it)
    realtime: bool | None = None        # pace at the robot's fps; default: real arms yes, sim no
    reward: RewardConfig = field(default_factory=RewardConfig)   # --reward.signal, --reward.path (a learned success)
    eval_every: int = 0                 # every n-th episode runs without the person, mean actions (0: never)
    # Exploration: 1 = sample the policy, 0 = its mean, between = scaled. Full samples spoil grasps,
    # so the person takes over nearly every episode and the policy's own attempts teach little
    # (measured with the earlier session recipe; the session_policy above was run at 0.2).
    actor_noise: float = SHORT_RUN_EXPLORATION_NOISE
    checkpoint_every: int = 10          # episodes between learner checkpoints (and at the end, always)
    # In-process learner: update in a background thread (default for real time) or between episodes.
    learner_thread: bool | None = None
    task: str | None = None             # stored with every frame (default: the sim task, or "hil")
    use_videos: bool = False
    resume: bool = False                # continue the session in output_dir (steps, buffers, dataset)
    seed: int = 0                       # sim scenes and the scripted person (episode i: seed + i); learner: --learner.seed
    progress: bool = True               # a progress bar of episodes on stderr

    def __post_init__(self) -> None:
        check_observation_mode(self.obs_mode, self.image_size)
        if self.obs_mode == "pixels":
            if isinstance(self.robot, SimRobotConfig):   # rebuilt: its __post_init__ picks the cameras and joints
                self.robot = replace(self.robot, **observation_kwargs(self.obs_mode, self.image_size))
            self.policy.use_images = True

    def validate(self) -> None:
        self.reward.validate()
        if self.episodes < 0:
            raise ValueError(f"--episodes must be >= 0, got {self.episodes}")
        self.takeover.validate()
