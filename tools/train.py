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
import tempfile
from dataclasses import fields
from pathlib import Path

import draccus

from policy.config import QChunkSACConfig, explain_draccus_error, preset_dict
from policy.training import TrainConfig, train
from robot.recording import terminate_as_interrupt
from tools._common import fail, init_tool

POLICY_KEYS = {f.name for f in fields(QChunkSACConfig)}


def _normalise_option(arg: str) -> str:
    """--env-name=x -> --env_name=x (draccus wants the field names); values are left alone."""
    if not arg.startswith("--"):
        return arg
    key, eq, value = arg[2:].partition("=")
    return "--" + key.replace("-", "_") + eq + value


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_config(argv: list[str]) -> TrainConfig:
    args, preset_name, config_path = [], None, None
    argv = [_normalise_option(a) for a in argv]
    i = 0
    while i < len(argv):  # --preset / --config_path, as "--k=v" or "--k v"
        a = argv[i]
        for flag in ("--preset", "--config_path"):
            if a == flag and i + 1 < len(argv):
                a = f"{flag}={argv[i + 1]}"
                i += 1
        if a.startswith("--preset="):
            preset_name = a.split("=", 1)[1]
        elif a.startswith("--config_path="):
            config_path = a.split("=", 1)[1]
        else:
            args.append(a)
        i += 1
    merged: dict = {}
    if preset_name is not None:
        merged = {"policy": preset_dict(preset_name), "preset": preset_name}
    if config_path is not None:
        data = json.loads(Path(config_path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{config_path} must hold a JSON object")
        is_policy_file = set(data) <= POLICY_KEYS
        merged = _deep_merge(merged, {"policy": data} if is_policy_file else data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(merged))
        return draccus.parse(TrainConfig, config_path=str(path), args=args)


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
    try:
        cfg = build_config(sys.argv[1:] if argv is None else argv)
    except draccus.utils.DraccusException as e:
        fail(explain_draccus_error(e))
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
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
