"""The QC-SAC learner of a human-in-the-loop session, for a separate (GPU) machine.

    python -m tools.learner --output_dir=outputs/hil/learner --config-path=policy.json \
        [--transport.host=0.0.0.0 --transport.token=SECRET] [--transport.port=5555] [--learner.device=cuda]

Listens on 127.0.0.1 unless told otherwise; any other address needs --transport.token (the same
on the actor). Ctrl-C checkpoints; --resume=true continues from the last checkpoint.
"""

from __future__ import annotations



from tools._common import fail, init_tool


def main(argv: list[str] | None = None) -> None:
    init_tool()
    import torch

    from policy.hil.remote import LearnerServiceConfig, serve_learner
    from policy.transport import TransportError
    from tools._policy_cli import parse_cli

    torch.set_num_threads(1)
    cfg = parse_cli(LearnerServiceConfig, argv)
    try:
        serve_learner(cfg)
    except (FileExistsError, FileNotFoundError, ValueError, TransportError) as e:
        fail(str(e))


if __name__ == "__main__":
    main()
