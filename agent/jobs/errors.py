"""What can go wrong while running a job's container, each with a message the user can act on."""

from __future__ import annotations


class JobRuntimeError(Exception):
    """Base of the job runtime's errors; ``str(error)`` is the message to show."""


class InvalidPlanError(JobRuntimeError, ValueError):
    """A container plan breaks a sandbox rule (an image not pinned by digest, a root user, ...)."""


class EngineUnreachableError(JobRuntimeError):
    """The Docker engine does not answer (not running, or this user may not use its socket)."""


class GpuToolkitMissingError(JobRuntimeError):
    """Docker cannot hand a GPU to a container: the NVIDIA Container Toolkit is missing or not configured."""


class ImageError(JobRuntimeError):
    """The job's image could not be pulled or is not present."""


class ImageDigestMismatchError(ImageError):
    """What the registry served is not the image the job names by digest."""


class ScratchInputError(JobRuntimeError):
    """The job's input files cannot be put into its scratch area (a link, an unreadable file)."""


class OutputCapExceededError(JobRuntimeError):
    """The job's outputs are larger, or more numerous, than its cap allows."""


class ContainerStateError(JobRuntimeError):
    """An operation that needs the job in another state (pausing a job that has already exited, ...)."""
