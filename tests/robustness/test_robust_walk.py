"""Huge directories: a million names in one directory, in bounded memory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import run_parhash, tmpfs

# Names per empty file: ext4 allows 65,000 links to one inode.
LINKS = 50_000


def make_names(directory: Path, count: int) -> None:
    """``count`` names of empty files in ``directory``, mostly links: one system call each."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(count):
            name = f"n{i:07d}"
            if i % LINKS == 0:
                source = name
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
            else:
                os.link(source, name, src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


# --- a million names in one directory, in bounded memory --------------------------

PEAK_RSS = """\
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(run.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
MILLION = 1_000_000
PEAK_LIMIT_KIB = 120 << 10


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One directory of a million names (of one empty file), on a tmpfs where allowed."""
    top = tmp_path_factory.mktemp("million")
    # tmpfs counts each link against its inodes.
    with tmpfs(top / "fast", "64m", inodes=MILLION + 1000):
        make_names(top / "fast" / "flat", MILLION)
        yield top / "fast" / "flat"


def _peak_rss_kib(args: list[str | os.PathLike[str]]) -> int:
    """Peak RSS of parhash and its workers, the largest of them, in a fresh process."""
    out = run_parhash(args, prefix=[sys.executable, "-c", PEAK_RSS], timeout=300)
    assert out.status == 0, out
    status, peak = map(int, out.stdout.split())
    assert status == 0, out
    return peak


@pytest.mark.parametrize("command", [["scan", "-a", "md5"], ["dupes"]], ids=" ".join)
def test_a_million_names_in_one_directory_are_walked_in_bounded_memory(
    command: list[str], million: Path
) -> None:
    # The listing was a list of os.DirEntry objects, sorted: 250 MB in scan,
    # 180 MB in dupes, which read it in the parent.
    peak = _peak_rss_kib([*command, "-j", "2", million])
    assert peak <= PEAK_LIMIT_KIB, f"{peak / 1024:.0f} MiB"
