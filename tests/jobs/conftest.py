"""Fixtures the executor suites share; each module gives its own ``executor`` and ``job_dir``."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.executors import Executor, Handle
from tests.jobs.test_executor_contract import spec_for


@pytest.fixture
def run(executor: Executor, job_dir: Path) -> Iterator[Callable[..., Handle]]:
    """Launches a job of ``command``; whatever still runs at the end of the test is stopped."""
    handles: list[Handle] = []

    def launch(command: str, **changes: object) -> Handle:
        handles.append(executor.launch(spec_for(job_dir, command, **changes)))
        return handles[-1]

    yield launch
    for handle in handles:
        executor.cleanup(handle)
