"""A stand-in for one Windows registry key (``winreg`` exists only on Windows): its string values in a dict,
behind the same three operations as ``sparecycles.autostart.WinregRunKey``."""

from __future__ import annotations


class DictRunKey:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def put(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)
