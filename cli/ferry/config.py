"""Where the CLI keeps the server URL and the token: ``$XDG_CONFIG_HOME/ferry/config.json``.

FERRY_HOST and FERRY_TOKEN override the file, so CI jobs need no file at all.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import FerryError

DEFAULT_HOST = "http://127.0.0.1:8000"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Config:
    host: str
    token: str | None


def default_config_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "ferry"


def read_file(config_dir: Path) -> dict[str, str]:
    path = config_dir / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FerryError(f"Could not read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise FerryError(f"{path} should hold a JSON object")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def load(config_dir: Path, env: Mapping[str, str]) -> Config:
    stored = read_file(config_dir)
    host = env.get("FERRY_HOST") or stored.get("host") or DEFAULT_HOST
    token = env.get("FERRY_TOKEN") or stored.get("token") or None
    return Config(host=normalise_host(host), token=token)


def normalise_host(host: str) -> str:
    host = host.strip().rstrip("/")
    if "://" not in host:  # `ferry login --host ferry.example.com` should just work
        host = f"https://{host}"
    return host


def save(config_dir: Path, config: Config) -> Path:
    """Write the file readable by its owner only: it holds a bearer token."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / CONFIG_FILE
    body = json.dumps({"host": config.host, "token": config.token}, indent=2) + "\n"
    # Create it 0600 from the start, not chmod afterwards: no moment where others may read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
    os.chmod(path, 0o600)  # an older file may have been created with looser bits
    return path
