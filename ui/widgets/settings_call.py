"""Saving settings from a page: only what the user changed, and the agent's refusal in words, every problem it
named, not just the headline.

AgentLink hands a failed call's message to the page; the settings API puts what is wrong with each value
in the refusal's ``problems``, so the call itself folds them into the message the page shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparecycles.control.client import AgentRequestError, ControlClient


def refusal_text(exc: AgentRequestError) -> str:
    """The message and each problem on a line of its own."""
    lines = [str(exc), *(f"• {problem}" for problem in exc.problems if problem not in str(exc))]
    return "\n".join(lines)


def save_settings(changes: dict[str, dict[str, Any]]) -> Callable[[ControlClient], dict[str, Any]]:
    """The work for ``link.call``: apply ``changes``; a refusal is raised again with its problems spelt out."""

    def work(client: ControlClient) -> dict[str, Any]:
        try:
            return client.update_settings(changes)
        except AgentRequestError as exc:
            raise AgentRequestError(exc.status_code, refusal_text(exc), exc.problems) from None

    return work


def changed_fields(now: dict[str, dict[str, Any]], shown: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The values of ``now`` that differ from ``shown`` (the page's values just after the settings loaded).

    A page saves these alone: a value it merely showed (rounded to a spin box's precision, a size in GiB, an
    idle time in minutes) goes back to the agent only when the user changed it.
    """
    changes: dict[str, dict[str, Any]] = {}
    for section, values in now.items():
        before = shown.get(section, {})
        changed = {key: value for key, value in values.items() if key not in before or before[key] != value}
        if changed:
            changes[section] = changed
    return changes
