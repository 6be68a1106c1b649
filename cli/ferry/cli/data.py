"""`ferry data ...`: datasets from the command line."""

from pathlib import Path

import click

from ferry.cli.context import Context
from ferry.datasets import DatasetRef
from ferry.downloads import clone as clone_version
from ferry.downloads import fetch_to, file_row
from ferry.errors import FerryError
from ferry.jobs import JobRef, Jobs
from ferry.local import Scan, find_link, scan, write_link
from ferry.progress import human
from ferry.uploads import upload_directory

LINK_FILE = "dataset.json"

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


@click.group()
def data() -> None:
    """Datasets: upload a directory as a version, list, download."""


def linked(ctx: Context) -> tuple[DatasetRef, Path]:
    """The dataset that `ferry data init` linked this directory (or a parent) to."""
    found = find_link(ctx.cwd, LINK_FILE)
    if found is None:
        raise FerryError("This directory is not linked to a dataset: run `ferry data init NAME`")
    body, directory = found
    return DatasetRef(body["owner"], body["name"]), directory


@data.command()
@click.argument("name")
@click.pass_obj
def init(ctx: Context, name: str) -> None:
    """Link the current directory to dataset NAME, creating it if needed."""
    ref = DatasetRef.parse(name)
    datasets = ctx.datasets()
    dataset, created = datasets.get_or_create(ref)
    write_link(ctx.cwd, LINK_FILE, {"owner": dataset["owner"], "name": dataset["name"]})
    verb = "Created" if created else "Linked to"
    ctx.out(f"{verb} dataset {dataset['full_name']}; upload with `ferry data upload`")


@data.command()
@click.option("-m", "--message", default="", help="What changed in this version.")
@json_option
@click.pass_obj
def upload(ctx: Context, message: str, as_json: bool) -> None:
    """Upload the linked directory as a new version."""
    ref, root = linked(ctx)

    def scanned(local: Scan) -> None:
        if local.skipped_links:
            ctx.err(f"Skipped {len(local.skipped_links)} symlink(s): Ferry follows none")

    result = upload_directory(
        ctx.datasets(), ref, root, message, on_scanned=scanned, progress=ctx.progress("Uploading")
    )
    ctx.finish_progress()
    if as_json:
        ctx.json(result.__dict__)
        return
    if result.unchanged:
        ctx.out(
            f"Nothing changed since version {result.version} of {ref.owner}/datasets/{ref.name}; "
            "no new version made"
        )
        return
    ctx.out(
        f"Uploaded version {result.version} of {ref.owner}/datasets/{ref.name} "
        f"({result.file_count} files, {result.total_size} bytes; sent {result.bytes_sent} bytes)"
    )


@data.command()
@json_option
@click.pass_obj
def status(ctx: Context, as_json: bool) -> None:
    """The linked dataset, its latest version, and which local files differ from it."""
    ref, root = linked(ctx)
    datasets = ctx.datasets()
    dataset = datasets.get(ref)
    latest = dataset.get("latest_version")
    remote = {r["path"]: r["digest"] for r in datasets.walk(ref, latest)} if latest else {}
    local = {f.path: f.digest for f in scan(root).files}
    changes = {
        "added": sorted(set(local) - set(remote)),
        "modified": sorted(p for p in set(local) & set(remote) if local[p] != remote[p]),
        "deleted": sorted(set(remote) - set(local)),
    }
    if as_json:
        ctx.json({"dataset": dataset["full_name"], "latest_version": latest, **changes})
        return
    ctx.out(f"Dataset {dataset['full_name']}, latest version {latest or '(none yet)'}")
    if not any(changes.values()):
        ctx.out("No local changes")
    for kind, paths in changes.items():
        for path in paths:
            ctx.out(f"  {kind:<9}{path}")


@data.command()
@click.argument("name")
@json_option
@click.pass_obj
def versions(ctx: Context, name: str, as_json: bool) -> None:
    """A dataset's versions, newest first."""
    rows = ctx.datasets().versions(DatasetRef.parse(name))
    if as_json:
        ctx.json(rows)
        return
    for row in rows:
        ctx.out(
            f"{row['number']:>5}  {row['created_at'][:19]}  {row['file_count']:>7} files  "
            f"{human(row['size']):>10}  {row['message']}"
        )


@data.command()
@click.argument("name")
@click.argument("path", default="")
@json_option
@click.pass_obj
def ls(ctx: Context, name: str, path: str, as_json: bool) -> None:
    """List PATH (a directory) in version N of NAME[/N] (the latest by default)."""
    ref = DatasetRef.parse(name)
    datasets = ctx.datasets()
    rows = datasets.listing(ref, datasets.resolve_version(ref), path)
    if as_json:
        ctx.json(rows)
        return
    for row in rows:
        suffix = "/" if row["kind"] == "dir" else ""
        ctx.out(f"{row['kind']:<5}{human(row['size']):>10}  {row['path']}{suffix}")


@data.command()
@click.argument("name")
@click.argument("path")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write it.")
@click.pass_obj
def get(ctx: Context, name: str, path: str, output: Path | None) -> None:
    """Download one file PATH of NAME/N (into its name here, unless -o)."""
    ref = DatasetRef.parse(name)
    datasets = ctx.datasets()
    number = datasets.resolve_version(ref)
    source = datasets.files(ref, number)
    row = file_row(source, path, f"version {number}")
    target = ctx.cwd / (output or Path(path.rstrip("/").rsplit("/", 1)[-1]))
    fetch_to(source, row, target)
    ctx.out(f"Wrote {target} ({row['size']} bytes)")


@data.command()
@click.argument("name")
@click.option("-p", "--path", "directory", type=click.Path(path_type=Path), help="Into here.")
@json_option
@click.pass_obj
def clone(ctx: Context, name: str, directory: Path | None, as_json: bool) -> None:
    """Download every file of NAME[/N] into a directory (NAME, by default)."""
    ref = DatasetRef.parse(name)
    datasets = ctx.datasets()
    number = datasets.resolve_version(ref)
    target = ctx.cwd / (directory or Path(ref.name))
    result = clone_version(datasets, ref, number, target, progress=ctx.progress("Downloading"))
    ctx.finish_progress()
    if as_json:
        ctx.json({**result.__dict__, "directory": str(result.directory)})
        return
    ctx.out(
        f"Cloned version {number} of {result.full_name} into {target} "
        f"({result.file_count} files, {result.total_size} bytes)"
    )


@data.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(ctx: Context, name: str, yes: bool) -> None:
    """Delete a dataset, or one version of it with NAME/N."""
    ref = DatasetRef.parse(name)
    datasets = ctx.datasets()
    what = f"{datasets.owner_of(ref)}/{ref.name}"
    if ref.version is not None:
        what = f"version {ref.version} of {what}"
    if not yes:
        ctx.stderr.write(f"Delete {what}? This cannot be undone. [y/N] ")
        ctx.stderr.flush()
        if ctx.stdin.readline().strip().lower() not in {"y", "yes"}:
            raise FerryError("Not deleted")
    if ref.version is None:
        datasets.delete(ref)
    else:
        datasets.delete_version(ref, ref.version)
    ctx.out(f"Deleted {what}")


@data.command()
@click.argument("source")
@click.option("-m", "--message", default="", help="What this version holds.")
@click.pass_obj
def add(ctx: Context, source: str, message: str) -> None:
    """Make a job's output (OWNER/projects/NAME/N[/output]) the linked dataset's next version."""
    ref, _ = linked(ctx)
    job_ref = JobRef.parse(source.removesuffix("/output"))
    if job_ref.project is None:
        raise FerryError(f"Name the job's project too: OWNER/projects/NAME/N, not {source!r}")
    job = Jobs(ctx.client(), ctx.username).get(job_ref.project, job_ref.number)
    if not job.get("output"):
        raise FerryError(f"Job {job['name']} has no output yet ({job['status']})")
    version = ctx.datasets().commit_version(
        ref, job["output"], message or f"output of {job['name']}"
    )
    ctx.out(
        f"Added the output of job {job['name']} as version {version['number']} of "
        f"{ref.owner}/datasets/{ref.name} ({version['file_count']} files, {version['size']} bytes)"
    )
