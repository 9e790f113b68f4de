"""GraphedUpdate: the learner's whole update (critic, actor, temperature, Polyak, optimiser steps), UTD
updates in a row, recorded once as one CUDA graph and replayed.

Why: at the sizes chunkbot trains (a few 256-wide layers, batch 256) an eager update on a GPU is a few
hundred small kernels whose launches cost far more than their arithmetic; replaying a graph launches
them all at once. A lean probe of an update of this shape went from ~140 to ~1,900 updates/s on an H200.

What a graph asks of the update, and how the learner meets it:
  * fixed shapes and addresses: the batches are copied into static tensors before each replay (the
    batch size and UTD never change within a run); gradients, optimiser states and outputs stay where
    the capture put them;
  * no host synchronisation: the update reads nothing back (its metrics are device tensors);
  * optimisers whose step count lives on the device: Adam(capturable=True) (the learner asks for it);
  * its random numbers (policy noise, image shifts) from the learner's generator, registered with the
    graph so each replay draws fresh ones;
  * Adam's lazily created state: the first `warmup` updates run eagerly on a side stream (they are real
    updates on real batches), then the graph is captured and replayed for the same call's batches.

The metrics a replay returns are the graph's static outputs: read them before the next update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields

import torch

from policy.replay import ChunkBatch

WARMUP_UPDATES = 3   # eager calls before the capture (Adam's state and cuBLAS workspaces exist by then)


def _tensors(batch: ChunkBatch) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for f in fields(ChunkBatch):
        x = getattr(batch, f.name)
        out.extend(x[k] for k in sorted(x)) if isinstance(x, dict) else out.append(x)
    return out


class GraphedUpdate:
    """`update_one(batch) -> metrics` for `len(batches)` batches in a row, as one CUDA graph."""

    def __init__(self, update_one: Callable[[ChunkBatch], dict[str, torch.Tensor]],
                 generator: torch.Generator | None, warmup: int = WARMUP_UPDATES) -> None:
        self.update_one, self.generator, self.warmup = update_one, generator, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self._static: list[ChunkBatch] = []
        self._static_inputs: list[torch.Tensor] = []
        self._metrics: dict[str, torch.Tensor] = {}
        self._stream: torch.cuda.Stream | None = None
        self.eager_calls = 0

    def __call__(self, batches: Sequence[ChunkBatch]) -> dict[str, torch.Tensor]:
        if self.graph is None:
            return self._eager_or_capture(batches)
        if len(batches) != len(self._static):
            raise ValueError(f"the captured update runs {len(self._static)} batches (UTD) per call, got "
                             f"{len(batches)}: keep utd_ratio fixed within a run")
        for src, dst in zip((t for b in batches for t in _tensors(b)), self._static_inputs):
            if src.shape != dst.shape:
                raise ValueError(f"a batch tensor of shape {tuple(src.shape)} where the captured update has "
                                 f"{tuple(dst.shape)}: keep batch_size fixed within a run")
            dst.copy_(src, non_blocking=True)
        self.graph.replay()
        return self._metrics

    def _eager_or_capture(self, batches: Sequence[ChunkBatch]) -> dict[str, torch.Tensor]:
        device = batches[0].state.device
        if device.type != "cuda":
            raise ValueError(f"cuda_graph=true captures the update on a CUDA device; the learner is on {device}: "
                             "drop --policy.cuda_graph or train with --device=cuda")
        if self._stream is None:
            self._stream = torch.cuda.Stream(device)
        # warm-up and capture run on a side stream (as torch.cuda.graph requires), then rejoin the current one
        self._stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(self._stream):
            if self.eager_calls < self.warmup:
                for batch in batches:
                    metrics = self.update_one(batch)
                self.eager_calls += 1
            else:
                self._static = [b.map(torch.clone) for b in batches]
                self._static_inputs = [t for b in self._static for t in _tensors(b)]
                graph = torch.cuda.CUDAGraph()
                if self.generator is not None:
                    graph.register_generator_state(self.generator)
                # thread_local: a thread acting with the policy on the same GPU (a HIL session) may go on
                # launching its own work while this one captures
                with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                    for batch in self._static:
                        metrics = self.update_one(batch)
                self.graph, self._metrics = graph, metrics
        torch.cuda.current_stream(device).wait_stream(self._stream)
        if self.graph is not None:   # capturing records the kernels without running them: run them now
            self.graph.replay()
            return self._metrics
        return metrics
