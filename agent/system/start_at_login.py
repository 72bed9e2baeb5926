"""Applies ``[general] start_at_login`` when it changes: the autostart entry follows the setting.

Only a change is applied, not the value at start-up, so an entry the owner removed by hand (in the
desktop's own "startup applications") stays removed until the setting is changed again.
"""

from __future__ import annotations

import logging

from sparecycles.agent.settings_store import SettingsListener
from sparecycles.autostart import StartAtLogin
from sparecycles.config import Settings

log = logging.getLogger(__name__)


def start_at_login_listener(switch: StartAtLogin) -> SettingsListener:
    """A settings listener that writes or removes the autostart entry as ``start_at_login`` changes."""

    def apply(before: Settings, after: Settings) -> None:
        wanted = after.general.start_at_login
        if wanted == before.general.start_at_login:
            return
        if switch.available is not None:
            log.warning("Start at login not changed: %s", switch.available)
            return
        try:
            switch.set(wanted)
        except OSError as exc:
            log.warning(
                "Start at login could not be %s (%s): %s", "turned on" if wanted else "turned off", switch.location, exc
            )
            return
        log.info("Start at login %s (%s)", "on" if wanted else "off", switch.location)

    return apply
