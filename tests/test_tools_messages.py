"""What the tools tell the person at run time: one-line errors that say what to do, checked before any arm
moves or demo is recorded, and a summary at the end."""

from __future__ import annotations

import logging

import pytest


def _one_error_line(capsys, main, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


def test_recording_into_an_existing_dataset_names_resume_and_overwrite(tmp_path, capsys):
    from tools.record import main

    root = tmp_path / "ds"
    root.mkdir()
    (root / "something").write_text("x")
    line = _one_error_line(capsys, main, [f"--dataset.root={root}", "--progress=false"])
    assert "--dataset.resume=true" in line and "--dataset.overwrite=true" in line
    assert sorted(p.name for p in root.iterdir()) == ["something"]  # nothing touched


def test_resume_on_a_folder_without_a_run_fails_before_recording_demos(tmp_path, capsys):
    from tools.train import main

    line = _one_error_line(capsys, main, ["--resume", f"--output_dir={tmp_path}", "--progress_bar=false"])
    assert "--resume" in line and "no checkpoint" in line
    assert not (tmp_path / "demos").exists()


def test_a_new_run_into_a_finished_one_is_told_to_resume(tmp_path, capsys):
    from tools.train import main

    (tmp_path / "checkpoints" / "last").mkdir(parents=True)
    line = _one_error_line(capsys, main, [f"--output_dir={tmp_path}", "--progress_bar=false"])
    assert "--resume=true" in line and not (tmp_path / "demos").exists()


def test_an_uncalibrated_arm_is_one_line_naming_the_calibrate_command(tmp_path, capsys):
    from tools.teleoperate import main

    line = _one_error_line(capsys, main, ["--robot.type=so101_follower", "--robot.port=/dev/ttyNOPE42",
                                          "--robot.id=nocal", f"--robot.calibration_dir={tmp_path}",
                                          "--teleop.type=keyboard", "--duration_s=1"])
    assert "not calibrated" in line and "tools.calibrate --robot.type=so101_follower" in line


def test_a_missing_policy_file_is_one_line(tmp_path, capsys):
    from tools.run_policy import main

    line = _one_error_line(capsys, main, [f"--policy.path={tmp_path / 'nope.onnx'}"])
    assert "does not exist" in line


def test_teleoperation_says_what_it_drives_and_ends_with_rate_steps_and_faults(caplog):
    from tools.teleoperate import main

    with caplog.at_level(logging.INFO, logger="tools.teleoperate"):
        main(["--duration_s=0.3", "--fps=20"])
    messages = [r.getMessage() for r in caplog.records if r.name == "tools.teleoperate"]
    assert any("sim_so101" in m and "scripted" in m for m in messages), messages
    summary = messages[-1]
    assert "periods in" in summary and "Hz of 20 asked" in summary and "bus faults 0" in summary, summary
