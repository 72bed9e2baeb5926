"""Readiness checks: is this machine able to earn, and if not, what exactly to run to fix it.

Each check is independent and never raises: a failure becomes a :class:`CheckResult` with the
command that fixes it. The Docker SDK and keyring are imported inside their checks so the
doctor stays quick when a part is missing.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparecycles.agent.keystore import backend_name, primary_backend, unsafe_keyring, unsafe_keyring_words
from sparecycles.agent.sensors.gpu import GpuInventory, NvmlGpuInventory
from sparecycles.config import ConfigError, load_settings
from sparecycles.diagnostics import CheckOutcome, CheckResult

OK, WARNING, PROBLEM = CheckOutcome.OK, CheckOutcome.WARNING, CheckOutcome.PROBLEM

TOOLKIT_FIX = (
    "Install the NVIDIA Container Toolkit (package nvidia-container-toolkit from NVIDIA's repository: "
    "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), then "
    "`sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`"
)
# Windows has no Docker engine of its own: Docker Desktop runs one in WSL 2, and GPUs reach its containers
# through WSL 2's GPU paravirtualization, which the Windows NVIDIA driver provides (no driver inside WSL).
WINDOWS_ENGINE_FIX = (
    "Install Docker Desktop (https://docs.docker.com/desktop/setup/install/windows-install/) with the WSL 2 "
    "backend, start it, and keep it running (Settings > General > Start Docker Desktop when you sign in)"
)
WINDOWS_TOOLKIT_FIX = (
    "In Docker Desktop choose Settings > General > Use the WSL 2 based engine; update the NVIDIA Windows driver "
    "(it carries the WSL 2 GPU support: install no NVIDIA driver inside WSL) and WSL itself (`wsl --update`), "
    "then restart Docker Desktop. Check with `docker run --rm --gpus=all <a CUDA image> nvidia-smi`"
)


def docker_fixes(platform: str = sys.platform) -> tuple[str | None, str]:
    """The engine fix that does not depend on what is installed (Windows: Docker Desktop; None: work it out
    on Linux) and the GPU-in-containers fix, for ``platform``."""
    if platform == "win32":
        return WINDOWS_ENGINE_FIX, WINDOWS_TOOLKIT_FIX
    return None, TOOLKIT_FIX


def check_gpu(inventory: GpuInventory) -> list[CheckResult]:
    discovery = inventory.discover()
    if discovery.backend == "none":
        return [
            CheckResult(
                "NVIDIA driver",
                PROBLEM,
                discovery.reason or "not available",
                fix="sudo apt install nvidia-driver  (Debian, non-free)  |  sudo ubuntu-drivers install  (Ubuntu)",
            ),
            CheckResult(
                "NVIDIA GPU",
                PROBLEM,
                "no NVIDIA GPU can be seen without the driver",
                fix="install the NVIDIA driver first (see above)",
            ),
        ]
    driver = CheckResult("NVIDIA driver", OK, f"loaded ({discovery.backend})")
    if not discovery.gpus:
        return [
            driver,
            CheckResult(
                "NVIDIA GPU",
                PROBLEM,
                discovery.reason or "no GPU found",
                fix="check that the GPU is seated and powered: `nvidia-smi` should list it",
            ),
        ]
    names = ", ".join(f"#{gpu.index} {gpu.name}" for gpu in discovery.gpus)
    return [driver, CheckResult("NVIDIA GPU", OK, names)]


def _docker_client(base_url: str | None) -> Any:
    import docker

    if base_url:
        return docker.DockerClient(base_url=base_url, timeout=5)
    return docker.from_env(timeout=5)


def _engine_failure(exc: BaseException, platform: str = sys.platform) -> CheckResult:
    text = str(exc)
    engine_fix, _ = docker_fixes(platform)
    if engine_fix is not None:
        return CheckResult(
            "Docker engine",
            PROBLEM,
            f"not reachable ({text.splitlines()[0] if text else type(exc).__name__}); is Docker Desktop running?",
            fix=engine_fix,
        )
    if "Permission denied" in text or isinstance(exc.__context__, PermissionError):
        return CheckResult(
            "Docker engine",
            PROBLEM,
            "running, but this user may not use it (permission denied on its socket)",
            fix="sudo usermod -aG docker $USER, then log out and in. Note: the docker group is equivalent to root "
            "on this machine; rootless Docker is the alternative (`dockerd-rootless-setuptool.sh install`)",
        )
    installed = shutil.which("dockerd") is not None or Path("/usr/bin/dockerd").exists()
    fix = (
        "sudo systemctl start docker"
        if installed
        else "sudo apt install docker.io && sudo systemctl enable --now docker"
    )
    return CheckResult(
        "Docker engine",
        PROBLEM,
        f"not reachable ({text.splitlines()[0] if text else type(exc).__name__}); is the Docker service running?",
        fix=fix,
    )


def check_docker(base_url: str | None = None, platform: str = sys.platform) -> list[CheckResult]:
    try:
        client = _docker_client(base_url)
        version = client.version()
        info = client.info()
    except Exception as exc:  # the SDK wraps socket errors in several types; all mean "not reachable"
        return [
            _engine_failure(exc, platform),
            CheckResult(
                "NVIDIA Container Toolkit",
                PROBLEM,
                "cannot be checked while the Docker engine is unreachable",
                fix="fix the Docker engine first (see above)",
            ),
        ]
    engine = CheckResult(
        "Docker engine", OK, f"running (version {version.get('Version', '?')}, API {version.get('ApiVersion', '?')})"
    )
    runtimes = info.get("Runtimes") or {}
    cdi_dirs = [Path(d) for d in info.get("CDISpecDirs") or []]
    cdi_nvidia = any(p.exists() for d in cdi_dirs for p in (d / "nvidia.yaml", d / "nvidia.json"))
    if "nvidia" in runtimes or cdi_nvidia:
        how = "nvidia runtime registered" if "nvidia" in runtimes else "CDI specification for NVIDIA GPUs"
        return [engine, CheckResult("NVIDIA Container Toolkit", OK, how)]
    return [
        engine,
        CheckResult(
            "NVIDIA Container Toolkit",
            PROBLEM,
            "Docker has no nvidia runtime and no CDI device for NVIDIA GPUs, so jobs cannot use the GPU",
            fix=docker_fixes(platform)[1],
        ),
    ]


def check_keyring() -> CheckResult:
    try:
        import keyring

        backend = primary_backend(keyring.get_keyring())
    except Exception as exc:
        return CheckResult(
            "OS keyring",
            WARNING,
            f"keyring could not be loaded ({exc})",
            required=False,
            fix="reinstall SpareCycles; meanwhile use a watch-only payout address",
        )
    name = backend_name(backend)
    problem = unsafe_keyring(backend)
    if problem == "none":
        return CheckResult(
            "OS keyring",
            WARNING,
            f"no usable keyring ({name}); a payout wallet key cannot be kept here",
            required=False,
            fix="sudo apt install gnome-keyring (in a desktop session), or use a watch-only payout address",
        )
    if problem is not None:
        return CheckResult(
            "OS keyring",
            WARNING,
            f"{name} {unsafe_keyring_words(problem)}; SpareCycles refuses it for keys",
            required=False,
            fix="pip uninstall keyrings.alt, and use the desktop's Secret Service (gnome-keyring)",
        )
    return CheckResult("OS keyring", OK, name, required=False)


def check_config(path: Path) -> CheckResult:
    if not path.exists():
        return CheckResult("Settings", OK, f"{path} not created yet: all defaults")
    try:
        load_settings(path)
    except ConfigError as exc:
        return CheckResult("Settings", PROBLEM, str(exc), fix=f"edit {path} (see examples/config.toml)")
    return CheckResult("Settings", OK, str(path))


def run_checks(
    config_file: Path,
    *,
    gpu_inventory: GpuInventory | None = None,
    docker_url: str | None = None,
    keyring_check: Callable[[], CheckResult] = check_keyring,
) -> list[CheckResult]:
    return [
        *check_gpu(gpu_inventory or NvmlGpuInventory()),
        *check_docker(docker_url),
        keyring_check(),
        check_config(config_file),
    ]
