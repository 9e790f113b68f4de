"""The tools' command line (tools._cli): LeRobot's flag names, one-line errors that say what to type,
and a --help that starts with what the tool does and shows the defaults it really uses."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import pytest

from tools._cli import Alias, CommandLine, parse_config

TOOLS = ("train", "record", "teleoperate", "run_policy", "export_onnx", "calibrate", "find_port", "hil_session",
         "actor", "learner", "make_certs", "visualize_chunks", "plot_metrics")


def _error_line(capsys, main, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def test_lerobot_teleoperate_flag_names_set_chunkbot_options():
    from tools._cli import LEROBOT_TELEOPERATE
    from tools.teleoperate import TeleoperateConfig

    cfg = parse_config(TeleoperateConfig, ["--display_data", "--teleop_time_s", "2.5"], aliases=LEROBOT_TELEOPERATE)
    assert cfg.viz.display_data is True and cfg.duration_s == 2.5


def test_lerobot_record_flag_names_set_chunkbot_options():
    from tools._cli import LEROBOT_RECORD
    from tools.record import RecordConfig

    cfg = parse_config(RecordConfig, ["--resume=true", "--dataset.video=true", "--dataset.push_to_hub=false",
                                      "--dataset.num_episodes=3"], aliases=LEROBOT_RECORD)
    assert cfg.dataset.resume and cfg.dataset.use_videos and cfg.dataset.num_episodes == 3


def test_lerobot_train_flag_names_set_chunkbot_options():
    from policy.training import TrainConfig
    from tools._cli import LEROBOT_TRAIN
    from tools._policy_cli import parse_cli

    cfg = parse_cli(TrainConfig, ["--log_freq=7", "--save_freq=50", "--dataset.repo_id=local/x", "--dataset.root=d",
                                  "--batch_size=16", "--policy.device=cpu", "--eval.n_episodes=3", "--resume"],
                    preset_field="preset", aliases=LEROBOT_TRAIN)
    assert (cfg.log_every, cfg.save_every, cfg.eval_episodes, cfg.resume) == (7, 50, 3, True)
    assert (cfg.dataset_repo_id, cfg.dataset_root, cfg.policy.batch_size) == ("local/x", "d", 16)


@dataclass
class Inner:
    resume: bool = False


@dataclass
class Outer:
    resume: bool = False
    inner: Inner = field(default_factory=Inner)


def test_a_flag_the_config_has_wins_over_an_alias_of_the_same_name():
    cfg = parse_config(Outer, ["--resume=true"], aliases={"resume": Alias("inner.resume")})
    assert cfg.resume is True and cfg.inner.resume is False


def test_a_typo_is_one_line_with_the_closest_flag(capsys):
    from tools.record import main

    err = _error_line(capsys, main, ["--dataset.num_episode=3"])
    assert "--dataset.num_episode" in err and "did you mean --dataset.num_episodes?" in err


def test_a_flag_given_without_its_group_is_pointed_to_it(capsys):
    from tools.record import main

    assert "did you mean --dataset.num_episodes?" in _error_line(capsys, main, ["--num_episodes=3"])


def test_pushing_to_the_hub_is_refused_with_what_to_do_instead(capsys):
    from tools.record import main

    err = _error_line(capsys, main, ["--dataset.push_to_hub=true"])
    assert "hf upload" in err


def test_an_option_of_another_robot_type_names_the_types_that_have_it(capsys):
    from tools.teleoperate import main

    err = _error_line(capsys, main, ["--robot.port=/dev/ttyACM0"])
    assert "sim_so101 (the default)" in err and "so101_follower" in err and "--robot.type=" in err


def test_an_unknown_robot_type_suggests_the_closest(capsys):
    from tools.teleoperate import main

    err = _error_line(capsys, main, ["--robot.type=so101_folower"])
    assert "did you mean so101_follower?" in err


def test_a_real_arm_without_its_port_is_told_which_flag_it_needs(capsys):
    from tools.record import main

    err = _error_line(capsys, main, ["--robot.type=so101_follower", "--robot.id=arm"])
    assert "--robot.type=so101_follower needs --robot.port=" in err


def test_a_value_that_does_not_parse_names_its_flag(capsys):
    from tools.teleoperate import main

    assert "--fps" in _error_line(capsys, main, ["--fps=fast"])
    assert "--robot.cameras" in _error_line(capsys, main, ["--robot.cameras=[front"])


def test_a_stray_word_is_one_line(capsys):
    from tools.teleoperate import main

    assert "--name=value" in _error_line(capsys, main, ["so101_follower"])


def test_a_bare_boolean_flag_means_true_and_a_bare_value_flag_asks_for_its_value(capsys):
    from tools.export_onnx import ExportOnnxConfig, main

    cfg = parse_config(ExportOnnxConfig, ["--check-only", "--policy.path", "run"])
    assert cfg.check_only is True and str(cfg.policy.path) == "run"
    assert "--output needs a value" in _error_line(capsys, main, ["--output"])


@pytest.mark.parametrize("tool", TOOLS)
def test_help_starts_with_what_the_tool_does_and_an_example(tool, capsys):
    module = importlib.import_module(f"tools.{tool}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first and not first.lower().startswith("usage") and first == module.__doc__.strip().splitlines()[0]
    assert f"python -m tools.{tool}" in out.split("options:")[0]  # an example before the options
    assert "Config file for" not in out  # draccus' per-group lines, some twice, are hidden


def test_help_shows_the_defaults_the_tool_runs_with(capsys):
    help_text = CommandLine(importlib.import_module("policy.training").TrainConfig).help_text()
    relative = help_text.split("\n  --policy.relative_actions ")[1].split("\n  --")[0]
    assert "(default: True)" in " ".join(relative.split())  # the train recipe's, not QChunkSACConfig's False
    from tools.teleoperate import TeleoperateConfig

    robot_type = CommandLine(TeleoperateConfig).help_text().split("\n  --robot.type ")[1].split("\n  --")[0]
    assert "(default: sim_so101)" in " ".join(robot_type.split())


@pytest.mark.parametrize("flag", ["--output_dir", "--seed", "--resume"])
def test_help_explains_the_common_run_options(flag):
    from policy.training import TrainConfig

    text = CommandLine(TrainConfig).help_text()
    line = text.split(f"\n  {flag} ")[1].split("\n  --")[0]
    assert len(" ".join(line.split()).split("(default")[0]) > 15, line


def test_help_lists_the_lerobot_names_it_accepts():
    from tools._cli import LEROBOT_TELEOPERATE
    from tools.teleoperate import TeleoperateConfig

    text = CommandLine(TeleoperateConfig, aliases=LEROBOT_TELEOPERATE).help_text()
    lerobot = text.split("LeRobot's names")[1]
    assert "--teleop_time_s" in lerobot and "= --duration_s" in lerobot


@pytest.mark.parametrize("config", ["hil.config:HILConfig", "hil.serve:LearnerServiceConfig"])
def test_session_help_explains_output_dir_and_resume(config):
    module, name = config.split(":")
    text = CommandLine(getattr(importlib.import_module(module), name)).help_text()
    for flag in ("--output_dir", "--resume"):
        line = text.split(f"\n  {flag} ")[1].split("\n  --")[0]
        assert len(" ".join(line.split()).split("(default")[0]) > 15, line
