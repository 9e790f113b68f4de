r"""The robot side of a human-in-the-loop session whose learner runs elsewhere (tools.learner).

    CHUNKBOT_LINK_TOKEN=<shared token> python -m tools.actor --robot.type=so101_follower \
        --robot.port=/dev/ttyACM0 --robot.id=arm --teleop.type=so101_leader --teleop.port=/dev/ttyACM1 \
        --teleop.id=leader --config-path=policy.json --transport.host=10.0.0.5 \
        --transport.tls_cert=link.crt --output_dir=outputs/hil/arm1 --episodes=40

Same options as tools.hil_session (robot, teleop, takeover, keys, rewards, dataset); the policy
config must match the learner's (chunk size). The token comes from $CHUNKBOT_LINK_TOKEN or
--transport.token_file, never the command line. Each episode is on disk (outbox/) before the next
starts; those the learner has not acknowledged when the actor stops go out with --resume=true,
and the actor exits with status 1 saying why they are still there.
"""

from __future__ import annotations

import json

from robot.config import register_for_cli
from tools._cli import LEROBOT_DISPLAY
from tools._common import fail, init_tool, user_errors

register_for_cli()


def main(argv: list[str] | None = None) -> None:
    init_tool()
    import torch

    from hil.config import HILConfig
    from hil.link import RemoteLink
    from hil.runner import run_session
    from link import LinkConfigError
    from tools._policy_cli import parse_cli
    from tools.hil_session import summary

    torch.set_num_threads(1)
    cfg = parse_cli(HILConfig, argv, tool="actor", doc=__doc__, aliases=LEROBOT_DISPLAY)
    with user_errors(LinkConfigError):
        link = RemoteLink(cfg.transport, cfg.output_dir, resume=cfg.resume)
        start = link.saved_state() if cfg.resume else {}
        results = run_session(cfg, link, start)
    print(json.dumps(summary(results)))
    if link.problem:
        fail(link.problem, code=1)


if __name__ == "__main__":
    main()
