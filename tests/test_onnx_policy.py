"""OnnxChunkPolicy: metadata, input checks, history, error messages, parity-check failures.

Exports here use the TorchScript exporter (dynamo=False, well under a second each); the dynamo
path, the critic and the fresh-process runs are in test_export_onnx.py.
"""

import json

import numpy as np
import pytest
import torch

from contract import ChunkPolicy
from export import (
    ActorMetadata,
    ModelMismatchError,
    ObservationMismatchError,
    OnnxChunkPolicy,
    OnnxModelError,
    read_metadata,
)
from export.exporter import ParityError, check_parity, export_policy
from robot.history import ObservationHistory
from testing.sample_policies import make_policy, save_training_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{kind: (policy, checkpoint dir, onnx path)} for the state MLP and the ACT actor (history 3)."""
    root = tmp_path_factory.mktemp("onnx_policy")
    out = {}
    for kind in ("mlp", "act"):
        policy = make_policy(kind, seed=3)
        checkpoint = save_training_checkpoint(policy, root / f"train_{kind}", step=1234)
        path = export_policy(checkpoint, root / f"{kind}.onnx", dynamo=False).path
        out[kind] = (policy, checkpoint, path)
    return out


def frame_for(policy, rng):
    return {"observation.state": rng.normal(0, 5, policy.config.state_dim).astype(np.float32)}


def test_metadata_round_trips_through_the_file(exported):
    policy, checkpoint, path = exported["act"]
    meta = read_metadata(path)
    cfg = policy.config
    assert meta.chunk_size == cfg.chunk_size == 5
    assert meta.fps == cfg.fps
    assert meta.action_names == tuple(cfg.action_names) and meta.action_names[0] == "shoulder_pan.pos"
    assert meta.observations["observation.state"].shape == (cfg.state_dim,)
    assert meta.observations["observation.state"].dtype == "float32"
    assert meta.observations["observation.state"].names[-1] == "cube.yaw"
    assert meta.history_length == 3 and meta.inputs == ("observation.state", "state_history")
    assert meta.robot_type == "sim_so101"
    assert meta.policy_type == "qchunk_sac"
    assert meta.policy_config == json.loads(json.dumps(cfg.to_dict()))
    assert meta.training_step == 1234
    assert meta.exporter["version"] and meta.exporter["method"] == "torchscript"
    assert meta.parity["passed"] is True
    assert ActorMetadata.from_props(meta.to_props()) == meta


def test_onnx_policy_is_a_chunk_policy_with_the_metadata_attributes(exported):
    _, _, path = exported["mlp"]
    onnx_policy = OnnxChunkPolicy(path)
    assert isinstance(onnx_policy, ChunkPolicy)
    assert (onnx_policy.chunk_size, onnx_policy.fps, onnx_policy.action_names[-1]) == (5, 30.0, "gripper.pos")
    chunk = onnx_policy.predict_chunk(frame_for(exported["mlp"][0], np.random.default_rng(0)))
    assert chunk.shape == (5, 6) and chunk.dtype == np.float32


def test_over_an_episode_the_callers_history_gives_the_onnx_actor_the_torch_policys_chunks(exported):
    policy, _, path = exported["act"]
    onnx_policy = OnnxChunkPolicy(path)
    rng = np.random.default_rng(1)
    frames = [frame_for(policy, rng) for _ in range(5)]
    history = ObservationHistory(onnx_policy.history_length)
    windows = []
    for f in frames:
        history.push(f)
        windows.append(history.frame())
    want = [policy.predict_chunk(w) for w in windows]
    got = [onnx_policy.predict_chunk(w) for w in windows]
    span = (policy.normalizer.action_high - policy.normalizer.action_low).numpy()
    for w, g in zip(want, got):
        assert np.abs((g - w) / span).max() < 1e-5
    # the history matters: the same last frame as an episode's first (its state repeated) gives another chunk
    history.push(frames[4], episode_start=True)
    first = history.frame()
    assert np.abs(got[4] - onnx_policy.predict_chunk(first)).max() > 1e-3
    np.testing.assert_allclose(onnx_policy.predict_chunk(first), policy.predict_chunk(first), atol=1e-3)


def test_missing_observation_key_names_what_is_needed(exported):
    onnx_policy = OnnxChunkPolicy(exported["mlp"][2])
    with pytest.raises(ObservationMismatchError, match="lacks 'observation.state'"):
        onnx_policy.predict_chunk({"observation.images.front": np.zeros((8, 8, 3), np.uint8)})


def test_wrong_state_shape_is_refused(exported):
    onnx_policy = OnnxChunkPolicy(exported["mlp"][2])
    with pytest.raises(ObservationMismatchError, match=r"shape \(12,\).*expects \(19,\)"):
        onnx_policy.predict_chunk({"observation.state": np.zeros(12, np.float32)})


def test_wrong_state_dtype_is_refused(exported):
    onnx_policy = OnnxChunkPolicy(exported["mlp"][2])
    with pytest.raises(ObservationMismatchError, match="dtype float64; the model expects float32"):
        onnx_policy.predict_chunk({"observation.state": np.zeros(19)})


def test_non_finite_state_is_refused(exported):
    onnx_policy = OnnxChunkPolicy(exported["mlp"][2])
    state = np.zeros(19, np.float32)
    state[3] = np.nan
    with pytest.raises(ObservationMismatchError, match="non-finite"):
        onnx_policy.predict_chunk({"observation.state": state})


def test_model_for_another_robot_type_is_refused_unless_allowed(exported):
    from robot import make_robot, robot_config_for

    onnx_policy = OnnxChunkPolicy(exported["mlp"][2])
    koch = make_robot(robot_config_for("sim_koch", task="lift"))
    features, actions = koch.observation_features, tuple(koch.action_features)
    with pytest.raises(ModelMismatchError, match="exported for robot type 'sim_so101', not 'sim_koch'"):
        onnx_policy.check_robot(features, actions, "sim_koch")
    onnx_policy.check_robot(features, actions, "sim_koch", allow_other_robot_type=True)


def test_model_for_another_action_set_or_state_layout_is_refused(exported):
    onnx_policy = OnnxChunkPolicy(exported["mlp"][2])
    names = onnx_policy.metadata.observations["observation.state"].names
    features = {n: float for n in names}
    with pytest.raises(ModelMismatchError, match="another action set"):
        onnx_policy.check_robot(features, ("a.pos", "b.pos"))
    with pytest.raises(ModelMismatchError, match="expects 19 state values but the robot has 18"):
        onnx_policy.check_robot({n: float for n in names[:-1]}, onnx_policy.action_names)
    swapped = {n: float for n in (names[1], names[0], *names[2:])}
    with pytest.raises(ModelMismatchError, match="state features"):
        onnx_policy.check_robot(swapped, onnx_policy.action_names)
    with pytest.raises(ModelMismatchError, match="needs camera"):
        _camera_model(onnx_policy).check_robot(features, onnx_policy.action_names)


def _camera_model(onnx_policy):
    """The same model with a camera in its metadata (check_robot reads only the metadata)."""
    from export.metadata import TensorSpec

    onnx_policy.metadata.observations["observation.images.wrist"] = TensorSpec((8, 8, 3), "uint8")
    return onnx_policy


def test_truncated_file_gives_a_clear_error(exported, tmp_path):
    data = exported["mlp"][2].read_bytes()
    broken = tmp_path / "truncated.onnx"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxModelError, match="corrupted, truncated or not ONNX"):
        OnnxChunkPolicy(broken)


def test_corrupted_bytes_give_a_clear_error(tmp_path, exported):
    data = bytearray(exported["mlp"][2].read_bytes())
    data[:64] = b"\xff" * 64
    broken = tmp_path / "corrupted.onnx"
    broken.write_bytes(bytes(data))
    with pytest.raises(OnnxModelError, match="cannot load"):
        OnnxChunkPolicy(broken)


def test_200_bytes_flipped_inside_the_weights_are_refused_although_onnxruntime_would_run_them(exported, tmp_path):
    import onnx
    import onnxruntime as ort

    data = bytearray(exported["mlp"][2].read_bytes())
    weights = max((t.raw_data for t in onnx.load(str(exported["mlp"][2])).graph.initializer), key=len)
    start = data.find(weights) + 16
    for i in range(start, start + 200):
        data[i] ^= 0xA5
    broken = tmp_path / "flipped.onnx"
    broken.write_bytes(bytes(data))
    session = ort.InferenceSession(bytes(data), providers=["CPUExecutionProvider"])  # no check of its own:
    state = np.zeros((1, exported["mlp"][0].config.state_dim), np.float32)
    assert session.run(None, {"observation.state": state})[0].shape[1:] == (5, 6)  # it loads and runs
    with pytest.raises(OnnxModelError, match="do not match the SHA-256 written into it at export .* re-export it"):
        OnnxChunkPolicy(broken)


def test_an_actor_copied_alone_still_verifies(exported, tmp_path):
    import shutil

    copy = tmp_path / "robot" / "actor.onnx"
    copy.parent.mkdir()
    shutil.copy(exported["mlp"][2], copy)  # the checksum travels inside the file
    assert OnnxChunkPolicy(copy).chunk_size == 5


def test_an_actor_without_its_checksum_is_refused_with_how_to_fix_it(exported, tmp_path):
    import onnx

    model = onnx.load(str(exported["mlp"][2]))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != "sha256"]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    unsealed = tmp_path / "unsealed.onnx"
    onnx.save(model, str(unsealed))
    with pytest.raises(OnnxModelError, match="without the 'sha256' checksum entry .* re-export it"):
        OnnxChunkPolicy(unsealed)


def test_onnx_file_without_chunkbot_metadata_is_refused(exported, tmp_path):
    import onnx

    model = onnx.load(str(exported["mlp"][2]))
    del model.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(model, str(plain))
    with pytest.raises(OnnxModelError, match="no chunkbot chunk-actor metadata"):
        OnnxChunkPolicy(plain)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools.export_onnx"):
        OnnxChunkPolicy(tmp_path / "nope.onnx")


def test_parity_check_fails_loudly_on_a_model_from_other_weights(exported, tmp_path):
    policy, checkpoint, _ = exported["mlp"]
    other = make_policy("mlp", seed=99)
    other_path = export_policy(save_training_checkpoint(other, tmp_path / "other"), tmp_path / "other.onnx",
                               dynamo=False).path
    report = check_parity(checkpoint, other_path, raise_on_failure=False)
    assert not report.passed and report.max_abs_diff["random"] > 1e-2
    with pytest.raises(ParityError, match="disagree"):
        check_parity(checkpoint, other_path)


def test_export_that_fails_parity_leaves_no_file(exported, tmp_path):
    _, checkpoint, _ = exported["mlp"]
    output = tmp_path / "actor.onnx"
    with pytest.raises(ParityError):
        export_policy(checkpoint, output, dynamo=False, tolerance=0.0)  # float rounding alone exceeds 0
    assert list(tmp_path.iterdir()) == []


def test_check_only_cli_exits_nonzero_on_a_mismatched_file(exported, tmp_path, capsys):
    from tools.export_onnx import main

    _, checkpoint, path = exported["mlp"]
    main([f"--policy.path={checkpoint}", f"--output={path}", "--check-only"])
    assert json.loads(capsys.readouterr().out)["parity"]["passed"] is True
    with pytest.raises(SystemExit) as exit_info:
        main([f"--policy.path={exported['act'][1]}", f"--output={path}", "--check-only=true"])
    assert exit_info.value.code != 0


def test_dynamo_failure_falls_back_to_torchscript_and_says_so(exported, tmp_path, monkeypatch, caplog):
    real_export = torch.onnx.export

    def export_without_dynamo(*args, dynamo=True, **kwargs):
        if dynamo:
            raise RuntimeError("unsupported op in torch.export")
        return real_export(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export_without_dynamo)
    result = export_policy(exported["mlp"][1], tmp_path / "actor.onnx")
    assert result.method == "torchscript" and result.parity.passed
    assert "falling back to the TorchScript exporter" in caplog.text and "unsupported op" in caplog.text
    assert read_metadata(result.path).exporter["method"] == "torchscript"


def test_the_frames_state_history_is_what_the_graph_reads_and_calls_leave_no_state_behind(exported):
    policy, _, path = exported["act"]
    onnx_policy = OnnxChunkPolicy(path)
    rng = np.random.default_rng(4)
    steps = [frame_for(policy, rng)["observation.state"] for _ in range(3)]  # consecutive control steps
    frame = {"observation.state": steps[2], "state_history": np.stack(steps[:2])}
    chunk = onnx_policy.predict_chunk(frame)
    want = onnx_policy.run({"observation.state": steps[2][None], "state_history": np.stack(steps[:2])[None]})
    np.testing.assert_array_equal(chunk, want["action_chunk"][0])
    onnx_policy.predict_chunk({"observation.state": steps[0], "state_history": np.stack([steps[0]] * 2)})
    np.testing.assert_array_equal(onnx_policy.predict_chunk(frame), chunk)  # stateless: the same frame, the same chunk


def test_a_frame_without_the_state_history_a_history_actor_reads_is_refused_with_what_to_do(exported):
    policy, _, path = exported["act"]
    onnx_policy = OnnxChunkPolicy(path)
    state = frame_for(policy, np.random.default_rng(5))["observation.state"]
    with pytest.raises(ObservationMismatchError, match=r"no 'state_history' \(\(2, 19\) float32.*ObservationHistory"):
        onnx_policy.predict_chunk({"observation.state": state})
    with pytest.raises(ObservationMismatchError, match="state_history"):
        onnx_policy.predict_chunk({"observation.state": state, "state_history": np.stack([state] * 3)})


def test_when_both_exporters_fail_the_error_says_why_and_no_file_is_left(exported, tmp_path, monkeypatch, caplog):
    from export import ExportError

    def failing_export(*args, dynamo=True, **kwargs):
        raise RuntimeError(f"cannot trace op foo (dynamo={dynamo})")

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    with pytest.raises(ExportError, match=r"TorchScript exporter failed: RuntimeError: cannot trace op foo \(dynamo=False\)"):
        export_policy(exported["mlp"][1], tmp_path / "actor.onnx")
    assert "cannot trace op foo (dynamo=True)" in caplog.text
    assert list(tmp_path.iterdir()) == []
