"""Hostile trees: huge and deep directories, loops, special files, odd names and sizes."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    ENV,
    Outcome,
    assert_no_traceback,
    assert_nothing_left_behind,
    dupe_groups,
    error_lines,
    gnu_lines,
    make_empty_files,
    md5_of,
    run_parhash,
    tmpfs,
)

EMPTY_MD5 = md5_of(os.devnull)
# Linux's limit on a path handed to a system call, terminating NUL included.
PATH_MAX = os.pathconf("/", "PC_PATH_MAX")


def reference(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: run `make test`, which installs it")
    return found


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory where creating many files is quick: a tmpfs when mount is allowed."""
    with tmpfs(tmp_path / "fast", "64m", inodes=400_000):
        yield tmp_path / "fast"


def test_hundred_thousand_entries_in_one_directory_are_all_hashed(fast_dir: Path) -> None:
    make_empty_files(fast_dir / "flat", 100_000)
    out = run_parhash(["scan", "-a", "md5", "-j", "2", fast_dir / "flat"], timeout=120)
    assert out.status == 0, out
    printed = gnu_lines(out.stdout)
    assert len(printed) == 100_000
    assert set(printed.values()) == {EMPTY_MD5}
    assert out.stderr == ""
    assert_nothing_left_behind(out)


def _descend(top: Path, names: list[str], file_every: int = 1) -> list[bytes]:
    """Directories ``names`` nested in ``top``, made through descriptors (no path limit).

    Every ``file_every``-th level holds a file ``f`` whose content is its
    depth; returns the path of each such file.
    """
    files = []
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    path = os.fsencode(top)
    try:
        for depth, name in enumerate(names, 1):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            path += b"/" + os.fsencode(name)
            if depth % file_every == 0:
                f = os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
                os.write(f, b"%d" % depth)
                os.close(f)
                files.append(path + b"/f")
    finally:
        os.close(fd)
    return files


def _remove_chain(top: Path, name: str) -> None:
    """Remove ``top/name/name/...`` bottom up, each file ``f`` included.

    shutil.rmtree, and so pytest's clean-up of old temporary directories,
    recurses once per level and fails on a thousand.
    """
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        while name in os.listdir(fds[-1]):
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        while len(fds) > 1:
            with contextlib.suppress(FileNotFoundError):
                os.unlink("f", dir_fd=fds[-1])
            os.close(fds.pop())
            os.rmdir(name, dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)


def test_nesting_a_thousand_levels_deep_is_walked_without_a_recursion_limit(
    tmp_path: Path,
) -> None:
    try:
        files = _descend(tmp_path, ["d"] * 1000, file_every=100)
        out = run_parhash(["scan", "-a", "md5", tmp_path / "d"])
        assert out.status == 0, out
        # Every path is under PATH_MAX, so this process can read them too.
        assert gnu_lines(out.stdout) == {f: md5_of(f) for f in files}
        assert_no_traceback(out)
    finally:
        _remove_chain(tmp_path, "d")


def test_path_longer_than_path_max_is_reported_and_the_rest_hashed(tmp_path: Path) -> None:
    # 200-byte names: about the 20th level crosses PATH_MAX. What lies below
    # can only be reached relative to a parent's descriptor, and no manifest
    # line could name it for md5sum; the walk reports the first path too long
    # (a directory it can't list, or a file it can't open) and goes on.
    names = [f"{i:03d}".ljust(200, "d") for i in range(24)]
    files = _descend(tmp_path, names)
    try:
        out = run_parhash(["scan", "-a", "md5", tmp_path / names[0]], timeout=30)
        hashed = [f for f in files if len(f) < PATH_MAX]
        first_too_long = files[len(hashed)]
        directory = os.path.dirname(first_too_long)
        if len(directory) >= PATH_MAX:
            first_too_long = directory
        assert out.status == 1, out
        assert gnu_lines(out.stdout) == {f: md5_of(f) for f in hashed}
        assert error_lines(out) == [
            f"parhash: {os.fsdecode(first_too_long)}: {os.strerror(errno.ENAMETOOLONG)}"
        ], out
        assert_no_traceback(out)
    finally:
        shutil.rmtree(tmp_path / names[0])


@pytest.fixture
def loops(tmp_path: Path) -> Path:
    """Files, a link back to an ancestor, a link to itself, two links to each other."""
    root = tmp_path / "loops"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f").write_bytes(b"f")
    (root / "a" / "b" / "g").write_bytes(b"g")
    os.symlink("../..", root / "a" / "b" / "up")
    os.symlink("self", root / "self")
    os.symlink("y", root / "x")
    os.symlink("x", root / "y")
    os.symlink("a", root / "alias")
    return root


def test_symlink_loops_are_skipped_without_follow(loops: Path) -> None:
    out = run_parhash(["scan", "-a", "md5", loops], timeout=30)
    assert out.status == 0, out
    assert gnu_lines(out.stdout) == {
        os.fsencode(loops / "a" / "f"): md5_of(loops / "a" / "f"),
        os.fsencode(loops / "a" / "b" / "g"): md5_of(loops / "a" / "b" / "g"),
    }
    assert out.stderr == ""


def test_symlink_loops_are_reported_with_follow_and_each_file_hashed_once(loops: Path) -> None:
    out = run_parhash(["scan", "-a", "md5", "-L", loops], timeout=30)
    assert out.status == 1, out
    assert gnu_lines(out.stdout) == {
        os.fsencode(loops / "a" / "f"): md5_of(loops / "a" / "f"),
        os.fsencode(loops / "a" / "b" / "g"): md5_of(loops / "a" / "b" / "g"),
    }
    assert sorted(error_lines(out)) == sorted(
        [
            f"parhash: {loops}/a/b/up: File system loop detected",
            f"parhash: {loops}/self: {os.strerror(errno.ELOOP)}",
            f"parhash: {loops}/x: {os.strerror(errno.ELOOP)}",
            f"parhash: {loops}/y: {os.strerror(errno.ELOOP)}",
        ]
    ), out
    assert_no_traceback(out)


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[Path]:
    """A FIFO, a listening socket and a device that reads zeros forever, beside a file.

    A reader that opened them would wait forever on the FIFO (nobody writes
    to it), fail on the socket, and never reach the end of the device.
    """
    root = tmp_path / "specials"
    root.mkdir()
    (root / "file").write_bytes(b"regular")
    os.mkfifo(root / "fifo")
    try:
        os.mknod(root / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(root / "sock"))
    sock.listen()
    for name in ("fifo", "zero", "sock"):
        os.symlink(name, root / f"link-to-{name}")
    try:
        yield root
    finally:
        sock.close()


@pytest.mark.parametrize("follow", [[], ["-L"]], ids=["walk", "walk-follow"])
def test_fifo_socket_and_device_met_by_the_walk_are_skipped_unopened(
    follow: list[str], specials: Path
) -> None:
    out = run_parhash(["scan", "-a", "md5", *follow, specials], timeout=30)
    assert out.status == 0, out
    assert gnu_lines(out.stdout) == {os.fsencode(specials / "file"): md5_of(specials / "file")}
    assert out.stderr == ""


def test_fifo_socket_and_device_in_a_list_are_errors_not_hangs(
    specials: Path, tmp_path: Path
) -> None:
    # A list is what find printed: a FIFO in it is reported, never opened.
    # (Named as arguments they are read as md5sum reads them: test_scan_special.py.)
    names = ["fifo", "zero", "sock", "link-to-fifo", "link-to-zero", "link-to-sock"]
    paths = [str(specials / n) for n in names]
    (tmp_path / "list").write_text("\n".join(paths) + "\n")
    args = ["--files-from", str(tmp_path / "list")]
    out = run_parhash(["scan", "-a", "md5", *args, specials / "file"], timeout=30)
    assert out.status == 1, out
    assert gnu_lines(out.stdout) == {os.fsencode(specials / "file"): md5_of(specials / "file")}
    assert sorted(error_lines(out)) == sorted(f"parhash: {p}: not a regular file" for p in paths)
    assert_no_traceback(out)


# dupes on the same trees: each file once, no hang, and the policy of its
# help: errors that can't hide a duplicate (a link loop under -L, a FIFO,
# socket or device) are reported and leave the status 0.

DUPES_SUMMARY = re.compile(r"parhash: \d+ groups? of duplicates, ")


def dupes_errors(out: Outcome) -> list[str]:
    """The error lines of a dupes run, after checking that its summary ends stderr."""
    lines = error_lines(out)
    assert lines and DUPES_SUMMARY.match(lines[-1]), out
    assert out.stderr.endswith(lines[-1] + "\n"), out
    return lines[:-1]


def group(*paths: Path) -> frozenset[bytes]:
    return frozenset(map(os.fsencode, paths))


@pytest.mark.parametrize("follow", [[], ["-L"]], ids=["walk", "walk-follow"])
def test_dupes_in_symlink_loops_finds_each_file_once(follow: list[str], loops: Path) -> None:
    (loops / "a" / "b" / "same-as-f").write_bytes(b"f")
    out = run_parhash(["dupes", *follow, loops], timeout=30)
    assert_no_traceback(out)
    assert dupe_groups(out.stdout) == {group(loops / "a" / "b" / "same-as-f", loops / "a" / "f")}
    if not follow:
        assert dupes_errors(out) == [], out
    else:
        assert sorted(dupes_errors(out)) == sorted(
            [
                f"parhash: {loops}/a/b/up: File system loop detected",
                f"parhash: {loops}/self: {os.strerror(errno.ELOOP)}",
                f"parhash: {loops}/x: {os.strerror(errno.ELOOP)}",
                f"parhash: {loops}/y: {os.strerror(errno.ELOOP)}",
            ]
        ), out
    # A loop names no file: it can hide no duplicate, and the status says so.
    assert out.status == 0, out
    assert_nothing_left_behind(out)


@pytest.mark.parametrize("follow", [[], ["-L"]], ids=["walk", "walk-follow"])
def test_dupes_skips_fifo_socket_and_device_met_by_the_walk_unopened(
    follow: list[str], specials: Path
) -> None:
    # With --include-empty, a FIFO, socket and device taken for files would
    # be a group of three of size 0, and be opened: the FIFO would hang.
    (specials / "copy").write_bytes(b"regular")
    out = run_parhash(["dupes", "--include-empty", *follow, specials], timeout=30)
    assert out.status == 0, out
    assert dupe_groups(out.stdout) == {group(specials / "copy", specials / "file")}
    assert dupes_errors(out) == [], out
    assert_no_traceback(out)


def test_dupes_reports_fifo_socket_and_device_named_directly_and_goes_on(
    specials: Path,
) -> None:
    (specials / "copy").write_bytes(b"regular")
    names = ["fifo", "zero", "sock", "link-to-fifo", "link-to-zero", "link-to-sock"]
    paths = [specials / n for n in names]
    out = run_parhash(
        ["dupes", "--include-empty", *paths, specials / "file", specials / "copy"], timeout=30
    )
    assert out.status == 0, out
    assert dupe_groups(out.stdout) == {group(specials / "copy", specials / "file")}
    assert sorted(dupes_errors(out)) == sorted(f"parhash: {p}: not a regular file" for p in paths)
    assert_no_traceback(out)


def _sparse_beyond_4_gib(path: Path) -> None:
    """4 GiB + 4099 bytes, nearly all a hole; data at the start, across the
    4 GiB boundary and at the end, so that a 32-bit offset or length anywhere
    would change the digest."""
    size = (4 << 30) + 4099
    with open(path, "wb") as f:
        for offset in (0, (4 << 30) - 2, size - 5):
            f.seek(offset)
            f.write(b"\x01\x02\x03\x04\x05")
    assert os.stat(path).st_blocks * 512 < 1 << 20  # no real disk use


def test_sparse_file_larger_than_4_gib_matches_md5sum(tmp_path: Path) -> None:
    md5sum = reference("md5sum")
    big = tmp_path / "sparse"
    _sparse_beyond_4_gib(big)
    try:
        # md5sum reads the same 4 GiB meanwhile, on the other CPU.
        coreutils = subprocess.Popen([md5sum, big], stdout=subprocess.PIPE, env=ENV)
        out = run_parhash(["scan", "-a", "md5", big], timeout=120)
        expected, _ = coreutils.communicate(timeout=120)
        assert out.status == 0, out
        assert out.stdout == expected
    finally:
        big.unlink()


def test_sparse_file_larger_than_4_gib_matches_xxhsum(tmp_path: Path) -> None:
    # The xxHash family may map large files rather than read them: offsets
    # past 4 GiB then go through the mapping.
    xxhsum = reference("xxhsum")
    big = tmp_path / "sparse"
    _sparse_beyond_4_gib(big)
    try:
        expected = subprocess.run(
            [xxhsum, "-H2", big], capture_output=True, env=ENV, check=True, timeout=120
        ).stdout
        out = run_parhash(["scan", "-a", "xxh128", big], timeout=120)
        assert out.status == 0, out
        assert out.stdout == expected
    finally:
        big.unlink()


def _byte_names() -> list[bytes]:
    # One name per byte value; "." is the directory itself, so that byte
    # stands in a name of its own, "...".
    names = [bytes([b]) for b in range(1, 256) if b not in (ord("/"), ord("."))]
    names.append(b"...")
    names.append(bytes(b for b in range(1, 256) if b != ord("/")))
    return names


def test_names_with_every_byte_but_slash_pass_md5sum_check(tmp_path: Path) -> None:
    md5sum = reference("md5sum")
    root = tmp_path / "bytes"
    root.mkdir()
    broot = os.fsencode(root)
    for i, name in enumerate(_byte_names()):
        with open(os.path.join(broot, name), "wb") as f:
            f.write(b"%d" % i)
    out = run_parhash(["scan", "-a", "md5", "."], cwd=root)
    assert out.status == 0, out
    assert out.stderr == ""
    manifest = tmp_path / "MD5SUMS"
    manifest.write_bytes(out.stdout)
    assert len(out.stdout.splitlines()) == len(_byte_names())  # escaped: one line each
    check = subprocess.run(
        [md5sum, "--check", "--strict", manifest],
        cwd=root,
        capture_output=True,
        env=ENV,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.count(b": OK\n") == len(_byte_names())


def test_empty_directory_prints_nothing_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "tree" / "hollow" / "inside").mkdir(parents=True)
    (tmp_path / "tree" / "file").write_bytes(b"x")
    out = run_parhash(["scan", "-a", "md5", tmp_path / "empty"])
    # Nothing to hash is no error, but worth a word: a CI job may be
    # pointed at the wrong directory.
    assert (out.status, out.stdout, out.stderr) == (
        0, b"", "parhash: warning: no file was hashed\n"), out
    out = run_parhash(["scan", "-a", "md5", tmp_path / "tree"])
    assert out.status == 0, out
    file = tmp_path / "tree" / "file"
    assert gnu_lines(out.stdout) == {os.fsencode(file): md5_of(file)}
    assert out.stderr == ""


def test_file_named_twice_is_hashed_and_printed_twice_as_md5sum_does(tmp_path: Path) -> None:
    # Each argument is hashed as given, like md5sum: a file named twice, or
    # named and also inside a directory named, gets a line per mention.
    md5sum = reference("md5sum")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_bytes(b"twice")
    out = run_parhash(["scan", "-a", "md5", "-j", "1", "dir/f", "dir/f"], cwd=tmp_path)
    expected = subprocess.run(
        [md5sum, "dir/f", "dir/f"], cwd=tmp_path, capture_output=True, env=ENV, check=True
    ).stdout
    assert out.status == 0, out
    assert out.stdout == expected
    out = run_parhash(["scan", "-a", "md5", "-j", "1", "dir", "dir/f"], cwd=tmp_path)
    assert out.status == 0, out
    assert out.stdout == expected
