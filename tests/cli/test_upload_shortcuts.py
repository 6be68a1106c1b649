"""`ferry data upload` knows its tree's digest before it talks to the server: an unchanged
directory makes no version, and a directory equal to an earlier version sends no list."""

import json
import secrets
from pathlib import Path

import pytest
from ferry.local import LocalFile
from ferry.trees import tree_digest as client_tree_digest

from blobs.trees import Entry
from blobs.trees import tree_digest as server_tree_digest
from tests.cli.conftest import Ferry
from tests.cli.test_cli_datasets import write

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_client_computes_the_servers_tree_digest() -> None:
    files = [
        LocalFile("z/last.bin", 3, 0o644, "a" * 64),
        LocalFile("run.sh", 18, 0o755, "b" * 64),
        LocalFile("données/été.csv", 0, 0o644, "c" * 64),
        LocalFile("Z-upper", 1, 0o644, "d" * 64),
        LocalFile("z-dash", 1, 0o644, "e" * 64),
    ]

    entries = [Entry(f.path, f.digest, f.size, f.mode) for f in files]

    assert client_tree_digest(files) == server_tree_digest(entries)
    assert client_tree_digest(reversed(files)) == client_tree_digest(files)


def test_returning_to_an_earlier_version_sends_nothing(logged_in: Ferry, workdir: Path) -> None:
    first = {"a.bin": secrets.token_bytes(2000), "b.bin": secrets.token_bytes(100)}
    write(workdir, first)
    logged_in("data", "init", "d")
    assert logged_in("data", "upload", "-m", "one").code == 0
    write(workdir, {"a.bin": secrets.token_bytes(2000)})
    assert logged_in("data", "upload", "-m", "two").code == 0

    write(workdir, first)
    back = logged_in("data", "upload", "-m", "back to one", "--json")

    assert back.code == 0, back
    assert json.loads(back.out)["bytes_sent"] == 0
    versions = json.loads(logged_in("data", "versions", "d", "--json").out)
    assert [v["number"] for v in versions] == [3, 2, 1]
    assert versions[0]["tree"] == versions[2]["tree"]
    assert versions[0]["message"] == "back to one"


def test_an_unchanged_directory_makes_no_version(logged_in: Ferry, workdir: Path) -> None:
    write(workdir, {"a.bin": secrets.token_bytes(10)})
    logged_in("data", "init", "d")
    assert logged_in("data", "upload").code == 0

    again = logged_in("data", "upload", "-m", "nothing new")

    assert again.code == 0, again
    assert again.out.strip() == (
        "Nothing changed since version 1 of alice/datasets/d; no new version made"
    )
