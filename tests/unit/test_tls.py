"""Local CA and server certificate: creation, reuse, re-issue, file modes, bad PEM."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from server.config import SettingsError
from server.tls import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    ensure_local_certificates,
    fingerprint,
    server_context,
)

NAMES = ["localhost", "127.0.0.1", "::1", "box", "box.local", "192.168.1.20"]


def sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def test_creates_ca_and_certificate_covering_every_name(tmp_path: Path) -> None:
    files = ensure_local_certificates(tmp_path, NAMES)
    assert files.ca_created and files.leaf_issued
    assert sans(files.cert) == set(NAMES)
    for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY):
        assert (tmp_path / name).is_file()
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=825), "Apple rejects longer-lived server certificates"


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    ensure_local_certificates(tmp_path, NAMES)
    for name in (CA_KEY, SERVER_KEY):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_reuse_across_starts_keeps_ca_and_certificate(tmp_path: Path) -> None:
    first = ensure_local_certificates(tmp_path, NAMES)
    before = fingerprint(first.ca), first.cert.read_bytes()
    second = ensure_local_certificates(tmp_path, NAMES)
    assert not second.ca_created and not second.leaf_issued
    assert (fingerprint(second.ca), second.cert.read_bytes()) == before


def test_new_address_reissues_from_the_same_ca(tmp_path: Path) -> None:
    first = ensure_local_certificates(tmp_path, NAMES)
    ca_print = fingerprint(first.ca)
    moved = ensure_local_certificates(tmp_path, [*NAMES, "10.1.2.3"])
    assert not moved.ca_created and moved.leaf_issued
    assert fingerprint(moved.ca) == ca_print
    assert "10.1.2.3" in sans(moved.cert)
    ca = x509.load_pem_x509_certificate(moved.ca.read_bytes()) if moved.ca else None
    assert ca is not None
    x509.load_pem_x509_certificate(moved.cert.read_bytes()).verify_directly_issued_by(ca)


def test_certificate_from_another_ca_is_replaced(tmp_path: Path) -> None:
    ensure_local_certificates(tmp_path, NAMES)
    stranger = trustme.CA().issue_cert(*NAMES)
    (tmp_path / SERVER_CERT).write_bytes(stranger.cert_chain_pems[0].bytes())
    assert ensure_local_certificates(tmp_path, NAMES).leaf_issued


def test_handshake_verifies_with_the_generated_ca(tmp_path: Path) -> None:
    files = ensure_local_certificates(tmp_path, NAMES)
    server = server_context(files.cert, files.key, from_env=False)
    client = ssl.create_default_context(cafile=str(files.ca))
    a, b = ssl.MemoryBIO(), ssl.MemoryBIO()
    c1, c2 = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_obj = server.wrap_bio(a, b, server_side=True)
    c_obj = client.wrap_bio(c1, c2, server_hostname="192.168.1.20")
    for _ in range(10):
        for obj in (c_obj, s_obj):
            with contextlib.suppress(ssl.SSLWantReadError):
                obj.do_handshake()
        a.write(c2.read())
        c1.write(b.read())
    assert c_obj.getpeercert() is not None
    assert ipaddress.ip_address("192.168.1.20")


def test_unreadable_pem_from_env_names_key_and_cert(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_text("not a key")
    cert.write_text("not a certificate")
    with pytest.raises(SettingsError) as caught:
        server_context(cert, key, from_env=True)
    message = str(caught.value)
    assert "KEY=" in message and "CERT=" in message and "PEM" in message


def test_corrupt_local_ca_says_how_to_recover(tmp_path: Path) -> None:
    (tmp_path / CA_CERT).write_text("garbage")
    (tmp_path / CA_KEY).write_text("garbage")
    with pytest.raises(SettingsError, match="delete both"):
        ensure_local_certificates(tmp_path, NAMES)


def certs_dir_problems(tmp_path: Path) -> dict[str, Path]:
    """CERTS_DIR set-ups a user can get wrong, each needing a different fix."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    ca_is_dir = tmp_path / "ca-is-dir"
    (ca_is_dir / CA_CERT).mkdir(parents=True)
    return {
        "under-a-file": a_file / "certs",
        "is-a-file": a_file,
        "in-proc": Path("/proc/lan-call-certs"),
        "ca-pem-is-a-directory": ca_is_dir,
    }


@pytest.mark.parametrize("case", ["under-a-file", "is-a-file", "in-proc", "ca-pem-is-a-directory"])
def test_certs_dir_problems_are_settings_errors(tmp_path: Path, case: str) -> None:
    certs_dir = certs_dir_problems(tmp_path)[case]
    with pytest.raises(SettingsError) as caught:
        ensure_local_certificates(certs_dir, NAMES)
    message = str(caught.value)
    assert "CERTS_DIR=" in message and "\n" not in message
    assert "set CERTS_DIR" in message or "remove it" in message


def test_ca_certificate_with_another_cas_key_is_refused(tmp_path: Path) -> None:
    ensure_local_certificates(tmp_path, NAMES)
    (tmp_path / CA_KEY).write_bytes(trustme.CA().private_key_pem.bytes())
    with pytest.raises(SettingsError, match="not a matching PEM CA certificate and key"):
        ensure_local_certificates(tmp_path, NAMES)
