"""``echoctl serve --tls-cert --tls-key``: HTTPS from the real service (uvicorn).

A self-signed certificate for 127.0.0.1 is made with ``cryptography``; an
httpx client that trusts exactly that certificate talks to the service run
in this process. Bad TLS options are refused before anything listens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from echo_archive.api.roles import Role
from echo_archive.api.users import add_user
from echo_archive.cli import app
from echo_archive.errors import RequestError
from echo_archive.service.runner import Service, check_tls
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.writer import VaultWriter
from tests.test_api_middleware import quiet_vault

PASSWORD = "correct horse battery"  # noqa: S105 - a test user's password


def self_signed(directory: Path, name: str = "echo") -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "echo test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@contextmanager
def tls_service(vault: Path, cert: Path, key: Path) -> Iterator[Service]:
    """The service of ``vault`` serving HTTPS on loopback, in this process (as in_process)."""
    service = Service(
        vault, listen="127.0.0.1:0", clock=ManualClock(time.time()), tls_cert=cert, tls_key=key
    )
    ready = threading.Event()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(asyncio.run(service.run(lambda _url: ready.set()))),
        daemon=True,
    )
    thread.start()
    assert ready.wait(60), "the service did not start"
    try:
        yield service
    finally:
        assert service.loop is not None
        service.loop.call_soon_threadsafe(service.request_stop)
        thread.join(60)
    assert result == [0]


@pytest.mark.slow
def test_https_with_a_self_signed_certificate_hsts_and_secure_cookies(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    vault = quiet_vault(tmp_path)
    with VaultWriter.open(vault) as writer:
        add_user(writer, "ana", Role.VIEWER, PASSWORD, now=time.time(), actor="cli:t")
    with tls_service(vault, cert, key) as service:
        assert service.url is not None
        assert service.url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=service.url, verify=trust, timeout=30) as c:
            r = c.get("/healthz")
            assert r.status_code == 200
            assert r.headers["strict-transport-security"] == "max-age=31536000"
            login = c.post("/v1/session", data={"username": "ana", "password": PASSWORD})
            assert login.status_code == 200, login.text
            for value in login.headers.get_list("set-cookie"):
                assert "Secure" in [a.strip() for a in value.split(";")]
            jwt = login.headers.get_list("set-cookie")[0].split(";")[0].split("=", 1)[1]
            who = c.get("/v1/whoami", headers={"Cookie": f"echo_session={jwt}"})
            assert who.status_code == 200
            assert who.json()["name"] == "ana"
        # a client that does not trust the certificate is refused by TLS itself
        with (
            httpx.Client(base_url=service.url, timeout=30) as untrusting,
            pytest.raises(httpx.ConnectError),
        ):
            untrusting.get("/healthz")


def test_bad_tls_options_are_clear_errors(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    other_cert, _ = self_signed(tmp_path, "other")
    assert check_tls(None, None) is None
    assert check_tls(cert, key) == (cert.resolve(), key.resolve())
    with pytest.raises(RequestError, match="go together"):
        check_tls(cert, None)
    with pytest.raises(RequestError, match="go together"):
        check_tls(None, key)
    with pytest.raises(RequestError, match=r"--tls-key .*missing\.key: cannot read it"):
        check_tls(cert, tmp_path / "missing.key")
    with pytest.raises(RequestError, match="not a PEM certificate and its private key"):
        check_tls(other_cert, key)  # the key is not this certificate's
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not pem\n")
    with pytest.raises(RequestError, match="not a PEM certificate"):
        check_tls(garbage, key)
    # through the CLI: bad usage (exit 2), before the vault is touched or anything listens
    result = CliRunner().invoke(
        app, ["--vault", str(tmp_path / "none"), "serve", "--tls-cert", str(cert)]
    )
    assert result.exit_code == 2, result.output
    assert "--tls-cert and --tls-key go together" in result.output
    assert "PRIVATE KEY" not in result.output
