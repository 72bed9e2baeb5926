"""Job input files, cached by their SHA-256 and reused across jobs.

An input is given inline (small) or by URL with the SHA-256 it must have. Either way the bytes
land in ``<cache>/<sha256>`` only after their hash checked out, so a second job naming the same
hash reuses the file without a download. Downloads stream through the bandwidth throttle, stop at
the declared size, and leave nothing behind when they fail. Unless the owner allowed private
networks, a download (and every redirect it follows) reaches public addresses only
(:mod:`sparecycles.agent.jobs.input_addresses`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx

from sparecycles.agent.jobs.downloads import Throttle
from sparecycles.agent.jobs.input_addresses import AddressGuard, InputAddressError, open_public
from sparecycles.protocol.jobs import JobInput

log = logging.getLogger(__name__)


class InputError(Exception):
    """An input could not be had; ``str()`` says which and why (reported to the marketplace)."""


class InputCache:
    """Job inputs by SHA-256 under ``folder``, downloaded when missing.

    ``internal_allowed`` is the owner's "private networks" setting, asked at each download: without
    it, a URL or redirect that leads to this machine or its networks is refused before it connects
    (``addresses`` resolves and checks each hop), since the requester would read the answer in the
    job's error; with it, downloads go wherever the URL and its redirects lead.
    """

    def __init__(
        self,
        folder: Path,
        *,
        client_factory: Callable[[], httpx.AsyncClient] = lambda: httpx.AsyncClient(timeout=httpx.Timeout(30.0)),
        throttle: Throttle | None = None,
        internal_allowed: Callable[[], bool] = lambda: False,
        addresses: AddressGuard | None = None,
    ) -> None:
        self._folder = folder
        self._client_factory = client_factory
        self._throttle = throttle or Throttle(None)
        self._internal_allowed = internal_allowed
        self._addresses = addresses or AddressGuard()
        self.hits = 0
        self.downloads = 0

    def path_for(self, sha256: str) -> Path:
        return self._folder / sha256

    async def fetch(self, item: JobInput) -> Path:
        """The cached file with ``item``'s bytes, fetching them first when they are not cached yet."""
        cached = self.path_for(item.sha256)
        if cached.is_file() and _sha256_of(cached) == item.sha256:
            self.hits += 1
            os.utime(cached)  # recently used: a later clean-up keeps it longest
            return cached
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        content = item.content()
        if content is not None:
            self._store(content, item)
            return cached
        await self._download(item)
        return cached

    def _store(self, content: bytes, item: JobInput) -> None:
        if hashlib.sha256(content).hexdigest() != item.sha256:
            raise InputError(f"input {item.path}: its content does not match sha256 {item.sha256}")
        descriptor, temporary = tempfile.mkstemp(dir=self._folder, prefix=".partial-")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, self.path_for(item.sha256))

    async def _download(self, item: JobInput) -> None:
        if item.url is None or item.size_bytes is None:  # the model requires both; keep mypy and readers sure
            raise InputError(f"input {item.path}: neither inline content nor a URL with a size")
        limit = item.size_bytes
        digest = hashlib.sha256()
        received = 0
        descriptor, temporary = tempfile.mkstemp(dir=self._folder, prefix=".partial-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                async with self._client_factory() as client, self._get(client, item.url) as response:
                    if response.status_code != 200:
                        raise InputError(f"input {item.path}: {item.url} answered HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes(64 * 1024):
                        received += len(chunk)
                        if received > limit:
                            raise InputError(f"input {item.path}: {item.url} sent more than the declared {limit} bytes")
                        await self._throttle.consume(len(chunk))
                        digest.update(chunk)
                        handle.write(chunk)
            if digest.hexdigest() != item.sha256:
                raise InputError(f"input {item.path}: the download from {item.url} does not match its sha256")
            if received != limit:
                raise InputError(f"input {item.path}: got {received} bytes from {item.url}, expected {limit}")
            os.replace(temporary, self.path_for(item.sha256))
            self.downloads += 1
            log.info("Downloaded input %s (%d bytes)", item.path, received)
        except InputAddressError as exc:
            raise InputError(f"input {item.path}: {exc}") from None
        except httpx.HTTPError as exc:
            raise InputError(f"input {item.path}: downloading {item.url} failed: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def _get(self, client: httpx.AsyncClient, url: str) -> AbstractAsyncContextManager[httpx.Response]:
        """GET ``url``: wherever it leads when the owner allowed private networks, else by checked addresses only."""
        if self._internal_allowed():
            return client.stream("GET", url, follow_redirects=True)
        return open_public(client, url, self._addresses)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
