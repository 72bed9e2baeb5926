"""Which Steam game is running: Steam's own ``RunningAppID``, as NiceHash watches it.

Linux: Steam keeps it in ``~/.steam/registry.vdf`` (Valve's text KeyValues), re-read only when the
file changes, so polling every couple of seconds costs a few ``stat`` calls. Windows: the registry,
``HKCU\\Software\\Valve\\Steam``, through an injected reader. Anything missing or malformed is
"unknown", logged once, never an exception.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sparecycles.agent.sensors.activity.errors import VdfSyntaxError
from sparecycles.agent.sensors.activity.model import SteamReading, SteamSource, SteamStatus
from sparecycles.agent.sensors.activity.vdf import VdfObject, parse_vdf, vdf_get

log = logging.getLogger(__name__)

_STEAM_KEY = ("Registry", "HKCU", "Software", "Valve", "Steam")
_MAX_FILE_BYTES = 32 * 1024 * 1024  # registry.vdf is tens of KiB; anything huge is not it
WINDOWS_STEAM_KEY = r"Software\Valve\Steam"


def linux_registry_paths(home: Path) -> tuple[Path, ...]:
    """Where Steam keeps registry.vdf: the usual place, inside the Steam root, and under Flatpak."""
    return (
        home / ".steam" / "registry.vdf",
        home / ".steam" / "steam" / "registry.vdf",
        home / ".var" / "app" / "com.valvesoftware.Steam" / ".steam" / "registry.vdf",
    )


def _parse_app_id(raw: object) -> int | None:
    """A non-negative app id from a string or integer; ``None`` if it is neither."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit() and text.isascii():
            return int(text)
    return None


def _clean_name(raw: object) -> str | None:
    return (raw.strip() or None) if isinstance(raw, str) else None


def reading_from_registry_vdf(tree: VdfObject, where: str) -> SteamReading:
    """Interpret a parsed registry.vdf: the running app id, and its name when Steam recorded one."""
    steam = vdf_get(tree, *_STEAM_KEY)
    raw = vdf_get(steam, "RunningAppID")
    if raw is None:
        return SteamReading(SteamStatus.UNKNOWN, detail=f"{where} has no RunningAppID")
    app_id = _parse_app_id(raw)
    if app_id is None:
        return SteamReading(SteamStatus.UNKNOWN, detail=f"{where}: RunningAppID {raw!r} is not an app id")
    if app_id == 0:
        return SteamReading(SteamStatus.NO_GAME, detail=where)
    name = vdf_get(steam, "apps", str(app_id), "name")
    return SteamReading(SteamStatus.GAME_RUNNING, app_id=app_id, app_name=_clean_name(name), detail=where)


def _combine(readings: Sequence[SteamReading], none_found: str) -> SteamReading:
    """A game in any of Steam's files wins; then "no game"; unknown only if nothing could be read."""
    for status in (SteamStatus.GAME_RUNNING, SteamStatus.NO_GAME):
        for reading in readings:
            if reading.status is status:
                return reading
    details = "; ".join(r.detail for r in readings if r.detail)
    return SteamReading(SteamStatus.UNKNOWN, detail=details or none_found)


class SteamRegistryFile:
    """Linux: Steam's registry.vdf, parsed again only when its size, mtime or inode change."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = tuple(paths)
        self._cache: dict[Path, tuple[tuple[int, int, int, int], SteamReading]] = {}
        self._logged: set[tuple[Path, str]] = set()

    @classmethod
    def for_home(cls, home: Path) -> SteamRegistryFile:
        return cls(linux_registry_paths(home))

    @property
    def paths(self) -> tuple[Path, ...]:
        return self._paths

    def read(self) -> SteamReading:
        readings: list[SteamReading] = []
        seen: set[tuple[int, int]] = set()
        for path in self._paths:
            try:
                stat = path.stat()
            except OSError:
                self._cache.pop(path, None)
                continue
            if (stat.st_dev, stat.st_ino) in seen:  # ~/.steam/steam is often a link to the same root
                continue
            seen.add((stat.st_dev, stat.st_ino))
            readings.append(self._read_file(path, stat))
        return _combine(readings, "Steam is not installed here (no registry.vdf)")

    def _read_file(self, path: Path, stat: os.stat_result) -> SteamReading:
        key = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        reading = self._parse_file(path, stat.st_size)
        self._cache[path] = (key, reading)
        return reading

    def _parse_file(self, path: Path, size: int) -> SteamReading:
        try:
            if size > _MAX_FILE_BYTES:
                raise VdfSyntaxError(f"{size} bytes is too large for Steam's registry.vdf")
            text = path.read_text(encoding="utf-8", errors="replace")
            reading = reading_from_registry_vdf(parse_vdf(text), str(path))
        except (OSError, VdfSyntaxError) as error:
            reading = SteamReading(SteamStatus.UNKNOWN, detail=f"cannot read {path}: {error}")
        if reading.status is SteamStatus.UNKNOWN:
            self._log_once(path, reading.detail or "")
        return reading

    def _log_once(self, path: Path, message: str) -> None:
        if (path, message) not in self._logged:
            self._logged.add((path, message))
            log.warning("Steam's running game is unknown: %s", message)


class RegistryReader(Protocol):
    """Reads one value under HKEY_CURRENT_USER; ``None`` when the key or the value is missing."""

    def read_value(self, key_path: str, name: str) -> object | None: ...


class WinregReader:
    """The real Windows registry (``winreg``), imported only when read, only on Windows."""

    def read_value(self, key_path: str, name: str) -> object | None:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key_path) as key:
                    value: object = winreg.QueryValueEx(key, name)[0]
            except FileNotFoundError:
                return None
            return value
        else:  # noqa: RET505 - mypy checks each platform's branch only on that platform
            return None


class WindowsSteamRegistry:
    """Windows: ``RunningAppID`` (a DWORD) under HKCU\\Software\\Valve\\Steam, and the app's name."""

    def __init__(self, reader: RegistryReader) -> None:
        self._reader = reader
        self._logged: set[str] = set()

    def read(self) -> SteamReading:
        where = "HKCU\\" + WINDOWS_STEAM_KEY
        try:
            raw = self._reader.read_value(WINDOWS_STEAM_KEY, "RunningAppID")
            if raw is None:
                return SteamReading(SteamStatus.UNKNOWN, detail="Steam is not installed for this user")
            app_id = _parse_app_id(raw)
            if app_id is None:
                return self._unknown(f"{where}: RunningAppID {raw!r} is not an app id")
        except Exception as error:  # a registry failure must not stop the agent's loop
            return self._unknown(f"cannot read {where}: {error}")
        if app_id == 0:
            return SteamReading(SteamStatus.NO_GAME, detail=where)
        try:
            name = self._reader.read_value(f"{WINDOWS_STEAM_KEY}\\Apps\\{app_id}", "Name")
        except Exception:  # the name is a nicety: the game is running either way
            name = None
        return SteamReading(SteamStatus.GAME_RUNNING, app_id=app_id, app_name=_clean_name(name), detail=where)

    def _unknown(self, message: str) -> SteamReading:
        if message not in self._logged:
            self._logged.add(message)
            log.warning("Steam's running game is unknown: %s", message)
        return SteamReading(SteamStatus.UNKNOWN, detail=message)


class NullSteamSource:
    """Where Steam cannot be read (other platforms): always unknown, with the reason."""

    def __init__(self, reason: str = "Steam's running game cannot be read on this platform") -> None:
        self._reading = SteamReading(SteamStatus.UNKNOWN, detail=reason)

    def read(self) -> SteamReading:
        return self._reading


def steam_source_for(
    platform: str = sys.platform, *, home: Path | None = None, registry: RegistryReader | None = None
) -> SteamSource:
    """The Steam source for this platform: registry.vdf on Linux, the registry on Windows, else null."""
    if platform.startswith("linux"):
        return SteamRegistryFile.for_home(home if home is not None else Path.home())
    if platform == "win32":
        return WindowsSteamRegistry(registry if registry is not None else WinregReader())
    return NullSteamSource()
