"""Ferry's command line and Python SDK.

Inside a job, ``ferry.checkpoint()`` keeps the job's output now. Importing the package loads
only the standard library, so a job's Python needs nothing else installed for it.
"""

from ferry.checkpoint import checkpoint

__version__ = "0.1.0"
__all__ = ["checkpoint"]
