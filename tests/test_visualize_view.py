"""ChunkView on its own: headless .rrd recordings read back through Rerun's reader, the arm model, and who
loads the viewer."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot.interface import ACTION_NAMES, MOTOR_NAMES
from robot.sim import SimKochConfig, SimSO101Config
from robot.viz import ChunkView, VizConfig
from robot.viz.arm_model import ArmModel, arm_type_for
from robot.viz.readback import read_blueprint_views, read_entity_rows, read_scalars, read_text_logs

FPS = 50.0
SIM_CONFIGS = {"sim_so101": SimSO101Config, "sim_koch": SimKochConfig}
H = 8
REPO = Path(__file__).resolve().parents[1]


def _view(tmp_path, **overrides) -> tuple[ChunkView, object]:
    path = tmp_path / "view.rrd"
    return ChunkView(VizConfig(rrd=path, **overrides), fps=FPS, chunk_size=H, arm="so101"), path


def _chunk(c: int) -> np.ndarray:
    """A chunk whose values name it: joint i of action j of chunk c is 10 c + j + 0.1 i (degrees)."""
    j = np.arange(H, dtype=np.float32)[:, None]
    return (10.0 * c + j + 0.1 * np.arange(6, dtype=np.float32)[None, :]).astype(np.float32)


def test_a_disabled_view_takes_calls_and_writes_nothing(tmp_path):
    view = ChunkView(VizConfig(), fps=FPS, chunk_size=H, arm="so101")
    assert not view.enabled
    assert view.log_step(0, 0.0, np.zeros(6)) is False
    assert view.log_chunk(_chunk(0), origin=0) is False
    view.close()
    assert list(tmp_path.iterdir()) == []


def test_each_chunk_is_one_3d_path_and_its_plan_is_drawn_from_its_origin_on(tmp_path):
    view, path = _view(tmp_path)
    n_chunks = 5
    for k in range(n_chunks * 4):
        if k % 4 == 2:  # chunk c predicted at step k - 2, arrived at k with 2 stale actions
            c = k // 4
            view.log_chunk(_chunk(c), origin=k - 2, obs_step=k - 2, arrival_step=k, obs_time=(k - 2) / FPS,
                           arrival_time=k / FPS, stale=2)
        view.log_step(k, k / FPS, np.full(6, float(k)), np.full(6, k + 0.5), source="policy")
    view.close()

    rows = read_entity_rows(path)
    paths_3d = sorted(p for p in rows if p.startswith("/world/chunks/"))
    assert paths_3d == [f"/world/chunks/c{c:06d}" for c in range(n_chunks)]
    for motor in MOTOR_NAMES:
        assert rows[f"/joints/{motor}/measured"] == n_chunks * 4
        assert rows[f"/joints/{motor}/sent"] == n_chunks * 4
    # odd chunks (1 and 3) share a plan series: the elbow's (joint 2) holds chunk 1 at steps 4..11
    # and chunk 3 at steps 12..19, each at the steps it targets, with the chunk's own values
    steps, values = read_scalars(path, "/joints/elbow_flex/plan/odd")
    np.testing.assert_array_equal(steps, np.arange(4, 12 + H))
    np.testing.assert_allclose(values, np.concatenate([_chunk(1)[:, 2], _chunk(3)[:, 2]]), rtol=1e-6)
    assert rows["/joints/elbow_flex/plan/even"] == 3 * H
    stale = read_text_logs(path)["/events/stale_dropped"]
    assert [s for s, _ in stale] == [4 * c + 2 for c in range(n_chunks)]


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    # Chunks do not wake the logging thread (steps do), and it sleeps flush_every_s between
    # wake-ups, so with a 10 s flush interval nothing is drained while the loop below runs.
    view, path = _view(tmp_path, queue_size=5, flush_every_s=10.0)
    accepted = [view.log_chunk(_chunk(c), origin=c) for c in range(50)]
    assert accepted == [True] * 5 + [False] * 45
    assert view.dropped == 45
    view.log_step(0, 0.0, np.zeros(6))  # dropped too: the queue is still full
    view.close()
    rows = read_entity_rows(path)
    assert len([p for p in rows if p.startswith("/world/chunks/")]) == 5
    assert "/joints/shoulder_pan/measured" not in rows


def test_the_recording_carries_a_blueprint_with_the_arm_every_joint_the_loop_and_the_events(tmp_path):
    view, path = _view(tmp_path)
    view.log_step(0, 0.0, np.zeros(6))
    view.close()
    origins = {(kind, origin) for kind, _, origin in read_blueprint_views(path)}
    assert ("3D", "/world") in origins
    assert {("TimeSeries", f"/joints/{m}") for m in MOTOR_NAMES} <= origins
    assert {("TimeSeries", "/timing"), ("TimeSeries", "/queue"), ("TextLog", "/events")} <= origins


def test_events_are_logged_at_their_step_with_their_text(tmp_path):
    view, path = _view(tmp_path)
    for k in range(10):
        view.log_step(k, k / FPS, np.zeros(6), source="override" if 3 <= k < 6 else "policy")
    view.log_event("start_jump", 7, "jump refused")
    view.close()
    logs = read_text_logs(path)
    assert logs["/events/takeover"][0][0] == 3
    assert logs["/events/hand_back"][0][0] == 6
    assert logs["/events/start_jump"] == [(7, "jump refused")]


def test_the_arm_model_geometry_in_body_frames_lands_where_mujoco_puts_the_geoms():
    import mujoco

    model = ArmModel("koch", use_degrees=False)
    joints = np.array([20.0, -30.0, 40.0, 10.0, -50.0, 60.0])
    pos, quat_xyzw = model.body_poses(joints)
    data = model.data  # posed at `joints` by body_poses
    for b, p, q in zip(model.arm_bodies, pos, quat_xyzw):
        g = model.geometry(b)
        if not g.boxes:
            continue
        wxyz = np.array([q[3], q[0], q[1], q[2]])
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, wxyz)
        world_centres = p + g.boxes["centers"] @ rot.reshape(3, 3).T
        box_ids = [i for i in range(model.model.ngeom)
                   if model.model.geom_bodyid[i] == b and model.model.geom_type[i] == mujoco.mjtGeom.mjGEOM_BOX]
        np.testing.assert_allclose(world_centres, data.geom_xpos[box_ids], atol=1e-9)


def test_a_capsule_is_drawn_from_one_cap_centre_to_the_other():
    import mujoco

    model = ArmModel("so101")
    m = model.model
    g = next(i for i in range(m.ngeom) if m.geom_type[i] == mujoco.mjtGeom.mjGEOM_CAPSULE)
    caps = model.geometry(int(m.geom_bodyid[g])).capsules
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, m.geom_quat[g])
    axis = rot.reshape(3, 3)[:, 2]
    np.testing.assert_allclose(caps["translations"][0], m.geom_pos[g] - m.geom_size[g][1] * axis, atol=1e-12)
    np.testing.assert_allclose(caps["translations"][0] + caps["lengths"][0] * axis,
                               m.geom_pos[g] + m.geom_size[g][1] * axis, atol=1e-12)


@pytest.mark.parametrize("robot_type", ["sim_so101", "sim_koch"])
def test_the_arm_model_tcp_matches_the_sim_robot_in_robot_units(robot_type):
    robot = SIM_CONFIGS[robot_type](seed=0).build()
    model = ArmModel(arm_type_for(robot.name), use_degrees=robot.config.use_degrees)
    chunk = robot.joint_positions() + np.linspace(-10, 10, 5)[:, None] * np.ones(6)
    np.testing.assert_allclose(model.tcp_path(chunk), robot.tcp_positions(chunk), atol=1e-9)


def test_robot_names_map_to_the_arm_model_that_draws_them():
    assert [arm_type_for(n) for n in ("sim_koch", "koch_follower", "so100_follower", "so101_follower",
                                      "sim_so101", "first_order_arm")] == ["koch", "koch", "so101", "so101",
                                                                           "so101", None]
    assert len(ACTION_NAMES) == 6


def test_each_episode_continues_the_timeline_after_the_previous_one(tmp_path):
    view, path = _view(tmp_path)
    for episode in range(3):
        view.start_episode(str(episode))
        for k in range(10):  # every episode's loop counts from step 0 and clock 0
            if k == 2:
                view.log_chunk(_chunk(episode), origin=k)
            view.log_step(k, k / FPS, np.full(6, float(episode)))
    view.close()
    steps, values = read_scalars(path, "/joints/gripper/measured")
    np.testing.assert_array_equal(steps, np.arange(30))
    np.testing.assert_array_equal(values, np.repeat([0.0, 1.0, 2.0], 10))
    assert [s for s, _ in read_text_logs(path)["/events/episode"]] == [0, 10, 20]
    assert [s for s, _ in read_text_logs(path)["/events/new_chunk"]] == [2, 12, 22]


def test_streaming_to_a_viewer_and_saving_a_file_at_once_keeps_everything_in_the_file(tmp_path):
    import socket

    import rerun as rr

    with socket.socket() as sock:  # a free port for a stand-in viewer (Rerun's gRPC server)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = rr.RecordingStream("stand_in_viewer")
    url = server.serve_grpc(grpc_port=port)
    path = tmp_path / "both.rrd"
    view = ChunkView(VizConfig(display_data=True, viewer_url=url, rrd=path), fps=FPS, chunk_size=H, arm="so101")
    for k in range(12):
        view.log_step(k, k / FPS, np.zeros(6))
    view.close()
    server.disconnect()
    assert read_entity_rows(path)["/joints/wrist_roll/measured"] == 12


def test_a_malformed_chunk_is_skipped_and_the_view_keeps_logging(tmp_path):
    view, path = _view(tmp_path)
    view.log_chunk(np.zeros(6), origin=0)  # (A,) instead of (h, A)
    view.log_chunk(_chunk(1), origin=1)
    view.log_step(1, 1 / FPS, np.zeros(6))
    view.close()
    rows = read_entity_rows(path)
    assert [p for p in rows if p.startswith("/world/chunks/")] == ["/world/chunks/c000000"]
    assert rows["/joints/gripper/measured"] == 1


def test_importing_the_training_job_or_the_hil_session_loads_no_viewer():
    code = ("import sys, policy.training, hil.session, hil.config\n"
            "print(sorted(m for m in ('robot.viz.view', 'rerun') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
