"""Run service calls at the same moment from several threads, as concurrent requests would."""

import threading
from collections.abc import Callable

from django.db import connection

from core.errors import DomainError


def at_once(*calls: Callable[[], object]) -> list[str]:
    """Run each call in its own thread, all released together; return how each ended.

    An outcome is ``"ok"``, the ``code`` of a ``DomainError`` (a clean refusal), or the type and
    message of any other exception — which is what a test for races wants to rule out.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            call()
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
