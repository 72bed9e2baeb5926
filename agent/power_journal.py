"""Remembers the owner's own GPU power limits while we cap them, so a crash cannot leave a cap behind.

Before the agent lowers a GPU's limit it records the limit it found (by GPU UUID) in a small file
in the state folder; when it gives the limit back it removes the entry. An agent that starts and
finds entries left by one that died restores those limits first.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from sparecycles.fileio import atomic_write_text, read_number_map

log = logging.getLogger(__name__)


class PowerLimitJournal:
    def __init__(self, path: Path | None) -> None:
        self._path = path  # None: keep nothing (tests, simulated GPUs)

    def entries(self) -> dict[str, float]:
        if self._path is None:
            return {}
        try:
            return read_number_map(self._path)
        except ValueError as exc:
            log.warning("Ignoring the unreadable power-limit journal %s: %s", self._path, exc)
            return {}

    def _write(self, entries: dict[str, float]) -> None:
        if self._path is None:
            return
        if entries:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self._path, json.dumps(entries, sort_keys=True))
        else:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

    def remember(self, uuid: str, original_w: float) -> None:
        entries = self.entries()
        entries.setdefault(uuid, original_w)  # the first value is the owner's; never overwrite it with a cap
        self._write(entries)

    def forget(self, uuid: str) -> None:
        entries = self.entries()
        if entries.pop(uuid, None) is not None:
            self._write(entries)
