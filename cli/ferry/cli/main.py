"""Entry point. Only ``main`` turns errors into exit codes and one-line messages."""

from collections.abc import Sequence

import click

from ferry.cli.admin import admin
from ferry.cli.context import Context
from ferry.cli.data import data
from ferry.cli.floyd_proxy import floyd_proxy
from ferry.cli.jobs import COMMANDS as JOB_COMMANDS
from ferry.client import FerryClient
from ferry.config import Config, load, normalise_host, save
from ferry.errors import FerryError, NotLoggedIn

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ferry-cli")
def cli() -> None:
    """Ferry: datasets and jobs on your own ML platform."""


@cli.command()
@click.option("--host", help="The server's URL, e.g. https://ferry.example.com")
@click.option("--token", help="An API token (`make up` prints one; more at /api/v1/user/tokens).")
@click.pass_obj
def login(ctx: Context, host: str | None, token: str | None) -> None:
    """Check a token against the server and remember both."""
    current = load(ctx.config_path, ctx.env)
    url = normalise_host(host) if host else current.host
    if not token:
        ctx.stderr.write("Token: ")
        ctx.stderr.flush()
        token = ctx.stdin.readline().strip()
    if not token:
        raise FerryError("No token given")
    with FerryClient(url, token) as client:
        try:
            user = client.get("/user")
        except NotLoggedIn as exc:
            raise NotLoggedIn(f"{url} refused that token") from exc
    path = save(ctx.config_path, Config(host=url, token=token))
    ctx.out(f"Logged in to {url} as {user['username']} (saved in {path})")


cli.add_command(data)
cli.add_command(admin)
cli.add_command(floyd_proxy)
for command in JOB_COMMANDS:
    cli.add_command(command)


def main(argv: Sequence[str] | None = None, context: Context | None = None) -> int:
    ctx = context or Context()
    try:
        args = list(argv) if argv is not None else None
        # Without standalone mode, click returns a command's exit code (click.exceptions.Exit)
        # instead of raising it.
        code = cli.main(args=args, prog_name="ferry", obj=ctx, standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except FerryError as exc:
        ctx.err(f"ferry: {exc.message}")
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        ctx.err("ferry: aborted")
        return 1
    except click.ClickException as exc:
        ctx.err(f"ferry: {exc.format_message()}")
        return EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
    except KeyboardInterrupt:
        ctx.err("ferry: interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a local file problem: say which, not where in the code
        ctx.err(f"ferry: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return 1
    finally:
        ctx.finish_progress()
        ctx.close()
    return 0
