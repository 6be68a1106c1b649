"""A host's agent (``manage.py agent``) in a process of its own, so that a test can kill it the
way an agent dies: on the test's database, broker, storage and settings."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
# The settings an agent must share with the test to work on the same jobs.
SHARED = (
    "CELERY_BROKER_URL", "FERRY_STORAGE", "FERRY_STORAGE_DIR", "FERRY_S3_ENDPOINT_URL",
    "FERRY_S3_BUCKET", "FERRY_S3_ACCESS_KEY", "FERRY_S3_SECRET_KEY", "FERRY_S3_REGION",
    "FERRY_S3_PREFIX", "FERRY_AGENT_DIR", "FERRY_JOB_STOP_GRACE_S",
    "FERRY_JOB_HEARTBEAT_TIMEOUT_S", "FERRY_CHECKPOINT_INTERVAL_S", "FERRY_EXECUTOR",
)  # fmt: skip
PATHS = ("FERRY_STORAGE_DIR", "FERRY_AGENT_DIR")
# Runs in the new process: the test's settings over the project's, then the agent command.
BOOT = """
import json, os, sys
from pathlib import Path
from django.conf import settings
shared = json.loads(os.environ["FERRY_TEST_SETTINGS"])
for name, value in shared.pop("settings").items():
    setattr(settings, name, Path(value) if name in shared["paths"] else value)
settings.DATABASES["default"].update(shared["database"])
import django
django.setup()
from config.celery_app import app
app.conf.update(broker_url=settings.CELERY_BROKER_URL)
from django.core.management import call_command
call_command("agent", *sys.argv[1:])
"""


class AgentProcess:
    """``manage.py agent --name NAME`` started now; ``kill()`` is SIGKILL to all of it.
    ``overrides``: settings of this agent alone (its own FERRY_AGENT_DIR, fake GPUs...)."""

    def __init__(self, name: str, log: Path, overrides: Mapping[str, object] | None = None) -> None:
        database = {
            key: connection.settings_dict[key]
            for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
        }
        own: dict[str, object] = {
            name: str(getattr(settings, name)) if name in PATHS else getattr(settings, name)
            for name in SHARED
        }
        own.update(
            {key: str(value) if key in PATHS else value for key, value in (overrides or {}).items()}
        )
        shared = {
            "settings": own,
            "paths": PATHS,
            "database": database,
        }
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "REDIS_URL": settings.REDIS_URL,  # never the embedded Redis of `make up`
            "FERRY_TEST_SETTINGS": json.dumps(shared),
        }
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT, "--name", name, "--concurrency", "1"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the worker's pool dies with it
            )

    def kill(self) -> None:
        """What a crash or the OOM killer does: no warning, no cleanup."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
