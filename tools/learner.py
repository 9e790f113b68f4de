r"""The QC-SAC learner of a human-in-the-loop session, for a separate (GPU) machine.

    python -m tools.learner --output_dir=outputs/hil/learner --config-path=policy.json [--learner.device=cuda]
    # for actors on other machines: a certificate pair (python -m tools.make_certs) and a token
    CHUNKBOT_LINK_TOKEN=<shared token> python -m tools.learner ... --transport.host=0.0.0.0 \
        --transport.tls_cert=certs/link.crt --transport.tls_key=certs/link.key [--transport.port=50051]

Listens on 127.0.0.1 unless told otherwise; any other address needs both TLS and a token (from
$CHUNKBOT_LINK_TOKEN or --transport.token_file, the same on every actor). Any number of actors
(tools.actor, one per arm) may feed it; it logs each actor that connects and, every
--status_every_s, the transitions per actor, updates and weights version. Ctrl-C or SIGTERM
checkpoints; --resume=true continues from the last checkpoint and the journal after it.
"""

from __future__ import annotations

from tools._common import init_tool, user_errors


def main(argv: list[str] | None = None) -> None:
    init_tool()
    import torch

    from hil.serve import LearnerServiceConfig, serve_learner
    from link import LinkConfigError
    from tools._policy_cli import parse_cli

    torch.set_num_threads(1)
    cfg = parse_cli(LearnerServiceConfig, argv, tool="learner", doc=__doc__)
    with user_errors(LinkConfigError):
        serve_learner(cfg)


if __name__ == "__main__":
    main()
