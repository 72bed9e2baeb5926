"""The pause list: real child processes named like games, and the name-matching rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparecycles.agent.sensors.activity import (
    DEFAULT_GPU_IGNORE_PROCESSES,
    DEFAULT_PAUSE_PROCESSES,
    BlockingProcess,
    BlockingProcessScanner,
    ProcessNameList,
    PsutilProcessLister,
    RunningProcess,
    find_blocking,
    normalize_process_name,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process names")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def _start_named(tmp_path: Path, name: str, children: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A real process whose executable is called ``name``: a copy of sleep(1)."""
    binary = tmp_path / name
    shutil.copyfile(shutil.which("sleep") or "/bin/sleep", binary)
    binary.chmod(0o755)
    # Popen returns once exec has succeeded, so the process already has its name.
    child = subprocess.Popen([str(binary), "300"])
    children.append(child)
    return child


# --- real processes ---------------------------------------------------------------------------------


@linux_only
def test_a_running_game_is_found_and_gone_after_it_exits(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    scanner = BlockingProcessScanner(["notepad.exe", "EldenRing.exe"])
    assert all(p.name != "eldenring.exe" for p in scanner.scan())

    game = _start_named(tmp_path, "eldenring.exe", children)
    assert BlockingProcess(name="eldenring.exe", pid=game.pid, matched="EldenRing.exe") in scanner.scan()

    game.kill()
    game.wait(timeout=10)
    assert all(p.pid != game.pid for p in scanner.scan())


@linux_only
def test_the_default_list_finds_a_native_game_without_exe(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    game = _start_named(tmp_path, "cs2", children)
    found = BlockingProcessScanner(DEFAULT_PAUSE_PROCESSES).scan()
    assert BlockingProcess(name="cs2", pid=game.pid, matched="cs2") in found


@linux_only
def test_a_wine_style_name_cut_at_15_characters_is_found(children: list[subprocess.Popen[bytes]]) -> None:
    """Wine names each process after the game's .exe with prctl(PR_SET_NAME); Linux keeps 15 characters."""
    code = (
        "import ctypes, sys\n"
        "ctypes.CDLL(None).prctl(15, b'Cyberpunk2077.exe', 0, 0, 0)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    children.append(child)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"

    listed = {p.pid: p for p in PsutilProcessLister()()}
    assert listed[child.pid].name == "Cyberpunk2077.e"
    assert listed[child.pid].name_truncated

    found = BlockingProcessScanner(["cyberpunk2077"]).scan()
    assert BlockingProcess(name="Cyberpunk2077.e", pid=child.pid, matched="cyberpunk2077") in found


@linux_only
def test_the_lister_reports_names_and_executables(tmp_path: Path, children: list[subprocess.Popen[bytes]]) -> None:
    game = _start_named(tmp_path, "rpcs3", children)
    listed = {p.pid: p for p in PsutilProcessLister()()}
    assert listed[game.pid] == RunningProcess(pid=game.pid, name="rpcs3", exe_name="rpcs3", name_truncated=False)


# --- the matching rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "process_name"),
    [
        ("eldenring.exe", "eldenring.exe"),
        ("ELDENRING.EXE", "eldenring.exe"),
        ("eldenring", "EldenRing.exe"),  # .exe optional in the list
        ("Cyberpunk2077.exe", "cyberpunk2077"),  # ... and on the process
        ("Xorg", "/usr/lib/xorg/Xorg"),  # NVML reports paths
        ("dwm.exe", "C:\\Windows\\System32\\dwm.exe"),
        ("Diablo IV.exe", "diablo iv.exe"),
        ("  obs  ", "obs"),
    ],
)
def test_names_that_match(entry: str, process_name: str) -> None:
    assert ProcessNameList([entry]).match(process_name) == entry.strip()


@pytest.mark.parametrize(
    ("entry", "process_name"),
    [
        ("steam", "steamwebhelper"),  # whole names, not substrings
        ("cs2", "cs2server"),
        ("dota2", "dota"),
        ("game.exe", "game.exe.bak"),
        ("eldenring.exe", ""),
    ],
)
def test_names_that_do_not_match(entry: str, process_name: str) -> None:
    assert ProcessNameList([entry]).match(process_name) is None


def test_a_name_cut_short_matches_only_when_it_may_be_cut_and_is_15_characters() -> None:
    names = ProcessNameList(["Cyberpunk2077.exe", "FortniteClient-Win64-Shipping.exe"])
    assert names.match("Cyberpunk2077.e", truncated=True) == "Cyberpunk2077.exe"
    assert names.match("FortniteClient-", truncated=True) == "FortniteClient-Win64-Shipping.exe"
    assert names.match("Cyberpunk2077.e") is None  # a Windows name is never cut
    assert names.match("Cyberpunk2077", truncated=True) == "Cyberpunk2077.exe"  # exact, .exe optional
    assert names.match("Cyberpunk207", truncated=True) is None  # shorter than 15: not cut, no prefix rule


def test_normalization() -> None:
    assert normalize_process_name(" C:\\Games\\Elden Ring\\Game\\eldenring.EXE ") == "eldenring"
    assert normalize_process_name("/opt/games/cs2") == "cs2"


def test_the_executable_name_matches_when_the_process_renamed_itself() -> None:
    processes = [
        RunningProcess(pid=30, name="MainThread", exe_name="eldenring"),
        RunningProcess(pid=20, name="wine64-preloade", exe_name="wine64-preloader", name_truncated=True),
        RunningProcess(pid=10, name="bg3.exe", exe_name="wine64-preloader"),
        RunningProcess(pid=40, name="bash", exe_name=None),
    ]
    found = find_blocking(processes, ProcessNameList(["eldenring.exe", "bg3"]))
    assert found == (
        BlockingProcess(name="bg3.exe", pid=10, matched="bg3"),
        BlockingProcess(name="eldenring", pid=30, matched="eldenring.exe"),
    )


def test_an_empty_list_does_not_scan_and_the_list_can_change() -> None:
    calls: list[int] = []

    def lister() -> list[RunningProcess]:
        calls.append(1)
        return [RunningProcess(pid=5, name="rpcs3")]

    scanner = BlockingProcessScanner([], lister)
    assert scanner.scan() == ()
    assert calls == []
    scanner.set_names(["RPCS3"])
    assert scanner.scan() == (BlockingProcess(name="rpcs3", pid=5, matched="RPCS3"),)
    assert len(calls) == 1


def test_default_lists_are_clean() -> None:
    """No duplicates after normalization, and nothing both pauses work and is ignored on the GPU."""
    for defaults in (DEFAULT_PAUSE_PROCESSES, DEFAULT_GPU_IGNORE_PROCESSES):
        assert len(ProcessNameList(defaults)) == len(defaults)
    pause = {normalize_process_name(n) for n in DEFAULT_PAUSE_PROCESSES}
    ignore = {normalize_process_name(n) for n in DEFAULT_GPU_IGNORE_PROCESSES}
    assert pause.isdisjoint(ignore)
    # Launchers that run all day without a game must not pause work.
    for launcher in ("steam", "steamwebhelper", "EpicGamesLauncher.exe", "Battle.net.exe", "gamescope", "reaper"):
        assert launcher not in ProcessNameList(DEFAULT_PAUSE_PROCESSES)
