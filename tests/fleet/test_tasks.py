"""The fleet's Celery tasks: their stable names, and the periodic runs beat sends."""

import pytest
from django.conf import settings

from config.celery_app import app
from fleet.tasks import reap_task, schedule_task

pytestmark = pytest.mark.django_db


def test_tasks_are_registered_under_their_stable_names() -> None:
    app.loader.import_default_modules()

    assert (schedule_task.name, reap_task.name) == ("fleet.schedule", "fleet.reap")
    assert {"fleet.schedule", "fleet.reap"} <= set(app.tasks)


def test_beat_runs_the_reaper_and_the_scheduler() -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {"fleet.reap", "fleet.schedule"} <= tasks


def test_the_tasks_return_their_summaries() -> None:
    assert schedule_task.apply().get() == {"ran": True, "placed": 0, "waiting": 0}
    assert reap_task.apply().get()["hosts_offline"] == 0
