"""The study driver: a tiny run writes one result file per cell, a rerun skips finished cells, and
the plot step turns the results into figures and a docs block; the statistics are hand-checked."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.study import plot, run

ARGS = ["--budget", "smoke", "--workers", "1", "--variants", "qc", "--tasks", "lift", "--seeds", "1"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    assert run.main([*ARGS, "--results-dir", str(out)]) == 0
    return out


def test_a_cell_writes_its_result_file_with_the_budgets_curve(results):
    path = run.result_path(results, "smoke", "lift", "qc", 0)
    record = json.loads(path.read_text())
    assert (record["variant"], record["task"], record["seed"]) == ("qc", "lift", 0)
    # smoke budget: 300 online steps, an evaluation every 150
    assert [p["env_step"] for p in record["curve"]] == [150, 300]
    assert all(0.0 <= p["success_rate"] <= 1.0 for p in record["curve"])
    # updates start at the warm-up's last step, as the official loop's (i >= start_training)
    assert record["online_steps"] == 300 and record["updates"] == 300 - 100 + 1
    assert 0.0 <= record["final_mean_action"]["success_rate"] <= 1.0  # the final policy, acting with its mean
    assert record["policy_config"]["act_chunk_size"] == 5 and record["policy_config"]["critic_mode"] == "chunked"
    assert not list(path.parent.glob("*.tmp"))  # written atomically, no temp file left


def test_rerun_skips_finished_cells(results, caplog):
    path = run.result_path(results, "smoke", "lift", "qc", 0)
    before = path.stat().st_mtime_ns
    with caplog.at_level("INFO", logger="study"):
        assert run.main([*ARGS, "--results-dir", str(results)]) == 0
    assert path.stat().st_mtime_ns == before
    assert "1 done, 0 to run" in caplog.text


def test_dry_run_lists_only_missing_cells(results, capsys):
    assert run.main(["--budget", "smoke", "--variants", "qc", "sac", "--tasks", "lift", "--seeds", "1",
                     "--results-dir", str(results), "--dry-run"]) == 0
    assert capsys.readouterr().out.split("\n")[:-1] == ["sac lift 0"]


def test_plot_writes_figures_and_replaces_its_doc_block(results, tmp_path):
    doc = tmp_path / "docs" / "study.md"
    doc.parent.mkdir()
    doc.write_text("# Study\n\nhand-written verdict\n")
    argv = ["--budget", "smoke", "--results-dir", str(results), "--doc", str(doc), "--img-dir", str(tmp_path / "img")]
    assert plot.main(argv) == 0
    assert plot.main(argv) == 0
    text = doc.read_text()
    assert text.startswith("# Study\n\nhand-written verdict\n")
    assert text.count("<!-- study:smoke:begin -->") == 1 and text.count("<!-- study:smoke:end -->") == 1
    assert "| qc | 1 |" in text
    for figure in ("success", "return", "wallclock"):
        assert (tmp_path / "img" / f"study_smoke_{figure}.png").stat().st_size > 10_000


def test_results_recorded_under_a_former_variant_name_count_as_the_renamed_variant(results, tmp_path, caplog):
    """A result file written when the first-action variants were named seed_* (its folder and its "variant"
    field keep that name) is read by the plots and the driver's skip check as the variant's present name."""
    record = json.loads(run.result_path(results, "smoke", "lift", "qc", 0).read_text())
    old = run.result_path(tmp_path, "smoke", "lift", "seed_standard", 0)
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({**record, "variant": "seed_standard"}))
    assert set(plot.load_results(tmp_path, "smoke")) == {("lift", "first_action_standard")}
    with caplog.at_level("INFO"):
        assert run.main(["--budget", "smoke", "--variants", "seed_standard", "--tasks", "lift", "--seeds", "1",
                         "--results-dir", str(tmp_path), "--dry-run"]) == 0
    assert "variant 'seed_standard' is now named 'first_action_standard'" in caplog.text
    assert "1 done, 0 to run" in caplog.text


def test_mean_ci_uses_student_t():
    mean, half = plot.mean_ci(np.array([[0.0], [0.5], [1.0]]))
    assert mean[0] == pytest.approx(0.5)
    assert half[0] == pytest.approx(4.303 * 0.5 / math.sqrt(3))


def test_welch_interval_separates_only_clear_differences():
    d, half = plot.welch_diff(np.array([0.9, 0.8, 0.85]), np.array([0.1, 0.2, 0.15]))
    assert d == pytest.approx(0.7) and half < d
    d, half = plot.welch_diff(np.array([0.9, 0.1, 0.5]), np.array([0.4, 0.5, 0.6]))
    assert abs(d) < half


def test_steps_to_threshold_is_the_first_evaluation_that_reaches_it():
    cells = plot.CellSet("lift", "qc", steps=np.array([100, 200, 300]),
                         success=np.array([[0.2, 0.6, 0.9], [0.0, 0.1, 0.4]]), returns=np.zeros((2, 3)),
                         final_mean_action=np.zeros(2), wall_s=np.ones(2),
                         learner_s=np.ones(2), updates=np.ones(2), online_steps=np.full(2, 300))
    assert cells.steps_to(0.5) == [200, None]
    assert cells.steps_to(0.8) == [300, None]


def test_return_efficiency_counts_steps_until_sacs_final_return():
    def cells(returns):
        r = np.array(returns, float)
        return plot.CellSet("lift", "x", steps=np.array([100, 200, 300]), success=np.zeros_like(r), returns=r,
                            final_mean_action=np.zeros(len(r)), wall_s=np.ones(len(r)), learner_s=np.ones(len(r)),
                            updates=np.ones(len(r)), online_steps=np.full(len(r), 300))

    results = {("lift", "sac"): cells([[-10, -8, -5], [-10, -6, -5]]),   # mean -10, -7, -5: final -5 at 300
               ("lift", "qc"): cells([[-9, -4, -3], [-9, -6, -3]])}       # mean -9, -5, -3: -5 reached at 200
    text = "\n".join(plot.return_efficiency_lines(results, ["lift"]))
    assert "| -5.0 | 300 (1.00) | 200 (0.67) |" in text


@pytest.mark.slow
def test_driver_generates_ogbench_data_before_its_cells(tmp_path):
    pytest.importorskip("ogbench")
    argv = ["--budget", "smoke", "--workers", "2", "--variants", "sac", "--tasks", "cube-single", "--seeds", "1",
            "--results-dir", str(tmp_path)]
    assert run.main(argv) == 0
    data = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert data == ["cube-single-play-singletask-task1-v0-2x200-val.npz", "cube-single-play-singletask-task1-v0-2x200.npz"]
    record = json.loads(run.result_path(tmp_path, "smoke", "cube-single", "sac", 0).read_text())
    # 2 play episodes of 200 stored steps: OGBench's loader makes 199 transitions of each, all kept
    # (as the official code reads them)
    assert record["offline_transitions"] == 2 * 199
    assert [p["env_step"] for p in record["curve"]] == [150, 300]


def test_a_mean_action_budget_scores_its_curve_with_the_mean_action():
    import dataclasses

    from benchmarks.study.cell import run_cell
    from benchmarks.study.tasks import BUDGETS, TASKS
    from benchmarks.study.variants import VARIANTS

    budget = dataclasses.replace(BUDGETS["smoke"], actor_noise=0.2, eval_mean_action=True)
    record = run_cell(VARIANTS["qc"], TASKS["lift"], 0, budget, "unused")
    # the last evaluation comes after the last update (300 steps, whole chunks of 5), so scoring the same
    # policy with its mean again, from the same evaluation seeds, must give the very same episodes
    last = record["curve"][-1]
    assert record["online_steps"] == 300
    assert (last["success_rate"], last["return_mean"]) == (record["final_mean_action"]["success_rate"],
                                                           record["final_mean_action"]["return_mean"])


def test_summary_table_has_a_row_per_variant_and_a_column_per_task_and_budget(results):
    table = plot.summary_table(results, budgets=("smoke",))
    rows = [line for line in table.splitlines() if line.startswith("| qc ")]
    assert len(rows) == 1 and rows[0].count("|") == 3          # one variant, one (task, budget) column
    assert "SO-101 Lift (sim), `smoke`" in table
    assert plot.summary_table(results, budgets=("full",)).startswith("No study results")


def test_a_pixels_cell_learns_from_the_joint_positions_and_two_cameras():
    import dataclasses

    from benchmarks.study.cell import run_cell
    from benchmarks.study.tasks import BUDGETS, TASKS, TaskBudget
    from benchmarks.study.variants import VARIANTS

    budget = dataclasses.replace(BUDGETS["smoke"], tasks={"lift": TaskBudget(40, 20, 40, 1)})
    task = dataclasses.replace(TASKS["lift"], num_demos=1)
    record = run_cell(VARIANTS["qc"], task, 0, budget, "unused", obs_mode="pixels", image_size=16)
    assert record["obs_mode"] == "pixels" and record["online_steps"] == 40 and record["updates"] == 40 - 20 + 1
    policy = record["policy_config"]
    assert policy["use_images"] and policy["state_dim"] == 6
    assert policy["camera_shapes"] == {"front": [16, 16, 3], "wrist": [16, 16, 3]}


def test_pixels_cells_default_to_the_sim_tasks_and_are_stored_apart(tmp_path, capsys):
    assert run.main(["--budget", "smoke", "--variants", "qc", "--seeds", "1", "--obs_mode", "pixels",
                     "--results-dir", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.split("\n")[:-1] == ["qc pickplace 0", "qc lift 0"]
    assert run.result_path(tmp_path, "smoke", "lift", "qc", 0, "pixels").parts[-4] == "smoke-pixels"
    assert run.result_path(tmp_path, "smoke", "lift", "qc", 0).parts[-4] == "smoke"


def test_pixels_mode_on_an_ogbench_task_is_refused_naming_the_sim_tasks(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run.main(["--budget", "smoke", "--tasks", "cube-single", "--obs_mode", "pixels", "--results-dir", str(tmp_path)])
    assert "sim tasks (lift, pickplace); cube-single observe" in capsys.readouterr().err


def test_the_main_recipe_cells_change_only_the_critic_variant_of_the_main_job(tmp_path):
    from benchmarks.study.main_recipe import MAIN_RECIPE_VARIANTS, cell_command
    from benchmarks.study.variants import VARIANTS
    from policy.config import TRAIN_RECIPE
    from policy.training import TrainConfig
    from tools._policy_cli import parse_cli

    main_job = parse_cli(TrainConfig, []).policy
    for name in MAIN_RECIPE_VARIANTS:
        cmd = cell_command(VARIANTS[name], 1, 300, 100, 2, tmp_path / name)
        cfg = parse_cli(TrainConfig, cmd[cmd.index("tools.train") + 1:])
        overrides = VARIANTS[name].overrides
        assert all(getattr(cfg.policy, k) == v for k, v in overrides.items()), name
        # beyond the variant's own settings only what follows from the critic mode (its entropy backup) moves
        changed = {k for k, v in cfg.policy.to_dict().items() if v != main_job.to_dict()[k]}
        assert changed <= set(overrides) | {"enable_q_chunking", "backup_entropy"}, name
        assert all(getattr(cfg.policy, k) == v for k, v in TRAIN_RECIPE.items()), name
    sac = parse_cli(TrainConfig, cell_command(VARIANTS["sac"], 0, 300, 100, 2, tmp_path)[3:]).policy
    assert sac.chunk_size == 1
