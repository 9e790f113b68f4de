"""The CUDA-graph update (policy/cuda_graph.py): the same updates as the eager learner, replayed from one
graph. The equality tests need a CUDA device; on the CPU the option says what to do instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policy.config import QChunkSACConfig
from policy.learner import QChunkSACLearner
from policy.qchunk_sac import QChunkSACPolicy
from policy.replay import ChunkReplayBuffer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs a CUDA device")
STATE, ACTION, CAM = 4, 2, (16, 16, 3)


def replay(images: bool, seed: int = 0) -> ChunkReplayBuffer:
    rng = np.random.default_rng(seed)
    buf = ChunkReplayBuffer(512, STATE, ACTION, {"cam": CAM} if images else {})
    for t in range(300):
        frame = {"observation.state": rng.normal(size=STATE).astype(np.float32)}
        if images:
            frame["observation.images.cam"] = rng.integers(0, 256, CAM, dtype=np.uint8)
        buf.add(frame, rng.uniform(-1, 1, ACTION), float(t % 50 == 49), t % 50 == 49, False, next_observation=frame)
    return buf


def learner(device: str, images: bool = False, **kw) -> QChunkSACLearner:
    torch.manual_seed(0)
    cfg = QChunkSACConfig(act_chunk_size=3, num_critics=2, critic_hidden_dims=[32, 32], actor_hidden_dims=[32],
                          batch_size=16, use_images=images, grad_clip_norm=10.0, **kw).with_features(
        STATE, [f"j{i}" for i in range(ACTION)], {"cam": CAM} if images else {}, 10.0)
    pol = QChunkSACPolicy(cfg)
    pol.normalizer.fit(np.random.default_rng(0).normal(size=(64, STATE)), -np.ones(ACTION), np.ones(ACTION))
    pol = pol.to(device)
    return QChunkSACLearner(pol, torch.Generator(device).manual_seed(0)).to(device)


def test_cuda_graph_on_a_cpu_learner_says_to_train_on_cuda():
    lrn = learner("cpu", cuda_graph=True)
    batch = replay(False).sample(16, 3, 3, 0.99)
    with pytest.raises(ValueError, match="--device=cuda"):
        lrn.update([batch])
    assert lrn.step == 0


@needs_cuda
@pytest.mark.parametrize("images", [False, True], ids=["state", "pixels"])
def test_graphed_updates_equal_the_eager_updates_on_the_same_batches(images):
    buf = replay(images)
    batches = [[buf.sample(16, 3, 3, 0.99).to("cuda") for _ in range(2)] for _ in range(8)]   # UTD 2, 8 calls
    eager, graphed = learner("cuda", images), learner("cuda", images, cuda_graph=True)
    for utd in batches:   # past the warm-up: captured on the 4th call, replayed from then on
        m_eager = {k: v.clone() for k, v in eager.update(utd).items()}
        m_graph = {k: v.clone() for k, v in graphed.update(utd).items()}
        for k in ("loss_critic", "loss_actor", "q_mean", "alpha"):
            torch.testing.assert_close(m_graph[k], m_eager[k], rtol=1e-4, atol=1e-5, msg=k)
    assert graphed._graphed.graph is not None and graphed.step == eager.step == 16
    for (name, a), b in zip(eager.state_dict().items(), graphed.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


@needs_cuda
def test_the_captured_update_refuses_another_batch_size():
    buf = replay(False)
    lrn = learner("cuda", cuda_graph=True)
    for _ in range(4):
        lrn.update([buf.sample(16, 3, 3, 0.99).to("cuda")])
    with pytest.raises(ValueError, match="batch_size"):
        lrn.update([buf.sample(8, 3, 3, 0.99).to("cuda")])
