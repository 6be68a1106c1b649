"""`ferry admin ...`: hosts, the queue and quotas, for site admins."""

from collections.abc import Sequence
from typing import Any

import click

from ferry.admin import Admin, QuotaKind
from ferry.cli.context import Context

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
NO_LIMIT = "none"


@click.group()
def admin() -> None:
    """Site admins: hosts and what they hold, the queue, quotas."""


def admin_of(ctx: Context) -> Admin:
    return Admin(ctx.client())


def table(ctx: Context, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their widest cell, two spaces apart; the last one unpadded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        ctx.out("  ".join([*cells, row[-1]]).rstrip())


# --- hosts --------------------------------------------------------------------------------------


@admin.command()
@json_option
@click.pass_obj
def hosts(ctx: Context, as_json: bool) -> None:
    """Every host: its state, what is free of it, and the jobs holding the rest."""
    rows = admin_of(ctx).hosts()
    if as_json:
        ctx.json(rows)
        return
    header = ["HOST", "STATE", "EXECUTOR", "FREE CPUS", "FREE MEMORY", "FREE GPUS", "JOBS"]
    table(ctx, header, [_host_row(row) for row in rows])


def _host_row(host: dict[str, Any]) -> list[str]:
    free = host["free"]
    gpus = ",".join(str(index) for index in free["gpu_indices"]) or "none"
    jobs = ", ".join(_held(item) for item in host["allocations"]) or "-"
    return [
        host["name"],
        host["state"],
        host["executor"],
        f"{free['cpus']:g}/{host['cpus']:g}",
        f"{free['memory_mb']}/{host['memory_mb']} MB",
        f"{gpus} of {len(host['gpus'])}" if host["gpus"] else "-",
        jobs,
    ]


def _held(item: dict[str, Any]) -> str:
    name = item["job"] + (f" #{item['replica']}" if item["replica"] else "")
    gpus = ",".join(str(index) for index in item["gpu_indices"])
    return f"{name} (GPUs {gpus})" if gpus else name


@admin.command()
@click.argument("host")
@click.pass_obj
def drain(ctx: Context, host: str) -> None:
    """Place nothing new on HOST; the jobs running there finish."""
    found = admin_of(ctx).drain(host)
    running = len({item["job"] for item in found["allocations"]})
    ctx.out(f"Host {found['name']} is {found['state']}: {running} job(s) still run there")


@admin.command()
@click.argument("host")
@click.pass_obj
def undrain(ctx: Context, host: str) -> None:
    """Let a draining HOST take new work again."""
    found = admin_of(ctx).undrain(host)
    ctx.out(f"Host {found['name']} is {found['state']} and takes new work")


# --- the queue ----------------------------------------------------------------------------------


@admin.command()
@json_option
@click.pass_obj
def queue(ctx: Context, as_json: bool) -> None:
    """Queued jobs in the order the scheduler takes them; '-': not in that order (no host can
    run it, or no pass has seen it yet)."""
    rows = admin_of(ctx).queue()
    if as_json:
        ctx.json(rows)
        return
    if not rows:
        ctx.out("The queue is empty")
        return
    header = ["POSITION", "JOB", "USER", "PRIORITY", "MACHINE", "REASON"]
    table(ctx, header, [_queue_row(row) for row in rows])


def _queue_row(row: dict[str, Any]) -> list[str]:
    machine = row["machine"] + (f" x{row['replicas']}" if row["replicas"] > 1 else "")
    return [
        "-" if row["position"] is None else str(row["position"]),
        row["job"],
        row["created_by"] or "-",
        str(row["priority"]),
        machine,
        row["status_reason"] or "-",
    ]


# --- quotas -------------------------------------------------------------------------------------


@admin.command()
@json_option
@click.pass_obj
def quotas(ctx: Context, as_json: bool) -> None:
    """Every quota set; users and teams without one have no limits (and users share 1)."""
    rows = admin_of(ctx).quotas()
    if as_json:
        ctx.json(rows)
        return
    if not rows:
        ctx.out("No quotas: nobody is limited, and every user has share 1")
        return
    header = ["KIND", "NAME", "GPUS", "JOBS", "SHARE"]
    table(ctx, header, [_quota_row(row) for row in rows])


def _quota_row(row: dict[str, Any]) -> list[str]:
    share = "-" if row["share"] is None else f"{row['share']:g}"
    return [row["kind"], row["name"], _limit(row["max_gpus"]), _limit(row["max_jobs"]), share]


def _limit(value: int | None) -> str:
    return "no limit" if value is None else str(value)


class Limit(click.ParamType):
    """A whole number of 0 or more, or `none` for no limit."""

    name = "N|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().lower()
        if text in (NO_LIMIT, "unlimited"):
            return NO_LIMIT
        try:
            number = int(text)
        except ValueError:
            self.fail(f"{value!r}: give a whole number, or 'none' for no limit", param, ctx)
        if number < 0:
            self.fail(f"{value!r}: give 0 or more, or 'none' for no limit", param, ctx)
        return number


def quota_options(command: Any) -> Any:
    """--gpus, --jobs, --clear and --json, shared by `quota user` and `quota team`."""
    command = json_option(command)
    command = click.option(
        "--clear", is_flag=True, help="Remove the quota: no limits (and share 1)."
    )(command)
    command = click.option(
        "--jobs", "max_jobs", type=Limit(), help="Jobs running at once; 'none': no limit."
    )(command)
    return click.option(
        "--gpus", "max_gpus", type=Limit(), help="GPUs held at once; 'none': no limit."
    )(command)


@admin.group()
def quota() -> None:
    """Show, set or clear one user's or team's quota. Options left out keep their values."""


@quota.command("user")
@click.argument("name")
@quota_options
@click.option(
    "--share", type=click.FloatRange(min=0, min_open=True), help="Weight in the fair share (1)."
)
@click.pass_obj
def quota_user(ctx: Context, name: str, clear: bool, as_json: bool, **changes: Any) -> None:
    """The quota of user NAME: what their jobs may hold at once, and their fair share."""
    _quota(ctx, "user", name, changes, clear=clear, as_json=as_json)


@quota.command("team")
@click.argument("name")
@quota_options
# Hidden, to answer it with why rather than with click's "No such option".
@click.option("--share", hidden=True)
@click.pass_obj
def quota_team(
    ctx: Context, name: str, clear: bool, as_json: bool, share: str | None, **changes: Any
) -> None:
    """The quota of team NAME: what the jobs of its projects may hold at once."""
    if share is not None:
        raise click.UsageError(
            "A team has no share: shares weigh users against each other; give it to users "
            "(`ferry admin quota user NAME --share X`)"
        )
    _quota(ctx, "team", name, changes, clear=clear, as_json=as_json)


def _quota(
    ctx: Context, kind: QuotaKind, name: str, changes: dict[str, Any], *, clear: bool, as_json: bool
) -> None:
    given = {key: value for key, value in changes.items() if value is not None}
    admin = admin_of(ctx)
    if clear:
        if given:
            raise click.UsageError("--clear removes the whole quota; give it without other options")
        admin.quota_clear(kind, name)
        share = ", share 1" if kind == "user" else ""
        ctx.out(f"Removed the quota of {kind} {name}: no limits{share}")
        return
    found = admin.quota(kind, name)
    if given:
        # The server replaces the whole quota: keep what these options do not change.
        body = {key: found[key] for key in ("max_gpus", "max_jobs", "share") if key in found}
        if kind == "team":
            body.pop("share", None)
        body.update({key: None if value == NO_LIMIT else value for key, value in given.items()})
        found = admin.quota_set(kind, name, body)
    if as_json:
        ctx.json(found)
        return
    ctx.out(_describe(found))


def _describe(quota: dict[str, Any]) -> str:
    gpus, jobs = (
        "any number of" if quota[key] is None else f"at most {quota[key]}"
        for key in ("max_gpus", "max_jobs")
    )
    share = "" if quota["share"] is None else f"; share {quota['share']:g}"
    return f"{quota['kind'].capitalize()} {quota['name']}: {gpus} GPUs, {jobs} jobs at once{share}"
