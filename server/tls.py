"""TLS without ceremony: a local CA made once with trustme and kept in certs/, and a
server certificate it issues for every name and address this machine answers to.

Phones only allow the camera on a secure origin, so every device that trusts the CA
once (see /trust) gets a green padlock from then on. When the machine's addresses
change, a new server certificate is issued from the same CA, so that trust carries over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from .config import SettingsError
from .files import write_private, write_public

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"

# Apple platforms reject TLS server certificates valid for more than 825 days, even
# from a user-installed CA; stay under that and renew a month before expiry.
LEAF_LIFETIME = dt.timedelta(days=800)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class CertFiles:
    cert: Path
    key: Path
    ca: Path | None  # None for user-supplied KEY/CERT
    ca_created: bool = False
    leaf_issued: bool = False


def _check_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """Raise ValueError unless the key is the certificate's own (a CA certificate
    paired with another CA's key would issue server certificates nobody can verify)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = load_pem_private_key(key_pem, password=None)
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ValueError("the key does not belong to the certificate")


def _load_or_create_ca(certs_dir: Path) -> tuple[trustme.CA, bool]:
    cert_path, key_path = certs_dir / CA_CERT, certs_dir / CA_KEY
    if cert_path.is_file() and key_path.is_file():
        try:
            cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
            _check_pair(cert_pem, key_pem)
            return trustme.CA.from_pem(cert_pem, key_pem), False
        except (ValueError, TypeError) as exc:
            raise SettingsError(
                f"{cert_path} and {key_path} are not a matching PEM CA certificate and key ({exc}); "
                "delete both to create a new local CA (devices will need to trust it again)"
            ) from None
    ca = trustme.CA(organization_name="LAN Call local CA")
    certs_dir.mkdir(parents=True, exist_ok=True)
    write_private(key_path, ca.private_key_pem.bytes())
    write_public(cert_path, ca.cert_pem.bytes())
    return ca, True


def _names_in(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns | ips


def certificate_names(cert_file: Path) -> list[str]:
    """The DNS names and addresses a (user-supplied) certificate is valid for."""
    try:
        return sorted(_names_in(x509.load_pem_x509_certificate(cert_file.read_bytes())))
    except (OSError, ValueError):
        return []


def _normalise(identity: str) -> str:
    try:
        return str(ipaddress.ip_address(identity))
    except ValueError:
        return identity.lower()


def _leaf_is_current(certs_dir: Path, ca: trustme.CA, identities: list[str]) -> bool:
    cert_path, key_path = certs_dir / SERVER_CERT, certs_dir / SERVER_KEY
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        leaf = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):  # corrupt, or from another CA
        return False
    if leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return False
    return {_normalise(i) for i in identities} <= _names_in(leaf)


def _check_certs_dir(certs_dir: Path) -> None:
    """Problems a user can fix, named before anything is read or written."""
    fix = "set CERTS_DIR to a directory this user can write, or remove what is in the way"
    for parent in [certs_dir, *certs_dir.parents]:
        if parent.exists() and not parent.is_dir():
            raise SettingsError(f"CERTS_DIR={str(certs_dir)!r}: {parent} is a file, not a directory; {fix}")
    for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY):
        path = certs_dir / name
        if path.exists() and not path.is_file():
            raise SettingsError(
                f"CERTS_DIR={str(certs_dir)!r}: {path} is not a regular file; remove it so it can be "
                "created again"
            )


def ensure_local_certificates(certs_dir: Path, identities: list[str]) -> CertFiles:
    """Create or reuse the local CA; (re)issue the server certificate when it does not
    cover every identity, is about to expire, or was not issued by this CA. Every
    problem with CERTS_DIR becomes a SettingsError naming the fix."""
    _check_certs_dir(certs_dir)
    try:
        return _ensure_local_certificates(certs_dir, identities)
    except OSError as exc:
        where = exc.filename or certs_dir
        raise SettingsError(
            f"CERTS_DIR={str(certs_dir)!r}: cannot create or write {where} ({exc.strerror or exc}); "
            "set CERTS_DIR to a directory this user can write"
        ) from None


def _ensure_local_certificates(certs_dir: Path, identities: list[str]) -> CertFiles:
    ca, ca_created = _load_or_create_ca(certs_dir)
    cert_path, key_path = certs_dir / SERVER_CERT, certs_dir / SERVER_KEY
    issued = False
    if ca_created or not _leaf_is_current(certs_dir, ca, identities):
        now = dt.datetime.now(dt.UTC)
        leaf = ca.issue_cert(
            *identities,
            common_name=identities[0],
            organization_name="LAN Call",
            not_before=now - dt.timedelta(hours=1),  # tolerate a phone's slow clock
            not_after=now + LEAF_LIFETIME,
        )
        write_private(key_path, leaf.private_key_pem.bytes())
        write_public(cert_path, b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        issued = True
    return CertFiles(cert_path, key_path, certs_dir / CA_CERT, ca_created, issued)


def server_context(cert: Path, key: Path, *, from_env: bool) -> ssl.SSLContext:
    """An SSLContext for serving; unreadable PEM becomes a SettingsError naming the fix."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        if from_env:
            raise SettingsError(
                f"KEY={str(key)!r} / CERT={str(cert)!r} cannot be loaded ({exc.args[-1]}); "
                "set CERT to a PEM certificate chain and KEY to its matching PEM private key"
            ) from None
        raise SettingsError(
            f"{cert} / {key} cannot be loaded ({exc.args[-1]}); delete them to issue new ones"
        ) from None
    return context


def fingerprint(pem_file: Path) -> str:
    """SHA-256 fingerprint, colon-separated, as phones show it when installing."""
    cert = x509.load_pem_x509_certificate(pem_file.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
