"""Export -> parity -> load in a fresh process, through torch.onnx.export(dynamo=True), for the three
actor kinds (state MLP, ACT-style with a history of 3, CNN image actor), each with the critic.

The policies are tiny untrained networks built and checkpointed with the learner's own code
(testing.sample_policies). The first dynamo export in a process costs ~15-20 s of one-off set-up,
so the module is marked slow.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from export import read_metadata
from export.exporter import check_parity, export_policy
from robot.history import ObservationHistory, window_states
from testing.sample_policies import make_policy, save_training_checkpoint

pytestmark = pytest.mark.slow
torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
KINDS = ("mlp", "act", "image")
STEPS = 4  # frames fed per episode in the fresh process


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_dynamo")
    out = {}
    for i, kind in enumerate(KINDS):
        policy = make_policy(kind, seed=10 + i)
        checkpoint = save_training_checkpoint(policy, root / f"train_{kind}", step=500 + i)
        output_dir = root / f"out_{kind}"
        result = export_policy(checkpoint, output_dir / "actor.onnx", with_critic=True)
        out[kind] = (policy, checkpoint, result)
    return out


def episode_frames(policy, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    mean, std = policy.normalizer.state_mean.numpy(), policy.normalizer.state_std.numpy()
    frames = []
    for _ in range(STEPS):
        frame = {"observation.state": (mean + std * rng.standard_normal(mean.shape)).astype(np.float32)}
        for cam in policy.camera_names:
            frame[f"observation.images.{cam}"] = rng.integers(0, 256, policy.config.camera_shapes[cam], dtype=np.uint8)
        frames.append(frame)
    return frames


@pytest.mark.parametrize("kind", KINDS)
def test_dynamo_export_writes_one_self_contained_file_that_passes_parity(exports, kind):
    _, _, result = exports[kind]
    assert result.method == "dynamo"
    assert [p.name for p in result.path.parent.iterdir()] == ["actor.onnx"]  # no external weights file
    assert result.parity.passed and result.parity.worst <= 1e-4
    assert result.parity.max_abs_diff_critic["random"] <= 1e-4
    meta = read_metadata(result.path)
    assert meta.critic == {"mode": "chunked", "aggregation": "mean", "num_critics": 2,
                           "action_space": "normalised [-1, 1] chunk (the actor's tanh output)"}
    assert meta.exporter["method"] == "dynamo" and meta.exporter["opset"] == 20
    if kind == "image":
        assert meta.exporter["fused_image_normalisation"] is True
        assert meta.observations["observation.images.front"].to_json() == {"shape": [24, 24, 3], "dtype": "uint8"}


def test_the_batch_axis_is_dynamic(exports):
    from export import OnnxChunkPolicy
    from export.exporter import random_inputs

    policy, _, result = exports["act"]
    onnx_policy = OnnxChunkPolicy(result.path)
    for batch in (1, 7):
        out = onnx_policy.run(random_inputs(policy, batch, seed=batch))
        assert out["action_chunk"].shape == (batch, 5, 6)
        assert out["next_state_history"].shape == (batch, 2, policy.config.state_dim)
        assert out["chunk_q_values"].shape == (batch, 2) and out["chunk_value"].shape == (batch,)


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    from export import OnnxChunkPolicy
    from robot.history import ObservationHistory
    model, frames_file, out_file, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    frames = np.load(frames_file)
    policy = OnnxChunkPolicy(model)
    history = ObservationHistory(policy.history_length)
    keys = sorted({k.split("/", 1)[1] for k in frames.files})
    chunks, values = [], []
    for episode in range(2):
        policy.reset()
        history.clear()
        for t in range(steps):
            history.push({k: frames[f"{t}/{k}"] for k in keys})
            chunks.append(policy.predict_chunk(history.frame()))
            values.append(policy.last_value)
    np.save(out_file, np.stack(chunks))
    print(json.dumps({"values": values, "torch_imported": "torch" in sys.modules}))
""")


@pytest.mark.parametrize("kind", KINDS)
def test_fresh_process_without_torch_reproduces_the_torch_policy_and_critic(exports, kind, tmp_path):
    from policy.checkpoint import load_checkpoint

    policy, checkpoint, result = exports[kind]
    frames = episode_frames(policy, seed=5)
    np.savez(tmp_path / "frames.npz", **{f"{t}/{k}": v for t, f in enumerate(frames) for k, v in f.items()})
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(result.path), str(tmp_path / "frames.npz"),
                           str(tmp_path / "chunks.npy"), str(STEPS)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["torch_imported"] is False
    got = np.load(tmp_path / "chunks.npy")

    # the torch side: the policy's own inference API on the same windows, and the learner's own critic
    torch_policy, learner, _, _ = load_checkpoint(checkpoint)
    torch_policy.eval()
    want, values = [], []
    history = ObservationHistory(torch_policy.history_length)
    for _ in range(2):
        history.clear()
        for frame in frames:
            history.push(frame)
            want.append(torch_policy.predict_chunk(history.frame()))
            with torch.no_grad():
                state = torch.from_numpy(window_states(history.frame(), torch_policy.history_length)).unsqueeze(0)
                images = [torch.from_numpy(frame[f"observation.images.{c}"])[None] for c in torch_policy.camera_names]
                features = torch_policy.features(state, images)
                unit = torch.tanh(torch_policy.distribution(features, state)[0])
                values.append(learner._aggregate(learner.critic(*learner._critic_input(features, unit))).item())
    span = (policy.normalizer.action_high - policy.normalizer.action_low).numpy()
    assert np.abs((got - np.stack(want)) / span).max() < 1e-5
    np.testing.assert_allclose(report["values"], values, atol=1e-4)
    assert np.ptp(got[:, 0, 0]) > 1e-2  # the chunks really depend on the observations


def test_parity_check_uses_dataset_observations(exports, tmp_path):
    from robot.recording import DatasetRecorder

    policy, checkpoint, result = exports["image"]
    names = read_metadata(result.path).observations["observation.state"].names
    features = {**{n: float for n in names}, "front": (24, 24, 3)}
    recorder = DatasetRecorder("local/parity", tmp_path / "dataset", 30, features, policy.action_names)
    rng = np.random.default_rng(0)
    for _ in range(2):
        for frame in episode_frames(policy, seed=int(rng.integers(1000))):
            frame = {"observation.state": frame["observation.state"],
                     "observation.images.front": frame["observation.images.front"]}
            recorder.add_frame(frame, np.zeros(6, np.float32), 0.0, False, False, "lift")
        recorder.save_episode()
    recorder.close()
    report = check_parity(checkpoint, result.path, dataset_repo_id="local/parity", dataset_root=tmp_path / "dataset",
                          num_random=8)
    assert report.samples == {"random": 8, "dataset": 2 * STEPS}
    assert report.max_abs_diff["dataset"] <= 1e-4


def test_run_policy_reports_the_critic_value_of_the_chunks(exports, capsys):
    from tools.run_policy import main

    _, _, result = exports["mlp"]
    main(["--robot.type=sim_so101", "--robot.task=lift", f"--policy.path={result.path}", "--episodes=1",
          "--max_steps=10", "--realtime=false", "--execution.mode=open_loop"])
    episode = json.loads(capsys.readouterr().out)["episodes"][0]
    assert episode["steps"] == 10
    assert np.isfinite(episode["chunk_value_mean"])


def test_a_pooled_image_policy_exports_at_the_camera_resolution_and_keeps_parity(tmp_path):
    policy = make_policy("image", {"image_encoder": {"channels": 4, "num_layers": 2, "latent_dim": 8, "pool": 2}},
                         seed=20)
    checkpoint = save_training_checkpoint(policy, tmp_path / "train", step=700)
    result = export_policy(checkpoint, tmp_path / "out" / "actor.onnx")
    assert result.parity.passed and result.parity.worst <= 1e-4
    meta = read_metadata(result.path)
    assert meta.exporter["fused_image_normalisation"] is True
    # the robot sends full frames; the pool is inside the graph
    assert meta.observations["observation.images.front"].to_json() == {"shape": [24, 24, 3], "dtype": "uint8"}
