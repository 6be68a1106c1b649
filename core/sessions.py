"""The database session store, refusing session cookies that Django could never have issued.

The cookie is the client's to forge: ``sessionid="\\000\\000..."`` unquotes to NUL characters, and
PostgreSQL answers a lookup of such a key with an error, which would make every request that
carries the cookie a 500. A key outside the alphabet Django issues keys in is simply no session.
"""

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS

_KEY_CHARS = frozenset(VALID_KEY_CHARS)


class SessionStore(db.SessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        # Django's own rule (at least 8 characters), plus: only characters Django issues.
        return key is not None and len(key) >= 8 and set(key) <= _KEY_CHARS
