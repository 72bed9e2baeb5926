"""Prometheus metrics of the agent, for a studio's monitoring: off by default, loopback by default, and a
bearer token whenever they are served beyond this machine (``[metrics]`` in the settings)."""
