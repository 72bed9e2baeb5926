"""Which processes on the user's pause list are running: one pass over the process table.

Each process is matched by its name and by its executable's file name (a Proton game runs as
``wine64-preloader`` with the game's name; a native game may rename its main thread), with the
rules of ``names.ProcessNameList``. One pass reads two small things per process, so polling every
couple of seconds stays cheap even with hundreds of processes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator

import psutil

from sparecycles.agent.sensors.activity.model import BlockingProcess, RunningProcess
from sparecycles.agent.sensors.activity.names import LINUX_NAME_LIMIT, ProcessNameList, display_name

log = logging.getLogger(__name__)

ProcessLister = Callable[[], Iterable[RunningProcess]]


class PsutilProcessLister:
    """The running processes, through psutil; processes that vanish or deny access are skipped."""

    def __init__(self, platform: str = sys.platform) -> None:
        # On Windows the name already is the executable's file name; reading exe costs a handle.
        self._read_exe = platform != "win32"
        self._may_truncate = platform.startswith("linux")
        self._attrs = ["name", "exe"] if self._read_exe else ["name"]

    def __call__(self) -> Iterator[RunningProcess]:
        for process in psutil.process_iter(self._attrs, ad_value=None):
            info = process.info
            name = info.get("name") or ""
            exe = info.get("exe") if self._read_exe else None
            yield RunningProcess(
                pid=process.pid,
                name=name,
                exe_name=display_name(exe) if exe else None,
                name_truncated=self._may_truncate and len(name) == LINUX_NAME_LIMIT,
            )


def find_blocking(processes: Iterable[RunningProcess], names: ProcessNameList) -> tuple[BlockingProcess, ...]:
    """The processes whose name or executable is on ``names``, in process-id order."""
    found: list[BlockingProcess] = []
    for process in processes:
        matched = names.match(process.name, truncated=process.name_truncated)
        shown = process.name
        if matched is None and process.exe_name:
            matched = names.match(process.exe_name)
            shown = process.exe_name
        if matched is not None:
            found.append(BlockingProcess(name=shown, pid=process.pid, matched=matched))
    return tuple(sorted(found, key=lambda p: p.pid))


class BlockingProcessScanner:
    """Scans for the pause list's processes; the list can change while the agent runs."""

    def __init__(self, names: Iterable[str], lister: ProcessLister | None = None) -> None:
        self._names = ProcessNameList(names)
        self._lister: ProcessLister = lister if lister is not None else PsutilProcessLister()

    @property
    def names(self) -> ProcessNameList:
        return self._names

    def set_names(self, names: Iterable[str]) -> None:
        self._names = ProcessNameList(names)

    def scan(self) -> tuple[BlockingProcess, ...]:
        """The running processes on the list (an empty list costs nothing)."""
        names = self._names
        if not len(names):
            return ()
        return find_blocking(self._lister(), names)
