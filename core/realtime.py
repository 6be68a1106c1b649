"""Push messages to websocket groups once the transaction that caused them has committed.

Live updates are a convenience on top of the database, which stays the truth: if the channel
layer is down the change still stands and clients catch up on their next read, so a failed send
is logged rather than raised.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_send_now(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        logger.warning("Could not send a live update to %s", group, exc_info=True)


def group_send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: group_send_now(group, message))
