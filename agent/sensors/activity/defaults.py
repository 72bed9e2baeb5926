"""Default lists and thresholds for "the owner is gaming or using the GPU"; every one is editable.

Names follow ``names.ProcessNameList``: case-insensitive, ``.exe`` optional, so ``cs2`` covers
both the Windows ``cs2.exe`` and the native Linux ``cs2``, and a Windows game run through Proton
or Wine (which shows its ``.exe`` name on Linux) is matched by the same entry.
"""

from __future__ import annotations

_MIB = 1024 * 1024

# Processes whose mere running means "someone is playing or doing GPU work: pause".
#
# Left out on purpose, because they run without a game:
# - launchers and stores (steam, EpicGamesLauncher, Battle.net, EADesktop, upc, GalaxyClient,
#   LeagueClient): they sit in the tray all day. Steam's own running-app id covers Steam games.
# - Steam's ``reaper`` (it wraps each Steam game on Linux): the running-app id already covers it,
#   and ``reaper`` is also the REAPER audio workstation.
# - ``gamescope``: also the session compositor of gaming-mode desktops (Bazzite, ChimeraOS), where
#   it never stops; a game inside it is caught by name, by Steam or on the GPU.
# - ``wine64-preloader``, ``wineserver``: every Wine program, games or not.
# - ``javaw`` (Minecraft Java) and the like: too generic. ``Dolphin.exe``: ``dolphin`` is also
#   KDE's file manager, hence ``dolphin-emu`` only.
# - GPU applications (Blender, DaVinci Resolve): open but idle they should not stop work; when
#   they render, NVML shows them on the GPU they use.
DEFAULT_PAUSE_PROCESSES: tuple[str, ...] = (
    # VR: the keyboard and mouse are idle while the owner plays. Both run only while SteamVR is
    # open (Oculus' OVRServer runs always, so it is not here).
    "vrcompositor",
    "vrserver",
    "VRChat.exe",
    # Emulators: open means playing.
    "retroarch",
    "rpcs3",
    "pcsx2-qt",
    "Ryujinx",
    "dolphin-emu",
    "Cemu.exe",
    # Recording or streaming: OBS holds the encoder and a share of the GPU while it is open.
    "obs",
    "obs64.exe",
    # Popular demanding games (Windows executables; also native Linux names where they differ).
    "cs2",
    "dota2",
    "hl2.exe",
    "hl2_linux",
    "tf_win64.exe",
    "tf_linux64",
    "eldenring.exe",
    "sekiro.exe",
    "DarkSoulsIII.exe",
    "Cyberpunk2077.exe",
    "witcher3.exe",
    "bg3.exe",
    "bg3_dx11.exe",
    "GTA5.exe",
    "GTA5_Enhanced.exe",
    "RDR2.exe",
    "Starfield.exe",
    "HogwartsLegacy.exe",
    "MonsterHunterWorld.exe",
    "MonsterHunterWilds.exe",
    "helldivers2.exe",
    "Palworld-Win64-Shipping.exe",
    "FortniteClient-Win64-Shipping.exe",
    "VALORANT-Win64-Shipping.exe",
    "r5apex.exe",
    "r5apex_dx12.exe",
    "Overwatch.exe",
    "RocketLeague.exe",
    "RainbowSix.exe",
    "destiny2.exe",
    "cod.exe",
    "BF2042.exe",
    "TslGame.exe",
    "EscapeFromTarkov.exe",
    "RustClient.exe",
    "GenshinImpact.exe",
    "StarRail.exe",
    "Wow.exe",
    "Diablo IV.exe",
    "League of Legends.exe",
    "ffxiv_dx11.exe",
    "BlackDesert64.exe",
    "Warframe.x64.exe",
    "Minecraft.Windows.exe",
    "eurotrucks2",
    "amtrucks",
    "factorio",
    "Phasmophobia.exe",
)

# Processes that hold a little of the GPU on every desktop; without this list a desktop machine
# would never count as free. They still count when one is really busy (see
# DEFAULT_IGNORED_BUSY_UTILIZATION_PERCENT): a browser running a WebGL game, not one showing a page.
# Browsers and Electron apps are here because each keeps a GPU context and often a few hundred MiB
# of VRAM while idle; a person actually using one is present, which the idle sensor sees.
DEFAULT_GPU_IGNORE_PROCESSES: tuple[str, ...] = (
    # X servers and Linux compositors / shells.
    "Xorg",
    "X",
    "Xwayland",
    "gnome-shell",
    "mutter",
    "kwin_x11",
    "kwin_wayland",
    "plasmashell",
    "sway",
    "Hyprland",
    "cinnamon",
    "xfwm4",
    "marco",
    "compiz",
    "picom",
    "budgie-wm",
    "gala",
    "wayfire",
    "labwc",
    "river",
    "niri",
    "weston",
    "cosmic-comp",
    "gamescope",  # as a session compositor; a game inside it shows up as its own process
    # Windows shell.
    "dwm.exe",
    "explorer.exe",
    "SearchHost.exe",
    "StartMenuExperienceHost.exe",
    "ShellExperienceHost.exe",
    "TextInputHost.exe",
    "LockApp.exe",
    "Widgets.exe",
    "msedgewebview2.exe",
    "NVIDIA Overlay.exe",
    # Browsers (their GPU process has the browser's name).
    "firefox",
    "firefox-bin",
    "firefox-esr",
    "librewolf",
    "chrome",
    "chromium",
    "chromium-browser",
    "msedge",
    "brave",
    "opera",
    "vivaldi-bin",
    "vivaldi",
    # Clients that draw with the GPU while idle (Steam's UI is steamwebhelper; Electron apps).
    "steam",
    "steamwebhelper",
    "Discord",
    "slack",
    "code",
    "spotify",
    "ms-teams",
    "electron",
)

# "Really using the GPU", for a foreign process not on the ignore list: this much VRAM (a game
# holds GiBs; a stray tool or an unlisted app a few dozen MiB) ...
DEFAULT_FOREIGN_VRAM_BYTES = 256 * _MIB
# ... or this share of the GPU, where the driver reports per-process utilization (idle apps: 0-2 %).
DEFAULT_FOREIGN_UTILIZATION_PERCENT = 5.0
# A process on the ignore list counts only from this share of the GPU.
DEFAULT_IGNORED_BUSY_UTILIZATION_PERCENT = 50.0
# Where the driver gives no per-process figures (Windows' WDDM), a GPU none of our jobs runs on counts as
# used from this total utilization: high enough that a desktop's own drawing (a few %) never reaches it.
DEFAULT_UNREPORTED_BUSY_UTILIZATION_PERCENT = 50.0

# Machine conditions the policy may use, off the GPU: pausing on battery power (a laptop unplugged
# should not drain its battery for a job) and above this much CPU load (the owner, or a build, is
# using the machine even without touching the keyboard).
DEFAULT_PAUSE_ON_BATTERY = True
DEFAULT_CPU_BUSY_PERCENT = 85.0
