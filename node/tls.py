"""TLS for the peer port and the API: certificates made with ``cryptography``, contexts for ``ssl``.

Peer links (node/p2p.py): the certificate's key IS the node's Ed25519 key. It is
self-signed and made again at every start-up from ``node.key`` (so it can never
disagree with the key), written with the key to ``<home>/peer-tls.pem`` (mode
0600) only because ``ssl`` loads a certificate chain from a file. Nothing checks
its chain, names or dates: a dialer checks that the certificate's public key is
the node key it expected at that address, TLS 1.3's CertificateVerify proves the
listener holds that key, and the signed handshake covers the SHA-256 of the
certificate as each side sees it (channel binding).

The dialer presents no certificate. Python's ``ssl`` can ask a client for one
only with a CA check of its chain (CERT_OPTIONAL and CERT_REQUIRED both verify
what the client sends against the loaded CAs, and there is no verify callback),
and a validator set of self-signed node keys has no CA; so the client is
authenticated by its handshake signature, which covers the listener's
certificate hash: a signature made inside a TLS session that ended anywhere but
at this listener does not verify here.

API (node/api.py): an ordinary server certificate and key in PEM files named
by ``api_tls_cert`` and ``api_tls_key`` (relative to the home). ``vigil node
init --api-tls`` makes a self-signed ECDSA P-256 one (browsers do not take
Ed25519 server certificates) whose names are the API host.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consensus.crypto import PrivateKey, key_hex, private_file_problem

PEER_TLS_FILE = "peer-tls.pem"
"""Node certificate and key as the peer listener loads them (rewritten at each start-up)."""
API_CERT_FILE = "api-tls.crt"
API_KEY_FILE = "api-tls.key"
"""What ``vigil node init --api-tls`` writes into the home."""
API_CERT_DAYS = 825
"""Validity of a generated API certificate (the longest some clients accept)."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class TLSConfigError(Exception):
    """A certificate or key file is missing, unreadable, too open or not what it must be."""


def cert_hash(der: bytes) -> bytes:
    """What the handshake binds to: SHA-256 of the listener's certificate (DER)."""
    return hashlib.sha256(der).digest()


def _ed25519(key: PrivateKey) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(key.seed())


def node_certificate(key: PrivateKey) -> x509.Certificate:
    """A self-signed X.509 certificate whose public key is the node's Ed25519 key."""
    private = _ed25519(key)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"vigil node {key_hex(key.public)[:16]}")]
    )
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, None)
    )


def certificate_node_key(der: bytes) -> bytes | None:
    """The raw Ed25519 public key a DER certificate carries, or None if it carries another kind."""
    try:
        public = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        return None
    if not isinstance(public, Ed25519PublicKey):
        return None
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read, replacing what was there."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class PeerTLS:
    """The TLS side of one node's peer links: its certificate and both contexts."""

    cert_der: bytes
    server: ssl.SSLContext
    client: ssl.SSLContext

    @property
    def cert_hash(self) -> bytes:
        return cert_hash(self.cert_der)

    @classmethod
    def create(cls, key: PrivateKey, directory: Path) -> PeerTLS:
        """Make the node certificate from ``key``; write it (0600) to ``directory`` for ``ssl``."""
        cert = node_certificate(key)
        pem = cert.public_bytes(serialization.Encoding.PEM) + _ed25519(key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
        path = directory / PEER_TLS_FILE
        _write_private(path, pem)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.minimum_version = ssl.TLSVersion.TLSv1_3
        server.load_cert_chain(path)
        return cls(cert.public_bytes(serialization.Encoding.DER), server, peer_client_context())


def peer_client_context() -> ssl.SSLContext:
    """TLS 1.3 with no chain or name check: the dialer checks the certificate's key itself."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return client


# ---------------------------------------------------------------------- the API


def _check_key_file(path: Path, setting: str) -> None:
    problem = private_file_problem(path, missing="no such file")
    if problem is not None:
        raise TLSConfigError(f"{setting}: {problem}")


def api_server_context(home: Path, cert: str, key: str) -> ssl.SSLContext | None:
    """The API's TLS context from the two settings (paths relative to ``home``), or None if
    both are empty (plain HTTP). Every failure names the setting and the file."""
    if not cert and not key:
        return None
    if not cert or not key:
        missing = "api_tls_cert" if not cert else "api_tls_key"
        raise TLSConfigError(f"{missing} is not set: HTTPS on the API needs both files")
    cert_path, key_path = home / cert, home / key
    if not cert_path.is_file():
        raise TLSConfigError(f"api_tls_cert: {cert_path}: no such file")
    _check_key_file(key_path, "api_tls_key")
    try:
        x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise TLSConfigError(f"api_tls_cert: {cert_path}: not a PEM certificate ({exc})") from None
    try:
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise TLSConfigError(
            f"api_tls_key: {key_path}: not an unencrypted PEM private key ({exc})"
        ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        raise TLSConfigError(
            f"api_tls_key: {key_path} does not match the certificate {cert_path} ({exc.reason})"
        ) from None
    return context


def api_names(host: str) -> list[x509.GeneralName]:
    """Subject alternative names for an API listening on ``host``: that host; for a wildcard
    address, this machine's name and the loopback names too."""
    bare = host.strip("[]")
    names: list[x509.GeneralName] = []
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return [x509.DNSName(bare)]
    if address.is_unspecified:
        names += [x509.DNSName(socket.gethostname()), x509.DNSName("localhost")]
        names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        names += [x509.IPAddress(ipaddress.ip_address("::1"))]
    else:
        names.append(x509.IPAddress(address))
    return names


def make_api_certificate(home: Path, host: str) -> tuple[str, str]:
    """Write a self-signed API certificate (ECDSA P-256) for ``host`` and its key (0600) into
    ``home``; return their names relative to it (the config's api_tls_cert, api_tls_key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = api_names(host)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host.strip("[]"))])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=API_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        home / API_KEY_FILE,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )  # fmt: skip
    (home / API_CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return API_CERT_FILE, API_KEY_FILE


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
