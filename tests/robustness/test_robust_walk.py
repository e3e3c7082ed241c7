"""A tree that changes under the walk, huge directories, and pseudo file systems.

What the walk listed is what gets read: an entry swapped for a symlink after
the listing is reported as changed, never read through the link (the
``scan`` cases run with ``-j 1``, where each file is opened only once the one
before it is done: while a slow first file is being hashed, the walk has
listed its directory and not yet opened the next entry, so the swap always
lands between the two). ``-L`` and paths named by the caller still follow
links. A directory of a million names is listed in bounded memory. ``dupes``
skips ``/proc`` and ``/sys`` with a note instead of failing on their sizes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import (
    Outcome,
    Running,
    assert_no_traceback,
    assert_nothing_left_behind,
    dupe_groups,
    error_lines,
    gnu_lines,
    md5_of,
    run_parhash,
    tmpfs,
)

CHANGED = "changed during the walk"
PSEUDO_NOTE = (
    "skipped: files on proc, sysfs and other pseudo file systems have sizes that are not their "
    "contents"
)
# Another user's file, which a swapped link would otherwise leak into the output.
OTHER_UID = 65534
# A sparse file this large keeps the run busy for a good fraction of a second.
SLOW_SIZE = 512 << 20


@functools.cache
def _zeros_md5(size: int) -> str:
    h = hashlib.md5()
    block = bytes(1 << 20)
    for _ in range(size >> 20):
        h.update(block)
    return h.hexdigest()


def make_slow(path: Path) -> Path:
    """A sparse file of SLOW_SIZE zero bytes: cheap to make, slow to hash."""
    with open(path, "wb") as f:
        f.truncate(SLOW_SIZE)
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the tree, mode 0600, owned by another user (when run as root)."""
    path = tmp_path / "elsewhere" / "secret"
    path.parent.mkdir()
    path.write_bytes(b"another user's secret\n")
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, OTHER_UID, OTHER_UID)
    return path


def swap_for_link(entry: Path, target: Path) -> None:
    """Put a symlink to ``target`` where ``entry`` is (a file: in one rename)."""
    link = entry.with_name(entry.name + ".link")
    os.symlink(target, link)
    if entry.is_dir() and not entry.is_symlink():
        os.rename(entry, entry.with_name(entry.name + ".was"))
    os.replace(link, entry)


def swap_when_open(slow: Path, entry: Path, target: Path) -> Callable[[Running], None]:
    """What a run does while it runs: once ``slow`` is open, swap ``entry`` for a link."""

    def during(running: Running) -> None:
        running.wait_until_open(slow)
        swap_for_link(entry, target)

    return during


# --- scan: a file or a directory swapped between the listing and the read -------


def test_scan_file_swapped_for_a_link_after_the_listing_is_reported_not_read(
    tmp_path: Path, secret: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    slow = make_slow(tree / "a-slow")
    swapped = tree / "b"
    swapped.write_bytes(b"inside\n")
    out = run_parhash(
        ["scan", "-a", "md5", "-j", "1", tree],
        during=swap_when_open(slow, swapped, secret),
        timeout=120,
    )
    assert_no_traceback(out)
    assert gnu_lines(out.stdout) == {os.fsencode(slow): _zeros_md5(SLOW_SIZE)}, out
    assert error_lines(out) == [f"parhash: {swapped}: {CHANGED}"], out
    assert out.status == 1, out


@pytest.mark.parametrize("swap", ["link", "other directory"])
def test_scan_directory_swapped_after_the_listing_is_reported_not_walked(
    swap: str, tmp_path: Path, secret: Path
) -> None:
    tree = tmp_path / "tree"
    slow = tree / "a" / "slow"
    slow.parent.mkdir(parents=True)
    make_slow(slow)
    swapped = tree / "b"
    swapped.mkdir()
    (swapped / "inside").write_bytes(b"inside\n")
    elsewhere = secret.parent

    def during(running: Running) -> None:
        running.wait_until_open(slow)
        if swap == "link":
            swap_for_link(swapped, elsewhere)
        else:
            os.rename(swapped, tmp_path / "b.was")
            os.rename(elsewhere, swapped)

    out = run_parhash(["scan", "-a", "md5", "-j", "1", tree], during=during, timeout=120)
    assert_no_traceback(out)
    assert gnu_lines(out.stdout) == {os.fsencode(slow): _zeros_md5(SLOW_SIZE)}, out
    assert error_lines(out) == [f"parhash: {swapped}: {CHANGED}"], out
    assert out.status == 1, out


def test_follow_still_follows_the_links_the_walk_met_but_not_a_swapped_entry(
    tmp_path: Path, secret: Path
) -> None:
    # -L follows what was a link when the walk listed it, and only that.
    shared = tmp_path / "shared"
    (shared / "dir").mkdir(parents=True)
    (shared / "dir" / "x").write_bytes(b"behind a directory link\n")
    (shared / "file").write_bytes(b"behind a file link\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    slow = make_slow(tree / "a-slow")
    swapped = tree / "b"
    swapped.write_bytes(b"inside\n")
    (tree / "link-to-dir").symlink_to(shared / "dir")
    (tree / "link-to-file").symlink_to(shared / "file")
    out = run_parhash(
        ["scan", "-a", "md5", "-j", "1", "-L", tree],
        during=swap_when_open(slow, swapped, secret),
        timeout=120,
    )
    assert_no_traceback(out)
    assert gnu_lines(out.stdout) == {
        os.fsencode(slow): _zeros_md5(SLOW_SIZE),
        os.fsencode(tree / "link-to-dir" / "x"): md5_of(shared / "dir" / "x"),
        os.fsencode(tree / "link-to-file"): md5_of(shared / "file"),
    }, out
    assert error_lines(out) == [f"parhash: {swapped}: {CHANGED}"], out
    assert out.status == 1, out


def test_links_named_by_the_caller_are_followed_while_a_walked_swap_is_not(
    tmp_path: Path, secret: Path
) -> None:
    # As md5sum: a path on the command line or in a list is opened as named.
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "named").write_bytes(b"named on the command line\n")
    (shared / "listed").write_bytes(b"named in a list\n")
    (tmp_path / "cmdline-link").symlink_to(shared / "named")
    (tmp_path / "listed-link").symlink_to(shared / "listed")
    (tmp_path / "dir-link").symlink_to(shared)
    (tmp_path / "list").write_bytes(os.fsencode(tmp_path / "listed-link") + b"\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    slow = make_slow(tree / "a-slow")
    swapped = tree / "b"
    swapped.write_bytes(b"inside\n")
    out = run_parhash(
        ["scan", "-a", "md5", "-j", "1", "--files-from", tmp_path / "list",
         tmp_path / "cmdline-link", tmp_path / "dir-link", tree],
        during=swap_when_open(slow, swapped, secret),
        timeout=120,
    )
    assert_no_traceback(out)
    assert gnu_lines(out.stdout) == {
        os.fsencode(tmp_path / "cmdline-link"): md5_of(shared / "named"),
        os.fsencode(tmp_path / "listed-link"): md5_of(shared / "listed"),
        os.fsencode(tmp_path / "dir-link" / "named"): md5_of(shared / "named"),
        os.fsencode(tmp_path / "dir-link" / "listed"): md5_of(shared / "listed"),
        os.fsencode(slow): _zeros_md5(SLOW_SIZE),
    }, out
    assert error_lines(out) == [f"parhash: {swapped}: {CHANGED}"], out
    assert out.status == 1, out


# --- dupes: a file swapped between the listing and its stat ----------------------


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


def descriptors_on(pid: int, path: Path) -> int:
    """How many of process ``pid``'s descriptors are open on ``path``."""
    target = os.fspath(path)
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}") == target
    return count


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory where making many names is quick: a tmpfs when mount is allowed."""
    with tmpfs(tmp_path / "fast", "64m", inodes=400_000):
        yield tmp_path / "fast"


def test_dupes_file_swapped_for_a_link_after_the_listing_is_reported_not_compared(
    fast_dir: Path, secret: Path
) -> None:
    tree = fast_dir / "tree"
    # Empty names, which dupes stats and leaves out, make the time between
    # the listing and the stat of the last name: about a second.
    make_names(tree, 300_000)
    (tree / "a-inside").write_bytes(secret.read_bytes())
    swapped = tree / "zz"
    swapped.write_bytes(b"not the secret, yet\n")

    def during(running: Running) -> None:
        # The directory is read in parhash's own process (the first walk
        # task). Listing it takes two descriptors on it (scandir reads
        # through a duplicate), stat-ing what was listed one: the swap comes
        # after the listing, and while parhash is stopped, before the stat.
        running.wait_for(lambda: descriptors_on(running.pid, tree) >= 2, "the listing")
        running.wait_for(lambda: descriptors_on(running.pid, tree) == 1, "the listing's end")
        running.signal(signal.SIGSTOP)
        try:
            assert descriptors_on(running.pid, tree) == 1, "the stats ended before the swap"
            swap_for_link(swapped, secret)
        finally:
            running.signal(signal.SIGCONT)

    out = run_parhash(["dupes", "-j", "2", tree], during=during, timeout=120)
    assert_no_traceback(out)
    assert dupe_groups(out.stdout) == set(), out
    assert error_lines(out)[:-1] == [f"parhash: {swapped}: {CHANGED}"], out
    # An error that could hide a duplicate, as dupes' other errors.
    assert out.status == 2, out
    assert_nothing_left_behind(out)


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


@pytest.mark.parametrize(
    "command",
    [
        ["scan", "-a", "md5"],
        ["dupes"],
        # Every file a candidate: all of them one size, in groups of 50,000
        # names of one file. Kept as a tuple each, they took 305 MiB through
        # the stages; packed, they take some 50 bytes a file. The report
        # names 20 files: the other names of each are not kept for a format
        # that does not print them.
        ["dupes", "--include-empty"],
    ],
    ids=" ".join,
)
def test_a_million_names_in_one_directory_are_walked_in_bounded_memory(
    command: list[str], million: Path
) -> None:
    # The listing was a list of os.DirEntry objects, sorted: 250 MB in scan,
    # 180 MB in dupes, which read it in the parent.
    peak = _peak_rss_kib([*command, "-j", "2", million])
    assert peak <= PEAK_LIMIT_KIB, f"{peak / 1024:.0f} MiB"


# --- dupes and pseudo file systems ------------------------------------------------


def _skips(out: Outcome, *paths: str, empty: bool = False) -> None:
    """The note for each of ``paths`` (in dupes' order for errors: by path), then the summary.

    With ``empty``, nothing was left to compare, and a warning says so.
    """
    notes = [f"parhash: {p}: {PSEUDO_NOTE}" for p in paths]
    if empty:
        notes.append("parhash: warning: no file was compared")
    assert error_lines(out)[:-1] == notes, out


@pytest.mark.parametrize(
    ("args", "skipped"),
    [
        (["/proc/self/"], ["/proc/self"]),
        (["--include-empty", "/proc/self/"], ["/proc/self"]),
        (["--include-empty", "/proc/version", "/proc/cmdline"], ["/proc/cmdline", "/proc/version"]),
        (["/sys/module/kernel/"], ["/sys/module/kernel"]),
    ],
    ids=" ".join,
)
def test_dupes_skips_a_pseudo_file_system_with_a_note_and_exits_0(
    args: list[str], skipped: list[str]
) -> None:
    if not all(os.path.exists(p) for p in skipped):
        pytest.skip("no /proc or /sys here")
    out = run_parhash(["dupes", *args])
    assert_no_traceback(out)
    _skips(out, *skipped, empty=True)
    assert out.status == 0, out
    # A note, not an error: the summary counts nothing unreadable.
    assert out.stderr.splitlines()[-1].endswith(" reclaimable"), out


@pytest.fixture
def proc_inside(tmp_path: Path) -> Iterator[Path]:
    """A tree with a proc file system mounted in it, and a pair of duplicates beside it."""
    tree = tmp_path / "tree"
    (tree / "proc").mkdir(parents=True)
    (tree / "one").write_bytes(b"twice\n")
    (tree / "two").write_bytes(b"twice\n")
    mounted = subprocess.run(
        ["mount", "-t", "proc", "proc", str(tree / "proc")], capture_output=True, check=False
    ).returncode == 0
    if not mounted:
        pytest.skip("mount is not allowed here")
    try:
        yield tree
    finally:
        subprocess.run(["umount", "-l", str(tree / "proc")], capture_output=True, check=False)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_dupes_notes_a_pseudo_file_system_met_by_the_walk_once_and_finds_the_rest(
    jobs: str, proc_inside: Path
) -> None:
    out = run_parhash(["dupes", "--exit-code", "--include-empty", "-j", jobs, proc_inside])
    assert_no_traceback(out)
    assert dupe_groups(out.stdout) == {
        frozenset({os.fsencode(proc_inside / "one"), os.fsencode(proc_inside / "two")})
    }, out
    _skips(out, str(proc_inside / "proc"))
    assert out.status == 1, out  # duplicates found, and nothing that could hide one
