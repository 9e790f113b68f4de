"""The Rerun view wired into the tools: offline chunk study (tools.visualize_chunks) on a recorded
dataset with a small torch policy and its critic, and teleop recording (tools.record --viz.rrd)."""

from pathlib import Path

import numpy as np
import pytest

from robot.config import RobotConfig, TeleoperatorConfig
from robot.interface import ACTION_NAMES, MOTOR_NAMES
from robot.viz import VizConfig
from robot.viz.readback import read_entity_rows, read_scalars, read_text_logs
from tools.record import DatasetRecordConfig, RecordConfig, record

torch = pytest.importorskip("torch")
# Recording the dataset and importing LeRobot / torch take ~15-25 s on 2 busy cores; the tests are quick.
pytestmark = pytest.mark.slow

H = 5


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, Path]:
    """Two scripted-expert episodes of the sim SO-101 lifting the cube, recorded with the view on."""
    tmp = tmp_path_factory.mktemp("viz_tools")
    rrd = tmp / "record.rrd"
    cfg = RecordConfig(robot=RobotConfig.get_choice_class("sim_so101")(task="lift"),
                       teleop=TeleoperatorConfig.get_choice_class("scripted")(),
                       dataset=DatasetRecordConfig(repo_id="local/viz_lift", root=tmp / "ds", num_episodes=2),
                       viz=VizConfig(rrd=rrd), progress=False)
    return record(cfg), rrd


def _checkpoint(tmp: Path, dataset_root: Path) -> Path:
    """A small untrained QChunkSACPolicy for the dataset's robot, saved as a training checkpoint. It reads
    the last 3 states, so the tools' observation histories (visualize_chunks', the executor's) are in play."""
    from policy.checkpoint import save_checkpoint
    from policy.config import QChunkSACConfig
    from policy.learner import QChunkSACLearner
    from policy.qchunk_sac import QChunkSACPolicy
    from robot.recording import open_dataset

    torch.manual_seed(0)
    ds = open_dataset("local/viz_lift", dataset_root)
    states = np.stack(ds.hf_dataset.with_format("numpy")["observation.state"])
    cfg = QChunkSACConfig(act_chunk_size=H, actor_hidden_dims=[32], critic_hidden_dims=[32], num_critics=2,
                          obs_history_length=3).with_features(states.shape[1], ACTION_NAMES, {}, float(ds.fps))
    policy = QChunkSACPolicy(cfg)
    policy.normalizer.fit(states, [-110.0] * 5 + [0.0], [110.0] * 5 + [100.0])
    return save_checkpoint(tmp / "train", 1, policy, QChunkSACLearner(policy))


@pytest.fixture(scope="module")
def exported(recorded, tmp_path_factory) -> tuple[Path, Path]:
    """(training checkpoint, the ONNX actor exported from it with its critic)."""
    from export import export_policy

    tmp = tmp_path_factory.mktemp("viz_policy")
    checkpoint = _checkpoint(tmp, recorded[0])
    onnx = tmp / "actor.onnx"
    export_policy(checkpoint, onnx, with_critic=True, num_random=4, num_dataset=0)
    return checkpoint, onnx


def test_record_with_viz_logs_every_step_of_every_episode_on_one_timeline(recorded):
    root, rrd = recorded
    from robot.recording import open_dataset

    n_frames = open_dataset("local/viz_lift", root).num_frames
    rows = read_entity_rows(rrd)
    for motor in MOTOR_NAMES:
        assert rows[f"/joints/{motor}/measured"] == n_frames
        assert rows[f"/joints/{motor}/sent"] == n_frames
    assert rows["/world/arm/gripper"] == n_frames
    assert not any(p.startswith("/world/chunks/") for p in rows)  # teleoperation: no chunks
    steps, _ = read_scalars(rrd, "/joints/gripper/measured")
    np.testing.assert_array_equal(steps, np.arange(n_frames))  # the second episode continues the first
    assert len(read_text_logs(rrd)["/events/episode"]) == 2


def test_visualize_chunks_shows_one_chunk_every_chunk_size_frames_against_the_demonstration(recorded, tmp_path):
    from tools.visualize_chunks import DatasetSource, PolicySource, VisualizeChunksConfig, visualize_chunks

    root, _ = recorded
    checkpoint = _checkpoint(tmp_path, root)
    rrd = tmp_path / "chunks.rrd"
    cfg = VisualizeChunksConfig(policy=PolicySource(path=checkpoint), dataset=DatasetSource(root=root, episodes=[0, 1]),
                                viz=VizConfig(rrd=rrd))
    assert visualize_chunks(cfg) == rrd

    from robot.recording import open_dataset

    ds = open_dataset("local/viz_lift", root)
    lengths = [int(b) - int(a) for a, b in zip(ds.meta.episodes["dataset_from_index"],
                                               ds.meta.episodes["dataset_to_index"])]
    expected_chunks = sum(-(-n // H) for n in lengths)  # a chunk at frames 0, H, 2H, ... of each episode
    rows = read_entity_rows(rrd)
    assert len([p for p in rows if p.startswith("/world/chunks/")]) == expected_chunks
    assert rows["/chunks/value"] == expected_chunks  # the checkpoint's critic scored every chunk
    assert rows["/chunks/demo_error"] == expected_chunks
    assert rows["/joints/elbow_flex/demo"] == sum(lengths)
    _, values = read_scalars(rrd, "/chunks/value")
    assert np.isfinite(values).all()


def test_visualize_chunks_refuses_a_policy_for_other_joints(recorded, tmp_path):
    from policy.config import QChunkSACConfig
    from policy.qchunk_sac import QChunkSACPolicy
    from tools.visualize_chunks import DatasetSource, PolicySource, VisualizeChunksConfig, visualize_chunks

    root, _ = recorded
    cfg = QChunkSACConfig(act_chunk_size=H, actor_hidden_dims=[8], critic_hidden_dims=[8]).with_features(
        19, ["a.pos", "b.pos"], {}, 30.0)
    QChunkSACPolicy(cfg).save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="trained on this robot"):
        visualize_chunks(VisualizeChunksConfig(policy=PolicySource(path=tmp_path / "other"),
                                               dataset=DatasetSource(root=root), viz=VizConfig(rrd=tmp_path / "x.rrd")))


def test_the_torch_critic_value_equals_the_value_exported_with_the_onnx_actor(recorded, exported, tmp_path):
    from tools.visualize_chunks import DatasetSource, PolicySource, VisualizeChunksConfig, visualize_chunks

    root, _ = recorded
    checkpoint, onnx = exported
    values = {}
    for name, path in (("torch", checkpoint), ("onnx", onnx)):
        rrd = tmp_path / f"{name}.rrd"
        visualize_chunks(VisualizeChunksConfig(policy=PolicySource(path=path), dataset=DatasetSource(root=root),
                                               viz=VizConfig(rrd=rrd)))
        values[name] = read_scalars(rrd, "/chunks/value")
    np.testing.assert_array_equal(values["torch"][0], values["onnx"][0])
    np.testing.assert_allclose(values["torch"][1], values["onnx"][1], atol=1e-5)


def test_run_policy_with_viz_shows_every_chunk_the_executor_played_with_its_value(exported, tmp_path):
    from tools.run_policy import PolicyRef, RunPolicyConfig, run

    _, onnx = exported
    rrd = tmp_path / "run.rrd"
    cfg = RunPolicyConfig(robot=RobotConfig.get_choice_class("sim_so101")(task="lift", fps=30),
                          policy=PolicyRef(path=onnx), episodes=2, max_steps=20, realtime=False,
                          viz=VizConfig(rrd=rrd))
    results = run(cfg)
    rows = read_entity_rows(rrd)
    logs = read_text_logs(rrd)
    n_chunks = len([p for p in rows if p.startswith("/world/chunks/")])
    assert n_chunks == len(logs["/events/new_chunk"]) >= 2 * 20 // H
    assert rows["/chunks/value"] == n_chunks  # the exported critic scored each chunk
    assert rows["/joints/gripper/measured"] == sum(r["steps"] for r in results) == 40
    assert [s for s, _ in logs["/events/episode"]] == [0, 20]
