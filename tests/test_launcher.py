from __future__ import annotations

import pytest

from sparecycles import launcher


def test_gui_needs_nothing_more_when_every_library_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert launcher.gui_missing_packages(lambda name: f"lib{name}.so") == []


def test_gui_names_the_debian_packages_of_missing_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    missing = launcher.gui_missing_packages(lambda name: None if name == "xcb-cursor" else f"lib{name}.so")
    assert missing == ["libxcb-cursor0"]


def test_this_machine_has_what_make_test_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert launcher.gui_missing_packages() == []


@pytest.mark.parametrize(
    ("variables", "expected"), [({}, False), ({"DISPLAY": ":5"}, True), ({"WAYLAND_DISPLAY": "w"}, True)]
)
def test_display_detection(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: bool) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert launcher.display_available() is expected
