"""Rerun views of action chunks: predicted vs executed, in 3D and in time (robot.viz.layout lists the paths).

    from robot.viz import ChunkView, VizConfig, attach_view
    view = ChunkView.for_robot(VizConfig(rrd=Path("run.rrd")), robot, fps=policy.fps, chunk_size=policy.chunk_size)
    with view, attach_view(view, executor):
        executor.run(max_steps=500)

Light to import: `VizConfig` (a field of the tools' and the training job's configs) is all that loads with
the package; the view itself loads where it is used (`robot.viz.ChunkView`), rerun and mujoco only when a
view is enabled.
"""

from robot.viz.config import VizConfig

__all__ = ["ChunkView", "VizConfig", "attach_view", "ExecutorView", "read_entity_rows"]


def __getattr__(name: str):
    if name == "ChunkView":
        from robot.viz.view import ChunkView

        return ChunkView
    # The executor bridge imports the executor; keep `from robot.viz import VizConfig` free of it.
    if name in ("attach_view", "ExecutorView"):
        from robot.viz import executor_view

        return getattr(executor_view, name)
    if name == "read_entity_rows":
        from robot.viz.readback import read_entity_rows

        return read_entity_rows
    raise AttributeError(f"module 'robot.viz' has no attribute {name!r}")
