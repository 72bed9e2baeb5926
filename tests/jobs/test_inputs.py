"""Job inputs: inline or downloaded from a real HTTP server on loopback, cached by SHA-256."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from sparecycles.agent.jobs.inputs import InputCache, InputError
from sparecycles.protocol.jobs import JobInput

PAYLOAD = b"frame-0001 " * 5000


class Handler(http.server.BaseHTTPRequestHandler):
    served: ClassVar[list[str]] = []
    bodies: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        Handler.served.append(self.path)
        body = Handler.bodies.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    Handler.served = []
    Handler.bodies = {"/data.bin": PAYLOAD, "/wrong.bin": PAYLOAD + b"!", "/long.bin": PAYLOAD * 2}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def loopback_cache(tmp_path: Path) -> InputCache:
    """A cache that may download from this machine, as the owner's "private networks" setting allows
    (tests/jobs/test_input_addresses.py checks the refusal without it)."""
    return InputCache(tmp_path / "inputs", internal_allowed=lambda: True)


def url_input(url: str, *, sha: str | None = None, size: int | None = None) -> JobInput:
    return JobInput(
        path="data.bin",
        url=url,
        sha256=sha or hashlib.sha256(PAYLOAD).hexdigest(),
        size_bytes=len(PAYLOAD) if size is None else size,
    )


def test_a_second_job_with_the_same_sha256_reuses_the_cached_input(tmp_path: Path, server: str) -> None:
    cache = loopback_cache(tmp_path)
    first = asyncio.run(cache.fetch(url_input(f"{server}/data.bin")))
    second = asyncio.run(cache.fetch(url_input(f"{server}/data.bin").model_copy(update={"path": "other.bin"})))
    assert first == second
    assert first.read_bytes() == PAYLOAD
    assert Handler.served == ["/data.bin"]  # downloaded once
    assert (cache.downloads, cache.hits) == (1, 1)


def test_inline_input_is_stored_under_its_hash(tmp_path: Path) -> None:
    content = b"hello"
    item = JobInput(
        path="hello.txt", content_base64=base64.b64encode(content).decode(), sha256=hashlib.sha256(content).hexdigest()
    )
    cache = InputCache(tmp_path / "inputs")
    path = asyncio.run(cache.fetch(item))
    assert path.name == item.sha256
    assert path.read_bytes() == content


def test_a_download_with_the_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path, server: str) -> None:
    cache = loopback_cache(tmp_path)
    item = url_input(f"{server}/wrong.bin", size=len(PAYLOAD) + 1)
    with pytest.raises(InputError, match="does not match its sha256"):
        asyncio.run(cache.fetch(item))
    assert list((tmp_path / "inputs").iterdir()) == []


def test_a_download_longer_than_declared_is_cut_off(tmp_path: Path, server: str) -> None:
    cache = loopback_cache(tmp_path)
    with pytest.raises(InputError, match="more than the declared"):
        asyncio.run(cache.fetch(url_input(f"{server}/long.bin")))
    assert list((tmp_path / "inputs").iterdir()) == []


def test_an_http_error_names_the_input(tmp_path: Path, server: str) -> None:
    cache = loopback_cache(tmp_path)
    with pytest.raises(InputError, match="answered HTTP 404"):
        asyncio.run(cache.fetch(url_input(f"{server}/missing.bin")))


def test_a_tampered_cache_file_is_fetched_again(tmp_path: Path, server: str) -> None:
    cache = loopback_cache(tmp_path)
    item = url_input(f"{server}/data.bin")
    path = asyncio.run(cache.fetch(item))
    path.write_bytes(b"tampered")
    assert asyncio.run(cache.fetch(item)).read_bytes() == PAYLOAD
    assert cache.downloads == 2
