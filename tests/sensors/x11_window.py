"""A plain X11 client for the presence tests: maps one window, prints its id, and stays until its
standard input closes. Run as a separate process so the window belongs to another client, as a
real application's would."""

from __future__ import annotations

import argparse
import os
import sys

from Xlib import X, Xatom, display


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--class", dest="wm_class", default="")
    parser.add_argument("--fullscreen", action="store_true")
    args = parser.parse_args()

    connection = display.Display()
    screen = connection.screen()
    window = screen.root.create_window(
        0, 0, 400, 300, 0, screen.root_depth, X.InputOutput, X.CopyFromParent, background_pixel=screen.white_pixel
    )
    window.set_wm_name("SpareCycles presence test")
    if args.wm_class:
        window.set_wm_class(args.wm_class.lower(), args.wm_class)
    window.change_property(connection.intern_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [os.getpid()])
    if args.fullscreen:  # asked before mapping, as SDL and video players do (EWMH allows it)
        window.change_property(
            connection.intern_atom("_NET_WM_STATE"),
            Xatom.ATOM,
            32,
            [connection.intern_atom("_NET_WM_STATE_FULLSCREEN")],
        )
    window.map()
    connection.sync()
    print(window.id, flush=True)
    sys.stdin.read()
    connection.close()


if __name__ == "__main__":
    main()
