"""benchmarks.pixel_lift_curves: seeds given one label are averaged; each run keeps its own table row."""

import json
from pathlib import Path

from benchmarks.pixel_lift_curves import main


def _run(folder: Path, successes: list[float], q: float) -> Path:
    folder.mkdir()
    rows = [{"env_step": s, "q_mean": q, "loss_critic": 0.01} for s in range(500, 2001, 500)]
    rows += [{"env_step": 1000 * (i + 1), "eval/success_rate": v} for i, v in enumerate(successes)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_runs_sharing_a_label_get_a_mean_row_and_one_shaded_curve(tmp_path, capsys):
    a = _run(tmp_path / "s0", [0.2, 0.6], 0.8)
    b = _run(tmp_path / "s1", [0.4, 0.9], 0.9)
    c = _run(tmp_path / "other", [0.0, 0.1], 0.5)
    out = tmp_path / "curves.png"

    main([f"{a}=bf16", f"{b}=bf16", f"{c}=fp32", "--out", str(out)])

    lines = capsys.readouterr().out.splitlines()
    assert "| bf16 (s0) | 0.20 (Q 0.8, TD 0.01) | 0.60 (Q 0.8, TD 0.01) |" in lines
    assert "| fp32 | 0.00 (Q 0.5, TD 0.01) | 0.10 (Q 0.5, TD 0.01) |" in lines
    assert "| **bf16: mean of 2** | 0.30 | 0.75 |" in lines
    assert not any("fp32: mean" in line for line in lines)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
