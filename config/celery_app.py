"""The Celery application shared by the web process, the workers and beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ferry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="ferry.ping")
def ping() -> str:
    """Answers 'pong': lets health checks and tests see that a worker consumes the broker."""
    return "pong"
