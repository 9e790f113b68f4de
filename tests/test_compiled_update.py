"""`compile=true`: the critics fused by torch.compile make the same updates as the eager ones."""

from __future__ import annotations

import pytest
import torch

from tests.test_cuda_graph import learner, replay


@pytest.mark.slow
def test_the_compiled_update_makes_the_eager_updates():
    buf = replay(images=False)
    batches = [buf.sample(16, 3, 3, 0.99) for _ in range(3)]
    eager, compiled = learner("cpu"), learner("cpu", compile=True)
    for batch in batches:
        m_eager, m_compiled = eager.update([batch]), compiled.update([batch])
        for k in ("loss_critic", "loss_actor", "q_mean", "alpha"):
            torch.testing.assert_close(m_compiled[k], m_eager[k], rtol=1e-4, atol=1e-5, msg=k)
    for (name, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
