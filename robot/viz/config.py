"""`VizConfig`: the same Rerun flags for every loop (record, run_policy, train's evaluation, offline study).

    --viz.display_data=true            spawn a Rerun viewer (or connect to --viz.viewer_url)
    --viz.rrd=outputs/run.rrd          save a recording (no viewer needed; open later with `rerun FILE`)

Both may be given: the data then goes to the viewer and the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class VizConfig:
    # Show the data live in a Rerun viewer: spawn one, or connect to `viewer_url` when set.
    display_data: bool = False
    # Save the recording to this .rrd file (works headless).
    rrd: Path | None = None
    # gRPC address of a running viewer, e.g. rerun+http://127.0.0.1:9876/proxy (None: spawn a local one).
    viewer_url: str | None = None
    # Rerun application id (recordings with the same id open side by side in one viewer).
    app_id: str = "chunkbot"
    # Messages buffered between the control loop and the logging thread; when full, new ones are
    # dropped and counted (the loop never waits for the view).
    queue_size: int = 4096
    # Camera frames: log every n-th step (0: none), JPEG quality (None: raw pixels, large files).
    image_every: int = 3
    jpeg_quality: int | None = 80
    # Predicted chunks drawn in 3D at once: the newest bright, older ones fading; older still are cleared.
    chunks_shown: int = 4
    # End-effector trail length in steps (measured and commanded paths).
    trail_steps: int = 100
    # The logging thread sends what it gathered (steps, plans, events) as columns this often, in
    # seconds of loop time or of wall time, whichever comes first: one Rerun call per entity per batch.
    flush_every_s: float = 0.25
    # Time-series window shown behind the present, in seconds (the predicted chunk ahead stays visible).
    plot_window_s: float = 6.0

    @property
    def enabled(self) -> bool:
        return self.display_data or self.rrd is not None

    def validate(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"viz.queue_size must be >= 1, got {self.queue_size}")
        if self.image_every < 0:
            raise ValueError(f"viz.image_every must be >= 0 (0: no images), got {self.image_every}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"viz.jpeg_quality must be in [1, 100] or None, got {self.jpeg_quality}")
        if self.chunks_shown < 1 or self.trail_steps < 2:
            raise ValueError(f"viz.chunks_shown must be >= 1 and viz.trail_steps >= 2, got "
                             f"{self.chunks_shown} and {self.trail_steps}")
        if self.flush_every_s <= 0 or self.plot_window_s <= 0:
            raise ValueError("viz.flush_every_s and viz.plot_window_s must be > 0")
        if self.rrd is not None and Path(self.rrd).suffix != ".rrd":
            raise ValueError(f"viz.rrd should name a .rrd file, got {self.rrd}")
