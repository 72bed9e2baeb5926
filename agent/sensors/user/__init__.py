"""User presence: seconds since the last input, a locked session, a fullscreen window."""

from sparecycles.agent.sensors.user.composite import CompositePresenceSource
from sparecycles.agent.sensors.user.factory import create_presence_source
from sparecycles.agent.sensors.user.gnome import MutterIdleSource
from sparecycles.agent.sensors.user.logind import LogindPresenceSource
from sparecycles.agent.sensors.user.model import NullPresenceSource, PresenceSample, PresenceSource
from sparecycles.agent.sensors.user.screensaver import ScreenSaverSource
from sparecycles.agent.sensors.user.windows import WindowsPresenceSource, WindowsUserCalls
from sparecycles.agent.sensors.user.x11 import X11PresenceSource

__all__ = [
    "CompositePresenceSource",
    "LogindPresenceSource",
    "MutterIdleSource",
    "NullPresenceSource",
    "PresenceSample",
    "PresenceSource",
    "ScreenSaverSource",
    "WindowsPresenceSource",
    "WindowsUserCalls",
    "X11PresenceSource",
    "create_presence_source",
]
