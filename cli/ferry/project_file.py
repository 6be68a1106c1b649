"""``ferry.yml``: a project's run settings, in FloydHub's keys, with ``task:`` presets.

    env: pytorch-2.13
    machine: gpu
    input:
      - alice/datasets/mnist/1:mnist
    command: python train.py
    description: baseline
    max_runtime: 3600
    task:
      eval:
        command: python eval.py
        machine: cpu

Flags given to `ferry run` win over a task's values, which win over the file's top level.
"""

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ferry.errors import LocalError

FILE_NAME = "ferry.yml"
KEYS = {"env", "machine", "input", "command", "description", "max_runtime", "task"}


@dataclass(frozen=True)
class RunSettings:
    command: str = ""
    environment: str = ""
    machine: str = ""
    inputs: tuple[str, ...] = ()
    message: str = ""
    max_runtime: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    max_retries: int | None = None

    @classmethod
    def from_flags(cls, command: str, flags: dict[str, Any]) -> "RunSettings":
        return cls(
            command=command,
            environment=flags.get("environment") or "",
            machine=flags.get("machine") or "",
            inputs=tuple(flags.get("inputs") or ()),
            message=flags.get("message") or "",
            max_runtime=flags.get("max_runtime"),
            params=dict(parse_param(text) for text in flags.get("params") or ()),
            priority=flags.get("priority"),
            max_retries=flags.get("max_retries"),
        )

    def overridden_by(self, other: "RunSettings") -> "RunSettings":
        """These settings, with every value ``other`` sets taking their place."""
        # Unset is None or empty; a 0 given (--priority 0) is a value like any other.
        changes = {
            f.name: getattr(other, f.name)
            for f in fields(other)
            if getattr(other, f.name) not in (None, "", (), {})
        }
        return replace(self, **changes)

    def request_body(self, code: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "command": self.command,
            "code": code,
            "inputs": [parse_input(text) for text in self.inputs],
            "params": self.params,
            "message": self.message,
        }
        for key, value in (("environment", self.environment), ("machine", self.machine)):
            if value:
                body[key] = value
        for key, number in (
            ("max_runtime_s", self.max_runtime),
            ("priority", self.priority),
            ("max_retries", self.max_retries),
        ):
            if number is not None:
                body[key] = number
        return body


def parse_input(text: str) -> dict[str, str]:
    """``SOURCE[:MOUNT]``: sources hold no colon, so the mount is whatever follows one."""
    source, _, mount = text.partition(":")
    return {"source": source, "mount": mount}


def parse_param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise LocalError(f"Give a parameter as NAME=VALUE, not {text!r}")
    return name, _typed(value)


def _typed(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def read_project_file(root: Path, task: str | None = None) -> RunSettings:
    path = root / FILE_NAME
    if not path.is_file():
        if task:
            raise LocalError(f"--task {task}: there is no {FILE_NAME} in {root}")
        return RunSettings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise LocalError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise LocalError(f"{path} should hold a mapping of settings")
    settings = _settings(path, data)
    if not task:
        return settings
    tasks = data.get("task") or {}
    if not isinstance(tasks, dict) or task not in tasks:
        known = ", ".join(sorted(tasks)) if isinstance(tasks, dict) and tasks else "none"
        raise LocalError(f"{path} has no task {task!r}; its tasks: {known}")
    return settings.overridden_by(_settings(path, tasks[task] or {}))


def _settings(path: Path, data: dict[str, Any]) -> RunSettings:
    unknown = set(data) - KEYS
    if unknown:
        raise LocalError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KEYS))}"
        )
    inputs = data.get("input") or []
    if isinstance(inputs, str):
        inputs = [inputs]
    runtime = data.get("max_runtime")
    if runtime is not None and (not isinstance(runtime, int) or isinstance(runtime, bool)):
        raise LocalError(f"{path}: max_runtime must be a whole number of seconds")
    return RunSettings(
        command=str(data.get("command") or ""),
        environment=str(data.get("env") or ""),
        machine=str(data.get("machine") or ""),
        inputs=tuple(str(item) for item in inputs),
        message=str(data.get("description") or ""),
        max_runtime=runtime,
    )
