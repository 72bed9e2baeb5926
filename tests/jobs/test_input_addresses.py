"""Input downloads reach public addresses only, unless the owner allowed private networks.

Real HTTP(S) servers on 127.0.0.1 stand in for both sides: a "public" server is one whose loopback
port the guard is told to permit (as a provider may permit an ``ip:port``), and public-looking names
resolve through an injected resolver, so nothing here leaves this machine or asks a real DNS server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sparecycles.agent.jobs.input_addresses import AddressGuard
from sparecycles.agent.jobs.inputs import InputCache, InputError
from sparecycles.protocol.jobs import JobInput

PAYLOAD = b"frame-0001 " * 5000
SECRET = b"router admin page"
INSIDE = "inside this provider's own machine or network"

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Site:
    """A real HTTP server on 127.0.0.1 answering fixed ``answers`` by path; what it was asked, and over TLS by
    which server name."""

    answers: dict[str, Answer]
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    server_names: list[str | None] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@contextlib.contextmanager
def serving(answers: dict[str, Answer], tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    site = Site(answers)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("Host", "")))
            status, headers, body = site.answers.get(self.path, (404, {}, b"no such file"))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        tls.sni_callback = lambda _socket, name, _context: site.server_names.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    site.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)  # quick to shut down
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


def redirect(location: str) -> Answer:
    return 302, {"Location": location}, b""


@pytest.fixture
def private() -> Iterator[Site]:
    """A server inside the provider's network, with something a requester must never read."""
    with serving({"/admin": (403, {}, SECRET), "/data.bin": (200, {}, PAYLOAD)}) as site:
        yield site


@pytest.fixture
def public() -> Iterator[Site]:
    """A server the guard treats as public (its port is permitted); tests add its answers."""
    with serving({"/data.bin": (200, {}, PAYLOAD)}) as site:
        yield site


class Resolver:
    """Public-looking names that resolve to what a test says, and how often each was looked up."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, _port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError(f"{host} does not resolve in this test")
        return self.answers[host]


def guarded_cache(
    tmp_path: Path,
    resolver: Resolver,
    public: Site | None = None,
    *,
    client_factory: Callable[[], httpx.AsyncClient] = lambda: httpx.AsyncClient(timeout=10),
    internal_allowed: Callable[[], bool] = lambda: False,
) -> InputCache:
    """A cache whose guard resolves with ``resolver`` and takes ``public``'s loopback port for a public one."""
    permitted = [("127.0.0.1", public.port)] if public is not None else []
    guard = AddressGuard(resolver=resolver, own_addresses=lambda: [], permit_internal=permitted)
    return InputCache(
        tmp_path / "inputs", addresses=guard, client_factory=client_factory, internal_allowed=internal_allowed
    )


def url_input(url: str) -> JobInput:
    return JobInput(path="data.bin", url=url, sha256=hashlib.sha256(PAYLOAD).hexdigest(), size_bytes=len(PAYLOAD))


def refusal(cache: InputCache, url: str) -> str:
    with pytest.raises(InputError) as raised:
        asyncio.run(cache.fetch(url_input(url)))
    return str(raised.value)


def test_a_public_looking_name_that_resolves_to_loopback_is_refused_before_connecting(
    tmp_path: Path, private: Site
) -> None:
    resolver = Resolver({"localtest.example": ["127.0.0.1"]})
    message = refusal(guarded_cache(tmp_path, resolver), private.url("/data.bin", host="localtest.example"))
    assert INSIDE in message
    assert message.startswith("input data.bin: refused: http://localtest.example:")
    assert "127.0.0.1" not in message  # the provider's DNS answer is not told to the requester
    assert private.requests == []
    assert list((tmp_path / "inputs").iterdir()) == []


def test_by_default_an_input_cache_refuses_the_providers_own_network(tmp_path: Path, private: Site) -> None:
    message = refusal(InputCache(tmp_path / "inputs"), private.url("/admin"))
    assert INSIDE in message
    assert "HTTP 403" not in message  # its status never goes back (the port in the URL may hold "403")
    assert private.requests == []


def test_loopback_by_address_is_refused_too(tmp_path: Path, private: Site) -> None:
    message = refusal(guarded_cache(tmp_path, Resolver({})), private.url("/data.bin"))
    assert INSIDE in message
    assert private.requests == []


def test_one_internal_address_among_public_ones_is_enough_to_refuse(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def never_sent(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=PAYLOAD)

    resolver = Resolver({"mixed.example": ["93.184.216.34", "169.254.169.254"]})
    cache = guarded_cache(
        tmp_path, resolver, client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(never_sent))
    )
    assert INSIDE in refusal(cache, "http://mixed.example/data.bin")
    assert sent == []


def test_a_redirect_from_a_public_server_to_loopback_is_refused_and_never_followed(
    tmp_path: Path, public: Site, private: Site
) -> None:
    public.answers["/moved"] = redirect(private.url("/admin"))
    message = refusal(guarded_cache(tmp_path, Resolver({}), public), public.url("/moved"))
    assert INSIDE in message
    assert f"redirected to {private.url('/admin')}" in message
    assert "HTTP 403" not in message  # its status never goes back (the port in the URL may hold "403")
    assert SECRET.decode() not in message
    assert public.requests == [("/moved", f"127.0.0.1:{public.port}")]
    assert private.requests == []


def test_a_redirect_to_a_name_that_resolves_inside_is_refused(tmp_path: Path, public: Site, private: Site) -> None:
    resolver = Resolver({"files.example": ["127.0.0.1"], "localtest.example": ["127.0.0.1"]})
    public.answers["/moved"] = redirect(private.url("/admin", host="localtest.example"))
    message = refusal(guarded_cache(tmp_path, resolver, public), public.url("/moved", host="files.example"))
    assert INSIDE in message
    assert private.requests == []


def test_an_ordinary_download_connects_to_the_checked_address_and_keeps_the_name(tmp_path: Path, public: Site) -> None:
    resolver = Resolver({"files.example": ["127.0.0.1"]})
    public.answers["/latest"] = redirect("/data.bin")
    cache = guarded_cache(tmp_path, resolver, public)
    path = asyncio.run(cache.fetch(url_input(public.url("/latest", host="files.example"))))
    assert path.read_bytes() == PAYLOAD
    host = f"files.example:{public.port}"
    assert public.requests == [("/latest", host), ("/data.bin", host)]
    # One lookup per hop, made by the guard: "files.example" does not exist for the system resolver, so the
    # connections went to the address that was checked.
    assert resolver.lookups == ["files.example", "files.example"]


def test_a_name_that_does_not_resolve_says_so(tmp_path: Path) -> None:
    url = "http://nowhere.example/data.bin"
    message = refusal(guarded_cache(tmp_path, Resolver({})), url)
    assert message == f"input data.bin: {url} cannot be fetched: its host name does not resolve"


def test_an_error_from_a_public_server_is_still_reported(tmp_path: Path, public: Site) -> None:
    message = refusal(guarded_cache(tmp_path, Resolver({}), public), public.url("/missing.bin"))
    assert message.endswith("answered HTTP 404")


def test_endless_redirects_stop(tmp_path: Path, public: Site) -> None:
    public.answers["/loop"] = redirect("/loop")
    message = refusal(guarded_cache(tmp_path, Resolver({}), public), public.url("/loop"))
    assert "redirects more than 5 times" in message
    assert len(public.requests) == 6


def self_signed(name: str) -> tuple[bytes, bytes]:
    """A certificate for the DNS name ``name`` signed by its own key, and that key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[Site, ssl.SSLContext]]:
    """An HTTPS server on loopback with a certificate for files.example, and a client context trusting it."""
    cert, key = self_signed("files.example")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    with serving({"/data.bin": (200, {}, PAYLOAD)}, tls=server) as site:
        yield site, ssl.create_default_context(cadata=cert.decode())


def test_https_to_a_checked_address_keeps_the_name_for_sni_and_the_certificate(
    tmp_path: Path, tls_site: tuple[Site, ssl.SSLContext]
) -> None:
    site, trusted = tls_site
    resolver = Resolver({"files.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    cache = guarded_cache(tmp_path, resolver, site, client_factory=lambda: httpx.AsyncClient(verify=trusted))
    path = asyncio.run(cache.fetch(url_input(site.url("/data.bin", host="files.example", scheme="https"))))
    assert path.read_bytes() == PAYLOAD
    assert site.server_names == ["files.example"]
    assert site.requests == [("/data.bin", f"files.example:{site.port}")]

    # The certificate is still checked against the URL's name, not the address connected to.
    fresh = guarded_cache(tmp_path / "fresh", resolver, site, client_factory=lambda: httpx.AsyncClient(verify=trusted))
    message = refusal(fresh, site.url("/data.bin", host="other.example", scheme="https"))
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert len(site.requests) == 1


def test_with_private_networks_allowed_loopback_and_redirects_to_it_work_as_before(
    tmp_path: Path, public: Site, private: Site
) -> None:
    public.answers["/moved"] = redirect(private.url("/data.bin"))
    cache = guarded_cache(tmp_path, Resolver({}), internal_allowed=lambda: True)
    assert asyncio.run(cache.fetch(url_input(public.url("/moved")))).read_bytes() == PAYLOAD
    assert private.requests == [("/data.bin", f"127.0.0.1:{private.port}")]


def test_the_private_networks_setting_is_asked_at_each_download(tmp_path: Path, private: Site) -> None:
    allowed = threading.Event()
    cache = guarded_cache(tmp_path, Resolver({}), internal_allowed=allowed.is_set)
    assert INSIDE in refusal(cache, private.url("/data.bin"))
    allowed.set()
    assert asyncio.run(cache.fetch(url_input(private.url("/data.bin")))).read_bytes() == PAYLOAD


def test_the_guard_takes_only_addresses_as_permitted_exceptions() -> None:
    with pytest.raises(ValueError, match="IP addresses only"):
        AddressGuard(permit_internal=[("files.example", 80)])


def test_a_redirect_to_the_cloud_metadata_address_is_refused(tmp_path: Path, public: Site) -> None:
    public.answers["/metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    assert INSIDE in refusal(guarded_cache(tmp_path, Resolver({}), public), public.url("/metadata"))
