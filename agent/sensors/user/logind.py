"""The owner's login session as systemd-logind sees it: ``LockedHint`` and ``IdleHint``.

logind only relays what the desktop tells it. ``LockedHint`` is set by GNOME, KDE and most lock
screens. ``IdleHint`` is set by the desktop once its own idle delay has passed (GNOME: when the
screen blanks), so it gives a lower bound on idle time, and not every desktop maintains it: a hint
that was never changed (timestamp 0) answers "cannot say" rather than "present forever".
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from sparecycles.agent.sensors.user.failures import FailureLog
from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.agent.system.dbus import TIMEOUT, DBusCallFailed, DBusClient, DBusError

log = logging.getLogger(__name__)

LOGIN1_SERVICE = "org.freedesktop.login1"
LOGIN1_PATH = "/org/freedesktop/login1"
MANAGER_INTERFACE = "org.freedesktop.login1.Manager"
SESSION_INTERFACE = "org.freedesktop.login1.Session"
USER_INTERFACE = "org.freedesktop.login1.User"
GRAPHICAL_SESSION_TYPES = frozenset({"x11", "wayland", "mir"})


def monotonic_us() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock of logind's ``…Monotonic`` timestamps."""
    return time.monotonic_ns() // 1000


def _current_uid() -> int:
    getuid = getattr(os, "getuid", None)  # POSIX only; logind is never used elsewhere
    if getuid is None:
        raise OSError("logind exists only on Linux")
    return int(getuid())


class LogindPresenceSource:
    """Lock and idle hints of the graphical session we belong to, or else of the user's display session."""

    name = "logind"

    def __init__(
        self,
        bus: DBusClient,
        *,
        pid: int | None = None,
        uid: int | None = None,
        clock_us: Callable[[], int] = monotonic_us,
    ) -> None:
        """``bus`` is the system bus (this source takes ownership of it). ``pid`` and ``uid`` default
        to this process's."""
        self._bus = bus
        self._pid = os.getpid() if pid is None else pid
        self._uid = _current_uid() if uid is None else uid
        self._clock_us = clock_us
        self._session: str | None = None
        self._failures = FailureLog(log, "logind session")
        self.problem: str | None = None

    @property
    def session_path(self) -> str | None:
        """The session object being read (found on the first sample)."""
        return self._session

    def sample(self) -> PresenceSample:
        try:
            session = self._session or self._find_session()
            if session is None:
                return self._fail(f"no graphical login session for uid {self._uid} (pid {self._pid})")
            self._session = session
            properties = self._bus.get_all_properties(LOGIN1_SERVICE, session, SESSION_INTERFACE)
        except DBusError as exc:
            if exc.name != TIMEOUT:
                self._session = None  # logged out and in again, or logind restarted: look again next time
            return self._fail(str(exc))
        self.problem = None
        self._failures.recovered()
        locked = properties.get("LockedHint")
        return PresenceSample(
            source=self.name,
            idle_s=self._idle_s(properties.get("IdleHint"), properties.get("IdleSinceHintMonotonic")),
            locked=locked if isinstance(locked, bool) else None,
        )

    def close(self) -> None:
        self._bus.close()

    def _idle_s(self, hint: object, since_us: object) -> float | None:
        if not isinstance(hint, bool) or not isinstance(since_us, int) or since_us <= 0:
            return None
        if not hint:
            return 0.0  # active by the desktop's own measure
        return max(0.0, (self._clock_us() - since_us) / 1_000_000)

    def _find_session(self) -> str | None:
        """Our own session if it is graphical (started from the desktop), else the user's display session
        (the agent runs as a systemd user service, outside any session)."""
        own: str | None = None
        try:
            found = self._bus.call_single(
                LOGIN1_SERVICE, LOGIN1_PATH, MANAGER_INTERFACE, "GetSessionByPID", signature="u", body=(self._pid,)
            )
            own = str(found) if found else None
        except DBusCallFailed as exc:
            log.debug("logind: no session for pid %d: %s", self._pid, exc)
        if own and self._is_graphical(own):
            return own
        try:
            user = self._bus.call_single(
                LOGIN1_SERVICE, LOGIN1_PATH, MANAGER_INTERFACE, "GetUser", signature="u", body=(self._uid,)
            )
            display = self._bus.get_property(LOGIN1_SERVICE, str(user), USER_INTERFACE, "Display")
        except DBusCallFailed as exc:
            log.debug("logind: no display session for uid %d: %s", self._uid, exc)
            return None
        if isinstance(display, tuple) and len(display) == 2 and display[1] not in ("", "/"):
            return str(display[1])
        return None

    def _is_graphical(self, session: str) -> bool:
        session_type = self._bus.get_property(LOGIN1_SERVICE, session, SESSION_INTERFACE, "Type")
        return session_type in GRAPHICAL_SESSION_TYPES

    def _fail(self, message: str) -> PresenceSample:
        self.problem = message
        self._failures.failed(message)
        return PresenceSample(source=self.name)
