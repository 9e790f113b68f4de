"""Read a chunk-view recording (.rrd) back through Rerun's own reader: what was logged, where, when.

For tests and for scripts that check a recording without a viewer:

    rows = read_entity_rows("run.rrd")          # {"/world/chunks/c000003": 1, "/joints/gripper/measured": 500, ...}
    texts = read_text_logs("run.rrd")           # {"/events/takeover": [(step, text), ...], ...}
    steps, values = read_scalars("run.rrd", "/joints/gripper/measured")
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def _chunks(path: str | Path):
    from rerun.experimental import RrdReader

    if not Path(path).is_file():
        raise FileNotFoundError(f"no recording at {path}")
    return RrdReader(str(path)).store().stream()


def read_entity_rows(path: str | Path, static: bool = False) -> dict[str, int]:
    """Rows logged per entity path (temporal rows; `static=True`: static rows instead)."""
    rows: dict[str, int] = defaultdict(int)
    for chunk in _chunks(path):
        if bool(chunk.is_static) == static:
            rows[str(chunk.entity_path)] += int(chunk.num_rows)
    return dict(rows)


def _column(batch, suffix: str):
    for name in batch.schema.names:
        if name == suffix or name.endswith(":" + suffix) or name.endswith(suffix):
            return batch.column(name)
    return None


def read_text_logs(path: str | Path, prefix: str = "/events") -> dict[str, list[tuple[int, str]]]:
    """TextLog entries under `prefix`, per entity: (step, text), in step order."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for chunk in _chunks(path):
        entity = str(chunk.entity_path)
        if not entity.startswith(prefix) or chunk.is_static:
            continue
        batch = chunk.to_record_batch()
        texts, steps = _column(batch, "TextLog:text"), _column(batch, "step")
        if texts is None or steps is None:
            continue
        for s, t in zip(steps.to_pylist(), texts.to_pylist()):
            out[entity].append((int(s), str(t[0] if isinstance(t, list) else t)))
    return {k: sorted(v) for k, v in out.items()}


def read_scalars(path: str | Path, entity: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a Scalars entity, in step order (first scalar of each row)."""
    steps: list[int] = []
    values: list[float] = []
    for chunk in _chunks(path):
        if str(chunk.entity_path) != entity or chunk.is_static:
            continue
        batch = chunk.to_record_batch()
        col, idx = _column(batch, "Scalars:scalars"), _column(batch, "step")
        if col is None or idx is None:
            continue
        for s, v in zip(idx.to_pylist(), col.to_pylist()):
            if v is None:
                continue
            steps.append(int(s))
            values.append(float(v[0] if isinstance(v, list) else v))
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(values)[order]


def read_blueprint_views(path: str | Path) -> list[tuple[str, str, str]]:
    """(view class, name, origin) of every view in the recording's blueprint, e.g.
    ("Spatial3D", "arm, predicted chunks, executed path", "/world")."""
    from rerun.experimental import RrdReader

    if not Path(path).is_file():
        raise FileNotFoundError(f"no recording at {path}")
    reader = RrdReader(str(path))
    views = []
    for entry in reader.blueprints():
        for chunk in reader.store(store=entry).stream():
            batch = chunk.to_record_batch()
            names = batch.schema.names
            if "ViewBlueprint:class_identifier" not in names:
                continue
            for row in batch.to_pylist():
                first = lambda v: (v[0] if isinstance(v, list) and v else v)  # noqa: E731
                views.append((str(first(row["ViewBlueprint:class_identifier"])),
                              str(first(row.get("ViewBlueprint:display_name")) or ""),
                              str(first(row["ViewBlueprint:space_origin"]))))
    return views
