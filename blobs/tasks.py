from dataclasses import asdict

from celery import shared_task

from blobs.gc import collect_garbage


@shared_task(name="blobs.collect_garbage")
def collect_garbage_task() -> dict[str, int]:
    return asdict(collect_garbage())
