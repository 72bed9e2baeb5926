"""A private X server (Xvfb) with an optional window manager (openbox), for the presence tests.

Each session gets its own display number from ``Xvfb -displayfd``, its own HOME for openbox, and is
torn down with every process it started. Nothing here reads or changes this process's $DISPLAY.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

WINDOW_SCRIPT = Path(__file__).with_name("x11_window.py")
DEADLINE_S = 30.0


def need(*programs: str) -> None:
    pytest.importorskip("Xlib", reason="needs python-xlib (pip install python-xlib)")
    missing = [program for program in programs if shutil.which(program) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install xvfb xdotool openbox wmctrl)")


@dataclass
class XSession:
    display: str
    home: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY")}
        env.update(DISPLAY=self.display, HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"))
        return env

    def run(self, *args: str) -> str:
        """Run an X client (xdotool, wmctrl) against this display and return its output."""
        result = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=DEADLINE_S)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def open_window(self, wm_class: str | None, *, fullscreen: bool = False) -> Window:
        """A separate X client with one mapped window; closed when the session ends (or earlier)."""
        args = [sys.executable, str(WINDOW_SCRIPT), "--class", wm_class or ""]
        if fullscreen:
            args.append("--fullscreen")
        process = subprocess.Popen(args, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.processes.append(process)
        assert process.stdout is not None
        line = _read_line(process.stdout.fileno(), DEADLINE_S)
        return Window(int(line), process, self)


@dataclass
class Window:
    id: int
    process: subprocess.Popen[bytes]
    session: XSession

    def activate(self) -> None:
        self.session.run("wmctrl", "-i", "-a", str(self.id))

    def set_fullscreen(self, on: bool) -> None:
        self.session.run("wmctrl", "-i", "-r", str(self.id), "-b", f"{'add' if on else 'remove'},fullscreen")

    def close(self) -> None:
        stop(self.process)


def _read_line(fd: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line within {timeout_s} s (got {data!r})"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 64)
            assert chunk, f"the process closed its output (got {data!r})"
            data += chunk
    return data.decode().strip()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def start_xvfb(*extra: str, display: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a free display (or on ``display``) and return it once it accepts clients.

    ``-noreset``: otherwise the server resets when its last client leaves (the readiness probe, a
    test's first source), refusing connections for a moment."""
    if display is None:
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    "Xvfb",
                    "-displayfd",
                    str(write_end),
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                    *extra,
                ],
                pass_fds=(write_end,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(write_end)
        try:
            display = ":" + _read_line(read_end, DEADLINE_S)
        except AssertionError:
            stop(process)
            raise
        finally:
            os.close(read_end)
        return process, display
    process = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: process.poll() is not None or _accepts_clients(display), f"Xvfb on {display}")
        assert process.poll() is None, f"Xvfb could not start on {display} (taken?)"
    except AssertionError:
        stop(process)
        raise
    return process, display


def unused_display(first: int = 200) -> str:
    """A display number no server holds, far above where ``-displayfd`` allocates (from 0 up)."""
    for number in range(first, first + 500):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return f":{number}"
    raise AssertionError("no free X display number")


def _accepts_clients(display: str) -> bool:
    from Xlib import display as xdisplay
    from Xlib import error as xerror

    try:
        xdisplay.Display(display).close()
    except (xerror.DisplayError, xerror.ConnectionClosedError, OSError):
        return False
    return True


def _window_manager_running(display: str) -> bool:
    from Xlib import X
    from Xlib import display as xdisplay

    connection = xdisplay.Display(display)
    try:
        check = connection.screen().root.get_full_property(
            connection.intern_atom("_NET_SUPPORTING_WM_CHECK"), X.AnyPropertyType
        )
        return check is not None and len(check.value) > 0
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def x_session(home: Path, *, window_manager: bool = True, xvfb_args: tuple[str, ...] = ()) -> Iterator[XSession]:
    need("Xvfb", *(("openbox", "wmctrl", "xdotool") if window_manager else ()))
    home.mkdir(parents=True, exist_ok=True)
    xvfb, display = start_xvfb(*xvfb_args)
    session = XSession(display, home)
    try:
        if window_manager:
            session.processes.append(
                subprocess.Popen(
                    ["openbox", "--sm-disable"],
                    env=session.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_until(lambda: _window_manager_running(display), f"openbox on {display}")
        yield session
    finally:
        for process in reversed(session.processes):
            stop(process)
        stop(xvfb)
