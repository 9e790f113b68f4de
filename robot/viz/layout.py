"""Entity paths of the chunk view and the Rerun blueprint that lays them out.

One place names every path, so the view, the tests and anyone reading a recording agree:

    /world/arm/<body>             arm bodies (Transform3D per step; geoms under .../geometry, static)
    /world/scene/<body>           table, bin (static); /world/cube, /world/target from the observation
    /world/ee/measured            TCP of the measured joints (a point per step)
    /world/ee/executed            executed TCP path, the last `trail_steps` steps
    /world/ee/commanded           TCP path of the commands actually sent (after the safety layer)
    /world/chunks/<id>            each predicted chunk as a TCP path (FK of its joint targets), by age
    /joints/<motor>/measured      measured position        } one plot per joint, on the step and
    /joints/<motor>/sent          command actually sent    } time timelines; each chunk's plan is
    /joints/<motor>/plan/{even,odd}  predicted chunks      } drawn as points at the steps it targets,
                                                              even / odd chunks in two colours so
                                                              overlapping chunks stay apart
    /joints/<motor>/demo          demonstrator's action (offline study)
    /timing/<name>_ms             inference latency, control-period jitter, period, bus read / write
    /queue/depth, /queue/stale    planned actions left; stale actions dropped from an arriving chunk
    /chunks/value                 the critic's value of each chunk (when available)
    /chunks/demo_error            mean |chunk - demonstration| over the chunk (offline study)
    /events/<kind>                TextLog at the step an event happened
    /camera/<name>                camera frames
    /view/dropped                 messages the view dropped because its queue was full
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robot.interface import MOTOR_NAMES

if TYPE_CHECKING:
    import rerun.blueprint as rrb

WORLD = "world"
ARM = "world/arm"
SCENE = "world/scene"
CUBE = "world/cube"
TARGET = "world/target"
EE_MEASURED = "world/ee/measured"
EE_EXECUTED = "world/ee/executed"
EE_COMMANDED = "world/ee/commanded"
CHUNKS_3D = "world/chunks"
JOINTS = "joints"
TIMING = "timing"
QUEUE = "queue"
CHUNKS = "chunks"
EVENTS = "events"
CAMERA = "camera"
VIEW = "view"


def motor_of(action_name: str) -> str:
    """"shoulder_pan.pos" -> "shoulder_pan" (entity path parts without dots)."""
    return action_name[: -len(".pos")] if action_name.endswith(".pos") else action_name.replace(".", "_")


def chunk_id(n: int) -> str:
    return f"c{n:06d}"  # sorts in prediction order in the viewer's tree


def plan_slot(n: int) -> str:
    return "even" if n % 2 == 0 else "odd"


# Where the 3D view's eye starts: in front of and above the arm's workspace (Koch is ~3/4 the size).
_EYE = {"so101": ((0.60, -0.45, 0.42), (0.16, 0.0, 0.06)), "koch": ((0.45, -0.34, 0.32), (0.10, 0.0, 0.05))}


def blueprint(motors: list[str] | tuple[str, ...] = MOTOR_NAMES, cameras: list[str] | tuple[str, ...] = (),
              fps: float = 30.0, chunk_size: int = 10, window_s: float = 6.0, arm: str | None = None) -> rrb.Blueprint:
    """First screen: the arm and its chunks in 3D (cameras below it), a plot per joint with the plan
    drawn ahead of the present, loop timing and queue depth, and the event log."""
    import rerun.blueprint as rrb

    ahead_steps = 2 * max(1, chunk_size)
    joint_window = [
        rrb.VisibleTimeRange("step", start=rrb.TimeRangeBoundary.cursor_relative(seq=-int(window_s * fps)),
                             end=rrb.TimeRangeBoundary.cursor_relative(seq=ahead_steps)),
        rrb.VisibleTimeRange("time", start=rrb.TimeRangeBoundary.cursor_relative(seconds=-window_s),
                             end=rrb.TimeRangeBoundary.cursor_relative(seconds=ahead_steps / fps)),
    ]
    eye = _EYE.get(arm or "", _EYE["so101"])
    left: list = [rrb.Spatial3DView(
        origin=f"/{WORLD}", name="arm, predicted chunks, executed path",
        eye_controls=rrb.EyeControls3D(position=eye[0], look_target=eye[1], eye_up=(0.0, 0.0, 1.0)),
        line_grid=rrb.LineGrid3D(visible=True, spacing=0.05))]
    if cameras:
        left.append(rrb.Horizontal(*[rrb.Spatial2DView(origin=f"/{CAMERA}/{c}", name=c) for c in cameras]))
    joints = rrb.Grid(*[rrb.TimeSeriesView(origin=f"/{JOINTS}/{m}", name=m, time_ranges=joint_window)
                        for m in motors], grid_columns=2)
    loop = rrb.Horizontal(
        rrb.TimeSeriesView(origin=f"/{TIMING}", name="latency, jitter, bus (ms)", time_ranges=joint_window),
        rrb.TimeSeriesView(origin=f"/{QUEUE}", name="queue depth, stale drops", time_ranges=joint_window),
        rrb.TimeSeriesView(origin=f"/{CHUNKS}", name="chunk value"),
    )
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(*left, row_shares=[3, 1] if cameras else None),
            rrb.Vertical(joints, loop, rrb.TextLogView(origin=f"/{EVENTS}", name="events"), row_shares=[3, 1.3, 1]),
            column_shares=[1.1, 1.0],
        ),
        collapse_panels=False,
    )
