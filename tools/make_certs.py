"""Make the TLS certificate pair that lets actors on other machines reach the learner.

    python -m tools.make_certs --out_dir=certs --hosts=10.0.0.5,learner.lab

Run it once on the learner machine; `--hosts` are the names and addresses the actors connect to.
Then: learner `--transport.tls_cert=certs/link.crt --transport.tls_key=certs/link.key`, each
actor `--transport.tls_cert=link.crt` (a copy of the certificate; the key stays on the learner).
The shared token goes in $CHUNKBOT_LINK_TOKEN or a file named by --transport.token_file.
"""

from __future__ import annotations

import argparse

from tools._common import fail


def main(argv: list[str] | None = None) -> None:
    from link.certs import default_hosts, make_cert_pair

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--out_dir", default="certs", help="folder for link.crt and link.key (default: certs)")
    parser.add_argument("--hosts", default=",".join(default_hosts()),
                        help="comma-separated names/addresses of the learner (default: %(default)s)")
    parser.add_argument("--days", type=int, default=825, help="validity in days (default: 825)")
    args = parser.parse_args(argv)
    try:
        cert, key = make_cert_pair(args.out_dir, [h.strip() for h in args.hosts.split(",") if h.strip()], args.days)
    except (FileExistsError, ValueError) as e:
        fail(str(e))
    print(f"wrote {cert} (copy it to every actor) and {key} (keep it on the learner, mode 600)")


if __name__ == "__main__":
    main()
