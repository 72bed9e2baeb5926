"""The SpareCycles agent: the headless daemon that owns everything touching the machine.

Never imports Qt or ``sparecycles.ui``; the GUI and CLI reach it only through the control API.
"""
