"""Ferry's command line and Python SDK.

Inside a job, ``ferry.checkpoint()`` keeps the job's output now, and ``ferry.log_metric()``,
``log_metrics()``, ``log_params()`` and ``set_tags()`` record its tracking data (elsewhere, after
``ferry.init("owner/name")``, an external run's). Importing the package loads only the standard
library, so a job's Python needs nothing else installed for it.
"""

from ferry.checkpoint import checkpoint
from ferry.tracking import finish, flush, init, log_metric, log_metrics, log_params, set_tags

__version__ = "0.1.0"
__all__ = [
    "checkpoint",
    "finish",
    "flush",
    "init",
    "log_metric",
    "log_metrics",
    "log_params",
    "set_tags",
]
