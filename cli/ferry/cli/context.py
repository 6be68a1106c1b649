"""What a command may touch, injected so tests run the CLI in-process: streams, environment,
working directory, config directory."""

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ferry.client import FerryClient
from ferry.config import Config, default_config_dir, load
from ferry.datasets import Datasets
from ferry.errors import NotLoggedIn
from ferry.progress import Progress


@dataclass
class Context:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=Path.cwd)
    config_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.config_dir is None:
            self.config_dir = default_config_dir(self.env)
        self._client: FerryClient | None = None
        self._username: str | None = None
        self._bars: list[Progress] = []

    @property
    def config_path(self) -> Path:
        assert self.config_dir is not None
        return self.config_dir

    def config(self) -> Config:
        return load(self.config_path, self.env)

    def client(self) -> FerryClient:
        if self._client is None:
            config = self.config()
            if not config.token:
                raise NotLoggedIn("Not logged in: run `ferry login` (or set FERRY_TOKEN)")
            self._client = FerryClient(config.host, config.token)
        return self._client

    def datasets(self) -> Datasets:
        return Datasets(self.client())

    def username(self) -> str:
        """Who the token belongs to: the owner of names given without one."""
        if self._username is None:
            self._username = str(self.client().get("/user")["username"])
        return self._username

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- output ---------------------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")

    def json(self, data: Any) -> None:
        self.out(json.dumps(data, indent=2, sort_keys=True))

    def progress(self, label: str) -> Callable[[int], Callable[[int], None]]:
        """A factory the SDK calls with the total once it knows it; the bar closes at exit."""

        def start(total: int) -> Callable[[int], None]:
            bar = Progress(label, total, self.stderr)
            self._bars.append(bar)
            return bar.advance

        return start

    def finish_progress(self) -> None:
        """End open bars' lines, so what follows (a result, an error) starts on its own."""
        for bar in self._bars:
            bar.close()
        self._bars = []
