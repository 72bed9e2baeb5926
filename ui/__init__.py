"""The SpareCycles desktop app (PySide6): windows and tray. Talks to the agent only through its API."""
