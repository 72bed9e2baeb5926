"""The owner's private marketplace: the reference server in a child process on loopback.

A process of its own (as the marketplace is in the architecture), so the agent stays small and a
marketplace failure never takes the agent down: the agent starts it, waits for it to answer, restarts
it on the same port if it dies, and stops it when the agent stops. Its files (database, outputs,
operator key in a 0600 file) live in ``state/market``; ``endpoint.json`` there (0600) holds its URL and
the owner's requester key for ``sparecycles submit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from pathlib import Path

import httpx

from sparecycles.control.spawn import sparecycles_command
from sparecycles.fileio import atomic_write_text

log = logging.getLogger(__name__)

OWNER_REQUESTER = "owner"
OWNER_CREDIT = 10**36  # the owner's own private marketplace: credit is a formality there
_START_TIMEOUT_S = 60.0
_STOP_GRACE_S = 5.0


class PrivateMarketError(RuntimeError):
    """The private marketplace would not start; the message carries the end of its log."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateMarketplace:
    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / "market"
        self._log_file = self.folder / "server.log"
        self._process: asyncio.subprocess.Process | None = None
        self._port: int | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        assert self._port is not None  # noqa: S101 - set by start()
        return f"http://127.0.0.1:{self._port}"

    def _options(self) -> list[str]:
        return ["--data-dir", str(self.folder), "--key-file", str(self.folder / "operator.key")]

    async def start(self) -> str:
        """Start the server, wait until it answers, make sure the owner can submit; returns its URL."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._port = self._port or _free_port()
        await self._spawn()
        await self._ensure_owner()
        return self.url

    async def _spawn(self) -> None:
        command = sparecycles_command("market", "serve", "--host", "127.0.0.1", "--port", str(self._port))
        with self._log_file.open("ab") as log_output:
            self._process = await asyncio.create_subprocess_exec(
                *command, *self._options(), stdout=log_output, stderr=asyncio.subprocess.STDOUT
            )
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self._process.returncode is not None:
                    raise PrivateMarketError(f"the private marketplace exited: {self._tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/v1/info")).status_code == 200:
                        log.info("Private marketplace on %s (pid %d)", self.url, self._process.pid)
                        return
                await asyncio.sleep(0.1)
        raise PrivateMarketError(f"the private marketplace did not answer in {_START_TIMEOUT_S:.0f} s: {self._tail()}")

    def _tail(self) -> str:
        try:
            return self._log_file.read_text(encoding="utf-8", errors="replace")[-1500:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    async def _cli(self, *arguments: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *sparecycles_command("market", *arguments, *self._options()),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise PrivateMarketError(f"`sparecycles market {arguments[0]}` failed: {err.decode(errors='replace')}")
        return out.decode().strip()

    async def _ensure_owner(self) -> None:
        endpoint = self.folder / "endpoint.json"
        previous: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            previous = dict(json.loads(endpoint.read_text(encoding="utf-8")))
        key = previous.get("requester_key")
        if not key:  # first start (or the file was lost: only the key's hash is kept, so a new owner key)
            name = f"{OWNER_REQUESTER}-{secrets.token_hex(3)}"
            key = (await self._cli("add-requester", name)).splitlines()[-1]
            await self._cli("credit", name, str(OWNER_CREDIT))
        atomic_write_text(endpoint, json.dumps({"url": self.url, "requester_key": key}, indent=1) + "\n")

    async def watch(self) -> None:
        """Restart the server on the same port whenever it exits, until :meth:`stop` (cancel to end)."""
        delay = 1.0
        while True:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if self._stopping:
                return
            log.warning("The private marketplace exited (%s); starting it again in %.0f s", code, delay)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
                delay = 1.0
            except PrivateMarketError as exc:
                log.warning("%s", exc)
                delay = min(delay * 2, 60.0)

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), _STOP_GRACE_S)
        except TimeoutError:
            process.kill()
            await process.wait()
