"""ASGI entry point: HTTP through Django's WSGI handler on a pool of threads (see
core.http_threads for why), websockets through Channels."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models, so the HTTP app is built first.
django_wsgi_app = get_wsgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.websocket_auth import TokenOrSessionAuthMiddleware  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from core.http_threads import WsgiOnThreads  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": WsgiOnThreads(
            django_wsgi_app,
            threads=settings.FERRY_WEB_THREADS,
            spool_bytes=settings.FILE_UPLOAD_MAX_MEMORY_SIZE,
        ),
        "websocket": TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)
