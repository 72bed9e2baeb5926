"""Games and other GPU users: Steam's running game, the pause list, foreign processes on each GPU."""

from sparecycles.agent.sensors.activity.defaults import (
    DEFAULT_CPU_BUSY_PERCENT,
    DEFAULT_FOREIGN_UTILIZATION_PERCENT,
    DEFAULT_FOREIGN_VRAM_BYTES,
    DEFAULT_GPU_IGNORE_PROCESSES,
    DEFAULT_IGNORED_BUSY_UTILIZATION_PERCENT,
    DEFAULT_PAUSE_ON_BATTERY,
    DEFAULT_PAUSE_PROCESSES,
    DEFAULT_UNREPORTED_BUSY_UTILIZATION_PERCENT,
)
from sparecycles.agent.sensors.activity.errors import ActivityError, VdfSyntaxError
from sparecycles.agent.sensors.activity.gpu_users import gpu_users, gpu_users_by_gpu, gpus_running
from sparecycles.agent.sensors.activity.machine import CpuBusyMeter, CpuTimes, read_on_battery
from sparecycles.agent.sensors.activity.model import (
    ActivitySample,
    BlockingProcess,
    GpuUser,
    GpuUseThresholds,
    RunningProcess,
    SteamReading,
    SteamSource,
    SteamStatus,
)
from sparecycles.agent.sensors.activity.names import ProcessNameList, normalize_process_name
from sparecycles.agent.sensors.activity.processes import (
    BlockingProcessScanner,
    ProcessLister,
    PsutilProcessLister,
    find_blocking,
)
from sparecycles.agent.sensors.activity.sensor import ActivitySensor
from sparecycles.agent.sensors.activity.steam import (
    NullSteamSource,
    RegistryReader,
    SteamRegistryFile,
    WindowsSteamRegistry,
    WinregReader,
    linux_registry_paths,
    steam_source_for,
)

__all__ = [
    "DEFAULT_CPU_BUSY_PERCENT",
    "DEFAULT_FOREIGN_UTILIZATION_PERCENT",
    "DEFAULT_FOREIGN_VRAM_BYTES",
    "DEFAULT_GPU_IGNORE_PROCESSES",
    "DEFAULT_IGNORED_BUSY_UTILIZATION_PERCENT",
    "DEFAULT_PAUSE_ON_BATTERY",
    "DEFAULT_PAUSE_PROCESSES",
    "DEFAULT_UNREPORTED_BUSY_UTILIZATION_PERCENT",
    "ActivityError",
    "ActivitySample",
    "ActivitySensor",
    "BlockingProcess",
    "BlockingProcessScanner",
    "CpuBusyMeter",
    "CpuTimes",
    "GpuUseThresholds",
    "GpuUser",
    "NullSteamSource",
    "ProcessLister",
    "ProcessNameList",
    "PsutilProcessLister",
    "RegistryReader",
    "RunningProcess",
    "SteamReading",
    "SteamRegistryFile",
    "SteamSource",
    "SteamStatus",
    "VdfSyntaxError",
    "WindowsSteamRegistry",
    "WinregReader",
    "find_blocking",
    "gpu_users",
    "gpu_users_by_gpu",
    "gpus_running",
    "linux_registry_paths",
    "normalize_process_name",
    "read_on_battery",
    "steam_source_for",
]
