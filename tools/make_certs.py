"""Make the TLS certificate pair that lets actors on other machines reach the learner.

    python -m tools.make_certs --out_dir=certs --hosts=10.0.0.5,learner.lab

Run it once on the learner machine; `--hosts` are the names and addresses the actors connect to.
Then: learner `--transport.tls_cert=certs/link.crt --transport.tls_key=certs/link.key`, each
actor `--transport.tls_cert=link.crt` (a copy of the certificate; the key stays on the learner).
The shared token goes in $CHUNKBOT_LINK_TOKEN or a file named by --transport.token_file.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools._common import fail, parse_config


@dataclass
class MakeCertsConfig:
    # Folder for link.crt and link.key.
    out_dir: str = "certs"
    # Comma-separated names / addresses the actors use to reach the learner (default: this machine's).
    hosts: str | None = None
    # Validity of the certificate in days.
    days: int = 825


def main(argv: list[str] | None = None) -> None:
    from link.certs import default_hosts, make_cert_pair

    cfg = parse_config(MakeCertsConfig, argv, tool="make_certs", doc=__doc__)
    hosts = cfg.hosts if cfg.hosts is not None else ",".join(default_hosts())
    try:
        cert, key = make_cert_pair(cfg.out_dir, [h.strip() for h in hosts.split(",") if h.strip()], cfg.days)
    except (FileExistsError, ValueError) as e:
        fail(str(e))
    print(f"wrote {cert} (copy it to every actor) and {key} (keep it on the learner, mode 600)")


if __name__ == "__main__":
    main()
