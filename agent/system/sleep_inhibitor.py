"""Keep the machine awake while a GPU job runs, and let it sleep again the moment work stops.

Linux: logind's ``Inhibit("sleep:idle", …, "block")``; the inhibitor lives exactly as long as the
file descriptor logind hands back is open, so releasing it is closing that descriptor (and a crash
releases it too). Windows: ``SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED)``, which
is per thread, so every call is made on one worker thread owned by the inhibitor. Elsewhere, or
where neither works, a null inhibitor says so.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sparecycles.agent.system.dbus import DBusClient, DBusError, system_bus_address

log = logging.getLogger(__name__)

APP_NAME = "SpareCycles"
LOGIN1_SERVICE = "org.freedesktop.login1"
LOGIN1_PATH = "/org/freedesktop/login1"
MANAGER_INTERFACE = "org.freedesktop.login1.Manager"

ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001


class SleepInhibitor(Protocol):
    """Holds off system sleep (and idle suspend) while ``held``."""

    @property
    def name(self) -> str: ...

    @property
    def held(self) -> bool: ...

    def acquire(self, reason: str) -> bool:
        """Keep the machine awake; idempotent. Returns ``held``; a refusal is logged, never raised."""
        ...

    def release(self) -> None:
        """Let the machine sleep again; idempotent."""
        ...

    def close(self) -> None:
        """Release and free what the inhibitor holds (threads, connections)."""
        ...


class NullSleepInhibitor:
    """Nothing here can keep the machine awake: work may be cut short by the owner's sleep settings."""

    name = "none"

    def __init__(self, reason: str = "no sleep inhibitor on this system") -> None:
        self.reason = reason

    @property
    def held(self) -> bool:
        return False

    def acquire(self, reason: str) -> bool:
        return False

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class LogindSleepInhibitor:
    """A logind "block" inhibitor for sleep and idle, held through the descriptor logind returns."""

    name = "logind"

    def __init__(self, bus_address: str, *, what: str = "sleep:idle", timeout_s: float = 2.0) -> None:
        """``bus_address`` is the system bus. Its connection is opened for each acquire and closed
        after, since the inhibitor is the descriptor, not the connection."""
        self._bus = DBusClient(bus_address, timeout_s=timeout_s, enable_fds=True)
        self._what = what
        self._lock = threading.Lock()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, reason: str) -> bool:
        with self._lock:
            if self._fd is not None:
                return True
            try:
                handle = self._bus.call_single(
                    LOGIN1_SERVICE,
                    LOGIN1_PATH,
                    MANAGER_INTERFACE,
                    "Inhibit",
                    signature="ssss",
                    body=(self._what, APP_NAME, reason, "block"),
                )
            except DBusError as exc:
                log.warning("Cannot keep the machine awake while it works (logind Inhibit): %s", exc)
                return False
            finally:
                self._bus.close()
            to_raw_fd = getattr(handle, "to_raw_fd", None)
            if to_raw_fd is None:
                log.warning("logind Inhibit answered %r instead of a file descriptor", handle)
                return False
            self._fd = int(to_raw_fd())
            log.info("Keeping the machine awake: %s", reason)
            return True

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
            log.info("The machine may sleep again")

    def close(self) -> None:
        self.release()
        self._bus.close()


class WindowsPowerCalls(Protocol):
    def set_thread_execution_state(self, flags: int) -> int:
        """``SetThreadExecutionState``: the previous state, or 0 when Windows refused."""
        ...


class WindowsSleepInhibitor:
    """``SetThreadExecutionState`` from one dedicated thread: the state belongs to the thread that set
    it, so acquiring on one thread and releasing on another would leave the machine awake."""

    name = "windows"

    def __init__(self, calls: WindowsPowerCalls) -> None:
        self._calls = calls
        self._lock = threading.Lock()
        self._held = False
        self._worker: ThreadPoolExecutor | None = None

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self, reason: str) -> bool:
        with self._lock:
            if self._held:
                return True
            if self._set(ES_CONTINUOUS | ES_SYSTEM_REQUIRED) == 0:
                log.warning("Cannot keep the machine awake while it works: SetThreadExecutionState refused")
                return False
            self._held = True
            log.info("Keeping the machine awake: %s", reason)
            return True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
            if self._set(ES_CONTINUOUS) == 0:
                log.warning("SetThreadExecutionState refused to clear the awake request")
            else:
                log.info("The machine may sleep again")

    def close(self) -> None:
        self.release()
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True)  # the thread's end clears its execution state as well

    def _set(self, flags: int) -> int:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sleep-inhibitor")
        return self._worker.submit(self._calls.set_thread_execution_state, flags).result()


def create_windows_power_calls() -> WindowsPowerCalls:
    """The real ``SetThreadExecutionState``; raises ``OSError`` elsewhere than on Windows."""
    if sys.platform == "win32":
        return _Win32PowerCalls()
    raise OSError(f"SetThreadExecutionState exists only on Windows, not on {sys.platform}")


def create_sleep_inhibitor(environ: Mapping[str, str] | None = None, *, platform: str = sys.platform) -> SleepInhibitor:
    """The platform's inhibitor, or a ``NullSleepInhibitor`` that says why there is none."""
    environ = os.environ if environ is None else environ
    if platform == "win32":
        try:
            return WindowsSleepInhibitor(create_windows_power_calls())
        except OSError as exc:
            return NullSleepInhibitor(str(exc))
    if platform.startswith("linux"):
        address = system_bus_address(environ)
        probe = DBusClient(address, timeout_s=1.0)
        try:
            if probe.name_available(LOGIN1_SERVICE):
                return LogindSleepInhibitor(address)
            reason = f"systemd-logind is not on the system bus at {address}"
        except DBusError as exc:
            reason = f"cannot reach systemd-logind to keep the machine awake: {exc}"
        finally:
            probe.close()
        log.info("No sleep inhibitor: %s", reason)
        return NullSleepInhibitor(reason)
    return NullSleepInhibitor(f"no sleep inhibitor for {platform}")


if sys.platform == "win32":
    import ctypes

    class _Win32PowerCalls:
        def __init__(self) -> None:
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            self._kernel32.SetThreadExecutionState.argtypes = (ctypes.c_uint32,)
            self._kernel32.SetThreadExecutionState.restype = ctypes.c_uint32

        def set_thread_execution_state(self, flags: int) -> int:
            return int(self._kernel32.SetThreadExecutionState(flags))
