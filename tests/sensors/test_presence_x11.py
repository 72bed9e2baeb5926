"""The X11 presence source against a real X server (Xvfb) with a real window manager (openbox)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.agent.sensors.user.x11 import X11PresenceSource
from tests.sensors.xsession import DEADLINE_S, XSession, start_xvfb, stop, unused_display, wait_until, x_session


@pytest.fixture(scope="module")
def xsession(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XSession]:
    with x_session(tmp_path_factory.mktemp("x11-home")) as session:
        yield session


@pytest.fixture
def source(xsession: XSession) -> Iterator[X11PresenceSource]:
    presence = X11PresenceSource(xsession.display)
    yield presence
    presence.close()


def sample_until(source: X11PresenceSource, condition: Callable[[PresenceSample], bool], what: str) -> PresenceSample:
    """Poll (generously: this machine may be slow) until a sample satisfies ``condition``."""
    samples: list[PresenceSample] = []

    def check() -> bool:
        samples.append(source.sample())
        return condition(samples[-1])

    try:
        wait_until(check, what, DEADLINE_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last sample {samples[-1] if samples else None}") from None
    return samples[-1]


def test_idle_time_grows_while_nobody_touches_anything(source: X11PresenceSource) -> None:
    first = source.sample()
    assert first.source == "x11"
    start = first.idle_s
    assert start is not None
    assert start >= 0
    later = sample_until(source, lambda s: s.idle_s is not None and s.idle_s >= start + 1.0, "idle to grow")
    assert later.locked is None  # X11 cannot tell; logind or the screen saver service does


@pytest.mark.parametrize(
    "input_command",
    [("xdotool", "mousemove", "--sync", "{x}", "{y}"), ("xdotool", "key", "shift")],
    ids=["mouse", "keyboard"],
)
def test_input_resets_idle_time(
    xsession: XSession, source: X11PresenceSource, input_command: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    sample_until(source, lambda s: s.idle_s is not None and s.idle_s >= 1.5, "idle to reach 1.5 s")
    x = 100 + 37 * len(request.node.name) % 900  # a different position each time, so the pointer really moves
    xsession.run(*(part.format(x=x, y=x // 2) for part in input_command))
    after = sample_until(source, lambda s: s.idle_s is not None and s.idle_s < 1.0, "input to reset idle")
    assert after.idle_s is not None
    assert after.idle_s < 1.0


def test_fullscreen_window_is_reported_with_its_application(xsession: XSession, source: X11PresenceSource) -> None:
    window = xsession.open_window("VideoPlayerProbe", fullscreen=True)
    try:
        window.activate()
        sample = sample_until(source, lambda s: s.fullscreen is True, "the fullscreen window to be active")
        assert sample.fullscreen_app == "VideoPlayerProbe"
    finally:
        window.close()
    sample_until(source, lambda s: s.fullscreen is False, "fullscreen to end with the window")


def test_window_that_is_not_fullscreen_is_not_reported(xsession: XSession, source: X11PresenceSource) -> None:
    window = xsession.open_window("EditorProbe")
    try:
        window.activate()
        sample_until(source, lambda _: active_window(xsession) == window.id, "the window to be active")
        sample = source.sample()
        assert sample.fullscreen is False
        assert sample.fullscreen_app is None

        window.set_fullscreen(True)  # the window manager changes _NET_WM_STATE, as on F11 in a player
        sample = sample_until(source, lambda s: s.fullscreen is True, "the window to become fullscreen")
        assert sample.fullscreen_app == "EditorProbe"

        window.set_fullscreen(False)
        sample_until(source, lambda s: s.fullscreen is False, "the window to leave fullscreen")
    finally:
        window.close()


def test_application_name_falls_back_to_the_process_name(xsession: XSession, source: X11PresenceSource) -> None:
    window = xsession.open_window(None, fullscreen=True)  # no WM_CLASS, only _NET_WM_PID
    try:
        window.activate()
        sample = sample_until(source, lambda s: s.fullscreen is True, "the fullscreen window to be active")
        assert sample.fullscreen_app == psutil.Process(window.process.pid).name()
    finally:
        window.close()


def test_window_manager_without_a_focused_window_is_not_fullscreen(tmp_path: Path) -> None:
    with x_session(tmp_path / "home") as session:  # a fresh openbox: no window was ever active
        source = X11PresenceSource(session.display)
        try:
            assert source.sample().fullscreen is False
        finally:
            source.close()


def test_without_a_window_manager_fullscreen_is_unknown(tmp_path: Path) -> None:
    with x_session(tmp_path / "home", window_manager=False) as session:
        source = X11PresenceSource(session.display)
        try:
            sample = source.sample()
            assert sample.idle_s is not None
            assert sample.fullscreen is None
        finally:
            source.close()


def test_fullscreen_only_mode_does_not_report_idle(xsession: XSession) -> None:
    source = X11PresenceSource(xsession.display, report_idle=False)
    try:
        sample = source.sample()
        assert sample.idle_s is None
        assert sample.fullscreen is not None
    finally:
        source.close()


def test_display_from_the_environment(xsession: XSession) -> None:
    source = X11PresenceSource(environ={"DISPLAY": xsession.display})
    try:
        assert source.display_name == xsession.display
        assert source.sample().idle_s is not None
    finally:
        source.close()


def test_no_display_answers_none() -> None:
    source = X11PresenceSource(environ={})
    sample = source.sample()
    assert (sample.idle_s, sample.fullscreen, sample.locked) == (None, None, None)
    assert source.problem is not None
    assert "DISPLAY" in source.problem


def test_server_without_the_screen_saver_extension_is_refused(tmp_path: Path) -> None:
    with x_session(tmp_path / "home", window_manager=False, xvfb_args=("-extension", "MIT-SCREEN-SAVER")) as session:
        source = X11PresenceSource(session.display)
        assert source.sample().idle_s is None
        assert source.problem is not None
        assert "MIT-SCREEN-SAVER" in source.problem
        source.close()


def test_lost_display_answers_none_logs_once_and_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    # A fixed number, so that the server can come back on it (-displayfd would hand out the lowest free one,
    # which another test run may take in between).
    xvfb, display = start_xvfb(display=unused_display(200 + os.getpid() % 300))
    source = X11PresenceSource(display, reconnect_interval_s=5.0, clock=lambda: now[0])
    try:
        working = source.sample()
        assert working.idle_s is not None, source.problem
        assert working.fullscreen is None  # no window manager on this display: cannot say

        stop(xvfb)
        caplog.set_level(logging.DEBUG, logger="sparecycles.agent.sensors.user.x11")
        for _ in range(3):
            lost = source.sample()
            assert (lost.idle_s, lost.fullscreen, lost.fullscreen_app) == (None, None, None)
            now[0] += 1.0
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert display in warnings[0].getMessage()

        xvfb, _ = start_xvfb(display=display)
        now[0] += 10.0
        assert source.sample().idle_s is not None
        assert any("answering again" in r.getMessage() for r in caplog.records)
    finally:
        source.close()
        stop(xvfb)


def active_window(xsession: XSession) -> int:
    from Xlib import Xatom
    from Xlib import display as xdisplay

    connection = xdisplay.Display(xsession.display)
    try:
        active = connection.screen().root.get_full_property(connection.intern_atom("_NET_ACTIVE_WINDOW"), Xatom.WINDOW)
        return int(active.value[0]) if active is not None and len(active.value) else 0
    finally:
        connection.close()
