"""Human-in-the-loop sessions on the sim arm: stored flags, resume, Ctrl-C, the remote learner."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from hil.config import HILConfig
from hil.learner import HILLearnerConfig
from hil.link import LocalLink, RemoteLink
from hil.runner import open_learner, run_session
from hil.scripted_person import ScriptedPersonConfig
from hil.serve import LearnerServiceConfig, serve_learner
from hil.session import EPISODES_LOG
from link import TransportConfig, free_port
from policy.config import QChunkSACConfig
from robot.config import robot_config_for
from robot.recording import open_dataset
from robot.sim.expert import ScriptedTeleopConfig
from robot.sim.robot import SimRobot, SimSO101Config

torch.set_num_threads(1)
H = 5


def tiny_policy() -> QChunkSACConfig:
    return QChunkSACConfig(num_critics=2, critic_hidden_dims=[32, 32], actor_hidden_dims=[32, 32], batch_size=16,
                           act_chunk_size=H)


def session_config(out: Path, episodes: int, **kw) -> HILConfig:
    cfg = HILConfig(robot=robot_config_for("sim_so101", task="lift", seed=0), teleop=ScriptedTeleopConfig(),
                    policy=tiny_policy(),
                    learner=HILLearnerConfig(learning_starts=30, updates_per_step=0.1, publish_every=5,
                                             initial_updates=5),
                    person=ScriptedPersonConfig(patience_steps=4, takeover_steps=6),
                    output_dir=out, episodes=episodes, progress=False, checkpoint_every=0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def run_local(cfg: HILConfig):
    learner, start = open_learner(cfg)
    results = run_session(cfg, LocalLink(learner, background=False), start)
    return results, learner


def read_frames(out: Path, repo_id: str = "local/hil_lift") -> dict[str, np.ndarray]:
    ds = open_dataset(repo_id, out / "dataset")
    cols = ["episode_index", "complementary_info.is_intervention", "complementary_info.chunk_index",
            "complementary_info.chunk_step", "complementary_info.chunk_interrupted", "next.done"]
    table = ds.hf_dataset.select_columns(cols).with_format("numpy")[:]
    return {k: np.asarray(table[k]).reshape(len(ds), -1)[:, 0] for k in cols}


def episodes_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / EPISODES_LOG).read_text().splitlines()]


def real_time_arm():
    """A connected first-order arm on the real clock, with limits too wide to clip anything."""
    from robot.timing import RealClock
    from tests.executor_doubles import WIDE_LIMITS, FirstOrderArm

    arm = FirstOrderArm(RealClock(), joint_limits=WIDE_LIMITS)
    arm.connect()
    return arm


def person_at_leader(at_read: dict[int, Callable[[], None]]):
    """A leader arm held still by the person, who does `at_read[n]()` (a key press) at its n-th read."""
    from tests.test_hil_takeover import HandLeader

    class Person(HandLeader):
        calls = 0

        def get_action(self):
            self.calls += 1
            if self.calls in at_read:
                at_read[self.calls]()
            return super().get_action()

    return Person(np.full(6, 3.0))


def test_intervention_flags_and_interrupted_chunks_are_stored(tmp_path):
    results, learner = run_local(session_config(tmp_path, episodes=3))
    assert results[0].intervention_steps == results[0].steps             # no weights yet: a demo
    assert results[1].weights_version >= 1 and results[1].takeovers >= 1  # the policy drove, the person cut in
    f = read_frames(tmp_path)
    human = f["complementary_info.is_intervention"].astype(bool)
    chunk = f["complementary_info.chunk_index"]
    assert human.sum() == sum(r.intervention_steps for r in results)
    assert (chunk[human] == -1).all() and (chunk[~human] >= 0).all()
    assert (f["complementary_info.chunk_step"][~human] < H).all()
    cut = f["complementary_info.chunk_interrupted"].astype(bool)
    assert cut.any()
    ep = f["episode_index"]
    for e in np.unique(ep[cut]):
        for c in np.unique(chunk[cut & (ep == e)]):
            rows = np.flatnonzero((ep == e) & (chunk == c))
            assert len(rows) < H and human[rows[-1] + 1]                  # cut short, by the person
    assert sum(r.interrupted_chunks for r in results) == sum(
        len(np.unique(chunk[cut & (ep == e)])) for e in np.unique(ep))
    assert len(learner.demos) == human.sum()                              # every takeover step is a demo too


def test_resume_continues_the_step_count_the_buffer_and_the_dataset(tmp_path):
    first, _ = run_local(session_config(tmp_path, episodes=2))
    steps_before = sum(r.steps for r in first)
    with pytest.raises(FileExistsError, match="resume"):
        open_learner(session_config(tmp_path, episodes=1))
    second, learner = run_local(session_config(tmp_path, episodes=1, resume=True))
    log = episodes_log(tmp_path)
    assert [row["episode"] for row in log] == [0, 1, 2]
    assert log[-1]["env_steps"] == steps_before + second[0].steps
    assert learner.env_steps == steps_before + second[0].steps
    assert len(learner.online) == learner.env_steps
    assert open_dataset("local/hil_lift", tmp_path / "dataset").meta.total_episodes == 3


class CtrlCArm(SimRobot):
    """The sim arm; Ctrl-C arrives during the `interrupt_at`-th command of the run."""

    interrupt_at = 0

    def send_action(self, action):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return super().send_action(action)


def test_ctrl_c_mid_episode_keeps_the_partial_episode_and_checkpoints(tmp_path, monkeypatch):
    from hil import runner

    cfg = session_config(tmp_path, episodes=3)
    robot = CtrlCArm(SimSO101Config(task="lift", seed=0))
    robot.interrupt_at = 50                                  # early in the second episode
    monkeypatch.setattr(runner, "build_devices", lambda c, hub: (robot, c.teleop.build(robot=robot)))
    results, learner = run_local(cfg)
    assert results[-1].end == "interrupted"
    kept = sum(r.steps for r in results)
    assert kept == 49                                        # every executed step, the cut episode included
    assert learner.env_steps == kept
    resumed, learner2 = run_local(session_config(tmp_path, episodes=1, resume=True))
    assert learner2.env_steps == kept + resumed[0].steps
    assert open_dataset("local/hil_lift", tmp_path / "dataset").meta.total_episodes == len(results) + 1


def test_an_actor_and_a_remote_learner_lose_no_step(tmp_path, monkeypatch):
    monkeypatch.setenv("CHUNKBOT_LINK_TOKEN", "t0k")
    transport = TransportConfig(port=free_port())
    service = LearnerServiceConfig(policy=tiny_policy(), learner=HILLearnerConfig(learning_starts=30,
                                   updates_per_step=0.1, publish_every=5, initial_updates=5), transport=transport,
                                   output_dir=tmp_path / "learner", checkpoint_every_s=1e9)
    stop, ready, box = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=lambda: box.update(learner=serve_learner(service, stop, ready)))
    thread.start()
    try:
        assert ready.wait(30)
        cfg = session_config(tmp_path / "actor", episodes=3, transport=transport)
        link = RemoteLink(transport, cfg.output_dir, weights_wait_s=1.0)
        results = run_session(cfg, link, {})
    finally:
        stop.set()
        thread.join(60)
    learner = box["learner"]
    assert learner.env_steps == sum(r.steps for r in results)
    assert learner.intervention_steps == sum(r.intervention_steps for r in results)
    assert link.client.pending == 0 and link.problem is None
    assert (tmp_path / "learner" / "checkpoints" / "last").exists()


@pytest.mark.slow
def test_the_sim_session_command_runs_end_to_end(tmp_path, capsys):
    from tools.hil_session import main

    main(["--robot.type=sim_so101", "--robot.task=lift", "--teleop.type=scripted", f"--output_dir={tmp_path}",
          "--episodes=3", "--policy.critic_hidden_dims=[32,32]", "--policy.actor_hidden_dims=[32,32]",
          "--policy.batch_size=16", "--learner.learning_starts=30", "--learner.updates_per_step=0.1",
          "--learner.initial_updates=5"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 3 and 0.0 < summary["intervention_fraction"] <= 1.0
    assert (tmp_path / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").exists()


def test_keys_end_episodes_on_a_real_arm_flow_success_then_quit(tmp_path):
    from hil.learner import HILLearner
    from hil.session import HILSession
    from robot.keyboard import ESC, KeyHub

    hub = KeyHub()
    person = person_at_leader({10: lambda: hub.press("o"), 25: lambda: hub.press(ESC)})  # success, then quit
    cfg = session_config(tmp_path, episodes=5, reset_time_s=0.0, episode_time_s=10.0, realtime=False)
    learner = HILLearner(tiny_policy(), HILLearnerConfig(learning_starts=10_000))
    session = HILSession(cfg, real_time_arm(), person, LocalLink(learner, background=False), hub)
    results = session.run()
    assert [(r.end, r.steps, r.success) for r in results] == [("success", 10, True), ("quit", 15, False)]
    assert learner.env_steps == 25 and learner.intervention_steps == 25      # the person drove (no weights yet)
    f = read_frames(tmp_path, "local/hil_hil")
    assert f["next.done"].astype(bool).tolist() == [False] * 9 + [True] + [False] * 15


def test_a_real_time_session_trains_in_a_background_thread_while_the_loop_keeps_time(tmp_path):
    from hil.learner import HILLearner
    from hil.session import HILSession

    cfg = session_config(tmp_path, episodes=4, reset_time_s=1.0, episode_time_s=0.5, realtime=True)
    learner = HILLearner(tiny_policy(), HILLearnerConfig(learning_starts=10, initial_updates=5, updates_per_step=1.0,
                                                         publish_every=5))
    link = LocalLink(learner, background=True)
    try:
        results = HILSession(cfg, real_time_arm(), person_at_leader({}), link).run()
    finally:
        link.close()
    assert [r.steps for r in results] == [15, 15, 15, 15]      # 0.5 s at 30 fps each
    assert all(r.wall_s < 1.0 for r in results)                # the learner thread never stalled the loop
    assert results[0].intervention_steps == 15                 # no weights yet: the person drove
    assert any(r.weights_version >= 1 and r.intervention_steps == 0 for r in results[1:])
    assert learner.learner.step >= 5


def test_pause_holds_the_arm_until_the_pause_key_comes_again(tmp_path):
    from hil.learner import HILLearner
    from hil.session import HILSession
    from robot.keyboard import KeyHub

    hub = KeyHub()

    def pause_for_a_while() -> None:  # at the 5th read: pause, and pause again 0.3 s later to resume
        hub.press("p")
        threading.Timer(0.3, hub.press, args=("p",)).start()

    arm = real_time_arm()
    cfg = session_config(tmp_path, episodes=1, episode_time_s=0.4, realtime=True)
    learner = HILLearner(tiny_policy(), HILLearnerConfig(learning_starts=10_000))
    results = HILSession(cfg, arm, person_at_leader({5: pause_for_a_while}), LocalLink(learner, background=False),
                         hub).run()
    assert results[0].steps == 12                                          # the pause costs no step
    times = np.array([t for t, _ in arm.received])
    gaps = np.diff(times)
    assert gaps.max() >= 0.25 and int(np.argmax(gaps)) == 4                # nothing sent while paused, after step 5


def test_one_policy_flag_keeps_the_other_session_policy_defaults(tmp_path):
    from tools._policy_cli import parse_with_policy_file

    default = HILConfig().policy
    cfg = parse_with_policy_file(HILConfig, ["--policy.bc_weight=0.5", "--episodes=3"])
    assert cfg.policy.bc_weight == 0.5 and cfg.episodes == 3
    assert (cfg.policy.num_critics, cfg.policy.critic_hidden_dims, cfg.policy.temperature_init) == (
        default.num_critics, default.critic_hidden_dims, default.temperature_init)
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps({"act_chunk_size": 8, "enable_q_chunking": True}))
    cfg = parse_with_policy_file(HILConfig, [f"--config-path={seed_file}"])
    assert cfg.policy.act_chunk_size == 8 and cfg.policy.num_critics == default.num_critics


def test_a_session_recorded_with_the_rerun_view_shows_its_chunks_and_takeovers(tmp_path):
    from robot.viz import VizConfig
    from robot.viz.readback import read_entity_rows, read_text_logs

    rrd = tmp_path / "session.rrd"
    results, _ = run_local(session_config(tmp_path / "out", episodes=3, viz=VizConfig(rrd=rrd)))
    assert rrd.is_file()
    logs = read_text_logs(rrd)
    takeovers = sum(r.takeovers for r in results)
    assert takeovers >= 1 and len(logs.get("/events/takeover", [])) == takeovers
    assert read_entity_rows(rrd)  # the arm, joints and chunk paths were logged


def test_a_bus_fault_mid_episode_keeps_the_steps_taken_and_is_raised(tmp_path):
    from hil.learner import HILLearner
    from hil.session import HILSession

    arm = real_time_arm()
    arm.fail_reads_from_call = 12      # the bus stops answering during the first episode
    cfg = session_config(tmp_path, episodes=2, reset_time_s=0.0, episode_time_s=10.0, realtime=False)
    learner = HILLearner(tiny_policy(), HILLearnerConfig(learning_starts=10_000))
    with pytest.raises(Exception) as fault:
        HILSession(cfg, arm, person_at_leader({}), LocalLink(learner, background=False)).run()
    assert not isinstance(fault.value, KeyboardInterrupt)
    [episode] = episodes_log(tmp_path)
    assert episode["end"] == "fault" and episode["steps"] > 0
    assert learner.env_steps == episode["steps"]
    assert len(read_frames(tmp_path, "local/hil_hil")["next.done"]) == episode["steps"]


def test_a_pixels_session_on_the_sim_arm_runs_and_its_policy_reads_the_cameras(tmp_path):
    cfg = HILConfig(robot=robot_config_for("sim_so101", task="lift", seed=0), teleop=ScriptedTeleopConfig(),
                    policy=tiny_policy(), obs_mode="pixels", image_size=24,
                    learner=HILLearnerConfig(learning_starts=10, updates_per_step=0.1, publish_every=5,
                                             initial_updates=2),
                    person=ScriptedPersonConfig(patience_steps=4, takeover_steps=6),
                    output_dir=tmp_path, episodes=2, progress=False, checkpoint_every=0)
    results, learner = run_local(cfg)
    assert len(results) == 2 and learner.learner.step > 0
    assert results[1].weights_version >= 1 and results[1].steps > 0   # the second episode's actor played the pixel policy
    policy = learner.policy.config
    assert policy.use_images and policy.camera_shapes == {"front": [24, 24, 3], "wrist": [24, 24, 3]}
    assert policy.state_dim == 6                     # the joint positions, nothing privileged
    assert learner.policy.encoder.camera_names == ["front", "wrist"]
    assert learner.online.images["front"][: learner.online.size].any()   # real frames reached the replay


def test_the_session_command_takes_the_observation_mode():
    from tools._policy_cli import parse_cli

    cfg = parse_cli(HILConfig, ["--obs_mode=pixels", "--image_size=32", "--robot.type=sim_so101"], tool="hil_session")
    assert cfg.policy.use_images and (cfg.robot.obs_mode, cfg.robot.cameras) == ("pixels", ["front", "wrist"])
    assert (cfg.robot.image_height, cfg.robot.image_width, cfg.robot.state_features) == (32, 32, "positions")
    assert not parse_cli(HILConfig, ["--robot.type=sim_so101"], tool="hil_session").policy.use_images
