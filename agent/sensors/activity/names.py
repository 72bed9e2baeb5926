"""How a process name matches an entry of a user's list (the pause list, the GPU ignore list).

Case-insensitive; a path is reduced to its last part, whichever the slash (NVML reports full paths,
Windows ones under Wine); ``.exe`` is optional on either side. Linux keeps only the first 15
characters of a process's own name (``Cyberpunk2077.e``), so a name that may be cut short also
matches an entry that it begins; the 15 characters make that specific enough.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

LINUX_NAME_LIMIT = 15  # TASK_COMM_LEN - 1: how much of a process's name Linux keeps

_SEPARATORS = re.compile(r"[\\/]")


def display_name(name: str) -> str:
    """The last part of a path, as written: what a reason string shows."""
    return _SEPARATORS.split(name.strip())[-1]


def normalize_process_name(name: str) -> str:
    """The form names are compared in: last path part, case-folded, without ``.exe``."""
    base = display_name(name).casefold()
    return base.removesuffix(".exe")


def may_be_truncated(name: str) -> bool:
    """Whether ``name`` could be a Linux process name cut at the kernel's limit."""
    return len(display_name(name)) == LINUX_NAME_LIMIT


class ProcessNameList:
    """A user's list of process names, ready to match many processes quickly."""

    def __init__(self, names: Iterable[str]) -> None:
        self._entries: dict[str, str] = {}
        for name in names:
            normalized = normalize_process_name(name)
            if normalized:
                self._entries.setdefault(normalized, name.strip())
        # The full forms a cut-short name is compared against: "game" and "game.exe".
        self._full_forms = [
            (form, entry)
            for normalized, entry in self._entries.items()
            for form in (normalized, normalized + ".exe")
            if len(form) > LINUX_NAME_LIMIT
        ]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.match(name) is not None

    def match(self, name: str, *, truncated: bool = False) -> str | None:
        """The list entry (as the user wrote it) that ``name`` matches, or ``None``.

        ``truncated``: the name may have been cut at Linux's 15 characters, so an entry it begins
        matches too.
        """
        if not name:
            return None
        entry = self._entries.get(normalize_process_name(name))
        if entry is not None or not truncated:
            return entry
        prefix = display_name(name).casefold()
        if len(prefix) != LINUX_NAME_LIMIT:
            return None
        return next((entry for form, entry in self._full_forms if form.startswith(prefix)), None)
