"""The command line's consoles, which print text exactly as given.

What the commands print carries what other people wrote: a config key or value, a file name, a job's reason
from a marketplace, an agent's problem. Read as rich markup, a ``[b]`` in it vanished from the message and a
stray ``[/x]`` ended the command with a traceback instead of the message. So markup is off, and the few
styled words are asked for by style name (``styled``), never written into the text.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

out = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Plain strings and (text, style) pairs, as one line: ``styled(("Error:", "bold red"), " ", message)``."""
    return Text.assemble(*parts)


def print_error(message: str) -> None:
    err.print(styled(("Error:", "bold red"), " ", message), soft_wrap=True)


def print_warning(message: str) -> None:
    err.print(styled(("Warning:", "yellow"), " ", message), soft_wrap=True)
