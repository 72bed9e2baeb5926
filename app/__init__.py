"""SpareCycles: earn from idle NVIDIA GPUs without ever getting in the owner's way.

This package (folder ``app/``) holds what the agent, the GUI and the CLI share: paths, config,
logging, the control-API contract and its client. It never imports Qt or the agent.
"""

__version__ = "0.1.0"
