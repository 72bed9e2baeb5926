"""What can stop a benchmark, each with a message the user can act on."""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base of the benchmark's errors; ``str(error)`` is the message to show."""


class BenchmarkInterrupted(BenchmarkError):
    """The caller asked the run to stop (the user came back, the agent is shutting down).

    An interrupted run gives no result at all: figures from a run cut short would be compared with
    complete ones, so nothing partial is ever returned.
    """

    def __init__(self, phase: str) -> None:
        super().__init__(
            f"benchmark interrupted during {phase}: no result recorded; it runs again when the GPU is idle"
        )
        self.phase = phase


class NoArrayLibraryError(BenchmarkError):
    """Neither PyTorch with CUDA nor CuPy can be used, so there is nothing to drive the GPU with."""


class ResultFormatError(BenchmarkError, ValueError):
    """A stored or received benchmark result is not in the expected shape."""
