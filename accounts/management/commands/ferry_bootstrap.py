"""Make sure an administrator and an API token exist, and print how to use them.

``make up`` runs this before starting the servers. The first run creates the ``admin`` user
with a random password and a token, and keeps them in ``var/admin-credentials.json`` (mode 600)
so later runs can print them again; the database itself keeps only hashes.
"""

import json
import secrets
from pathlib import Path
from typing import Any, TypedDict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from accounts.models import ApiToken, User
from accounts.services import api_token_create, user_create


class Credentials(TypedDict):
    username: str
    password: str | None
    token: str


def credentials_path() -> Path:
    return settings.VAR_DIR / "admin-credentials.json"


def read_credentials() -> Credentials | None:
    path = credentials_path()
    if not path.exists():
        return None
    data: Credentials = json.loads(path.read_text())
    return data


def write_credentials(credentials: Credentials) -> None:
    path = credentials_path()
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(credentials, indent=2))


def token_is_active(secret: str) -> bool:
    return ApiToken.objects.active().filter(digest=ApiToken.digest_of(secret)).exists()


def ensure_admin() -> Credentials:
    saved = read_credentials()
    admin = User.objects.filter(is_superuser=True, is_active=True).order_by("id").first()
    if admin is None:
        password = secrets.token_urlsafe(12)
        # "admin" is reserved, so no sign-up can take it: only the platform's own account has it.
        admin = user_create(username="admin", email="", password=password, is_superuser=True)
        saved = {"username": admin.username, "password": password, "token": ""}
    if saved is None or saved["username"] != admin.username:
        saved = {"username": admin.username, "password": None, "token": ""}
    if not token_is_active(saved["token"]):
        saved["token"] = api_token_create(user=admin, name="make up").secret
    if saved["password"] and not admin.check_password(saved["password"]):
        saved["password"] = None  # changed since; no longer ours to print
    write_credentials(saved)
    return saved


class Command(BaseCommand):
    help = "Create an administrator and an API token if none exist, and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where Ferry listens.")

    def handle(self, *args: Any, **options: Any) -> None:
        creds = ensure_admin()
        url = options["url"].rstrip("/")
        password = creds["password"] or "(changed since first start; not shown)"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Ferry is starting at {url}/",
                    f"  API docs:   {url}/api/docs/",
                    f"  Admin:      {url}/admin/  user {creds['username']}  password {password}",
                    f"  API token:  {creds['token']}",
                    f"  Try:        curl -H 'Authorization: Bearer {creds['token']}' "
                    f"{url}/api/v1/projects",
                    f"  (kept in {credentials_path()})",
                    "",
                ]
            )
        )
