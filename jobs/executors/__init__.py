"""Executors run jobs: one contract (``base``), one backend per way of running them.

``DockerExecutor`` is imported on first use: the Docker SDK costs a process that runs no
containers (the server, the local executor's agents) a fifth of a second to import.
"""

from typing import TYPE_CHECKING

from jobs.executors.base import (
    Executor,
    ExecutorError,
    Exit,
    Handle,
    JobNotFound,
    JobSpec,
    LaunchError,
    Mount,
    Resources,
)
from jobs.executors.local import LocalExecutor

if TYPE_CHECKING:
    from jobs.executors.docker import DockerExecutor

__all__ = [
    "DockerExecutor",
    "Executor",
    "ExecutorError",
    "Exit",
    "Handle",
    "JobNotFound",
    "JobSpec",
    "LaunchError",
    "LocalExecutor",
    "Mount",
    "Resources",
]


def __getattr__(name: str) -> object:
    if name == "DockerExecutor":
        from jobs.executors.docker import DockerExecutor

        return DockerExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
