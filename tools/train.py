"""Train a Q-chunking SAC policy on a simulated task, from demos to an evaluated checkpoint.

    python -m tools.train                                   # the quick default run (minutes on a CPU)
    python -m tools.train --preset=qc --steps=100000 --output_dir=outputs/train/qc
    python -m tools.train --config-path=configs/first_action.json --output_dir=outputs/train/first_action
    python -m tools.train --obs_mode=pixels --steps=10000 --output_dir=outputs/train/pixels
    python -m tools.train --obs_mode=pixels --num_envs=4 --output_dir=outputs/train/pixels4   # 4 envs render in workers

With no arguments: the paper's method (chunked critic, h = 5) at LeRobot SAC's network sizes on
chunkbot/SO101Lift-v0 with the main job's recipe (policy/config.py TRAIN_RECIPE), starting from 200
scripted demos recorded with tools.record into <output_dir>/demos (a LeRobotDataset), ending with the
best-evaluated policy in <output_dir>/checkpoints/best, the last in checkpoints/last, and
metrics.jsonl (`chunkbot-plot-metrics --output_dir=DIR` draws it).
Ctrl-C writes a checkpoint; the same command with `--resume=true` continues it.

`--obs_mode=pixels` learns from what a real arm sees: the joint positions and the `front` and `wrist`
cameras (`--image_size` pixels a side), nothing privileged; the demos are recorded with those cameras,
the images go through the policy's conv encoder (trained by the critic loss, DrQ random shifts), and
the checkpoint exports (tools.export_onnx) for the real follower (`so101_follower` / `koch_follower`
with two cameras named front and wrist at that resolution). Pixels mode starts the policy from
policy/config.py PIXELS_RECIPE (inputs pooled 2x, batch 128, one update per env step, a target encoder,
TD targets clipped to [0, 1], the returns of the sparse success reward); flags override it.
`--num_envs=N` steps N envs in worker processes, each playing its own chunks into its own part of the
replay, so rendering keeps up with the learner (`utd_ratio` updates per env step, counted over all envs;
resume with the same N).

`--preset=qc|sac|first_action` starts the policy from a preset; `--config-path=FILE.json` holding only
policy keys (configs/first_action.json, the seed document's JSON block) is the policy config, a file with
train keys is a whole TrainConfig. Precedence: defaults < --preset < --config-path < command line. Dashes in option names
are accepted (--env-name = --env_name), and LeRobot's lerobot-train names (--log_freq, --save_freq,
--batch_size, --dataset.repo_id, --dataset.root, --policy.device, --eval.n_episodes) work too.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from policy.checkpoint import last_checkpoint
from policy.training import TrainConfig, train
from robot.recording import terminate_as_interrupt
from tools._cli import LEROBOT_TRAIN
from tools._common import fail, init_tool
from tools._policy_cli import parse_cli, parse_with_policy_file

log = logging.getLogger("tools.train")


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
            robot=robot_config_for(f"sim_{arm}", task=task, **cfg.observation_kwargs()),
            teleop=TeleoperatorConfig.get_choice_class("scripted")(seed=cfg.seed, noise=cfg.demo_noise),
            dataset=DatasetRecordConfig(repo_id=repo_id, root=root, num_episodes=cfg.num_demos, overwrite=True,
                                        single_task=task),
            seed=cfg.seed, progress=cfg.progress_bar,
        ))
    cfg.dataset_repo_id, cfg.dataset_root = repo_id, str(root)


def check_output_dir(cfg: TrainConfig) -> None:
    """Refuse a run that would fail after recording demos: --resume=true with nothing to resume, or a
    new run into a folder that already holds one."""
    out = Path(cfg.output_dir)
    checkpoint = last_checkpoint(out)
    if cfg.resume and checkpoint is None:
        raise FileNotFoundError(f"--resume=true but {out} holds no checkpoint ({out}/checkpoints/last): drop "
                                "--resume to start a new run there, or point --output_dir at the run to continue")
    if checkpoint is not None and not cfg.resume:
        raise FileExistsError(f"{out} already holds a run (checkpoints/last): add --resume=true to continue it, "
                              "or choose another --output_dir")


def main(argv: list[str] | None = None) -> None:
    init_tool()
    cfg = parse_cli(TrainConfig, argv, preset_field="preset", tool="train", doc=__doc__, aliases=LEROBOT_TRAIN)
    try:
        check_output_dir(cfg)
    except (FileExistsError, FileNotFoundError) as e:
        fail(str(e))
    terminate_as_interrupt()
    p = cfg.policy
    log.info("%s on %s for %d env steps into %s: %s critic, %s actor, h = %d, %d critics of %s%s",
             "resuming" if cfg.resume else "training", cfg.env_name, cfg.steps, cfg.output_dir, p.critic_mode,
             "ACT" if p.use_act_actor else "MLP", p.chunk_size, p.num_critics,
             "x".join(map(str, p.critic_hidden_dims)), f" (preset {cfg.preset})" if cfg.preset else "")
    try:
        record_demos(cfg)
        result = train(cfg)
    except KeyboardInterrupt:
        print(f"interrupted: the last checkpoint is in {cfg.output_dir}/checkpoints/last; "
              f"continue with the same command and --resume=true", file=sys.stderr)
        raise SystemExit(130) from None
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        fail(str(e))
    best = Path(cfg.output_dir) / "checkpoints" / "best"
    log.info("done: the last checkpoint is %s/checkpoints/last/pretrained_model%s; plot the run with "
             "`chunkbot-plot-metrics --output_dir=%s`", cfg.output_dir,
             f", the best-evaluated {best}/pretrained_model" if best.exists() else "", cfg.output_dir)
    if result:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
