"""The link's options, its credentials (token, TLS) and the rule for who may listen where.

The token is a shared secret. It is read from the environment variable `CHUNKBOT_LINK_TOKEN` or
from `token_file`, never from the command line, where `ps` shows it to every user of the machine.
TLS (`tls_cert` + `tls_key` on the learner, `tls_cert` on the actor to trust it) encrypts the
link; `python -m tools.make_certs` makes a lab's pair. A learner listens on loopback unless told
otherwise, and on any other address only with both a token and TLS: the token alone would travel
in the clear.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_ENV = "CHUNKBOT_LINK_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class LinkConfigError(RuntimeError):
    """A configuration error of the link (the message says what to change)."""


@dataclass
class TransportConfig:
    host: str = "127.0.0.1"              # the learner listens here and the actor connects here
    port: int = 50051
    token_file: Path | None = None       # file holding the shared token (else $CHUNKBOT_LINK_TOKEN)
    tls_cert: Path | None = None         # learner: its certificate; actor: the certificate it trusts
    tls_key: Path | None = None          # learner only: the certificate's private key
    max_message_mb: float = 256.0        # a larger batch or weights file is refused (weights of an image policy fit)
    deadline_s: float = 30.0             # one call (a batch, a weights answer) must finish within this
    keepalive_s: float = 10.0            # ping an idle link this often; a peer silent for 2x this is dropped
    warn_after_s: float = 3.0            # actor: warn when the learner has not answered for this long
    max_pending_batches: int = 100_000   # actor: unacknowledged batches kept on disk (then it refuses more)

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 1024 * 1024)

    def token(self) -> str:
        """The shared token: $CHUNKBOT_LINK_TOKEN, else the first line of `token_file`, else ''."""
        env = os.environ.get(TOKEN_ENV, "").strip()
        if env:
            return env
        if self.token_file is None:
            return ""
        path = Path(self.token_file)
        try:
            token = path.read_text().strip()
        except OSError as e:
            raise LinkConfigError(f"cannot read --transport.token_file={path}: {e.strerror}") from None
        if not token:
            raise LinkConfigError(f"--transport.token_file={path} is empty: write the shared token into it")
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users of this machine: chmod 600 it", path)
        return token

    def read_tls(self, server: bool) -> tuple[bytes, bytes | None] | None:
        """(certificate, key) PEM bytes (key only for the server), or None without TLS."""
        if self.tls_cert is None:
            if server and self.tls_key is not None:
                raise LinkConfigError("--transport.tls_key needs --transport.tls_cert (its certificate) too")
            return None
        if server and self.tls_key is None:
            raise LinkConfigError("--transport.tls_cert needs --transport.tls_key on the learner "
                                  "(python -m tools.make_certs writes both)")
        try:
            cert = Path(self.tls_cert).read_bytes()
            key = Path(self.tls_key).read_bytes() if server else None
        except OSError as e:
            raise LinkConfigError(f"cannot read the TLS files: {e.filename}: {e.strerror}") from None
        return cert, key

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise LinkConfigError(f"--transport.port={self.port} is not a TCP port")
        if not (self.max_message_mb > 0 and self.deadline_s > 0 and self.keepalive_s > 0 and self.warn_after_s > 0):
            raise LinkConfigError("max_message_mb, deadline_s, keepalive_s and warn_after_s must be > 0")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_security(config: TransportConfig) -> None:
    """Refuse to listen beyond loopback without both a token and TLS."""
    if is_loopback(config.host):
        return
    missing = [what for what, ok in (("a token", bool(config.token())), ("TLS", config.tls_cert is not None))
               if not ok]
    if missing:
        raise LinkConfigError(
            f"the learner would listen on {config.host}, which other machines can reach, without "
            f"{' and '.join(missing)}: make a certificate pair with `python -m tools.make_certs --hosts=<this "
            f"machine's address>`, pass --transport.tls_cert/--transport.tls_key, put the shared token in "
            f"${TOKEN_ENV} or --transport.token_file (the same on the actor); or listen on 127.0.0.1 and "
            "tunnel (ssh -L)")


def free_port() -> int:
    """A TCP port free on the loopback interface now (for tests and local sessions)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def channel_options(config: TransportConfig) -> list[tuple[str, int]]:
    """gRPC options shared by both ends: message limits and keepalive."""
    ms = int(config.keepalive_s * 1000)
    return [("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.keepalive_time_ms", ms),
            ("grpc.keepalive_timeout_ms", 2 * ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0)]
