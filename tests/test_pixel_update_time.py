"""benchmarks.pixel_update_time: the fp32 and bf16 pixel updates it times side by side are real updates, and its
FLOP count is the update's."""

import torch

from benchmarks.bench_learner import take_turns
from benchmarks.pixel_update_time import update_flops, update_step

TINY = {"channels": 4, "num_layers": 2, "latent_dim": 8}


def test_fp32_and_bf16_updates_take_turns_and_each_reports_a_median_time():
    torch.manual_seed(0)
    calls: list[str] = []

    def counted(name, step):
        def run() -> float:
            calls.append(name)
            return step()
        return run

    steps = {name: counted(name, update_step(16, 2, 8, True, bf16=bf16, encoder=TINY))
             for name, bf16 in [("fp32", False), ("bf16", True)]}
    seconds = take_turns(steps, calls=2, warmup=2)

    assert calls == ["fp32", "bf16"] * 4        # 2 warm-up rounds, then 2 timed ones, one update each in turn
    assert set(seconds) == {"fp32", "bf16"} and all(s > 0 for s in seconds.values())


def test_flop_count_doubles_with_the_batch_and_its_convolutions_shrink_with_pooling():
    torch.manual_seed(0)
    full, doubled, pooled = (update_flops(32, pool, batch, encoder=TINY) for pool, batch in [(1, 8), (1, 16), (2, 8)])

    def convs(counts: dict[str, int]) -> int:
        return sum(n for op, n in counts.items() if "convolution" in op)

    assert sum(doubled.values()) == 2 * sum(full.values())   # every counted product is per sample
    assert 0 < convs(pooled) < 0.3 * convs(full)              # the CNN sees a quarter of the pixels
