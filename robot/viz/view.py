"""`ChunkView`: a live Rerun view of action chunks, predicted vs executed, fed by any control loop.

The loop calls `log_step` / `log_chunk` / `log_event`; each call only appends a small record to a
bounded queue and returns (a few microseconds, no Rerun call, no copy). When the queue is full the
record is dropped and counted (`dropped`), never waited for: the servo loop must not depend on the
view. A logging thread turns the records into Rerun data:

- it wakes when a step is queued and works through the backlog for at most half a control
  period, so its Python work falls in the loop's idle time (the loop sleeps most of each period)
  instead of competing with a deadline for the GIL;
- everything but a chunk's 3D path and camera frames (joints, arm pose, timing, plans, events) is
  buffered and sent as columns (`send_columns`) every `flush_every_s`: one Rerun call per entity
  per batch instead of one per value (a Rerun call costs ~0.1-0.5 ms of Python);
- forward kinematics (arm pose, TCP paths of chunks) runs there, on the view's own MuJoCo data.

Everything is on two timelines: `step` (control steps) and `time` (seconds since the first step,
on the loop's clock). A chunk is drawn at the step it arrived, its plan ahead of that step from its
origin (the step whose observation it was predicted from, latency compensation included).
Paths and the blueprint: robot.viz.layout.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from robot.interface import ACTION_NAMES
from robot.viz import layout as L  # noqa: N812
from robot.viz.config import VizConfig

log = logging.getLogger(__name__)

# Text log levels: what needs a look stands out from the routine chunk bookkeeping.
EVENT_LEVELS = {
    "new_chunk": "INFO", "chunk_cut_short": "INFO", "stale_dropped": "INFO", "chunk_discarded": "INFO",
    "chunk_rejected": "WARN", "hand_back": "INFO", "takeover": "WARN", "start_jump": "WARN",
    "clamped": "DEBUG", "rate_limited": "DEBUG", "watchdog": "WARN", "missed_deadlines": "WARN",
    "bus_read_error": "WARN", "bus_write_error": "WARN", "non_finite": "ERROR", "inference_error": "ERROR",
    "interrupt": "WARN", "torque_off": "CRITICAL", "view_dropped": "WARN",
}
SERIES_STYLE = {  # colour, width
    "measured": ((31, 119, 180), 2.0),
    "sent": ((255, 127, 14), 1.5),
    "demo": ((120, 120, 120), 2.0),
}
PLAN_STYLE = {"even": (44, 160, 44), "odd": (214, 39, 140)}  # point colours of alternate chunks
NEW_CHUNK_RGB = np.array([40, 220, 90], dtype=np.float64)
OLD_CHUNK_RGB = np.array([175, 175, 175], dtype=np.float64)


# ---------------------------------------------------------------------- records the loop hands over
@dataclass(slots=True)
class _Step:
    step: int
    time_s: float
    measured: Any          # (A,) array or an observation dict keyed by action name (+ cube.x, ...)
    sent: Any              # (A,) array or None
    source: str | None
    new_plan: bool
    timing: Any            # robot.timing STEP_DTYPE row, a dict of the same names, or None
    events: Any            # SafetyEvents (kind, step, time, details)
    images: dict | None
    demo: Any


@dataclass(slots=True)
class _Chunk:
    actions: np.ndarray
    origin: int
    obs_step: int
    obs_time: float | None
    arrival_step: int
    arrival_time: float | None
    stale: int
    accepted: bool
    value: float | None
    demo: np.ndarray | None


@dataclass(slots=True)
class _Episode:
    label: str


@dataclass(slots=True)
class _Event:
    kind: str
    step: int
    time_s: float | None
    text: str
    level: str | None


class _Columns:
    """Per-entity column buffers: (steps, times, values) waiting for one send_columns. Values are
    floats (Scalars), 3-vectors (Points3D) or (text, level) pairs (TextLog), by buffer."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[list[int], list[float], list[Any]]] = {}

    def add(self, entity: str, step: int, t: float, value: Any) -> None:
        cols = self.data.get(entity)
        if cols is None:
            cols = self.data[entity] = ([], [], [])
        cols[0].append(step)
        cols[1].append(t)
        cols[2].append(value)

    def take(self) -> dict[str, tuple[list[int], list[float], list[Any]]]:
        data, self.data = self.data, {}
        return data


class ChunkView:
    """Predicted vs executed action chunks in Rerun. Disabled (every call a no-op) unless
    `config.display_data` or `config.rrd` is set, so loops can call it unconditionally."""

    def __init__(self, config: VizConfig | None = None, *, fps: float, chunk_size: int = 10,
                 action_names: Iterable[str] = ACTION_NAMES, arm: str | None = None,
                 use_degrees: bool | None = None, cameras: Iterable[str] = (), name: str | None = None,
                 lossless: bool = False):
        """`arm`: "so101" | "koch" to draw the arm from its sim model (None: no 3D view; chunk paths
        need the arm's kinematics). `use_degrees`: the robot's joint units (None: the arm's LeRobot default).
        `lossless`: block instead of dropping when the queue is full (offline tools only, never in
        a servo loop)."""
        self.config = config = config or VizConfig()
        config.validate()
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.enabled = config.enabled
        self.fps = float(fps)
        self.chunk_size = int(chunk_size)
        self.action_names = tuple(action_names)
        self.motors = [L.motor_of(n) for n in self.action_names]
        self.cameras = list(cameras)
        self.lossless = lossless
        self._queue: deque = deque()
        self._dropped = 0
        self._cpu_s = 0.0
        self._drop_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self.recording_path = config.rrd
        if not self.enabled:
            return
        import rerun as rr

        self._rr = rr
        self.arm_model = None
        if arm is not None:
            from robot.viz.arm_model import ArmModel

            self.arm_model = ArmModel(arm, use_degrees)
        self._rec = rec = rr.RecordingStream(config.app_id, recording_id=str(uuid.uuid4()))
        if name:
            rec.send_recording_name(name)
        bp = L.blueprint(self.motors, self.cameras, self.fps, self.chunk_size, config.plot_window_s, arm)
        self._connect(bp)
        self._init_state()
        self._log_static()
        self._thread = threading.Thread(target=self._work, name="chunk-view", daemon=True)
        self._thread.start()

    @classmethod
    def for_robot(cls, config: VizConfig | None, robot: Any, *, fps: float, chunk_size: int = 10,
                  name: str | None = None, lossless: bool = False) -> "ChunkView":
        """A view of `robot`: its arm model (from its name), joint units and cameras."""
        from robot.features import camera_shapes
        from robot.viz.arm_model import arm_type_for

        robot_config = getattr(robot, "config", None)
        return cls(config, fps=fps, chunk_size=chunk_size, action_names=tuple(robot.action_features),
                   arm=arm_type_for(getattr(robot, "name", "")), use_degrees=getattr(robot_config, "use_degrees", None),
                   cameras=list(camera_shapes(robot.observation_features)), name=name, lossless=lossless)

    # ------------------------------------------------------------------ loop side (cheap)
    @property
    def dropped(self) -> int:
        """Records dropped because the queue was full."""
        return self._dropped

    @property
    def logging_cpu_s(self) -> float:
        """CPU seconds the logging thread has spent in Python and Rerun calls (not Rerun's own threads)."""
        return self._cpu_s

    def wants_images(self, step: int) -> bool:
        """Whether `log_step` at `step` would use camera frames (so the loop copies them only then)."""
        every = self.config.image_every
        return self.enabled and every > 0 and bool(self.cameras) and step % every == 0

    def _put(self, record: Any, wake: bool) -> bool:
        if not self.enabled or self._closed:
            return False
        if len(self._queue) >= self.config.queue_size:
            if not self.lossless:
                with self._drop_lock:
                    self._dropped += 1
                return False
            while len(self._queue) >= self.config.queue_size and self._thread.is_alive():
                self._wake.set()
                time.sleep(0.001)
        self._queue.append(record)
        if wake:
            self._wake.set()
        return True

    def log_step(self, step: int, time_s: float, measured: Any, sent: Any = None, *, source: str | None = None,
                 new_plan: bool = False, timing: Any = None, events: Any = (), images: dict | None = None,
                 demo: Any = None) -> bool:
        """One control step: `measured` joints ((A,) robot units, or the observation dict), the
        command `sent` (after safety; None if none), `source` (policy | hold | override | teleop ...),
        `new_plan` (first action of a new chunk), the executor's timing row, the step's safety
        events, camera frames (arrays the caller will not reuse), the demonstrator's action.
        Returns False if the record was dropped (or the view is off)."""
        return self._put(_Step(step, time_s, measured, sent, source, new_plan, timing, events, images, demo), True)

    def log_chunk(self, actions: np.ndarray, *, origin: int, arrival_step: int | None = None,
                  obs_step: int | None = None, obs_time: float | None = None, arrival_time: float | None = None,
                  stale: int = 0, accepted: bool = True, value: float | None = None,
                  demo: np.ndarray | None = None) -> bool:
        """A predicted chunk (h, A): action j targets step `origin + j`; it became available at
        `arrival_step` (default: origin) with its first `stale` actions already past. `value`: the
        critic's value of the chunk; `demo`: the demonstrator's actions over the same steps."""
        arrival = origin if arrival_step is None else arrival_step
        return self._put(_Chunk(actions, origin, origin if obs_step is None else obs_step, obs_time, arrival,
                                arrival_time, stale, accepted, value, demo), False)

    def log_event(self, kind: str, step: int, text: str = "", *, time_s: float | None = None,
                  level: str | None = None) -> bool:
        """Something that happened at `step` (takeover, a safety event, ...), shown in the event log."""
        return self._put(_Event(kind, step, time_s, text, level), False)

    def start_episode(self, label: str = "") -> bool:
        """Steps logged after this continue the timeline after the previous episode's last step (each
        episode's loop may count its steps, and its clock, from 0 again)."""
        return self._put(_Episode(label), False)

    def close(self, timeout_s: float = 10.0) -> None:
        """Log what is queued, finish the recording (the .rrd is complete after this) and stop."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("the Rerun view did not finish logging within %.0f s; the recording may be incomplete",
                        timeout_s)
            return
        self._rec.flush()
        self._rec.disconnect()

    def __enter__(self) -> "ChunkView":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ set-up (caller's thread, before the loop)
    def _connect(self, bp: Any) -> None:
        rr, rec, cfg = self._rr, self._rec, self.config
        sinks = []
        if cfg.display_data:
            try:
                if cfg.viewer_url is None:
                    rec.spawn(connect=False)  # a local viewer on the default port
                sinks.append(rr.GrpcSink(cfg.viewer_url) if cfg.viewer_url else rr.GrpcSink())
            except Exception as e:  # no viewer binary, no display: say what to do, or go on with the file
                where = cfg.viewer_url or "a local viewer"
                if cfg.rrd is None:
                    raise RuntimeError(f"could not show the data in {where} ({type(e).__name__}: {e}); install the "
                                       "viewer (`pip install rerun-sdk` ships it), pass --viz.viewer_url of a "
                                       "running one, or record headless with --viz.rrd=FILE") from e
                log.warning("could not show the data in %s (%s: %s); recording to %s only", where,
                            type(e).__name__, e, cfg.rrd)
        if cfg.rrd is not None:
            from pathlib import Path

            Path(cfg.rrd).parent.mkdir(parents=True, exist_ok=True)
            sinks.append(rr.FileSink(str(cfg.rrd)))
        rec.set_sinks(*sinks, default_blueprint=bp)

    def _init_state(self) -> None:
        self._t0: float | None = None
        self._step_offset = 0    # added to every step after start_episode()
        self._time_offset = 0.0
        self._outbox: deque = deque()  # batched Rerun calls waiting for the logging thread's next time slot
        self._columns = _Columns()   # Scalars
        self._points = _Columns()    # Points3D, one point per row
        self._texts = _Columns()     # TextLog
        self._transforms: dict[str, tuple[list[int], list[float], list[np.ndarray], list[np.ndarray]]] = {}
        self._executed: deque[np.ndarray] = deque(maxlen=self.config.trail_steps)
        self._commanded: deque[np.ndarray] = deque(maxlen=self.config.trail_steps)
        self._trail_changed = False
        self._last_step: tuple[int, float] | None = None
        self._next_flush = 0.0
        self._steps_since_flush = 0
        self._flush_steps = max(1, round(self.config.flush_every_s * self.fps))
        self._n_chunks = 0
        self._recent: deque[str] = deque()   # 3D chunk entities on screen, newest last
        self._latest: tuple[str, int, int] | None = None  # last accepted chunk: (id, origin, end)
        self._active: tuple[str, int, int] | None = None  # chunk being played
        self._source: str | None = None
        self._target: tuple[float, ...] | None = None
        self._logged_dropped = 0
        self._bad_records = 0

    def _log_static(self) -> None:
        rr, rec = self._rr, self._rec
        rec.log(L.WORLD, rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        for m in self.motors:
            for series in ("measured", "sent", "demo"):
                color, width = SERIES_STYLE[series]
                rec.log(f"{L.JOINTS}/{m}/{series}", rr.SeriesLines(colors=[color], widths=[width], names=[series]),
                        static=True)
            for slot, color in PLAN_STYLE.items():
                rec.log(f"{L.JOINTS}/{m}/plan/{slot}", rr.SeriesPoints(colors=[color], marker_sizes=[2.0],
                                                                        names=[f"plan ({slot} chunks)"]), static=True)
        model = self.arm_model
        if model is None:
            return
        for b, name in zip(model.arm_bodies, model.body_names):
            self._log_geometry(f"{L.ARM}/{name}/geometry", model.geometry(b))
        for b in model.static_bodies:
            geometry = model.geometry(b)
            pos, quat = model.static_body_pose(b)
            path = f"{L.SCENE}/{geometry.body or 'world'}"
            rec.log(path, rr.Transform3D(translation=pos, quaternion=quat), static=True)
            self._log_geometry(f"{path}/geometry", geometry)
        self._log_geometry(f"{L.CUBE}/geometry", model.geometry(model.cube_body))

    def _log_geometry(self, path: str, g: Any) -> None:
        rr, rec = self._rr, self._rec
        fill = rr.components.FillMode.Solid
        if g.boxes:
            rec.log(f"{path}/boxes", rr.Boxes3D(centers=g.boxes["centers"], half_sizes=g.boxes["half_sizes"],
                                                quaternions=g.boxes["quaternions"], colors=g.boxes["colors"],
                                                fill_mode=fill), static=True)
        if g.capsules:
            rec.log(f"{path}/capsules", rr.Capsules3D(translations=g.capsules["translations"],
                                                      lengths=g.capsules["lengths"], radii=g.capsules["radii"],
                                                      quaternions=g.capsules["quaternions"],
                                                      colors=g.capsules["colors"]), static=True)
        if g.cylinders:
            rec.log(f"{path}/cylinders", rr.Cylinders3D(centers=g.cylinders["centers"], lengths=g.cylinders["lengths"],
                                                        radii=g.cylinders["radii"],
                                                        quaternions=g.cylinders["quaternions"],
                                                        colors=g.cylinders["colors"], fill_mode=fill), static=True)
        if g.spheres:
            rec.log(f"{path}/spheres", rr.Ellipsoids3D(centers=g.spheres["centers"],
                                                       half_sizes=np.repeat(g.spheres["radii"][:, None], 3, 1),
                                                       colors=g.spheres["colors"], fill_mode=fill), static=True)

    # ------------------------------------------------------------------ logging thread
    def _work(self) -> None:
        # Woken by each step the loop hands over, i.e. just after the loop finished a step and went
        # to sleep: work until half a period has passed, then wait for the next step, so the Python
        # work of the view never runs into the loop's next deadline (where it would compete for the GIL).
        budget = math.inf if self.lossless else 0.5 / self.fps
        while True:
            self._wake.wait(self.config.flush_every_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            deadline = math.inf if stopping else time.perf_counter() + budget
            cpu0 = time.thread_time()
            try:
                while self._queue and time.perf_counter() < deadline:
                    self._handle_safely(self._queue.popleft())
                # batch by loop time (steps) or by wall time, whichever comes first, so a recording
                # made faster than real time (sim, offline) is batched the same way as a live one
                if stopping or self._steps_since_flush >= self._flush_steps or time.perf_counter() >= self._next_flush:
                    self._flush()
                    self._steps_since_flush = 0
                    self._next_flush = time.perf_counter() + self.config.flush_every_s
                while self._outbox and time.perf_counter() < deadline:
                    self._outbox.popleft()()
                if stopping and not self._queue:
                    self._final()
                    self._cpu_s += time.thread_time() - cpu0
                    return
                self._cpu_s += time.thread_time() - cpu0
            except Exception:  # a bug in the view must not take the loop down; report it once
                log.exception("the Rerun view failed; it stops logging (the control loop is unaffected)")
                self.enabled = False
                self._queue.clear()
                return

    def _handle_safely(self, r: Any) -> None:
        """A record the view cannot draw (a malformed chunk, say) is skipped and reported, not fatal."""
        try:
            self._handle(r)
        except Exception as e:
            self._bad_records += 1
            if self._bad_records == 1:
                log.exception("the Rerun view skipped a %s it could not log", type(r).__name__.strip("_").lower())
            if self._bad_records >= 100:
                raise RuntimeError(f"{self._bad_records} records could not be logged; last: {e}") from e

    def _handle(self, r: Any) -> None:
        if isinstance(r, _Step):
            self._on_step(r)
        elif isinstance(r, _Chunk):
            self._on_chunk(r)
        elif isinstance(r, _Episode):
            self._on_episode(r)
        else:
            self._on_event(r)

    def _on_episode(self, r: _Episode) -> None:
        if self._last_step is not None:  # continue after the last step / time seen
            k, t = self._last_step
            self._step_offset, self._time_offset = k + 1, t + 1.0 / self.fps
            self._t0 = None
        self._text_event("episode", self._step_offset, self._time_offset,
                         f"episode {r.label} starts" if r.label else "a new episode starts")
        self._source, self._active, self._latest = None, None, None

    def _t(self, clock_s: float | None) -> float:
        """Seconds on the view's `time` timeline for a loop clock reading."""
        if clock_s is None:
            return self._last_step[1] if self._last_step else self._time_offset
        if self._t0 is None:
            self._t0 = float(clock_s)
        return float(clock_s) - self._t0 + self._time_offset

    def _set_time(self, step: int, t: float) -> None:
        self._rec.set_time("step", sequence=int(step))
        self._rec.set_time("time", duration=float(t))

    def _vector(self, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, dict):
            try:
                return np.array([float(value[n]) for n in self.action_names])
            except KeyError:
                return None
        return np.asarray(value, dtype=np.float64).reshape(-1)

    def _text_event(self, kind: str, step: int, t: float, text: str, level: str | None = None) -> None:
        self._texts.add(f"{L.EVENTS}/{kind}", step, t, (text or kind, level or EVENT_LEVELS.get(kind, "INFO")))

    def _on_step(self, r: _Step) -> None:
        k, t = r.step + self._step_offset, self._t(r.time_s)
        self._last_step = (k, t)
        self._steps_since_flush += 1
        cols = self._columns
        q = self._vector(r.measured)
        if q is not None:
            for m, v in zip(self.motors, q):
                cols.add(f"{L.JOINTS}/{m}/measured", k, t, v)
        sent = self._vector(r.sent)
        if sent is not None:
            for m, v in zip(self.motors, sent):
                cols.add(f"{L.JOINTS}/{m}/sent", k, t, v)
        demo = self._vector(r.demo)
        if demo is not None:
            for m, v in zip(self.motors, demo):
                cols.add(f"{L.JOINTS}/{m}/demo", k, t, v)
        model = self.arm_model
        if model is not None:
            if q is not None and q.size >= 6:
                pos, quat, tcp = model.pose(q)
                for name, p, qu in zip(model.body_names, pos, quat):
                    self._add_transform(f"{L.ARM}/{name}", k, t, p, qu)
                self._points.add(L.EE_MEASURED, k, t, tcp)
                self._executed.append(tcp)
                self._trail_changed = True
            if sent is not None and sent.size >= 6:
                self._commanded.append(model.tcp(sent))
        if isinstance(r.measured, dict):
            self._scene_objects(r.measured, k, t)
        self._timing(r.timing, k, t)
        for e in r.events or ():
            self._safety_event(e, self._step_offset)
        self._plan_bookkeeping(r, k, t)
        if r.images:
            self._set_time(k, t)
            for cam, img in r.images.items():
                image = self._rr.Image(np.asarray(img))
                if self.config.jpeg_quality is not None:
                    image = image.compress(jpeg_quality=self.config.jpeg_quality)
                self._rec.log(f"{L.CAMERA}/{cam}", image)

    def _add_transform(self, entity: str, k: int, t: float, pos: np.ndarray, quat: np.ndarray) -> None:
        cols = self._transforms.get(entity)
        if cols is None:
            cols = self._transforms[entity] = ([], [], [], [])
        cols[0].append(k)
        cols[1].append(t)
        cols[2].append(pos)
        cols[3].append(quat)

    def _scene_objects(self, obs: dict, k: int, t: float) -> None:
        if "cube.x" in obs:
            yaw = float(obs.get("cube.yaw", 0.0))
            self._add_transform(L.CUBE, k, t, np.array([obs["cube.x"], obs["cube.y"], obs["cube.z"]], dtype=np.float64),
                                np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]))
        if "target.x" in obs:
            target = (float(obs["target.x"]), float(obs["target.y"]), float(obs["target.z"]))
            if target != self._target:
                self._target = target
                self._set_time(k, t)
                self._rec.log(L.TARGET, self._rr.Points3D([target], radii=[0.008], colors=[(230, 60, 200)]))

    def _timing(self, row: Any, k: int, t: float) -> None:
        if row is None:
            return
        names = row.dtype.names if hasattr(row, "dtype") and row.dtype.names else tuple(row)
        cols = self._columns
        for field, entity in (("jitter", "jitter_ms"), ("period", "period_ms"), ("read_s", "bus_read_ms"),
                              ("write_s", "bus_write_ms"), ("step_s", "step_ms")):
            if field in names:
                v = float(row[field])
                if math.isfinite(v):
                    cols.add(f"{L.TIMING}/{entity}", k, t, v * 1e3)
        if "queue_depth" in names:
            cols.add(f"{L.QUEUE}/depth", k, t, float(row["queue_depth"]))
        if "missed" in names and int(row["missed"]) > 0:
            self._text_event("missed_deadlines", k, t, f"{int(row['missed'])} control deadline(s) skipped before "
                             f"step {k} (the loop fell behind)")

    def _safety_event(self, e: Any, offset: int = 0) -> None:
        kind, step, details = e.kind, int(e.step) + offset, dict(getattr(e, "details", {}) or {})
        t = self._t(getattr(e, "time", None))
        if kind == "start_jump":
            text = (f"chunk jump refused at step {step}: {details.get('joint')} would jump "
                    f"{details.get('gap', float('nan')):.1f} (limit {details.get('limit')}); eased in over "
                    f"{details.get('approach_steps')} steps")
        elif kind == "watchdog":
            text = (f"watchdog: no fresh action for {details.get('seconds_without_action', float('nan')):.3f} s, "
                    f"holding (inference in flight: {details.get('inference_in_flight')})")
        else:
            text = f"{kind} at step {step}" + (f": {details}" if details else "")
        self._text_event(kind, step, t, text)

    def _plan_bookkeeping(self, r: _Step, k: int, t: float) -> None:
        """Takeover / hand-back from source changes; a chunk cut short when a new plan (or the
        human) takes over before the active chunk's last action."""
        source, prev = r.source, self._source
        self._source = source
        if source == "override" and prev != "override":
            self._cut_short(k, t, "human takeover")
            self._active = None
            self._text_event("takeover", k, t, f"human takeover at step {k}: the queue is flushed")
        elif prev == "override" and source is not None and source != "override":
            self._text_event("hand_back", k, t, f"hand-back to the policy at step {k}")
        if r.new_plan and source != "override" and self._latest is not None:
            if self._active is None or self._active[0] != self._latest[0]:
                self._cut_short(k, t, "a newer chunk")
                self._active = self._latest

    def _cut_short(self, k: int, t: float, by: str) -> None:
        if self._active is None:
            return
        cid, origin, end = self._active
        if end > k:
            self._text_event("chunk_cut_short", k, t, f"chunk {cid} cut short at step {k} by {by}: "
                             f"{end - k} of its {end - origin} actions not played")

    def _on_chunk(self, r: _Chunk) -> None:
        rr, rec = self._rr, self._rec
        actions = np.asarray(r.actions, dtype=np.float64)
        if actions.ndim != 2 or len(actions) == 0:
            raise ValueError(f"a chunk must be (h, A) joint targets, got shape {actions.shape}")
        cid = L.chunk_id(self._n_chunks)
        self._n_chunks += 1
        off = self._step_offset
        r.origin, r.obs_step, r.arrival_step = r.origin + off, r.obs_step + off, r.arrival_step + off
        h = len(actions)
        t_arr = self._t(r.arrival_time)
        t_obs = self._t(r.obs_time) if r.obs_time is not None else t_arr - (r.arrival_step - r.obs_step) / self.fps
        self._set_time(r.arrival_step, t_arr)
        latency = None if r.arrival_time is None or r.obs_time is None else r.arrival_time - r.obs_time
        lat_txt = f", latency {latency * 1e3:.1f} ms" if latency is not None else ""
        if not r.accepted:
            self._text_event("chunk_rejected", r.arrival_step, t_arr, f"chunk {cid} arrived with all {h} actions "
                             f"already past (origin step {r.origin}{lat_txt}): not played")
        else:
            self._text_event("new_chunk", r.arrival_step, t_arr, f"chunk {cid}: steps {r.origin}..{r.origin + h - 1}, "
                             f"predicted at step {r.obs_step}, arrived at step {r.arrival_step}{lat_txt}")
            self._latest = (cid, r.origin, r.origin + h)
        if r.stale > 0 and r.accepted:
            self._text_event("stale_dropped", r.arrival_step, t_arr,
                             f"chunk {cid}: {r.stale} stale action(s) dropped{lat_txt}")
        cols = self._columns
        if latency is not None:
            cols.add(f"{L.TIMING}/inference_latency_ms", r.arrival_step, t_arr, latency * 1e3)
        cols.add(f"{L.QUEUE}/stale", r.arrival_step, t_arr, float(r.stale))
        self._set_time(r.arrival_step, t_arr)
        # 3D: the chunk's TCP path, newest bright, older ones faded, the oldest cleared
        if self.arm_model is not None and actions.shape[1] >= 6:
            path = self.arm_model.tcp_path(actions)
            entity = f"{L.CHUNKS_3D}/{cid}"
            self._recent.append(entity)
            rec.log(entity, rr.LineStrips3D([path], colors=[NEW_CHUNK_RGB.astype(np.uint8)], radii=[0.003],
                                            labels=[cid], show_labels=False))
            shown = self.config.chunks_shown
            while len(self._recent) > shown:
                rec.log(self._recent.popleft(), rr.Clear(recursive=False))
            for age, old in enumerate(reversed(list(self._recent)[:-1]), start=1):
                w = age / max(1, shown - 1)
                color = ((1 - w) * NEW_CHUNK_RGB + w * OLD_CHUNK_RGB).astype(np.uint8)
                rec.log(old, rr.LineStrips3D.from_fields(colors=[color], radii=[0.003 - 0.0015 * w]))
        # time series: the plan of every joint as points at the steps it targets, from its origin on
        slot = L.plan_slot(self._n_chunks - 1)
        for j in range(h):
            step_j = r.origin + j
            t_j = t_obs + (step_j - r.obs_step) / self.fps
            for i, m in enumerate(self.motors[: actions.shape[1]]):
                cols.add(f"{L.JOINTS}/{m}/plan/{slot}", step_j, t_j, actions[j, i])
        if r.value is not None and math.isfinite(r.value):
            cols.add(f"{L.CHUNKS}/value", r.origin, t_obs, float(r.value))
        if r.demo is not None:
            demo = np.asarray(r.demo, dtype=np.float64)
            n_common = min(len(demo), h)
            if n_common:
                cols.add(f"{L.CHUNKS}/demo_error", r.origin, t_obs,
                         float(np.abs(actions[:n_common] - demo[:n_common]).mean()))

    def _on_event(self, r: _Event) -> None:
        self._text_event(r.kind, r.step + self._step_offset, self._t(r.time_s), r.text, r.level)

    def _flush(self) -> None:
        """Move everything buffered into the outbox as ready-to-send calls (sent within the budget)."""
        rr, rec, out = self._rr, self._rec, self._outbox
        indexes: dict[tuple, list] = {}

        def index(steps: list[int], times: list[float]) -> list:
            # Entities logged every step share one index per batch; numpy arrays take Rerun's
            # vectorised conversion (lists are converted value by value).
            key = (len(steps), steps[0], steps[-1], times[0], times[-1])
            cols = indexes.get(key)
            if cols is None:
                cols = indexes[key] = [rr.TimeColumn("step", sequence=np.asarray(steps, dtype=np.int64)),
                                       rr.TimeColumn("time", duration=np.asarray(times, dtype=np.float64))]
            return cols

        def send(entity: str, idx: list, make_columns: Any) -> None:
            out.append(lambda: rec.send_columns(entity, idx, make_columns()))

        for entity, (steps, times, values) in self._columns.take().items():
            send(entity, index(steps, times),
                 lambda v=values: rr.Scalars.columns(scalars=np.array(v, dtype=np.float64)))
        for entity, (steps, times, values) in self._points.take().items():
            send(entity, index(steps, times), lambda v=values: rr.Points3D.columns(positions=np.array(v)))
        for entity, (steps, times, values) in self._texts.take().items():
            send(entity, index(steps, times), lambda v=values: rr.TextLog.columns(text=[x[0] for x in v],
                                                                                    level=[x[1] for x in v]))
        transforms, self._transforms = self._transforms, {}
        for entity, (steps, times, pos, quat) in transforms.items():
            send(entity, index(steps, times), lambda p=pos, q=quat: rr.Transform3D.columns(
                translation=np.array(p), quaternion=np.array(q)))
        if self._last_step is None:
            return
        k, t = self._last_step
        if self._trail_changed and len(self._executed) > 1:
            self._trail_changed = False
            executed, commanded = np.array(self._executed), np.array(self._commanded)

            def trails() -> None:
                self._set_time(k, t)
                rec.log(L.EE_EXECUTED, rr.LineStrips3D([executed], colors=[(31, 119, 180)], radii=[0.002]))
                if len(commanded) > 1:
                    rec.log(L.EE_COMMANDED, rr.LineStrips3D([commanded], colors=[(255, 127, 14)], radii=[0.0012]))

            out.append(trails)
        dropped = self._dropped
        if dropped != self._logged_dropped:
            self._logged_dropped = dropped
            self._columns.add(f"{L.VIEW}/dropped", k, t, float(dropped))  # goes out with the next batch

    def _final(self) -> None:
        if self._dropped and self._last_step is not None:
            k, t = self._last_step
            self._text_event("view_dropped", k, t, f"the view dropped {self._dropped} record(s): its queue "
                             f"({self.config.queue_size}) was full; raise viz.queue_size or log less")
            self._logged_dropped = -1
        for _ in range(2):  # the second pass sends what the first one buffered (the dropped count)
            self._flush()
            while self._outbox:
                self._outbox.popleft()()
