"""Throwaway TLS material and SuperNode authentication keys for local trials.

A local trial on loopback needs what a real deployment gets from its own PKI:
a certificate authority, a server certificate for the SuperLink (here valid
for ``127.0.0.1`` and ``localhost``) signed by it, and, when SuperNode
authentication is on, one EC P-384 key pair per SuperNode (Flower registers
the public half with ``flwr supernode register`` and the SuperNode signs its
requests with the private half). Everything is made with the ``cryptography``
package; nothing here is meant for production certificates.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LocalCertificates", "make_local_certificates", "make_node_auth_key"]


@dataclass(frozen=True)
class LocalCertificates:
    """Paths of the PEM files of a local trial's TLS setup."""

    ca_cert: Path  # what SuperNodes and the flwr CLI trust (--root-certificates)
    server_cert: Path  # the SuperLink's certificate (--ssl-certfile)
    server_key: Path  # its private key (--ssl-keyfile), mode 0600


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_local_certificates(
    directory: str | Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), days: int = 2
) -> LocalCertificates:
    """Writes a fresh CA and a SuperLink server certificate signed by it.

    Parameters
    ----------
    directory : str or Path
        Where ``ca.crt``, ``server.pem`` and ``server.key`` are written.
    hosts : tuple of str
        Subject alternative names of the server certificate: IP addresses
        become IP SANs, anything else a DNS SAN.
    days : int
        Validity of both certificates.

    Returns
    -------
    LocalCertificates

    Raises
    ------
    ValueError
        If ``hosts`` is empty or ``days`` is not positive.
    """
    if not hosts:
        raise ValueError("the server certificate needs at least one host name or address")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    until = now + _dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xcloud local trial CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    paths = LocalCertificates(out / "ca.crt", out / "server.pem", out / "server.key")
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths.server_key, _pem_key(server_key))
    return paths


def make_node_auth_key(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Writes a SuperNode authentication key pair (EC P-384, OpenSSH format, as ``ssh-keygen -t ecdsa -b 384``).

    Returns
    -------
    (private_key_path, public_key_path)
        ``<name>.key`` (mode 0600, for ``flower-supernode --auth-supernode-private-key``)
        and ``<name>.pub`` (for ``flwr supernode register``).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private, public = out / f"{name}.key", out / f"{name}.pub"
    _write_private(
        private,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ),
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n"
    )
    return private, public
