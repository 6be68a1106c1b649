"""Ferry's command line and Python SDK."""

__version__ = "0.1.0"
