from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from accounts.services import api_tokens_purge_expired

# Revoked and expired tokens stay listed for a while so their owners can see what happened.
KEEP_DEAD_TOKENS_FOR = timedelta(days=30)


@shared_task(name="accounts.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return api_tokens_purge_expired(older_than=timezone.now() - KEEP_DEAD_TOKENS_FOR)
