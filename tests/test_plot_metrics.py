"""tools.plot_metrics: labelled panels with units, success on [0, 1], no return panel that only repeats it."""

from __future__ import annotations

import json

import pytest

from tools.plot_metrics import PANELS, PlotConfig, load_metrics, panels_for, plot


def _write_run(path, sparse: bool) -> None:
    rows = []
    for step in (100, 200, 300):
        train_success = 0.0
        rows.append({"env_step": step, "time_s": step / 10, "loss_critic": 0.01, "q_mean": 0.1, "alpha": 0.01,
                     "train/success_rate": train_success, "train/return": train_success if sparse else 3.5})
        rows.append({"env_step": step, "time_s": step / 10 + 1, "eval/success_rate": step / 1000,
                     "eval/return_mean": step / 1000 if sparse else 12.0, "eval/episode_length": 150.0})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n" + '{"env_step": 400, "loss_cr')  # cut last line


def test_every_panel_names_its_axis_and_success_is_pinned_to_zero_one():
    assert all(p.ylabel and p.title for p in PANELS.values())
    low, high = PANELS["success"].ylim
    assert low <= 0.0 and 1.0 <= high < 1.1


def test_a_sparse_task_gets_no_return_panel_that_only_repeats_the_success(tmp_path):
    _write_run(tmp_path / "metrics.jsonl", sparse=True)
    series, wall = load_metrics(tmp_path / "metrics.jsonl")  # the line cut by a kill is skipped
    assert wall == pytest.approx(31.0)
    titles = [p.title for p in panels_for(PlotConfig(output_dir=str(tmp_path)), series)]
    assert "success rate" in titles and "episode return" not in titles


def test_a_dense_task_keeps_its_return_panel_beside_the_success(tmp_path):
    _write_run(tmp_path / "metrics.jsonl", sparse=False)
    series, _ = load_metrics(tmp_path / "metrics.jsonl")
    titles = [p.title for p in panels_for(PlotConfig(output_dir=str(tmp_path)), series)]
    assert {"success rate", "episode return"} <= set(titles)


def test_the_plot_is_a_png_and_an_unknown_panel_is_one_line(tmp_path, capsys):
    from tools.plot_metrics import main

    _write_run(tmp_path / "metrics.jsonl", sparse=True)
    out = plot(PlotConfig(output_dir=str(tmp_path)))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main([f"--output_dir={tmp_path}", "--panels=succes"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "succes" in err and "success" in err
