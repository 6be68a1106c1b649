"""`ferry init`, `run`, `logs`, `status`, `info`, `stop`: jobs from the command line."""

import shlex
from pathlib import Path
from typing import Any

import click

from ferry.blobs import Blobs
from ferry.cli.context import Context
from ferry.downloads import download_all, fetch_to, file_row
from ferry.errors import FerryError
from ferry.jobs import JobRef, Jobs, ProjectRef
from ferry.local import find_link, write_link
from ferry.progress import human
from ferry.project_file import RunSettings, parse_param, read_project_file
from ferry.uploads import upload_code

LINK_FILE = "project.json"
# The server has the last word (FERRY_MAX_CODE_BYTES there); checking here first spares an
# upload the server would refuse.
DEFAULT_MAX_CODE_BYTES = 256 * 1024 * 1024

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


def jobs_of(ctx: Context) -> Jobs:
    return Jobs(ctx.client(), ctx.username)


def linked_project(ctx: Context) -> tuple[ProjectRef, Path]:
    """The project that `ferry init` linked this directory (or a parent) to."""
    found = find_link(ctx.cwd, LINK_FILE)
    if found is None:
        raise FerryError(
            "This directory is not linked to a project: run `ferry init OWNER/PROJECT`"
        )
    body, directory = found
    return ProjectRef(body["owner"], body["name"]), directory


def resolve_job(ctx: Context, text: str) -> tuple[ProjectRef, int]:
    ref = JobRef.parse(text)
    project = ref.project or linked_project(ctx)[0]
    return project, ref.number


@click.command()
@click.argument("project")
@click.pass_obj
def init(ctx: Context, project: str) -> None:
    """Link this directory to PROJECT (OWNER/NAME), creating it if needed."""
    ref = ProjectRef.parse(project)
    found, created = jobs_of(ctx).project_get_or_create(ref)
    write_link(ctx.cwd, LINK_FILE, {"owner": found["owner"], "name": found["name"]})
    verb = "Created" if created else "Linked to"
    ctx.out(f"{verb} project {found['full_name']}; run code with `ferry run COMMAND`")


def where_options(command: Any) -> Any:
    """--env, --machine and its shorthands --cpu, --gpu, --cpu2, --gpu2 (FloydHub's flags)."""
    for name in ("gpu2", "cpu2", "gpu", "cpu"):
        command = click.option(
            f"--{name}", "machine", flag_value=name, help=f"Run on a {name} machine."
        )(command)
    command = click.option("--machine", "machine", help="A machine type by name.")(command)
    return click.option("--env", "environment", help="The environment (see /api/v1/environments).")(
        command
    )


def scheduling_options(command: Any) -> Any:
    """--priority and --retries: where the job stands in the queue, and whether it is queued
    again when its host goes away."""
    command = click.option(
        "--retries", "max_retries", type=click.IntRange(0, 10),
        help="Queue it again up to N times if its host goes away (0).",
    )(command)  # fmt: skip
    return click.option(
        "--priority", type=click.IntRange(-100, 100),
        help="Higher runs first (0); above 0 only for site admins.",
    )(command)  # fmt: skip


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@where_options
@click.option(
    "--data", "inputs", multiple=True, help="SOURCE[:MOUNT], e.g. alice/datasets/mnist/1:mnist"
)
@click.option("-m", "--message", help="What this run tries.")
@click.option("--max-runtime", type=int, help="Stop the job after this many seconds.")
@click.option("--param", "params", multiple=True, help="NAME=VALUE, given to the job.")
@scheduling_options
@click.option("--task", help="A preset from ferry.yml's `task:` section.")
@click.option("-f", "--follow", is_flag=True, help="Stream the log until the job ends.")
@json_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(ctx: Context, command: tuple[str, ...], as_json: bool, follow: bool, **flags: Any) -> None:
    """Snapshot this directory's code and run COMMAND on the platform."""
    project, root = linked_project(ctx)
    settings = read_project_file(root, flags.pop("task")).overridden_by(
        RunSettings.from_flags(_command_text(command), flags)
    )
    if not settings.command:
        raise FerryError('Give a command to run, e.g. `ferry run "python train.py"`')
    limit = int(ctx.env.get("FERRY_MAX_CODE_BYTES") or DEFAULT_MAX_CODE_BYTES)
    code = upload_code(Blobs(ctx.client()), root, limit, ctx.progress("Uploading code"))
    ctx.finish_progress()
    job = jobs_of(ctx).submit(project, settings.request_body(code.tree))
    if as_json and not follow:
        ctx.json(job)
        return
    ctx.out(
        f"Job {job['name']} {job['status']} ({job['machine']}, {job['environment']}; "
        f"code: {code.file_count} files, sent {code.bytes_sent} bytes)"
    )
    if follow:
        raise click.exceptions.Exit(_follow(ctx, project, int(job["number"])))
    ctx.out(f"Follow it with: ferry logs -f {job['number']}")


def _command_text(words: tuple[str, ...]) -> str:
    # `ferry run "python train.py"` is one word; `ferry run python train.py` is many.
    return words[0] if len(words) == 1 else shlex.join(words)


@click.command()
@click.argument("job")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.pass_obj
def logs(ctx: Context, job: str, follow: bool) -> None:
    """Print JOB's log (N, or OWNER/NAME/N)."""
    project, number = resolve_job(ctx, job)
    if follow:
        raise click.exceptions.Exit(_follow(ctx, project, number))
    piece = jobs_of(ctx).log(project, number)
    _write(ctx, piece.data)


def _follow(ctx: Context, project: ProjectRef, number: int) -> int:
    """Stream the log; then say how the job ended. Exit code 0 only if it succeeded."""
    jobs = jobs_of(ctx)
    for piece in jobs.follow(project, number):
        _write(ctx, piece.data)
    job = jobs.get(project, number)
    ending = f"Job {job['name']} {job['status']}"
    if job.get("exit_code") is not None:
        ending += f" (exit code {job['exit_code']})"
    if job.get("status_reason") and job["status"] != "succeeded":
        ending += f": {job['status_reason']}"
    ctx.err(ending)
    return 0 if job["status"] == "succeeded" else 1


def _write(ctx: Context, data: bytes) -> None:
    if data:
        ctx.stdout.write(data.decode("utf-8", errors="replace"))
        ctx.stdout.flush()


@click.command()
@click.argument("job", required=False)
@json_option
@click.pass_obj
def status(ctx: Context, job: str | None, as_json: bool) -> None:
    """The linked project's recent jobs, or one JOB; queued jobs say why they wait."""
    if job is not None:
        project, number = resolve_job(ctx, job)
        rows = [jobs_of(ctx).get(project, number)]
    else:
        rows = jobs_of(ctx).recent(linked_project(ctx)[0])
    if as_json:
        ctx.json(rows if job is None else rows[0])
        return
    for row in rows:
        waiting = f"  ({row['status_reason']})" if row["status_reason"] else ""
        ctx.out(
            f"{row['number']:>5}  {row['status']:<10} {row['machine']:<6} "
            f"{row['created_at'][:19]}  {row['command'][:40]}{waiting}"
        )


@click.command()
@json_option
@click.pass_obj
def hosts(ctx: Context, as_json: bool) -> None:
    """The machines that run jobs: state, how they run jobs, cpus, memory and GPUs."""
    rows = jobs_of(ctx).hosts()
    if as_json:
        ctx.json(rows)
        return
    for row in rows:
        gpus = ", ".join(f"{gpu['index']}: {gpu['model']}" for gpu in row["gpus"]) or "no GPUs"
        ctx.out(
            f"{row['name']:<16} {row['state']:<9} {row['executor']:<7} {row['cpus']:g} cpus  "
            f"{row['memory_mb']} MB  {gpus}"
        )


@click.command()
@click.argument("job")
@click.pass_obj
def info(ctx: Context, job: str) -> None:
    """Everything about JOB, as JSON."""
    project, number = resolve_job(ctx, job)
    ctx.json(jobs_of(ctx).get(project, number))


@click.command()
@click.argument("job")
@click.pass_obj
def stop(ctx: Context, job: str) -> None:
    """Stop JOB: at once if queued, else SIGTERM and, after a grace period, SIGKILL."""
    project, number = resolve_job(ctx, job)
    stopped = jobs_of(ctx).stop(project, number)
    ctx.out(f"Job {stopped['name']} {stopped['status']}")


@click.command()
@click.argument("job")
@click.option("--ls", "listing", is_flag=True, help="List the output's files (under PATH).")
@click.option("--get", "get_path", metavar="PATH", help="Download one file of the output.")
@click.option("-p", "--path", "directory", type=click.Path(path_type=Path), help="Into here.")
@click.argument("path", default="")
@json_option
@click.pass_obj
def output(
    ctx: Context,
    job: str,
    listing: bool,
    get_path: str | None,
    directory: Path | None,
    path: str,
    as_json: bool,
) -> None:
    """JOB's output: download it all (or the files under PATH), list it, or get one file."""
    project, number = resolve_job(ctx, job)
    source = jobs_of(ctx).output(project, number)
    if listing:
        rows = [row for page in source.manifest_pages(path) for row in page]
        if as_json:
            ctx.json(rows)
            return
        for row in rows:
            ctx.out(f"{human(row['size']):>10}  {row['path']}")
        return
    if get_path is not None:
        row = file_row(source, get_path, f"the output of job {number}")
        target = ctx.cwd / (directory or Path(row["name"]))
        fetch_to(source, row, target)
        ctx.out(f"Wrote {target} ({row['size']} bytes)")
        return
    target = ctx.cwd / (directory or Path(f"{project.name}-{number}-output"))
    if path:  # only part of the output: count what it holds
        total = sum(row["size"] for page in source.manifest_pages(path) for row in page)
    else:
        total = int(jobs_of(ctx).get(project, number).get("output_size") or 0)
    count, size = download_all(source, target, total, ctx.progress("Downloading"), path)
    ctx.finish_progress()
    ctx.out(f"Downloaded the output of job {number} into {target} ({count} files, {size} bytes)")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("job")
@where_options
@click.option("-m", "--message", help="What this run tries.")
@click.option("--max-runtime", "max_runtime_s", type=int, help="Another max runtime, seconds.")
@click.option("--param", "params", multiple=True, help="NAME=VALUE, over the job's own.")
@scheduling_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def restart(ctx: Context, job: str, command: tuple[str, ...], **flags: Any) -> None:
    """Run JOB again (its code, inputs and settings), with what the options (given before JOB)
    and COMMAND change."""
    project, number = resolve_job(ctx, job)
    # Not `if value`: --priority 0 is a change (from a raised priority) like any other.
    changes = {
        key: value for key, value in flags.items() if value not in (None, "") and key != "params"
    }
    if flags["params"]:
        changes["params"] = dict(parse_param(text) for text in flags["params"])
    if command:
        changes["command"] = _command_text(command)
    new = jobs_of(ctx).restart(project, number, changes)
    ctx.out(f"Job {new['name']} {new['status']} (a restart of job {number})")


@click.command()
@click.argument("job")
@click.option("-p", "--path", "directory", type=click.Path(path_type=Path), help="Into here.")
@click.pass_obj
def clone(ctx: Context, job: str, directory: Path | None) -> None:
    """Download the code JOB ran, to look at or to run again."""
    project, number = resolve_job(ctx, job)
    jobs = jobs_of(ctx)
    found = jobs.get(project, number)
    target = ctx.cwd / (directory or Path(f"{project.name}-{number}"))
    count, size = download_all(jobs.code(project, number), target, 0, None)
    ctx.out(f"Cloned the code of job {found['name']} into {target} ({count} files, {size} bytes)")


COMMANDS = [init, run, logs, status, info, stop, output, restart, clone, hosts]
