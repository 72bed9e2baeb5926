"""The GUI's one line to the agent: control-API calls off the GUI thread, the event stream as Qt signals,
and the agent's life (started by us if none runs, watched, restarted on request).

Every call goes through :meth:`AgentLink.call`: the work runs on a worker thread with its own
:class:`~sparecycles.control.client.ControlClient`, and its result (or the error, in words) comes back on
the GUI thread, so no window ever waits on the agent. The event stream is followed on a thread of its own;
each event re-reads the status document, which :attr:`AgentLink.status_changed` carries to the windows.

The control client (httpx, the API's models) is imported when the link starts, not with this module: the
window paints first (``run_gui`` starts the link after the first paint), then the link gets to work.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from shiboken6 import Shiboken

from sparecycles.paths import AppPaths

if TYPE_CHECKING:
    from sparecycles.control.client import ControlClient
    from sparecycles.control.models import AgentEvent, StatusDocument

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_S = 2.0  # between attempts to reach the agent while it is away
DIED_POLL_S = 3.0  # while it is gone: how often to look whether it came back by itself (systemd restarts it)
LOG_LINES = 30  # of the agent's log, shown when it died
# a call's done and failed, and the Qt objects whose deletion drops its answer
_Callbacks = tuple[Callable[[Any], None] | None, Callable[[str], None] | None, list[QObject]]


class LinkState(StrEnum):
    STARTING = "starting"  # looking for the agent, or starting it
    CONNECTED = "connected"  # the event stream is open
    LOST = "lost"  # it answered before and no longer does (reconnecting)
    DIED = "died"  # the agent process is gone; the user may restart it
    FAILED = "failed"  # it could not be started; the message says why


def agent_log_tail(paths: AppPaths, lines: int = LOG_LINES) -> str:
    """The last lines the agent wrote, for the "the agent stopped" panel."""
    for path in (paths.log_dir / "agent-console.log", paths.agent_log_file):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if text.strip():
            return "\n".join(text.splitlines()[-lines:])
    return ""


def _receiver(callback: Callable[..., object] | None) -> QObject | None:
    """The Qt object a callback is a bound method of (a slot of a page or dialog), if any."""
    receiver = getattr(callback, "__self__", None)
    return receiver if isinstance(receiver, QObject) else None


class _Job(QRunnable):
    def __init__(self, work: Callable[[], Any], deliver: Callable[[bool, Any], None]) -> None:
        super().__init__()
        self._work = work
        self._deliver = deliver

    def run(self) -> None:
        from sparecycles.control.errors import AgentRequestError, AgentUnavailable

        try:
            result = self._work()
        except (AgentUnavailable, AgentRequestError) as exc:
            self._deliver(False, str(exc))
        except Exception as exc:  # a bug must not kill the worker thread silently
            log.exception("A call to the agent failed")
            self._deliver(False, f"unexpected error: {exc}")
        else:
            self._deliver(True, result)


class AgentLink(QObject):
    """Signals arrive on the GUI thread. ``start_agent`` (default: the real spawn) starts an agent when none
    answers; tests pass one that starts a simulated agent, or none."""

    status_changed = Signal(object)  # StatusDocument
    event_received = Signal(object)  # AgentEvent
    state_changed = Signal(str, str)  # LinkState value, message in words
    _delivered = Signal(int, bool, object)  # call id, ok, result or message

    def __init__(
        self,
        paths: AppPaths,
        *,
        start_agent: Callable[[AppPaths], object] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        self._start_agent = start_agent
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(4)
        self._callbacks: dict[int, _Callbacks] = {}
        self._ids = itertools.count()
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._follower: threading.Thread | None = None
        self.state = LinkState.STARTING
        self.message = "Connecting to the SpareCycles agent…"
        self.status: StatusDocument | None = None
        self._delivered.connect(self._on_delivered)

    # -- calls --------------------------------------------------------------------------------------

    def client(self, timeout: float = 10.0) -> ControlClient:
        from sparecycles.control.client import ControlClient

        return ControlClient.from_lock_file(self.paths.agent_lock_file, timeout=timeout)

    def call(
        self,
        work: Callable[[ControlClient], T],
        done: Callable[[T], None] | None = None,
        failed: Callable[[str], None] | None = None,
        *,
        timeout: float = 10.0,
        owner: QObject | None = None,
    ) -> None:
        """Run ``work(client)`` on a worker thread; ``done(result)`` or ``failed(message)`` on the GUI thread.

        The answer is dropped when its receiver is gone by then (a dialog closed and deleted meanwhile): the
        Qt object that ``done`` or ``failed`` is a method of, and ``owner`` (for callbacks that are closures).
        """
        call_id = next(self._ids)
        receivers = [obj for obj in (owner, _receiver(done), _receiver(failed)) if obj is not None]
        self._callbacks[call_id] = (done, failed, receivers)

        def run() -> T:
            with self.client(timeout) as client:
                return work(client)

        self._pool.start(_Job(run, lambda ok, value: self._delivered.emit(call_id, ok, value)))

    @Slot(int, bool, object)
    def _on_delivered(self, call_id: int, ok: bool, value: object) -> None:
        done, failed, receivers = self._callbacks.pop(call_id, (None, None, []))
        if not all(Shiboken.isValid(receiver) for receiver in receivers):
            log.debug("An answer of the agent arrived after its window was closed; dropped")
            return
        if ok and done is not None:
            done(value)
        elif not ok:
            if failed is not None:
                failed(str(value))
            else:
                log.info("A call to the agent failed: %s", value)

    # -- the agent's life ---------------------------------------------------------------------------

    def start(self) -> None:
        """Find (or start) the agent and follow its events, on a background thread."""
        if self._follower is not None:
            return
        self._follower = threading.Thread(target=self._follow, name="agent-events", daemon=True)
        self._follower.start()

    def restart_agent(self) -> None:
        """After the agent died: start it again (the follower notices and reconnects)."""
        self._set_state(LinkState.STARTING, "Starting the SpareCycles agent…")
        self._died = False
        self._connected_once = False  # so that the follower starts it, rather than finding it dead again
        self._wake.set()

    def stop_agent(self, done: Callable[[None], None] | None = None) -> None:
        self.call(lambda client: client.shutdown(), done, lambda _message: done(None) if done else None)

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        self._pool.waitForDone(3000)

    def _set_state(self, state: LinkState, message: str) -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            self.state_changed.emit(state.value, message)

    _died = False
    _connected_once = False  # the agent answered since the link started (or was restarted)

    def _follow(self) -> None:
        while not self._closing.is_set():
            if self._died:  # wait for the user's "restart" (or the window closing), or for it to come back
                woken = self._wake.wait(DIED_POLL_S)
                self._wake.clear()
                if not woken and self._agent_answers():
                    self._died = False  # started again by someone else (systemd, the CLI): reconnect
                continue
            client = self._reach_agent()
            if client is None:
                continue
            self._connected_once = True
            if self._stream_events(client):
                return
            if not self._closing.is_set():
                self._set_state(LinkState.LOST, "The agent stopped answering; reconnecting…")
                self._wake.wait(0.5)
                self._wake.clear()

    def _agent_answers(self) -> bool:
        """Whether an agent answers now (without starting one)."""
        from sparecycles.control.errors import AgentRequestError, AgentUnavailable

        try:
            with self.client(timeout=RETRY_S) as client:
                client.status()
        except (AgentUnavailable, AgentRequestError):
            return False
        return True

    def _reach_agent(self) -> ControlClient | None:
        """A client of the agent once it answers; else None, having started it, waited, or given up."""
        from sparecycles.control.errors import AgentNotAnswering, AgentRequestError, AgentUnavailable

        try:
            client = self.client()
            client.status()
        except AgentNotAnswering as exc:  # alive but silent (busy, stopped): wait for it, it is not gone
            self._set_state(LinkState.LOST, str(exc))
            self._wake.wait(RETRY_S)
            self._wake.clear()
            return None
        except AgentUnavailable:
            if self._connected_once and self._start_agent is not None:
                self._died = True
                self._set_state(LinkState.DIED, agent_log_tail(self.paths))
                return None
            if self._start_agent is None:
                waiting = LinkState.LOST if self._connected_once else LinkState.STARTING
                self._set_state(waiting, "Waiting for the agent…")
                self._wake.wait(RETRY_S)
                self._wake.clear()
                return None
            self._set_state(LinkState.STARTING, "Starting the SpareCycles agent…")
            try:
                self._start_agent(self.paths)
            except Exception as exc:
                output = getattr(exc, "output", "") or agent_log_tail(self.paths)
                self._set_state(LinkState.FAILED, f"{exc}\n{output}".strip())
                self._died = True
            return None
        except AgentRequestError as exc:
            self._set_state(LinkState.LOST, str(exc))
            self._wake.wait(RETRY_S)
            return None
        return client

    def _stream_events(self, client: ControlClient) -> bool:
        """Follow the agent's events until the stream ends; True when the link is closing."""
        from sparecycles.control.errors import AgentRequestError, AgentUnavailable

        try:
            with client:
                self._publish_status(client)
                self._set_state(LinkState.CONNECTED, "Connected")
                for event in client.events():
                    if self._closing.is_set():
                        return True
                    self.event_received.emit(event)
                    self._publish_status(client, event)
        except (AgentUnavailable, AgentRequestError, OSError) as exc:
            log.info("The agent's event stream ended: %s", exc)
        except Exception:  # httpx errors from a dropped stream
            log.info("The agent's event stream broke", exc_info=True)
        return False

    def _publish_status(self, client: ControlClient, event: AgentEvent | None = None) -> None:
        """The status document: carried by status and readings events, else read again."""
        from sparecycles.control.models import EventType, StatusDocument

        if event is not None and event.type in (EventType.STATUS_CHANGED, EventType.READINGS):
            status = StatusDocument.model_validate(event.data)
        elif event is not None and event.type in (EventType.SHUTTING_DOWN, EventType.PULL_PROGRESS):
            return
        else:
            status = client.status()
        self.status = status
        self.status_changed.emit(status)
