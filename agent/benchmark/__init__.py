"""The GPU benchmark: what a GPU can do, measured once per GPU and driver, scored on one scale.

The measuring code (``measure``) is written once against a small array-library interface
(``backend``), with adapters for PyTorch and CuPy that import their library only when used; the
arithmetic, the reference table, the score, the outlier check and the result store are pure or plain
file I/O. ``python -m sparecycles.agent.benchmark.worker`` runs it all on a GPU and prints the result.

Nothing here imports an array library or NVML at import time: the agent imports this package freely.
"""
