"""Certificates for serving a registry over HTTPS: a throwaway CA, and a server certificate it signs.

docker and podman talk plain HTTP only to ``localhost`` (and to registries
configured as insecure); anything else needs TLS a client trusts. So
``make_certificates`` writes a CA certificate a client can be told to trust,
and a server certificate for ``localhost``, ``127.0.0.1``, ``::1`` and any
other names given, signed by that CA::

    <directory>/ca.crt                  the CA: give it to the client
    <directory>/server.crt              the server's certificate
    <directory>/private/server.key      the server's private key

The directory holds only certificates, so it can serve as is as a client's
certificate directory (``skopeo --cert-dir``, ``/etc/docker/certs.d/<host:port>/``,
``/etc/containers/certs.d/<host:port>/``): those read every ``*.crt`` as a CA
and every ``*.key`` as a client key, and refuse a key without its ``.cert``,
which is why the server's key lives one level down.

The CA's own private key is never written anywhere: it signs the server
certificate and is dropped, so trusting ``ca.crt`` trusts that one server
certificate and nothing else. Existing files that still cover the names asked
for, and are valid for another day, are reused, so a client keeps trusting a
directory across restarts.

Needs the ``cryptography`` package: ``pip install 'fakeregistry[tls]'``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, List, Optional, Union

if TYPE_CHECKING:
    from cryptography import x509

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=1)  # reuse files only if they stay valid at least this long
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclass(frozen=True)
class TLSFiles:
    """Where the certificates are; ``server_context()`` is what a server needs, ``ca_file`` what a client needs."""

    directory: Path
    ca_file: Path  # ca.crt: what clients trust
    cert_file: Path  # server.crt
    key_file: Path  # private/server.key
    names: tuple[str, ...]  # the names the server certificate covers

    def server_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for the server side: TLS 1.2 or later, with the server certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for a client that trusts the CA (and checks host names)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_certificates(
    directory: Union[str, "os.PathLike[str]", None] = None, hosts: Iterable[str] = (), *, days: int = VALID_DAYS
) -> TLSFiles:
    """Write (or reuse) ``ca.crt``, ``server.crt`` and ``private/server.key`` in ``directory``.

    ``directory`` is created if missing; None makes a fresh temporary one (the
    caller removes it). The server certificate names ``localhost``,
    ``127.0.0.1``, ``::1`` and each of ``hosts`` (host names or IP addresses;
    an unspecified address such as ``0.0.0.0`` adds this machine's host name).
    """
    names = certificate_names(hosts)
    if directory is None:
        root = Path(tempfile.mkdtemp(prefix="fakeregistry-tls-"))
    else:
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(root, root / "ca.crt", root / "server.crt", root / "private" / "server.key", names)
    if not _reusable(files):
        _write(files, days)
    return files


def certificate_names(hosts: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a server certificate for ``hosts`` covers: the loopback names first, no duplicates."""
    names: List[str] = list(LOOPBACK_NAMES)
    for host in hosts:
        host = host.strip("[]")
        if not host:
            continue
        address = _ip(host)
        if address is not None and address.is_unspecified:  # listening everywhere: add the machine's name
            host = socket.gethostname()
        elif address is not None:
            host = str(address)
        if host.lower() not in (name.lower() for name in names):
            names.append(host)
    return tuple(names)


def _ip(name: str) -> Optional[IPAddress]:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _crypto() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ImportError(
            "serving over TLS needs the 'cryptography' package to make certificates: pip install 'fakeregistry[tls]'"
        ) from None


def _reusable(files: TLSFiles) -> bool:
    """Whether the files exist, match, cover every name, and stay valid long enough."""
    if not (files.ca_file.is_file() and files.cert_file.is_file() and files.key_file.is_file()):
        return False
    _crypto()
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        certificate = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
        certificate.verify_directly_issued_by(ca)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.ExtensionNotFound):
        return False
    if key.public_key() != certificate.public_key():
        return False
    covered = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    covered |= {str(address) for address in san.get_values_for_type(x509.IPAddress)}
    if not all(name.lower() in covered for name in files.names):
        return False
    deadline = datetime.datetime.now(datetime.timezone.utc) + RENEW_BEFORE
    return all(_not_after(cert) > deadline for cert in (ca, certificate))


def _not_after(certificate: "x509.Certificate") -> datetime.datetime:
    return certificate.not_valid_after_utc


def _write(files: TLSFiles, days: int) -> None:
    _crypto()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(hours=1)  # a client whose clock is a little behind still accepts them
    not_after = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fakeregistry"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"fakeregistry throwaway CA {now:%Y-%m-%d %H:%M:%S}"),
        ]
    )
    ca_key_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(ca_key_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    alternative_names: List[x509.GeneralName] = []
    for name in files.names:
        address = _ip(name)
        alternative_names.append(x509.IPAddress(address) if address is not None else x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fakeregistry"),
                    x509.NameAttribute(NameOID.COMMON_NAME, files.names[0]),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    key_bytes = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    files.key_file.parent.mkdir(mode=0o700, exist_ok=True)
    _write_file(files.key_file, key_bytes, 0o600)
    _write_file(files.cert_file, certificate.public_bytes(pem), 0o644)
    _write_file(files.ca_file, ca.public_bytes(pem), 0o644)  # last: its presence means the set is complete


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically, created with ``mode`` (a key is never readable by others, even briefly)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
