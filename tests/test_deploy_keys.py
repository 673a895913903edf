"""Key setup across machines: sealed blobs, secret-key sharing, MAC keys, and local TLS material."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import xcloud
from xcloud.deploy.certs import make_local_certificates, make_node_auth_key
from xcloud.deploy.keys import (
    NodeIdentity,
    open_mac_key,
    open_sealed,
    open_secret_key,
    seal,
    seal_mac_key,
    share_secret_key,
)
from xcloud.errors import IntegrityError

pytestmark = pytest.mark.deploy


def test_seal_round_trip() -> None:
    # Prepare
    alice = NodeIdentity()
    payload = b"the secret key" * 100
    # Execute
    blob = seal(alice.public_bytes, payload, b"label")
    # Assert
    assert open_sealed(alice, blob, b"label") == payload
    assert payload not in blob
    assert seal(alice.public_bytes, payload, b"label") != blob  # fresh ephemeral key and nonce


def test_identity_survives_serialisation() -> None:
    a = NodeIdentity()
    b = NodeIdentity.from_private_bytes(a.private_bytes())
    assert b.public_bytes == a.public_bytes
    assert open_sealed(b, seal(a.public_bytes, b"x", b"l"), b"l") == b"x"
    with pytest.raises(ValueError, match="32 bytes"):
        NodeIdentity.from_private_bytes(b"short")


@pytest.mark.parametrize("where", [0, 4, 5, 20, 40, 60, -1])
def test_tampered_blob_is_rejected(where: int) -> None:
    alice = NodeIdentity()
    blob = bytearray(seal(alice.public_bytes, b"payload bytes", b"label"))
    blob[where] ^= 0x01
    with pytest.raises(IntegrityError):
        open_sealed(alice, bytes(blob), b"label")


def test_blob_for_another_recipient_or_label_is_rejected() -> None:
    alice, bob = NodeIdentity(), NodeIdentity()
    blob = seal(alice.public_bytes, b"payload", b"label")
    with pytest.raises(IntegrityError):
        open_sealed(bob, blob, b"label")
    with pytest.raises(IntegrityError):
        open_sealed(alice, blob, b"other label")
    with pytest.raises(IntegrityError):
        open_sealed(alice, blob[:30], b"label")


def test_secret_key_reaches_clients_and_not_the_relay() -> None:
    # Prepare: a key holder and two clients; the server relays what the holder sends.
    ctx = xcloud.CkksContext()
    keys = ctx.keygen()
    clients = {"cloud-1": NodeIdentity(), "cloud-2": NodeIdentity()}
    server = NodeIdentity()
    # Execute
    sealed = share_secret_key(keys, {cid: ident.public_bytes for cid, ident in clients.items()})
    # Assert: each client opens its own blob and gets a working secret key ...
    x = np.linspace(-1, 1, 5000).astype(np.float32)
    ct = xcloud.encrypt_blocks(keys, x)
    for cid, ident in clients.items():
        got = open_secret_key(ident, cid, sealed[cid], ctx, keys.key_id)
        assert got.key_id == keys.key_id and got.has_secret
        assert np.abs(xcloud.decrypt_blocks(got, ct) - x).max() < 2.0**-16
    # ... the relay holds nothing that contains or opens the secret key ...
    secret = keys.secret_bytes()
    for blob in sealed.values():
        assert secret not in blob
        with pytest.raises(IntegrityError):
            open_secret_key(server, "cloud-1", blob, ctx, keys.key_id)
    # ... and a blob handed to the wrong client does not open for it.
    with pytest.raises(IntegrityError):
        open_secret_key(clients["cloud-2"], "cloud-2", sealed["cloud-1"], ctx, keys.key_id)


def test_sharing_needs_the_secret_key() -> None:
    keys = xcloud.CkksContext().keygen().public_only()
    with pytest.raises(ValueError, match="secret key"):
        share_secret_key(keys, {"cloud-1": NodeIdentity().public_bytes})


def test_mac_key_is_sealed_to_the_server() -> None:
    server = NodeIdentity()
    mac = bytes(range(32))
    blob = seal_mac_key(server.public_bytes, "cloud-3", mac)
    assert open_mac_key(server, "cloud-3", blob) == mac
    with pytest.raises(IntegrityError):
        open_mac_key(server, "cloud-4", blob)  # another client's claim
    with pytest.raises(ValueError, match="32 bytes"):
        seal_mac_key(server.public_bytes, "cloud-3", b"short")


def test_local_certificates_chain_to_the_ca(tmp_path) -> None:
    # Execute
    paths = make_local_certificates(tmp_path)
    # Assert
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
    assert key.public_key().public_numbers() == server.public_key().public_numbers()
    assert paths.server_key.stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError):
        make_local_certificates(tmp_path, hosts=())


def test_node_auth_key_pair(tmp_path) -> None:
    private, public = make_node_auth_key(tmp_path, "node-0")
    priv = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    pub = serialization.load_ssh_public_key(public.read_bytes())
    assert isinstance(priv, ec.EllipticCurvePrivateKey) and isinstance(priv.curve, ec.SECP384R1)
    assert priv.public_key().public_numbers() == pub.public_numbers()
    assert private.stat().st_mode & 0o077 == 0
