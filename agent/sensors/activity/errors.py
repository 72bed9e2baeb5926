"""What can go wrong while sensing games and GPU users; the sensor turns these into "unknown"."""

from __future__ import annotations


class ActivityError(Exception):
    """Base of the activity sensors' errors."""


class VdfSyntaxError(ActivityError, ValueError):
    """A KeyValues (VDF) file could not be parsed; the message names the line."""
