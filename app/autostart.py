"""Start at login: an XDG autostart entry on Linux desktops, written and removed as the setting changes.

``[general] start_at_login`` is the setting; the agent applies a change of it (see
``sparecycles.agent.system.start_at_login``), and ``sparecycles autostart on|off`` changes it. The
entry starts SpareCycles as this installation would (a frozen bundle starts itself), which opens the
tray and starts the agent. Platforms without XDG autostart get :class:`NullStartAtLogin`, which says so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

ENTRY_NAME = "sparecycles.desktop"


class StartAtLogin(Protocol):
    """Whether SpareCycles starts when its user logs in, and the switch."""

    @property
    def available(self) -> str | None:
        """None where it works here, else why not."""

    @property
    def location(self) -> str: ...

    def enabled(self) -> bool: ...

    def set(self, enabled: bool) -> None: ...


def _exec_argument(argument: str) -> str:
    """Quote one Exec= argument as the Desktop Entry Specification says (reserved characters in quotes)."""
    argument = argument.replace("%", "%%")  # a lone % would start a field code
    if argument and not any(c in argument for c in " \t\n\"'\\><~|&;$*?#()`"):
        return argument
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in argument)
    return '"' + escaped.replace("\\", "\\\\") + '"'  # the string value's own escaping doubles the backslashes


def render_entry(command: Sequence[str], *, autostart: bool) -> str:
    """A desktop entry that runs ``command``; as an autostart entry, with GNOME's enabled flag set."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=SpareCycles",
        "GenericName=GPU sharing",
        "Comment=Earn from your idle NVIDIA GPU while you are away",
        "Exec=" + " ".join(_exec_argument(argument) for argument in command),
        "Icon=sparecycles",
        "Terminal=false",
        "Categories=Utility;System;Monitor;",
        "Keywords=GPU;NVIDIA;idle;earn;",
        "StartupNotify=false",
    ]
    if autostart:
        lines += ["X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-Delay=10"]
    return "\n".join(lines) + "\n"


def autostart_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/autostart`` (``~/.config/autostart`` when unset), per the XDG Autostart spec."""
    environ = os.environ if environ is None else environ
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "autostart"


class XdgAutostart:
    """The entry in the autostart folder: present means SpareCycles starts at login."""

    def __init__(self, entry_path: Path, command: Sequence[str]) -> None:
        self._path = entry_path
        self._command = list(command)

    @property
    def available(self) -> str | None:
        return None

    @property
    def location(self) -> str:
        return str(self._path)

    def enabled(self) -> bool:
        return self._path.is_file()

    def set(self, enabled: bool) -> None:
        from sparecycles.fileio import atomic_write_text

        if enabled:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_text(self._path, render_entry(self._command, autostart=True), mode=0o644)
        else:
            self._path.unlink(missing_ok=True)


class NullStartAtLogin:
    """Start at login where this build cannot do it: it says why and changes nothing."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    @property
    def available(self) -> str | None:
        return self._reason

    @property
    def location(self) -> str:
        return "nowhere"

    def enabled(self) -> bool:
        return False

    def set(self, enabled: bool) -> None:
        return None


def create_start_at_login(environ: Mapping[str, str] | None = None) -> StartAtLogin:
    """The real switch for this platform, or a null one that says why there is none."""
    if sys.platform == "win32":
        return NullStartAtLogin("start at login is not available on Windows in this version")
    from sparecycles.control.spawn import sparecycles_command

    return XdgAutostart(autostart_dir(environ) / ENTRY_NAME, sparecycles_command())
