"""Operating-system services the agent uses: a D-Bus client and the sleep inhibitor."""

from sparecycles.agent.system.sleep_inhibitor import (
    LogindSleepInhibitor,
    NullSleepInhibitor,
    SleepInhibitor,
    WindowsPowerCalls,
    WindowsSleepInhibitor,
    create_sleep_inhibitor,
)

__all__ = [
    "LogindSleepInhibitor",
    "NullSleepInhibitor",
    "SleepInhibitor",
    "WindowsPowerCalls",
    "WindowsSleepInhibitor",
    "create_sleep_inhibitor",
]
