"""The `ferry` command: a thin layer over the SDK."""
