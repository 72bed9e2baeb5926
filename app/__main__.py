"""``python -m sparecycles`` and the ``sparecycles`` console script.

The bare command with a display opens the desktop app straight away, without importing the command
line's ~30 subcommands (typer, rich, the control client: half a second before the window could paint).
Everything else, and the bare command without a display, goes through :mod:`sparecycles.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) == 1:
        from sparecycles import launcher

        if launcher.display_available() and not launcher.gui_missing_packages():
            from sparecycles.paths import AppPaths

            sys.exit(launcher.run_gui(AppPaths.from_environment()))
    from sparecycles.cli import run

    run()


if __name__ == "__main__":
    main()
