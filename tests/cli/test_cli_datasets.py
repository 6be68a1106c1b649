"""The `ferry` CLI end to end, in-process, against a live server on both storage backends."""

import hashlib
import json
import os
import secrets
import stat
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from blobs.storage import get_storage
from tests.cli.conftest import Ferry

pytestmark = pytest.mark.django_db(transaction=True)


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.fixture
def original() -> dict[str, bytes]:
    return {
        "train/a.csv": secrets.token_bytes(3000),
        "train/deep/b.bin": secrets.token_bytes(70_000),
        "labels.txt": b"0,1,2\n",
        "empty": b"",
    }


def test_init_upload_change_upload_list_and_clone(
    logged_in: Ferry, workdir: Path, tmp_path: Path, original: dict[str, bytes]
) -> None:
    write(workdir, original)
    (workdir / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(workdir / "run.sh", 0o755)
    (workdir / ".gitignore").write_text("*.tmp\ncache/\n")
    write(workdir, {"scratch.tmp": b"not uploaded", "cache/x": b"nor this"})

    assert logged_in("data", "init", "mnist").code == 0
    first = logged_in("data", "upload", "-m", "first")
    assert first.code == 0, first
    total = sum(map(len, original.values())) + 18 + len(b"*.tmp\ncache/\n")
    assert first.out.strip() == (
        f"Uploaded version 1 of alice/datasets/mnist (6 files, {total} bytes; sent {total} bytes)"
    )

    (workdir / "labels.txt").write_bytes(b"0,1,2,3\n")
    status = logged_in("data", "status", "--json")
    assert json.loads(status.out)["modified"] == ["labels.txt"], status
    second = logged_in("data", "upload", "-m", "more labels")
    assert second.code == 0, second
    assert "Uploaded version 2" in second.out
    assert "sent 8 bytes" in second.out  # only the changed file travelled

    versions = json.loads(logged_in("data", "versions", "mnist", "--json").out)
    assert [(v["number"], v["message"]) for v in versions] == [(2, "more labels"), (1, "first")]
    for number in (1, 2):
        listed = logged_in("data", "ls", f"mnist/{number}", "--json")
        assert listed.code == 0, listed
        names = {row["path"]: row["kind"] for row in json.loads(listed.out)}
        assert names == {
            "train": "dir", "labels.txt": "file", "empty": "file", "run.sh": "file",
            ".gitignore": "file",
        }  # fmt: skip
    inside = json.loads(logged_in("data", "ls", "alice/mnist/1", "train", "--json").out)
    assert [row["path"] for row in inside] == ["train/deep", "train/a.csv"]

    cloned = logged_in("data", "clone", "mnist/1", "-p", str(tmp_path / "v1"))
    assert cloned.code == 0, cloned
    for path, data in original.items():
        assert (tmp_path / "v1" / path).read_bytes() == data
    assert stat.S_IMODE((tmp_path / "v1" / "run.sh").stat().st_mode) == 0o755
    assert not (tmp_path / "v1" / "scratch.tmp").exists()

    got = logged_in("data", "get", "mnist/2", "labels.txt", "-o", str(tmp_path / "l.txt"))
    assert got.code == 0, got
    assert (tmp_path / "l.txt").read_bytes() == b"0,1,2,3\n"


def test_uploading_an_unchanged_directory_sends_no_bytes(
    logged_in: Ferry, workdir: Path, original: dict[str, bytes]
) -> None:
    write(workdir, original)
    logged_in("data", "init", "mnist")
    assert logged_in("data", "upload").code == 0

    again = logged_in("data", "upload", "--json")

    assert again.code == 0, again
    result = json.loads(again.out)
    assert (result["version"], result["bytes_sent"], result["unchanged"]) == (1, 0, True)
    assert [
        v["number"] for v in json.loads(logged_in("data", "versions", "mnist", "--json").out)
    ] == [1]
    cache = json.loads((workdir / ".ferry" / "hashes.json").read_text())
    for path, entry in cache.items():
        assert entry["digest"] == hashlib.sha256(original[path]).hexdigest()


def test_login_with_a_bad_token_fails_cleanly(ferry: Ferry, config_dir: Path) -> None:
    result = ferry("login", "--token", "not-a-token")

    assert result.code == 1
    assert result.err.strip().endswith("refused that token")
    assert "Traceback" not in result.err
    assert not (config_dir / "config.json").exists()


def test_login_saves_a_private_config(logged_in: Ferry, config_dir: Path) -> None:
    path = config_dir / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"]


def test_commands_without_a_login_say_so(ferry: Ferry) -> None:
    result = ferry("data", "ls", "mnist")

    assert result.code == 1
    assert "ferry login" in result.err


def test_getting_a_missing_file_fails_with_a_message(
    logged_in: Ferry, workdir: Path, original: dict[str, bytes]
) -> None:
    write(workdir, original)
    logged_in("data", "init", "mnist")
    logged_in("data", "upload")

    for path in ("nope.txt", "train/nope", "nodir/x"):
        result = logged_in("data", "get", "mnist/1", path)
        assert result.code == 1, result
        assert result.err.strip() == f"ferry: No file {path} in version 1"
    assert logged_in("data", "ls", "mnist/9").err.startswith("ferry: ")


def test_a_symlink_out_of_the_directory_is_refused(
    logged_in: Ferry, workdir: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("private")
    write(workdir, {"a": b"1"})
    (workdir / "leak").symlink_to(tmp_path / "secret")
    logged_in("data", "init", "mnist")

    result = logged_in("data", "upload")

    assert result.code == 1
    assert "leak is a symlink" in result.err
    assert "outside the directory" in result.err
    assert json.loads(logged_in("data", "versions", "mnist", "--json").out) == []


def test_delete_asks_first(logged_in: Ferry, workdir: Path) -> None:
    write(workdir, {"a": b"1"})
    logged_in("data", "init", "mnist")
    logged_in("data", "upload")

    refused = logged_in("data", "delete", "mnist/1", stdin="n\n")
    assert refused.code == 1
    assert logged_in("data", "delete", "mnist/1", stdin="y\n").code == 0
    assert logged_in("data", "delete", "mnist", "--yes").code == 0
    assert logged_in("data", "ls", "mnist").code == 1


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
    logged_in: Ferry, workdir: Path, tmp_path: Path, settings: Settings
) -> None:
    part = get_storage().min_part_size
    settings.FERRY_MULTIPART_THRESHOLD = part
    settings.FERRY_MULTIPART_PART_SIZE = part
    data = secrets.token_bytes(2 * part + 100)
    write(workdir, {"big.bin": data})
    logged_in("data", "init", "mnist")

    result = logged_in("data", "upload", "--json")

    assert result.code == 0, result
    assert json.loads(result.out)["bytes_sent"] == len(data)
    assert logged_in("data", "clone", "mnist", "-p", str(tmp_path / "back")).code == 0
    assert (tmp_path / "back" / "big.bin").read_bytes() == data
