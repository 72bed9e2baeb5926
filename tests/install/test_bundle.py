"""The PyInstaller bundle (`make bundle`), run as users run the downloaded app: its version, the doctor
(whose keyring check needs keyring's Secret Service backend, found only through the bundle's copy of
keyring's entry points), the benchmark's worker as a bundle subcommand, and the no-GPU answer of
`bench`. The bundle's GUI is in tests/test_gui_smoke.py and its agent running a job in
tests/jobs/test_bundled_agent.py."""

from __future__ import annotations

import json
from pathlib import Path

import sparecycles
from sparecycles.cli import EXIT_NOT_READY
from tests.conftest import run_cli


def test_the_bundle_reports_the_version_of_the_source_it_was_built_from(bundle: str, home: Path) -> None:
    shown = run_cli(home, "--version", cli=bundle)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"sparecycles {sparecycles.__version__}"


def test_the_bundled_doctor_runs_every_check_and_finds_the_session_keyring(bundle: str, home: Path) -> None:
    checked = run_cli(home, "doctor", "--json", cli=bundle)
    results = {result["name"]: result for result in json.loads(checked.stdout)}
    assert checked.returncode == EXIT_NOT_READY, checked.stderr  # no NVIDIA GPU here: not ready, not a crash
    assert {"NVIDIA driver", "Docker engine", "OS keyring", "Settings"} <= results.keys()
    assert results["Docker engine"]["outcome"] == "ok", results["Docker engine"]
    # make test runs inside a D-Bus session with gnome-keyring: the bundle must find it as the installed app does.
    assert results["OS keyring"]["outcome"] == "ok", results["OS keyring"]
    assert "SecretService" in results["OS keyring"]["detail"]


def test_the_bundle_runs_the_benchmark_worker_as_its_own_subcommand(bundle: str, home: Path) -> None:
    """A bundle has no `python -m`, so the agent starts the worker as `<bundle> benchmark-worker`; without
    PyTorch or CuPy inside (the bundle carries neither) the worker answers with its no-library exit."""
    from sparecycles.agent.benchmark.worker import EXIT_NO_LIBRARY, NO_LIBRARY_MESSAGE

    worker = run_cli(home, "benchmark-worker", "--quick", "--gpu", "0", "--json", cli=bundle)
    assert worker.returncode == EXIT_NO_LIBRARY, worker.stderr
    assert NO_LIBRARY_MESSAGE in worker.stderr


def test_the_bundled_bench_says_there_is_no_gpu_and_fails(bundle: str, home: Path) -> None:
    measured = run_cli(home, "bench", cli=bundle)
    assert measured.returncode == 1
    assert "no NVIDIA GPU" in measured.stderr + measured.stdout
