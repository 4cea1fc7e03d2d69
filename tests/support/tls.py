"""Loopback TLS for tests: a throwaway CA, a server certificate it signs, an aiosmtpd relay on it."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.net import free_port


@dataclass(frozen=True)
class ServerCertificate:
    """PEM files in a folder: ``ca_file`` (the CA to trust), ``cert_file``/``key_file`` (server)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(folder: Path, san: x509.GeneralName | None = None) -> ServerCertificate:
    """A CA and a server certificate it signs for ``san`` (default: IP 127.0.0.1), valid now."""
    san = san or x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("readmit test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("readmit test relay"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = ServerCertificate(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class Relay:
    """A running loopback relay: its port and what it accepted."""

    port: int
    envelopes: list = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def smtp_relay(
    certificate: ServerCertificate | None = None,
    *,
    implicit_tls: bool = False,
    port: int | None = None,
) -> Iterator[Relay]:
    """aiosmtpd on 127.0.0.1. With ``certificate``: STARTTLS required before MAIL and AUTH (or,
    ``implicit_tls``, TLS from the first byte: SMTPS). Without: plain text, no STARTTLS offered.
    Any login is accepted and recorded."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    relay = Relay(port or free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:
            relay.envelopes.append(envelope)
            return "250 Message accepted for delivery"

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        relay.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    options: dict = {"authenticator": authenticator, "auth_require_tls": True}
    if certificate and implicit_tls:
        options["ssl_context"] = certificate.server_context()
    elif certificate:
        options.update(tls_context=certificate.server_context(), require_starttls=True)
    else:
        options["auth_require_tls"] = False
    controller = Controller(Handler(), hostname="127.0.0.1", port=relay.port, **options)
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()
