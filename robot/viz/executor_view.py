"""Feed a `ChunkView` from a running `ChunkExecutor` through its `on_chunk` / `on_step` hooks.

The hooks run in the loop thread, so they only hand references to the view's queue: the step's
observation dict, its timing row, the command sent, the safety events of the step, and each chunk
with its admission (origin, stale actions). Camera frames are the one copy made here, and only on
the steps the view will show them (a camera driver may reuse its buffers). Hooks already set on the
executor keep being called.

Events the executor records outside a returned step (the bus fault that ends a run, Ctrl-C) are
picked up by `detach()` from the safety layer's log.
"""

from __future__ import annotations

from typing import Any

from robot.action_queue import Admission, Chunk
from robot.executor import ChunkExecutor, StepRecord
from robot.viz.view import ChunkView


class ExecutorView:
    """Connects one executor to one view; `detach()` (or leaving the `with` block) disconnects."""

    def __init__(self, view: ChunkView, executor: ChunkExecutor):
        self.view = view
        self.executor = executor
        self._prev_chunk = executor.on_chunk
        self._prev_step = executor.on_step
        self._cameras = list(view.cameras)
        self._discarded = executor.discarded_chunks
        self._events_seen = sum(executor.safety.counts.values())
        self._attached = False
        if view.enabled:
            executor.on_chunk = self._on_chunk
            executor.on_step = self._on_step
            self._attached = True

    def _on_chunk(self, chunk: Chunk, admission: Admission) -> None:
        # A policy that scores its chunks (export.OnnxChunkPolicy exported with its critic) keeps the
        # value of the last one; the next prediction starts only after this chunk was handed over.
        value = getattr(self.executor.policy, "last_value", None)
        self.view.log_chunk(chunk.actions, origin=admission.origin, arrival_step=chunk.arrival_step,
                            obs_step=chunk.obs_step, obs_time=chunk.obs_time, arrival_time=chunk.arrival_time,
                            stale=admission.stale, accepted=admission.accepted, value=value)
        if self._prev_chunk is not None:
            self._prev_chunk(chunk, admission)

    def _on_step(self, record: StepRecord) -> None:
        view, ex = self.view, self.executor
        if ex.discarded_chunks != self._discarded:
            n = ex.discarded_chunks - self._discarded
            self._discarded = ex.discarded_chunks
            view.log_event("chunk_discarded", record.step, f"{n} chunk(s) requested before a flush (takeover) "
                           f"arrived and were thrown away", time_s=record.scheduled)
        self._events_seen += len(record.events)
        obs = record.observation
        images = None
        if obs is not None and view.wants_images(record.step):
            images = {c: obs[c].copy() for c in self._cameras if c in obs}
        view.log_step(record.step, record.scheduled, obs, record.action, source=record.source,
                      new_plan=record.new_plan, timing=record.timing, events=record.events, images=images)
        if self._prev_step is not None:
            self._prev_step(record)

    def detach(self) -> None:
        """Restore the executor's hooks and log the events recorded after the last step seen."""
        if not self._attached:
            return
        self._attached = False
        ex = self.executor
        ex.on_chunk, ex.on_step = self._prev_chunk, self._prev_step
        total = sum(ex.safety.counts.values())
        missing = min(total - self._events_seen, len(ex.safety.events))
        for e in list(ex.safety.events)[len(ex.safety.events) - missing:] if missing > 0 else ():
            self.view.log_event(e.kind, e.step, f"{e.kind} at step {e.step}: {e.details}", time_s=e.time)
        self._events_seen = total

    def __enter__(self) -> "ExecutorView":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()


def attach_view(view: ChunkView, executor: ChunkExecutor) -> ExecutorView:
    """Show `executor`'s steps and chunks in `view` until `.detach()`."""
    return ExecutorView(view, executor)
