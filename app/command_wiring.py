"""What the CLI hands each group of agent commands when it registers them (bench, ledger, wallet, fleet).

Why a module of its own: the command modules are imported by every ``sparecycles`` command, so they name the
agent's client only for the type checker; these two aliases were written out in each of them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # the client loads when a command runs, not with every command
    from sparecycles.control.client import ControlClient

Connect = Callable[[], AbstractContextManager["ControlClient"]]
"""Opens a client of the running agent (a context manager), or fails the command with what to do."""

Fail = Callable[[str, int], NoReturn]
"""Ends the command with this message and exit code."""
