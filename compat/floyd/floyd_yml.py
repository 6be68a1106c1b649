"""The settings of a run asked for through floyd-cli: its flags, floyd.yml, and the defaults.

floyd-cli reads only ``machine`` from floyd.yml itself. It sends the whole file as
``yaml_config``, the task the user picked (``--task``) and ``cli_default`` (the options left
unset), and the server merges: a flag the user passed, else the task's section of floyd.yml,
else the file's top level, else the default (Ferry's default environment and machine type).

Everything here is pure: text and dicts in, ``RunSettings`` out, ``ValidationFailed`` with a
message that says what to change.
"""

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from core.errors import ValidationFailed

# floyd's machine instance types and the Ferry machine types seeded under the same flags.
INSTANCE_MACHINES = {"c1": "cpu", "g1": "gpu", "c2": "cpu2", "g2": "gpu2"}
MACHINE_INSTANCES = {machine: instance for instance, machine in INSTANCE_MACHINES.items()}
# floyd-cli's name for "whatever the server runs by default".
DEFAULT_ENV = "default"
# What floyd-cli calls a plain job when no --mode is given, and the modes it also knows.
COMMAND_MODES = frozenset({"", "command", "job", "cli"})
UNSERVED_MODES = {"serve": "serve models", "jupyter": "run notebooks"}
MAX_RUNTIME_S = 30 * 86400  # as Ferry's own API allows
KEYS = ("machine", "env", "input", "description", "max_runtime", "command", "mode", "task")

# The words floyd-cli writes into ``full_command`` before the command (cli/run.py,
# get_command_line): flags alone, and options followed by their value.
_FLAGS = frozenset({"--cpu", "--gpu", "--cpu2", "--gpu2", "--no-open", "--open"})
_OPTIONS = frozenset({"--env", "--message", "-m", "--data", "--mode", "--max-runtime", "-r"})


@dataclass(frozen=True)
class Mount:
    """An input as floyd names it: ``source`` is a name (``alice/datasets/mnist/1``) from
    floyd.yml or an id (``data-5``) from --data; ``mount`` the directory it is mounted at."""

    source: str
    mount: str


@dataclass(frozen=True)
class FloydArgs:
    """What the user passed to ``floyd run`` or ``floyd restart``; empty where nothing."""

    command: str = ""
    description: str = ""
    env: str = ""
    instance_type: str = ""
    mode: str = ""
    max_runtime: int | None = None
    data: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class RunSettings:
    """A run's settings in Ferry's terms; an empty environment or machine means the default."""

    command: str
    description: str
    environment: str
    machine: str
    max_runtime_s: int | None
    inputs: tuple[Mount, ...]


def run_settings(args: FloydArgs, yaml_text: str | None, task: str | None) -> RunSettings:
    """Merge the flags, the chosen task, floyd.yml's top level and the defaults."""
    config = task_config(parse_config(yaml_text), task)
    mode = args.mode or _text(config, "mode")
    check_mode(mode)
    return RunSettings(
        command=args.command or _text(config, "command"),
        description=args.description or _text(config, "description"),
        environment=environment_name(args.env or _text(config, "env")),
        machine=machine_name(args.instance_type or _text(config, "machine")),
        max_runtime_s=_max_runtime(args.max_runtime, config),
        inputs=args.data or yaml_inputs(config.get("input")),
    )


def parse_config(text: str | None) -> dict[str, Any]:
    """floyd.yml as a dict; an absent or all-comment file (``floyd init`` writes one) is {}."""
    if not text or not text.strip():
        return {}
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _invalid(f"floyd.yml is not valid YAML ({_first_line(exc)}); fix it.") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise _invalid("floyd.yml must be a mapping of settings (machine:, env:, command:, ...).")
    _check_keys(loaded, "floyd.yml")
    return loaded


def _check_keys(section: Mapping[Any, Any], where: str) -> None:
    # A misspelt key (comand:) would otherwise be dropped without a word.
    unknown = sorted(str(key) for key in section if key not in KEYS)
    if unknown:
        raise _invalid(
            f"{where} has settings Ferry does not know: {', '.join(unknown)}; use "
            f"{', '.join(KEYS)}."
        )


def task_config(config: Mapping[str, Any], task: str | None) -> dict[str, Any]:
    """The top level of floyd.yml with task ``task``'s section laid over it."""
    top = {key: value for key, value in config.items() if key != "task"}
    if not task:
        return top
    tasks = config.get("task") or {}
    if not isinstance(tasks, dict):
        raise _invalid("floyd.yml's 'task' must map task names to their settings.")
    if task not in tasks:
        known = ", ".join(sorted(map(str, tasks))) or "none"
        raise _invalid(f"floyd.yml has no task {task!r}; its tasks: {known}.")
    section = tasks[task] or {}
    if not isinstance(section, dict):
        raise _invalid(f"floyd.yml's task {task!r} must be a mapping of settings.")
    _check_keys(section, f"floyd.yml's task {task!r}")
    return {**top, **{key: value for key, value in section.items() if value is not None}}


def check_mode(mode: str) -> None:
    """Refuse the modes Ferry does not run through floyd-cli."""
    if mode in COMMAND_MODES:
        return
    if mode in UNSERVED_MODES:
        raise _invalid(
            f"Ferry does not {UNSERVED_MODES[mode]} through floyd-cli yet (--mode {mode}); run "
            "a job without --mode, or use Ferry's own endpoints and workspaces."
        )
    raise _invalid(f"Unknown mode {mode!r}: floyd-cli runs jobs only (leave out --mode).")


def machine_name(instance_type: str) -> str:
    """The Ferry machine type for floyd's instance type (c1, g1, c2, g2) or machine name
    (cpu, gpu, cpu2, gpu2, or any other Ferry machine type); '' for the default."""
    return INSTANCE_MACHINES.get(instance_type, instance_type)


def instance_type(machine: str) -> str:
    """floyd's instance type for a Ferry machine type; other machine types keep their name."""
    return MACHINE_INSTANCES.get(machine, machine)


def environment_name(env: str) -> str:
    """The Ferry environment for floyd's env name; '' (the default) for floyd's 'default'."""
    return "" if env == DEFAULT_ENV else env


def data_mounts(data_ids: Sequence[str]) -> tuple[Mount, ...]:
    """floyd-cli's --data ids ("data-5:/mnist") as mounts."""
    mounts = []
    for item in data_ids:
        source, colon, mount = str(item).rpartition(":")
        if not colon or not source:
            raise _invalid(f"{item!r} is not a data id with a mount: give ID:MOUNT.")
        mounts.append(Mount(source, mount.strip("/")))
    return tuple(mounts)


def yaml_inputs(value: Any) -> tuple[Mount, ...]:
    """floyd.yml's ``input``: items ``{source, destination}`` or ``SOURCE[:MOUNT]``."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid(
            "floyd.yml's 'input' must be a list of SOURCE:MOUNT or {source, destination}."
        )
    return tuple(_yaml_input(item) for item in value)


def _yaml_input(item: Any) -> Mount:
    if isinstance(item, str):
        source, _, mount = item.partition(":")
        return Mount(source.strip("/"), mount.strip("/"))
    if isinstance(item, dict) and isinstance(item.get("source"), str):
        destination = item.get("destination") or ""
        if not isinstance(destination, str):
            raise _invalid(f"floyd.yml input {item!r}: 'destination' must be a directory name.")
        return Mount(item["source"].strip("/"), destination.strip("/"))
    raise _invalid(
        f"floyd.yml input {item!r} is not SOURCE:MOUNT or {{source: ..., destination: ...}}."
    )


def command_of(full_command: str) -> str:
    """The command in floyd-cli's ``full_command``, the ``floyd run ...`` line it rebuilt from
    the user's flags (quoting the command as one word); '' if it has none.

    floyd-cli sends the command itself only with the code upload, not with the run, so this
    line is where the run learns it.
    """
    try:
        words = shlex.split(full_command)
    except ValueError as exc:
        raise _invalid(f"full_command {full_command!r} is not a shell command line.") from exc
    if words[:2] != ["floyd", "run"]:
        return ""
    command: list[str] = []
    rest = iter(words[2:])
    for word in rest:
        if word in _OPTIONS:
            next(rest, None)  # its value
        elif word not in _FLAGS:
            command.append(word)
    return " ".join(command)


def max_runtime(value: Any, where: str) -> int | None:
    """A max runtime in whole seconds, 1 to 30 days; None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _invalid(f"{where}: give the max runtime as whole seconds, not {value!r}.")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_RUNTIME_S:
        raise _invalid(
            f"{where}: the max runtime must be whole seconds from 1 to {MAX_RUNTIME_S}, "
            f"not {value!r}."
        )
    return int(text)


def _max_runtime(flag: int | None, config: Mapping[str, Any]) -> int | None:
    if flag is not None:
        return max_runtime(flag, "--max-runtime")
    return max_runtime(config.get("max_runtime"), "floyd.yml max_runtime")


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _invalid(f"floyd.yml's {key!r} must be text, not {value!r}.")
    return str(value).strip()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_floyd_run")
