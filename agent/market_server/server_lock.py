"""Who is using a marketplace's data folder: `market serve` holds a shared lock on ``server.lock`` for its
lifetime, and `market restore` needs the lock exclusively.

Several server processes may share one data folder (shared locks), but none may run while its database
is replaced. An ``flock`` is released by the kernel when its process dies, so a crashed server leaves
no stale lock behind. The file also lists the servers' process ids, so a refusal can name them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sparecycles.agent.instance_lock import pid_alive

LOCK_NAME = "server.lock"
SHARE_PATIENCE_S = 2.0


class DataDirBusy(RuntimeError):
    """The data folder is in use by a process that must stop first; the message says which."""


def server_pids(data_dir: Path) -> list[int]:
    """The live processes the lock file lists as servers of ``data_dir`` (pids of dead ones are skipped)."""
    try:
        text = (data_dir / LOCK_NAME).read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    pids = {int(word) for word in text.split() if word.isdigit() and int(word) > 0}
    return sorted(pid for pid in pids if pid_alive(pid))


def _open(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)


if sys.platform == "win32":  # no flock: Windows itself refuses to replace a database a server has open

    @contextlib.contextmanager
    def serving(data_dir: Path, *, patience_s: float = SHARE_PATIENCE_S) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def exclusive(data_dir: Path) -> Iterator[None]:
        yield

else:
    import fcntl

    def _share(descriptor: int, data_dir: Path, patience_s: float) -> None:
        # Another server may hold the lock alone for the instant it takes to reset the list: wait that out.
        deadline = time.monotonic() + patience_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataDirBusy(
                        f"a `market restore` is replacing the database in {data_dir}; start the server when it is done"
                    ) from None
                time.sleep(0.05)

    @contextlib.contextmanager
    def serving(data_dir: Path, *, patience_s: float = SHARE_PATIENCE_S) -> Iterator[None]:
        """Mark ``data_dir`` as served by this process until the block ends (shared with other servers);
        refuse after ``patience_s`` while a restore holds it."""
        descriptor = _open(data_dir)
        try:
            try:
                # Alone: start a fresh list of servers; with others: add this one to theirs.
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(descriptor, 0)
                os.write(descriptor, f"{os.getpid()}\n".encode())
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                _share(descriptor, data_dir, patience_s)
                os.write(descriptor, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(descriptor)  # releases the lock

    @contextlib.contextmanager
    def exclusive(data_dir: Path) -> Iterator[None]:
        """Hold ``data_dir`` alone (no server may run or start) until the block ends; refuse if one runs."""
        descriptor = _open(data_dir)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pids = server_pids(data_dir)
                named = f" (pid {', '.join(map(str, pids))})" if pids else ""
                raise DataDirBusy(
                    f"stop the marketplace first: a server is running on {data_dir}{named}, "
                    "or another restore is under way"
                ) from None
            os.ftruncate(descriptor, 0)  # no server runs: the list is stale
            yield
        finally:
            os.close(descriptor)
