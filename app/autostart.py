"""Start at login: an XDG autostart entry on Linux desktops, the per-user ``Run`` key on Windows, written and
removed as the setting changes.

``[general] start_at_login`` is the setting; the agent applies a change of it (see
``sparecycles.agent.system.start_at_login``), and ``sparecycles autostart on|off`` changes it. The
entry starts SpareCycles as this installation would (a frozen bundle starts itself), which opens the
tray and starts the agent. Elsewhere :class:`NullStartAtLogin` says there is none.

Windows: ``HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` is what Task Manager's
Startup tab lists and lets the user switch off; the installer (installer/windows/sparecycles.iss) writes
the same value, so the app's switch and the installer's checkbox are one setting.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

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


RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "SpareCycles"
WINDOWED_EXECUTABLE = "sparecycles-gui.exe"


class RunKeyValues(Protocol):
    """The string values of one registry key (the Windows registry through ``winreg``)."""

    def get(self, name: str) -> str | None: ...

    def put(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


def _winreg() -> Any:
    """The standard library's ``winreg`` (Windows only; Any, as its stubs exist only when checking for Windows)."""
    import importlib

    return importlib.import_module("winreg")


class WinregRunKey:
    """``HKEY_CURRENT_USER\\...\\Run`` through the standard library's ``winreg`` (Windows only)."""

    def __init__(self, subkey: str = RUN_KEY) -> None:
        self._subkey = subkey

    def get(self, name: str) -> str | None:
        winreg = _winreg()

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self._subkey) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def put(self, name: str, value: str) -> None:
        winreg = _winreg()

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, self._subkey, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:
        winreg = _winreg()

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self._subkey, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            pass


class WindowsRunKey:
    """The ``SpareCycles`` value of the per-user Run key: present means SpareCycles starts at sign-in."""

    def __init__(self, values: RunKeyValues, command: Sequence[str]) -> None:
        self._values = values
        self._command = list(command)

    @property
    def available(self) -> str | None:
        return None

    @property
    def location(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE}"

    def enabled(self) -> bool:
        return self._values.get(RUN_VALUE) is not None

    def set(self, enabled: bool) -> None:
        import subprocess

        if enabled:
            self._values.put(RUN_VALUE, subprocess.list2cmdline(self._command))  # Windows' own quoting rules
        else:
            self._values.delete(RUN_VALUE)


def login_command(command: Sequence[str], platform: str = sys.platform) -> list[str]:
    """What to start at login: on Windows a bundle's windowed executable beside the console one, so that
    no console window opens at every sign-in (the bundle ships both; see installer/pyinstaller)."""
    if platform == "win32" and command and Path(command[0]).name.lower() == "sparecycles.exe":
        windowed = Path(command[0]).with_name(WINDOWED_EXECUTABLE)
        if windowed.is_file():
            return [str(windowed), *command[1:]]
    return list(command)


def create_start_at_login(environ: Mapping[str, str] | None = None) -> StartAtLogin:
    """The real switch for this platform, or a null one that says why there is none."""
    from sparecycles.control.spawn import sparecycles_command

    command = login_command(sparecycles_command())
    if sys.platform == "win32":
        return WindowsRunKey(WinregRunKey(), command)
    if sys.platform == "darwin":
        return NullStartAtLogin("start at login is not available on macOS (SpareCycles needs an NVIDIA GPU)")
    return XdgAutostart(autostart_dir(environ) / ENTRY_NAME, command)
