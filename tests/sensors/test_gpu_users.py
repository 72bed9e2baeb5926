"""Foreign processes that really use a GPU: compositors ignored, games counted, each GPU on its own."""

from __future__ import annotations

import pytest

from sparecycles.agent.sensors.activity import (
    DEFAULT_GPU_IGNORE_PROCESSES,
    GpuUser,
    GpuUseThresholds,
    ProcessNameList,
    gpu_users,
    gpu_users_by_gpu,
    gpus_running,
)
from sparecycles.agent.sensors.gpu.model import GpuProcess, GpuSample

MIB = 1024**2
GIB = 1024**3
IGNORE = ProcessNameList(DEFAULT_GPU_IGNORE_PROCESSES)
DEFAULTS = GpuUseThresholds()


def _sample(index: int, *processes: GpuProcess) -> GpuSample:
    return GpuSample(index=index, uuid=f"GPU-{index}", monotonic_s=100.0, foreign_processes=processes)


def test_a_compositor_is_ignored_and_a_game_is_not() -> None:
    compositor = GpuProcess(pid=1500, name="/usr/bin/gnome-shell", vram_used_bytes=300 * MIB)
    game = GpuProcess(pid=4242, name="eldenring.exe", vram_used_bytes=int(6.1 * GIB), gpu_utilization_percent=97.0)
    users = gpu_users(_sample(0, compositor, game), IGNORE, DEFAULTS)
    assert users == (GpuUser(0, 4242, "eldenring.exe", "eldenring.exe uses 6.1 GiB VRAM and 97 % of the GPU"),)


@pytest.mark.parametrize(
    "name", ["Xorg", "/usr/lib/xorg/Xorg", "Xwayland", "kwin_wayland", "sway", "C:\\Windows\\System32\\dwm.exe"]
)
def test_desktop_processes_on_the_default_ignore_list(name: str) -> None:
    desktop = GpuProcess(pid=900, name=name, vram_used_bytes=700 * MIB, gpu_utilization_percent=3.0)
    assert gpu_users(_sample(0, desktop), IGNORE, DEFAULTS) == ()


def test_an_ignored_process_counts_when_really_busy() -> None:
    browser = GpuProcess(pid=77, name="firefox", vram_used_bytes=900 * MIB, gpu_utilization_percent=64.0)
    (user,) = gpu_users(_sample(1, browser), IGNORE, DEFAULTS)
    assert user.reason == "firefox (usually ignored) uses 64 % of the GPU"  # VRAM alone never counts
    off = GpuUseThresholds(ignored_utilization_percent=None)
    assert gpu_users(_sample(1, browser), IGNORE, off) == ()


def test_the_ignore_list_is_the_users_own() -> None:
    compositor = GpuProcess(pid=1500, name="gnome-shell", vram_used_bytes=300 * MIB)
    assert gpu_users(_sample(0, compositor), ProcessNameList([]), DEFAULTS)[0].reason == "gnome-shell uses 300 MiB VRAM"
    assert gpu_users(_sample(0, compositor), ProcessNameList(["GNOME-SHELL.exe"]), DEFAULTS) == ()


def test_thresholds() -> None:
    thresholds = GpuUseThresholds(vram_bytes=256 * MIB, utilization_percent=5.0)
    below = GpuProcess(pid=1, name="tool", vram_used_bytes=256 * MIB - 1, gpu_utilization_percent=4.9)
    at_vram = GpuProcess(pid=2, name="tool", vram_used_bytes=256 * MIB)
    at_use = GpuProcess(pid=3, name="tool", vram_used_bytes=10 * MIB, gpu_utilization_percent=5.0)
    unknown = GpuProcess(pid=4, name="tool")  # Windows WDDM: no per-process figures
    users = gpu_users(_sample(0, below, at_vram, at_use, unknown), IGNORE, thresholds)
    assert [(u.pid, u.reason) for u in users] == [(2, "tool uses 256 MiB VRAM"), (3, "tool uses 5 % of the GPU")]

    vram_only = GpuUseThresholds(vram_bytes=GIB, utilization_percent=None)
    busy_small = GpuProcess(pid=5, name="cuda-app", vram_used_bytes=100 * MIB, gpu_utilization_percent=100.0)
    assert gpu_users(_sample(0, busy_small), IGNORE, vram_only) == ()


def test_a_name_cut_at_15_characters_still_matches_the_ignore_list() -> None:
    ignore = ProcessNameList(["xdg-desktop-portal-gnome"])
    cut = GpuProcess(pid=3, name="xdg-desktop-por", vram_used_bytes=400 * MIB)
    assert gpu_users(_sample(0, cut), ignore, DEFAULTS) == ()


def test_each_gpu_is_judged_on_its_own_processes() -> None:
    game = GpuProcess(pid=4242, name="Cyberpunk2077.exe", vram_used_bytes=9 * GIB)
    desktop = GpuProcess(pid=1200, name="Xorg", vram_used_bytes=200 * MIB)
    samples = (_sample(0, desktop, game), _sample(1, desktop))
    users = gpu_users_by_gpu(samples, IGNORE, DEFAULTS)
    assert list(users) == [0, 1]
    assert [u.name for u in users[0]] == ["Cyberpunk2077.exe"]
    assert users[1] == ()


def test_which_gpus_a_blocking_process_runs_on() -> None:
    game = GpuProcess(pid=4242, name="eldenring.exe", vram_used_bytes=10 * MIB)
    samples = (_sample(0), _sample(1, game), _sample(2))
    assert gpus_running([4242], samples) == frozenset({1})
    assert gpus_running([99], samples) == frozenset()
