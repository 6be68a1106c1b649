from celery import shared_task

from blobs.gc import collect_garbage


@shared_task(name="blobs.collect_garbage")
def collect_garbage_task() -> dict[str, int]:
    collected = collect_garbage()
    return {"trees": collected.trees, "blobs": collected.blobs}
