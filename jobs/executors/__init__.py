"""Executors run jobs: one contract (``base``), one backend per way of running them."""

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

__all__ = [
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
