"""Run the scripted expert on a sim task and show what happened.

    python -m robot.sim --arm so101 --task pick_place --episodes 5
    python -m robot.sim --arm koch --task lift --sheet /tmp/koch_lift.png   # front + wrist frames

Prints one line per episode (success, steps) and the success rate; `--sheet` saves a contact sheet
of the first episode (front camera over wrist camera, every `--every`-th step).
"""

from __future__ import annotations

import argparse

import numpy as np

from robot.sim.expert import ScriptedExpert
from robot.sim.robot import SimKochConfig, SimSO101Config
from robot.sim.task_spec import TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the scripted expert on a chunkbot sim task.")
    parser.add_argument("--arm", choices=["so101", "koch"], default="so101")
    parser.add_argument("--task", choices=list(TASKS), default="lift")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.0, help="expert joint-target noise std (rad)")
    parser.add_argument("--sheet", default=None, help="save a PNG contact sheet of the first episode here")
    parser.add_argument("--every", type=int, default=6, help="contact sheet: one column every N steps")
    parser.add_argument("--size", type=int, default=160, help="contact sheet frame size (pixels)")
    args = parser.parse_args()

    config_cls = SimSO101Config if args.arm == "so101" else SimKochConfig
    cameras = ["front", "wrist"] if args.sheet else []
    robot = config_cls(task=args.task, cameras=cameras, image_height=args.size, image_width=args.size).build()
    robot.connect()
    expert = ScriptedExpert(noise=args.noise, seed=args.seed)
    max_steps = TASKS[args.task].max_episode_steps
    columns: list[np.ndarray] = []
    successes = 0
    for episode in range(args.episodes):
        observation = robot.reset(args.seed + episode)
        for step in range(1, max_steps + 1):
            if args.sheet and episode == 0 and (step - 1) % args.every == 0:
                columns.append(np.concatenate([observation["front"], observation["wrist"]], axis=0))
            robot.send_action(expert.act_dict(robot))
            observation = robot.get_observation() if args.sheet and episode == 0 else None
            if robot.is_success():
                break
        ok = robot.is_success()
        successes += ok
        print(f"episode {episode} (seed {args.seed + episode}): {'success' if ok else 'failure'} after {step} steps")
        if args.sheet and episode == 0 and observation is not None:
            columns.append(np.concatenate([observation["front"], observation["wrist"]], axis=0))
    print(f"{args.arm} {args.task}: {successes}/{args.episodes} successes")
    if args.sheet:
        from PIL import Image

        Image.fromarray(np.concatenate(columns, axis=1)).save(args.sheet)
        print(f"contact sheet: {args.sheet}")
    robot.disconnect()


if __name__ == "__main__":
    main()
