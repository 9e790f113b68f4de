"""Train a Q-chunking SAC policy: `python -m tools.train [--preset=qc|sac|seed] [--config-path=FILE.json] ...`.

With no arguments: the paper's method (chunked critic, h = 5) at LeRobot SAC's network sizes on
chunkbot/SO101Lift-v0, starting from 20 scripted demos recorded with tools.record into
<output_dir>/demos (a LeRobotDataset), ending with an evaluated checkpoint.

The seed's command line works as written:
    python -m tools.train --config-path=FILE.json --env-name=chunkbot/SO101Lift-v0 --steps=N --output_dir=DIR
A config file holding only policy keys (the seed's JSON block) is the policy config; a file with
train keys is a whole TrainConfig. Precedence: defaults < --preset < --config-path < command line.
Dashes in option names are accepted (--env-name = --env_name).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


from policy.training import TrainConfig, train
from robot.recording import terminate_as_interrupt
from tools._common import fail, init_tool
from tools._policy_cli import parse_cli, parse_with_policy_file


def build_config(argv: list[str]) -> TrainConfig:
    return parse_with_policy_file(TrainConfig, argv, preset_field="preset")


def record_demos(cfg: TrainConfig) -> None:
    """No dataset given on a sim task: record `num_demos` scripted demonstrations with tools.record
    into `<output_dir>/demos`, a LeRobotDataset that the run then loads (and that stays, readable,
    for other runs: `--dataset_repo_id=... --dataset_root=...`). A resumed run reuses it."""
    if cfg.dataset_repo_id is not None or cfg.num_demos <= 0:
        return
    from robot.sim.tasks import ENV_IDS

    if cfg.env_name not in ENV_IDS:
        return  # other envs: the learner rolls its expert (if any) straight into the buffer
    from robot.config import TeleoperatorConfig, robot_config_for
    from tools.record import DatasetRecordConfig, RecordConfig, record

    arm, task = ENV_IDS[cfg.env_name]
    root = Path(cfg.output_dir) / "demos"
    repo_id = f"local/{arm}_{task}_demos"
    info = root / "meta" / "info.json"
    have = json.loads(info.read_text()).get("total_episodes", 0) if info.exists() else 0
    if have < cfg.num_demos:
        record(RecordConfig(
            robot=robot_config_for(f"sim_{arm}", task=task),
            teleop=TeleoperatorConfig.get_choice_class("scripted")(seed=cfg.seed),
            dataset=DatasetRecordConfig(repo_id=repo_id, root=root, num_episodes=cfg.num_demos, overwrite=True,
                                        single_task=task),
            seed=cfg.seed, progress=cfg.progress_bar,
        ))
    cfg.dataset_repo_id, cfg.dataset_root = repo_id, str(root)


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_cli(TrainConfig, argv, preset_field="preset")
    terminate_as_interrupt()
    try:
        record_demos(cfg)
        result = train(cfg)
    except KeyboardInterrupt:
        print(f"interrupted: the last checkpoint is in {cfg.output_dir}/checkpoints/last; "
              f"continue with the same command and --resume=true", file=sys.stderr)
        raise SystemExit(130)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        fail(str(e))
    if result:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
