"""A lab's TLS pair for the link: one self-signed certificate (with the learner's names and
addresses in it) and its private key. The learner serves with both; each actor trusts the
certificate (copy `link.crt` to the robot machines; `link.key` never leaves the learner)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

CERT_NAME, KEY_NAME = "link.crt", "link.key"


def default_hosts() -> list[str]:
    return sorted({"localhost", "127.0.0.1", socket.gethostname()})


def make_cert_pair(out_dir: str | Path, hosts: list[str], days: int = 825) -> tuple[Path, Path]:
    """Write `link.crt` and `link.key` (mode 600) for `hosts` (names or IP addresses) into `out_dir`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not hosts:
        raise ValueError("give at least one host name or address the actors will connect to (--hosts)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / CERT_NAME, out / KEY_NAME
    if cert_path.exists() or key_path.exists():
        raise FileExistsError(f"{out} already holds {CERT_NAME}/{KEY_NAME}; choose another --out_dir or delete them")
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"chunkbot learner {hosts[0]}")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
