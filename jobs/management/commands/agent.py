"""``python manage.py agent``: register this machine as a host and run its jobs.

It reads the machine's inventory (cpus, memory, GPUs through NVML), registers or updates the
host, beats for it in the background, takes up the jobs an earlier run of it left running
(``jobs.recovery``), prunes its requirements cache in the background (``jobs.requirements``),
and runs a Celery worker on the host's own queue.
"""

import socket
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from config.celery_app import app
from fleet.inventory import inventory_read
from fleet.services import host_heartbeat, host_register
from jobs.agent import agent_paths, make_executor
from jobs.recovery import recover_jobs
from jobs.requirements import prune_deps_cache_soon

HEARTBEAT_S = 10.0


class Command(BaseCommand):
    help = "Register this machine as a host and run the jobs the scheduler sends it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default=socket.gethostname().split(".")[0])
        parser.add_argument("--concurrency", type=int, default=4, help="Jobs run at once.")

    def handle(self, *args: Any, **options: Any) -> None:
        executor = make_executor()
        inventory = inventory_read(settings.FERRY_AGENT_FAKE_GPUS)
        host = host_register(options["name"], inventory, executor=executor.name)
        self.stdout.write(
            f"Host {host.name}: {host.cpus:g} cpus, {host.memory_mb} MB, {len(host.gpus)} GPUs; "
            f"jobs run by the {executor.name} executor under {settings.FERRY_AGENT_DIR}"
        )
        threading.Thread(target=_beat, args=(host.name,), daemon=True).start()
        paths = agent_paths()
        taken_up = recover_jobs(host.name, executor, paths)
        if taken_up:
            self.stdout.write(f"Watching {len(taken_up)} jobs again that were running here")
        # After recover_jobs: the directories of jobs that ended while the agent was away are
        # gone by then, so the requirements those jobs used may go too.
        prune_deps_cache_soon(paths.root)
        app.worker_main(
            [
                "worker", "--queues", host.queue, "--concurrency", str(options["concurrency"]),
                "--hostname", f"agent@{host.name}", "--loglevel", "INFO",
                "--prefetch-multiplier", "1",
            ]
        )  # fmt: skip


def _beat(name: str) -> None:
    stop = threading.Event()
    while not stop.wait(HEARTBEAT_S):
        close_old_connections()
        host_heartbeat(name)
