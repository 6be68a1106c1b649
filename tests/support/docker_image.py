"""The image the docker executor's tests run jobs in, built here: no registry is reachable.

A minimal Debian with python3 (``debootstrap --variant=minbase``), imported into the engine as
``ferry-test/python:bookworm``. Built once per machine: the root filesystem's tarball is kept
in ``~/.cache/ferry-test/`` (an engine started afresh imports it in seconds), and a file lock
keeps parallel test sessions from building it twice.
"""

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

TAG = "ferry-test/python:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT_S = 1200  # debootstrap downloads ~40 MB and unpacks ~100 packages


class ImageUnavailable(Exception):
    """The test image can be neither found nor built here; the message says why."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ferry-test"


def built_image() -> str:
    """The test image's tag, imported into the engine (and built first) if it is not there."""
    if _has_image():
        return TAG
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "image.lock").open("wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it: wait for it
        if not _has_image():
            _import(_tarball(cache))
    return TAG


def _has_image() -> bool:
    client = docker.from_env()
    try:
        client.images.get(TAG)
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()
    return True


def _tarball(cache: Path) -> Path:
    tarball = cache / f"python-{SUITE}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise ImageUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ImageUnavailable(f"debootstrap needs root to build {TAG}")
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache))
    try:
        _run("debootstrap", "--variant=minbase", "--include=python3", SUITE, str(root), MIRROR)
        # Lists and caches only make the image bigger; jobs install nothing with apt.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        _run("tar", "-C", str(root), "-cf", str(partial), ".")
        partial.replace(tarball)  # whole or absent: a killed build leaves no half tarball
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tarball


def _import(tarball: Path) -> None:
    repository, tag = TAG.rsplit(":", 1)
    client = docker.from_env(timeout=BUILD_TIMEOUT_S)
    try:
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    finally:
        client.close()
    if not _has_image():
        raise ImageUnavailable(f"the engine did not import {tarball} as {TAG}")


def _run(*argv: str) -> None:
    try:
        subprocess.run(argv, capture_output=True, timeout=BUILD_TIMEOUT_S, check=True)
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or b"").decode(errors="replace")[-2000:]
        raise ImageUnavailable(f"{argv[0]} failed (exit {exc.returncode}): {output}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageUnavailable(f"{argv[0]} did not run: {exc}") from exc


if __name__ == "__main__":
    # CI builds it before the tests (.ci/run), so that no test's timeout counts the build.
    print(built_image())
