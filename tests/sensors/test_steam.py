"""Steam's running game: the VDF parser, registry.vdf with its mtime cache, the Windows registry."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from sparecycles.agent.sensors.activity import (
    NullSteamSource,
    SteamRegistryFile,
    SteamStatus,
    VdfSyntaxError,
    WindowsSteamRegistry,
    linux_registry_paths,
    steam_source_for,
)
from sparecycles.agent.sensors.activity.vdf import parse_vdf, vdf_get

FIXTURES = Path(__file__).parent / "fixtures"


# --- the parser -----------------------------------------------------------------------------------


def test_parses_nested_blocks_bare_tokens_and_comments() -> None:
    text = """
    // a comment before anything
    "Root"   // a comment after a key
    {
        "quoted"   "value with spaces"
        bare       token
        "empty"    ""
        "inner" { "deep" "1" }   // braces on one line
        "url"      "http://example.com/a" // the // inside quotes is no comment
    }
    """
    tree = parse_vdf(text)
    assert tree == {
        "Root": {
            "quoted": "value with spaces",
            "bare": "token",
            "empty": "",
            "inner": {"deep": "1"},
            "url": "http://example.com/a",
        }
    }


def test_escapes_are_decoded() -> None:
    text = r'"k" { "path" "C:\\Program Files (x86)\\Steam" "say" "a \"quoted\" word" "lines" "one\ntwo\tx" }'
    inner = parse_vdf(text)["k"]
    assert inner == {
        "path": "C:\\Program Files (x86)\\Steam",
        "say": 'a "quoted" word',
        "lines": "one\ntwo\tx",
    }


def test_keys_are_case_insensitive_and_repeated_blocks_merge() -> None:
    tree = parse_vdf('"A" { "x" "1" } "a" { "Y" "2" "X" "3" } "b" "old" "B" "new"')
    assert vdf_get(tree, "a", "x") == "3"
    assert vdf_get(tree, "A", "y") == "2"
    assert vdf_get(tree, "B") == "new"
    assert len(tree) == 2
    assert vdf_get(tree, "a", "missing") is None
    assert vdf_get(tree, "b", "below a string") is None


def test_conditions_and_a_byte_order_mark_are_skipped() -> None:
    tree = parse_vdf('\ufeff"k" { "win" "1" [$WIN32] "any" "2" }')
    assert tree == {"k": {"win": "1", "any": "2"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"k" { "a" "1"', "ends inside a block"),
        ('"k" "unterminated', "line 1: an unterminated quoted string"),
        ('"k" { }\n}', "line 2: '}' without a matching '{'"),
        ('"k"', "key 'k' has no value"),
        ('{ "a" "b" }', "line 1: '{' where a key was expected"),
        ('"k" {\n "a" }', "line 2: key 'a' has no value"),
    ],
)
def test_malformed_text_raises_with_the_line(text: str, message: str) -> None:
    with pytest.raises(VdfSyntaxError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_vdf(text)


# --- registry.vdf on Linux ----------------------------------------------------------------------


def _install(home: Path, fixture: str, where: int = 0) -> Path:
    target = linux_registry_paths(home)[where]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / fixture, target)
    return target


def test_fixture_with_a_running_game(tmp_path: Path) -> None:
    _install(tmp_path, "registry.vdf")
    reading = SteamRegistryFile.for_home(tmp_path).read()
    assert reading.status is SteamStatus.GAME_RUNNING
    assert reading.app_id == 1245620  # HKCU's value, not HKLM's "0"
    assert reading.app_name == "ELDEN RING"


def test_fixture_without_a_game(tmp_path: Path) -> None:
    _install(tmp_path, "registry_no_game.vdf")
    reading = SteamRegistryFile.for_home(tmp_path).read()
    assert reading.status is SteamStatus.NO_GAME
    assert reading.app_id is None


def test_running_app_without_a_recorded_name(tmp_path: Path) -> None:
    path = _install(tmp_path, "registry.vdf")
    path.write_text(path.read_text().replace('"RunningAppID"\t\t"1245620"', '"runningappid"\t\t"228980"'))
    reading = SteamRegistryFile.for_home(tmp_path).read()
    assert (reading.status, reading.app_id, reading.app_name) == (SteamStatus.GAME_RUNNING, 228980, None)


def test_flatpak_steam_is_found(tmp_path: Path) -> None:
    _install(tmp_path, "registry.vdf", where=2)
    assert ".var/app/com.valvesoftware.Steam" in str(linux_registry_paths(tmp_path)[2])
    assert SteamRegistryFile.for_home(tmp_path).read().app_id == 1245620


def test_a_game_in_any_of_the_files_wins(tmp_path: Path) -> None:
    _install(tmp_path, "registry_no_game.vdf", where=0)
    _install(tmp_path, "registry.vdf", where=2)
    assert SteamRegistryFile.for_home(tmp_path).read().status is SteamStatus.GAME_RUNNING


def test_no_steam_installed_is_unknown(tmp_path: Path) -> None:
    reading = SteamRegistryFile.for_home(tmp_path).read()
    assert reading.status is SteamStatus.UNKNOWN
    assert reading.detail == "Steam is not installed here (no registry.vdf)"


@pytest.mark.parametrize(
    "content",
    [
        '"Registry" { "HKCU" { "Software" {',  # cut short while Steam writes it
        '"Registry" { "HKCU" { "Software" { "Valve" { "Steam" { "RunningAppID" "abc" } } } } }',
        '"Registry" { "HKCU" { } }',
        "",
    ],
)
def test_malformed_file_is_unknown_and_logged_once(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = linux_registry_paths(tmp_path)[0]
    path.parent.mkdir(parents=True)
    path.write_text(content)
    source = SteamRegistryFile.for_home(tmp_path)
    with caplog.at_level(logging.WARNING):
        first, second = source.read(), source.read()
    assert first.status is second.status is SteamStatus.UNKNOWN
    assert str(path) in (first.detail or "")
    assert len([r for r in caplog.records if "Steam's running game is unknown" in r.message]) == 1


def test_undecodable_bytes_do_not_make_it_unknown(tmp_path: Path) -> None:
    path = _install(tmp_path, "registry.vdf")
    path.write_bytes(path.read_bytes().replace(b"Cyberpunk 2077", b"Cyberpunk \xff\xfe"))
    assert SteamRegistryFile.for_home(tmp_path).read().app_id == 1245620


def test_file_is_parsed_again_only_when_it_changes(tmp_path: Path) -> None:
    path = _install(tmp_path, "registry.vdf")
    source = SteamRegistryFile.for_home(tmp_path)
    assert source.read().app_id == 1245620
    stat = path.stat()

    # Same size, same mtime: the cache answers, so the new id is not seen.
    path.write_text(path.read_text().replace('"1245620"\n', '"1091500"\n', 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert source.read().app_id == 1245620

    # Steam writes it: a new mtime, so it is read again.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    reading = source.read()
    assert (reading.app_id, reading.app_name) == (1091500, "Cyberpunk 2077")

    # The game quits: Steam writes "0".
    path.write_text(path.read_text().replace('"RunningAppID"\t\t"1091500"', '"RunningAppID"\t\t"0"'))
    assert source.read().status is SteamStatus.NO_GAME

    path.unlink()
    assert source.read().status is SteamStatus.UNKNOWN


def test_the_same_file_through_a_link_is_read_once(tmp_path: Path) -> None:
    real = _install(tmp_path, "registry.vdf")
    link = linux_registry_paths(tmp_path)[1]
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    real.write_text(real.read_text().replace('"RunningAppID"\t\t"1245620"', '"RunningAppID"\t\t"x"'))
    reading = SteamRegistryFile.for_home(tmp_path).read()
    assert reading.status is SteamStatus.UNKNOWN
    assert reading.detail is not None
    assert reading.detail.count("is not an app id") == 1


# --- the Windows registry, through an injected reader --------------------------------------------


class FakeRegistry:
    """HKEY_CURRENT_USER as a dict: (key path, value name) -> value."""

    def __init__(self, values: dict[tuple[str, str], object], fail_on: str | None = None) -> None:
        self.values = values
        self.fail_on = fail_on
        self.reads: list[tuple[str, str]] = []

    def read_value(self, key_path: str, name: str) -> object | None:
        self.reads.append((key_path, name))
        if self.fail_on is not None and self.fail_on in key_path + "\\" + name:
            raise PermissionError("access denied")
        return self.values.get((key_path, name))


def test_windows_running_game_with_its_name() -> None:
    registry = FakeRegistry(
        {
            ("Software\\Valve\\Steam", "RunningAppID"): 1245620,  # a REG_DWORD comes back as int
            ("Software\\Valve\\Steam\\Apps\\1245620", "Name"): "ELDEN RING",
        }
    )
    reading = WindowsSteamRegistry(registry).read()
    assert (reading.status, reading.app_id, reading.app_name) == (SteamStatus.GAME_RUNNING, 1245620, "ELDEN RING")


def test_windows_no_game_and_no_steam() -> None:
    no_game = WindowsSteamRegistry(FakeRegistry({("Software\\Valve\\Steam", "RunningAppID"): 0})).read()
    assert no_game.status is SteamStatus.NO_GAME
    not_installed = WindowsSteamRegistry(FakeRegistry({})).read()
    assert not_installed.status is SteamStatus.UNKNOWN
    assert not_installed.detail == "Steam is not installed for this user"


def test_windows_failures_are_unknown_not_exceptions() -> None:
    failing = WindowsSteamRegistry(FakeRegistry({}, fail_on="RunningAppID")).read()
    assert failing.status is SteamStatus.UNKNOWN
    assert "access denied" in (failing.detail or "")
    odd = WindowsSteamRegistry(FakeRegistry({("Software\\Valve\\Steam", "RunningAppID"): b"\x01"})).read()
    assert odd.status is SteamStatus.UNKNOWN


def test_windows_name_failure_still_reports_the_game() -> None:
    registry = FakeRegistry({("Software\\Valve\\Steam", "RunningAppID"): 730}, fail_on="Apps")
    reading = WindowsSteamRegistry(registry).read()
    assert (reading.status, reading.app_id, reading.app_name) == (SteamStatus.GAME_RUNNING, 730, None)


def test_platform_factory(tmp_path: Path) -> None:
    registry = FakeRegistry({("Software\\Valve\\Steam", "RunningAppID"): 730})
    assert isinstance(steam_source_for("linux", home=tmp_path), SteamRegistryFile)
    windows = steam_source_for("win32", registry=registry)
    assert isinstance(windows, WindowsSteamRegistry)
    assert windows.read().app_id == 730
    other = steam_source_for("darwin")
    assert isinstance(other, NullSteamSource)
    assert other.read().status is SteamStatus.UNKNOWN
