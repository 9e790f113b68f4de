"""benchmarks.parity.curves reads both sides' own result files and lines their evaluations up by env step."""

import json

from benchmarks.parity.curves import load_curves, markdown_table

# the header main_online.py's CsvLogger wrote for an OGBench cube evaluation (cube-double, 2026-12-06)
OFFICIAL_HEADER = ("avg_gripper_contact_length,num_gripper_contacts,prev_qpos,prev_qvel,qpos,qvel,control,time,"
                   "success,total.timesteps,episode.final_reward,episode.return,episode.length,episode.duration,step")


def _official(root, variant, seed, rows):
    d = root / "parity" / "cube-double" / variant / f"seed{seed}"
    d.mkdir(parents=True)
    body = "\n".join(f"0,0,0,0,0,0,0,0,{s},0,0,0,500,1.0,{step}" for step, s in rows)
    (d / "eval.csv").write_text(OFFICIAL_HEADER + "\n" + body + "\n")


def _chunkbot(root, variant, seed, rows):
    d = root / "parity" / "cube-double" / variant
    d.mkdir(parents=True, exist_ok=True)
    curve = [{"env_step": step, "success_rate": s, "return_mean": 0.0} for step, s in rows]
    (d / f"seed{seed}.json").write_text(json.dumps({"curve": curve}))


def test_curves_from_both_sides_line_up_by_env_step_and_average_over_seeds(tmp_path):
    off, cb = tmp_path / "official", tmp_path / "chunkbot"
    _official(off, "qc", 0, [(5000, 0.0), (10000, 0.4)])
    _official(off, "qc", 1, [(5000, 0.2), (10000, 0.8)])
    _chunkbot(cb, "qc", 0, [(5000, 0.1), (10000, 0.5)])
    _chunkbot(cb, "rlpd", 3, [(5000, 0.0), (10000, 0.0)])

    curves = load_curves("cube-double", "parity", off, cb)

    assert curves[("official", "qc")] == {0: {5000: 0.0, 10000: 0.4}, 1: {5000: 0.2, 10000: 0.8}}
    assert curves[("chunkbot", "rlpd")] == {3: {5000: 0.0, 10000: 0.0}}
    table = markdown_table(curves).splitlines()
    assert table[0] == "| run | seeds | 5k | 10k |"
    assert table[2] == "| official QC (h = 5, BC 0.01) | 0,1 | 0.10 (0.0/0.2) | 0.60 (0.4/0.8) |"
    assert table[3] == "| chunkbot QC (h = 5, BC 0.01) | 0 | 0.10 | 0.50 |"
    assert ("official", "rlpd") not in curves
