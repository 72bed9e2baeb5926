"""Measure the PyInstaller bundle (`make bundle`): its size on disk and as a download, and how quickly it
starts, beside the installed package on the same machine.

Start-up is the time from launching `<command> agent --foreground` in a fresh SPARECYCLES_HOME to the
first 200 from its control API (`GET /v1/status`), and from launching `<command> --version` to its exit.
The bundle unpacks nothing at start (one-folder build), so the difference is import speed: frozen
modules in one archive against a site-packages tree. Target (issue #13): recorded, no figure set.

    python bench/bundle_startup.py [--bundle dist/sparecycles/sparecycles] [--runs 7] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import CLI, machine, record, start_agent, stop_agent, table, temporary_home


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def compressed_size(folder: Path) -> int:
    """The folder as a .tar.gz, as it would be offered for download (level 6, gzip's default)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        archive.add(folder, arcname=folder.name)
    return buffer.tell()


def version_seconds(command: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([command, "--version"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def ready_seconds(command: str, runs: int) -> list[float]:
    times = []
    with temporary_home() as folder:
        for run in range(runs):
            process, _, ready = start_agent(folder / f"run{run}", command=command)
            times.append(ready)
            stop_agent(process)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bundle = Path(__file__).resolve().parents[1] / "dist" / "sparecycles" / "sparecycles"
    parser.add_argument("--bundle", type=Path, default=default_bundle)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()
    if not args.bundle.is_file():
        raise SystemExit(f"no bundle at {args.bundle}: run `make bundle` first")
    bundle = str(args.bundle.resolve())
    folder = args.bundle.resolve().parent

    on_disk = folder_size(folder)
    download = compressed_size(folder)
    # Warm the page cache once for each, then measure in turns so both see the same machine.
    version_seconds(bundle, 1)
    version_seconds(CLI, 1)
    bundle_version, installed_version = version_seconds(bundle, args.runs), version_seconds(CLI, args.runs)
    bundle_ready, installed_ready = ready_seconds(bundle, args.runs), ready_seconds(CLI, args.runs)

    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s (worst {max(values):.2f} s)"

    rows = [
        ("bundle on disk (dist/sparecycles/)", f"{on_disk / 1e6:.0f} MB", "—"),
        ("bundle as .tar.gz", f"{download / 1e6:.0f} MB", "—"),
        ("bundle: start to agent answering, median", median(bundle_ready), "—"),
        ("installed: start to agent answering, median", median(installed_ready), "< 2 s (issue #3)"),
        ("bundle: `--version`, median", median(bundle_version), "—"),
        ("installed: `--version`, median", median(installed_version), "—"),
    ]
    report = (
        "## The desktop bundle: size and start-up (`bench/bundle_startup.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}.\n"
        f"`make bundle` (PyInstaller one-folder) against the installed package in the same run; {args.runs} "
        "starts each, every agent start in a fresh SPARECYCLES_HOME, ready = first 200 from "
        "`GET /v1/status`. No GPU and no display here.\n\n" + table(rows)
    )
    print(report)
    record(args.write, "bundle_startup", report)


if __name__ == "__main__":
    main()
