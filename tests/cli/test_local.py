"""The CLI's local side without a server: scanning, ignore files, the hash cache, names."""

import io
import os
from pathlib import Path

import pytest
from ferry.datasets import DatasetRef
from ferry.errors import FerryError, LocalError
from ferry.local import candidates, is_ignored, scan
from ferry.progress import Progress


def test_ferryignore_wins_over_gitignore_and_git_and_ferry_are_skipped(tmp_path: Path) -> None:
    for path in ("a.txt", "b.log", "logs/x", "sub/c.log", ".git/HEAD", ".ferry/hashes.json"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)
    (tmp_path / ".gitignore").write_text("*.txt\n")
    (tmp_path / ".ferryignore").write_text("# comment\n*.log\nlogs/\n")

    found, links = candidates(tmp_path)

    assert [c.path for c in found] == [".ferryignore", ".gitignore", "a.txt"]
    assert links == []


@pytest.mark.parametrize(
    ("path", "is_dir", "pattern", "ignored"),
    [
        ("deep/x.pyc", False, "*.pyc", True),
        ("data/raw", True, "data/raw", True),
        ("other/data/raw", True, "data/raw", False),
        ("build", False, "build/", False),
        ("build", True, "build/", True),
    ],
)
def test_ignore_patterns(path: str, is_dir: bool, pattern: str, ignored: bool) -> None:
    assert is_ignored(path, is_dir, [pattern]) is ignored


def test_symlinks_inside_are_skipped_and_outside_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("x")
    (root / "inner").symlink_to(root / "d" / "f")
    (root / "dirlink").symlink_to(root / "d")

    found, links = candidates(root)

    assert [c.path for c in found] == ["d/f"]
    assert sorted(links) == ["dirlink", "inner"]
    (root / "d" / "out").symlink_to(tmp_path)
    with pytest.raises(LocalError, match="d/out is a symlink"):
        candidates(root)


def test_executables_get_mode_755_and_the_cache_is_used(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    (tmp_path / "plain").write_text("x")
    old = 1_000_000_000_000_000_000  # 2001: well outside the racy window
    os.utime(tmp_path / "plain", ns=(old, old))

    first = scan(tmp_path)
    seen: list[int] = []
    second = scan(tmp_path, on_bytes=seen.append)

    assert {f.path: f.mode for f in first.files} == {"plain": 0o644, "run.sh": 0o755}
    assert first.files == second.files
    assert sum(seen) == len("#!/bin/sh\n")  # `plain` came from the cache; `run.sh` is too new


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mnist", DatasetRef(None, "mnist")),
        ("mnist/3", DatasetRef(None, "mnist", 3)),
        ("alice/mnist", DatasetRef("alice", "mnist")),
        ("alice/mnist/12", DatasetRef("alice", "mnist", 12)),
    ],
)
def test_dataset_names(text: str, expected: DatasetRef) -> None:
    assert DatasetRef.parse(text) == expected


@pytest.mark.parametrize("text", ["", "a/b/c", "a//3", "a/b/c/4"])
def test_bad_dataset_names(text: str) -> None:
    with pytest.raises(FerryError):
        DatasetRef.parse(text)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_bytes_and_rate_on_a_terminal_only() -> None:
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        with Progress("Uploading", 2048, stream) as bar:
            bar.advance(2048)

    assert "2.0 KiB / 2.0 KiB" in terminal.getvalue()
    assert "/s" in terminal.getvalue()
    assert log.getvalue() == ""
