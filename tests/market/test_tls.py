"""`market serve` over HTTPS with a certificate and key given by path, the warning when it listens beyond this
machine in clear, and the public URL that sign-in messages name."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from eth_account import Account

from sparecycles.agent.market_server.serve import ServeError, exposure_warning, public_url, tls_files
from tests.conftest import CLI, agent_env
from tests.market.market_process import MarketProcess, free_port

IN_CLEAR = "would cross the network in clear"


def self_signed(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, and that key (PEM files, the key 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def market(tmp_path: Path) -> Iterator[MarketProcess]:
    running = MarketProcess(tmp_path / "market")
    yield running
    running.stop()


def sign_in_challenge(client: httpx.Client) -> dict[str, str]:
    response = client.post("/v1/auth/nonce", json={"address": Account.create().address})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.slow
def test_https_with_the_given_certificate_and_no_warning(market: MarketProcess, certificate: tuple[Path, Path]) -> None:
    cert_file, key_file = certificate
    market.verify = ssl.create_default_context(cafile=str(cert_file))
    market.start(
        "--host",
        "0.0.0.0",
        "--public-url",
        market.url("https"),
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        scheme="https",
    )

    with httpx.Client(base_url=market.url("https"), verify=market.verify) as client:
        assert client.get("/v1/info").status_code == 200
        challenge = sign_in_challenge(client)
    assert challenge["uri"].startswith("https://")  # providers are told the HTTPS address
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{market.url('http')}/v1/info", timeout=5)  # no plain HTTP beside it
    with pytest.raises(httpx.ConnectError):  # and a client that does not trust the certificate stops
        httpx.get(f"{market.url('https')}/v1/info", timeout=5)
    assert IN_CLEAR not in market.stderr


@pytest.mark.slow
def test_listening_on_every_address_in_clear_warns_and_the_public_url_is_what_sign_in_names(
    market: MarketProcess,
) -> None:
    market.start("--host", "0.0.0.0", "--public-url", "https://market.example.org/")
    assert IN_CLEAR in market.stderr
    assert "--tls-cert" in market.stderr
    assert "docs/marketplace-operations.md" in market.stderr
    with httpx.Client(base_url=market.url()) as client:
        challenge = sign_in_challenge(client)
    assert challenge["domain"] == "market.example.org"
    assert challenge["uri"] == "https://market.example.org/v1/auth/sign-in"


def serve(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`market serve` that is expected to refuse to start (a timeout means it served)."""
    options = ["--data-dir", str(tmp_path / "data"), "--key-file", str(tmp_path / "operator.key")]
    return subprocess.run(
        [CLI, "market", "serve", "--port", str(free_port()), *options, *arguments],
        env=agent_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_missing_or_unusable_tls_files_are_refused_before_serving(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert_file, _key_file = certificate
    missing = serve(tmp_path, "--tls-cert", str(cert_file), "--tls-key", str(tmp_path / "absent.key"))
    assert missing.returncode != 0
    assert f"cannot read the TLS private key {tmp_path / 'absent.key'}" in missing.stderr
    assert "Traceback" not in missing.stderr
    alone = serve(tmp_path, "--tls-cert", str(cert_file))
    assert alone.returncode != 0
    assert "give both --tls-cert and --tls-key" in alone.stderr
    assert "Traceback" not in alone.stderr


def test_a_key_that_is_not_the_certificates_or_is_encrypted_is_refused(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert_file, _key_file = certificate
    _other_cert, other_key = self_signed(tmp_path, "other")
    with pytest.raises(ServeError, match="do not load together"):
        tls_files(cert_file, other_key)
    encrypted = tmp_path / "encrypted.key"
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(ServeError, match="encrypted"):
        tls_files(cert_file, encrypted)


@pytest.mark.parametrize(
    ("host", "warns"),
    [
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("market.example.org", True),
    ],
)
def test_only_loopback_addresses_may_serve_in_clear_quietly(host: str, warns: bool) -> None:
    assert (exposure_warning(host, None) is not None) == warns


def test_the_default_public_url_follows_tls_and_a_given_one_must_be_http(certificate: tuple[Path, Path]) -> None:
    tls = tls_files(*certificate)
    assert public_url("127.0.0.1", 8787, None) == "http://127.0.0.1:8787"
    assert public_url("127.0.0.1", 8787, tls) == "https://127.0.0.1:8787"
    assert public_url("::1", 8787, tls) == "https://[::1]:8787"
    assert exposure_warning("0.0.0.0", tls) is None
    assert public_url("0.0.0.0", 8787, None, "https://market.example.org/studio/") == (
        "https://market.example.org/studio"
    )
    for wildcard in ("0.0.0.0", "::"):  # no address a provider could use: agents would refuse its sign-ins
        with pytest.raises(ServeError, match="needs --public-url"):
            public_url(wildcard, 8787, tls)
    for bad in ("market.example.org", "ftp://market.example.org", "https://user@market.example.org"):
        with pytest.raises(ServeError, match="--public-url"):
            public_url("127.0.0.1", 8787, None, bad)
