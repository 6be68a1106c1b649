"""/healthz: is the database answering, and is the broker?"""

import time
from typing import TypedDict

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

PROBE_TIMEOUT_SECONDS = 2.0


class Probe(TypedDict):
    ok: bool
    latency_ms: float
    error: str | None


def probe_database() -> Probe:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "unhealthy"; the message says which
        return _failed(started, exc)
    return _passed(started)


def probe_broker() -> Probe:
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=PROBE_TIMEOUT_SECONDS,
            socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        )
        with client:
            client.ping()
    except Exception as exc:
        return _failed(started, exc)
    return _passed(started)


def _passed(started: float) -> Probe:
    return {"ok": True, "latency_ms": _elapsed_ms(started), "error": None}


def _failed(started: float, exc: Exception) -> Probe:
    error = f"{type(exc).__name__}: {exc}"
    return {"ok": False, "latency_ms": _elapsed_ms(started), "error": error}


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = probe_database()
    broker = probe_broker()
    healthy = database["ok"] and broker["ok"]
    body = {"status": "ok" if healthy else "unhealthy", "database": database, "broker": broker}
    return JsonResponse(body, status=200 if healthy else 503)
