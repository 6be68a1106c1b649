"""The FloydHub API, as the unmodified ``floyd-cli`` 0.11.17 speaks it, under /compat/floyd/."""
