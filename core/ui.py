"""The browser UI's one HTML page, for every address the UI routes itself (``frontend/``).

The page is Vite's built ``index.html``; its scripts and styles are static files. Serving it
sets the CSRF cookie, which the UI sends back as ``X-CSRFToken`` on every unsafe request made
with the session, and it is never cached, so a new build is picked up at the next load.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

NOT_BUILT = """<!doctype html><html lang="en">
<head><meta charset="utf-8"><title>Ferry</title></head><body><h1>The browser UI is not built</h1>
<p>Run <code>make up</code>, or <code>npm ci && npm run build</code> in <code>frontend/</code>,
then reload. The REST API is at <a href="/api/docs/">/api/docs/</a>.</p></body></html>"""


@require_safe
@never_cache
@ensure_csrf_cookie
def ui_page(request: HttpRequest, path: str = "") -> HttpResponse:
    index = settings.FERRY_UI_DIR / "index.html"
    try:
        html = index.read_text(encoding="utf-8")
    except FileNotFoundError:
        return HttpResponse(NOT_BUILT, status=503)
    return HttpResponse(html)
