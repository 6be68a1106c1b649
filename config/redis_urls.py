"""Translate one Redis URL into the forms each client library expects.

Ferry is configured with a single ``REDIS_URL``. redis-py and channels_redis read ``unix://``
and ``redis://`` URLs directly, but kombu (Celery's transport) spells a unix socket
``redis+socket://``; keeping the translation here means the embedded default (a socket under
``var/``) and an external Redis take the same code path everywhere else.
"""

from urllib.parse import urlsplit


def celery_broker_url(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        query = f"?{parts.query}" if parts.query else ""
        return f"redis+socket://{parts.path}{query}"
    return redis_url


def is_unix_socket(redis_url: str) -> bool:
    return urlsplit(redis_url).scheme == "unix"


def socket_path(redis_url: str) -> str:
    return urlsplit(redis_url).path
