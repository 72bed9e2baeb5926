"""The bundle's entry point: the same ``sparecycles`` command line as the installed package.

PyInstaller runs this file as ``__main__``; everything else is imported from the frozen package,
so the GUI, the agent and every CLI subcommand live in one executable (the agent and the
benchmark worker are started as this executable with their subcommand).
"""

import multiprocessing

from sparecycles.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a no-op on Linux; Windows needs it before anything else runs
    main()
