r"""Human-in-the-loop RL session: the chunk policy practises on the arm, the person takes over when
it goes wrong, every takeover becomes training data; actor and QC-SAC learner in one process.

    # a real SO-101 with its leader arm (takeover: move the leader; keys: space toggles,
    # o = success, l = failure, p = pause, Esc = end)
    python -m tools.hil_session --robot.type=so101_follower --robot.port=/dev/ttyACM0 --robot.id=arm \
        --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 --teleop.id=leader \
        --config-path=policy.json --output_dir=outputs/hil/so101 --episodes=40

    # simulation, anywhere: a scripted person takes over when the policy stalls or drops the cube
    python -m tools.hil_session --robot.type=sim_so101 --robot.task=lift --teleop.type=scripted \
        --output_dir=outputs/hil/sim --episodes=60

    # the same from what a real arm sees: joint positions + front and wrist cameras (64x64), as tools.train
    python -m tools.hil_session --robot.type=sim_so101 --robot.task=lift --teleop.type=scripted \
        --obs_mode=pixels --image_size=64 --output_dir=outputs/hil/sim_pixels --episodes=60

`--resume=true` continues a session (step count, buffers, dataset). For a learner on another
machine use `python -m tools.learner` there and `python -m tools.actor` here.

Output: `dataset/` (LeRobotDataset, with intervention and chunk flags), `episodes.jsonl` (one line
per episode: success, human steps, takeovers, cut chunks), `metrics.jsonl` (learner),
`checkpoints/` (LeRobot layout). How the policy itself improved over a sim session, without the
person: `python -m hil.evaluate --output_dir=outputs/hil/sim --task=lift --episodes=20`.
"""

from __future__ import annotations

import json

from robot.config import register_for_cli
from tools._cli import LEROBOT_DISPLAY
from tools._common import init_tool, user_errors

register_for_cli()


def main(argv: list[str] | None = None) -> None:
    init_tool()
    import torch

    from hil.config import HILConfig
    from hil.runner import run_local_session
    from tools._policy_cli import parse_cli

    torch.set_num_threads(1)
    cfg = parse_cli(HILConfig, argv, tool="hil_session", doc=__doc__, aliases=LEROBOT_DISPLAY)
    with user_errors():
        results = run_local_session(cfg)
    print(json.dumps(summary(results)))


def summary(results) -> dict:
    n = len(results)
    if n == 0:
        return {"episodes": 0}
    return {"episodes": n, "success_rate": sum(r.success for r in results) / n,
            "policy_success_rate": sum(r.policy_success for r in results) / n,
            "intervention_fraction": sum(r.intervention_steps for r in results) / max(1, sum(r.steps for r in results))}


if __name__ == "__main__":
    main()
