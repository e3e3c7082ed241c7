"""Bad options, hostile path lists, outputs that fail, and memory on huge trees."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    COMMANDS,
    Command,
    assert_md5_lines,
    assert_no_traceback,
    assert_nothing_left_behind,
    check_verdicts,
    error_lines,
    make_empty_files,
    run_parhash,
    tmpfs,
    write_files,
    write_manifest,
)


@pytest.fixture(params=COMMANDS, ids=str)
def command(request: pytest.FixtureRequest) -> Command:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def lines_3000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 empty files: some 300 KB of output from each command, more than a pipe holds.

    (dupes reports them as one group of duplicates: its build adds --include-empty.)
    """
    root = tmp_path_factory.mktemp("lines") / "three-thousand-empty-files"
    make_empty_files(root, 3000)
    return root


# Bad option values: refused before any work, in one line, with status 2.

BAD_OPTIONS = [
    ["-j", "0"],
    ["-j", "-1"],
    ["--jobs=many"],
    ["--chunksize", "0"],
    ["--chunksize=-3"],
    ["--block-size", "0"],
    ["--block-size=-5"],
    ["--block-size", "1Q"],
    ["-a", "md6"],
    ["-a", "md5,nope"],
]


@pytest.mark.parametrize("bad", BAD_OPTIONS, ids=" ".join)
def test_bad_option_value_is_one_error_line_and_status_2(
    command: Command, bad: list[str], tmp_path: Path
) -> None:
    write_files(tmp_path / "t", [1, 2, 3])
    out = run_parhash(command.args(tmp_path / "t", *bad))
    assert out.status == 2, out
    assert out.stdout == b""
    assert_no_traceback(out)
    # One line saying what is wrong, then coreutils' line saying where to look.
    lines = out.stderr.splitlines()
    errors = [line for line in lines if line.startswith("parhash: ")]
    assert len(errors) == 1 and len(lines) == 2, out
    assert lines[1].startswith("Try 'parhash ") and lines[1].endswith(" for more information.")
    option, value = bad if len(bad) == 2 else bad[0].split("=")
    assert option in errors[0] and value.split(",")[-1] in errors[0], out


def test_a_hundred_thousand_jobs_are_clamped_not_forked(tmp_path: Path) -> None:
    files = write_files(tmp_path / "t", [4096] * 100, seed=7)
    out = run_parhash(
        ["scan", "-a", "md5", "-j", "100000", "--chunksize", "1", "--block-size", "1",
         tmp_path / "t"],
        timeout=60,
    )
    assert out.status == 0, out
    assert_md5_lines(out.stdout, files)
    assert 2 <= out.most_workers <= 4 * len(os.sched_getaffinity(0)), out.most_workers
    assert len(out.workers) <= 4 * len(os.sched_getaffinity(0))
    assert_nothing_left_behind(out)


# Path lists: garbage, missing, and one enormous line.


def _garbage(separator: bytes, existing: Path) -> bytes:
    data = random.Random(8).randbytes(1 << 20)
    names = data.split(separator)
    # Garbage that happened to name ".", "..", "/" or the like would walk a
    # real directory: the seed is chosen so that none does.
    assert not any(name and os.path.exists(name) for name in names)
    return data + separator + os.fsencode(existing) + separator


@pytest.mark.parametrize("option", ["--files0-from", "--files-from"])
def test_list_of_binary_garbage_reports_each_name_and_hashes_the_real_one(
    option: str, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.write_bytes(b"among the garbage")
    separator = b"\0" if option == "--files0-from" else b"\n"
    (tmp_path / "list").write_bytes(_garbage(separator, real))
    out = run_parhash(["scan", "-a", "md5", option, tmp_path / "list"], cwd=tmp_path)
    assert out.status == 1, out
    assert_md5_lines(out.stdout, [real])
    assert_no_traceback(out)
    reasons = {line.rsplit(": ", 1)[1] for line in error_lines(out)}
    assert reasons <= {
        "No such file or directory",
        "File name too long",
        "Not a directory",
        "Invalid argument",  # a name holding NUL, read from a newline list
    }, out


@pytest.mark.parametrize("option", ["--files0-from", "--files-from"])
def test_list_file_that_does_not_exist_is_one_message_and_status_1(
    option: str, tmp_path: Path
) -> None:
    out = run_parhash(["scan", "-a", "md5", option, tmp_path / "no-such-list"])
    assert out.status == 1, out
    assert out.stdout == b""
    assert_no_traceback(out)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out
    assert "cannot open" in lines[0] and str(tmp_path / "no-such-list") in lines[0], out
    assert lines[0].endswith(": No such file or directory"), out


def test_ten_megabyte_line_in_a_list_is_too_long_and_the_rest_hashed(tmp_path: Path) -> None:
    files = write_files(tmp_path / "t", [10, 20])
    a, b = map(os.fsencode, files)
    (tmp_path / "list").write_bytes(a + b"\n" + b"x" * (10 << 20) + b"\n" + b + b"\n")
    out = run_parhash(["scan", "-a", "md5", "--files-from", tmp_path / "list"], timeout=20)
    assert out.status == 1, out
    assert_md5_lines(out.stdout, files)
    # Compared as a flag: a diff of 10 MB lines would take pytest a long time.
    one_clear_message = error_lines(out) == [f"parhash: {'x' * (10 << 20)}: File name too long"]
    assert one_clear_message, [line[:100] for line in error_lines(out)]
    assert_no_traceback(out)


# Manifests that are not manifests: md5sum -c says why in one line and exits
# 1; so does check, without reading any file.


def test_manifest_of_random_bytes_has_no_checksum_line_and_status_1(tmp_path: Path) -> None:
    manifest = tmp_path / "MD5SUMS"
    manifest.write_bytes(random.Random(10).randbytes(1 << 20))
    out = run_parhash(["check", manifest], timeout=20)
    assert out.status == 1, out
    assert out.stdout == b""
    assert_no_traceback(out)
    assert out.stderr.splitlines() == [
        f"parhash: {manifest}: no properly formatted checksum lines found"
    ], out


def test_manifest_of_one_ten_megabyte_line_has_no_checksum_line_and_status_1(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "MD5SUMS"
    manifest.write_bytes(b"x" * (10 << 20) + b"\n")
    out = run_parhash(["check", manifest], timeout=20)
    assert out.status == 1, out
    assert out.stdout == b""
    assert_no_traceback(out)
    assert out.stderr.splitlines() == [
        f"parhash: {manifest}: no properly formatted checksum lines found"
    ], out


def test_checksum_line_naming_ten_megabytes_fails_as_with_md5sum_and_the_rest_checked(
    tmp_path: Path,
) -> None:
    # md5sum -c tries to open the name, which is too long for any file:
    # "FAILED open or read", "1 listed file could not be read", status 1.
    # A line that can never verify must not let the check pass.
    files = write_files(tmp_path / "t", [10, 20])
    manifest = write_manifest(tmp_path / "t")
    first, second = manifest.read_bytes().splitlines(keepends=True)
    long_line = b"d41d8cd98f00b204e9800998ecf8427e  " + b"y" * (10 << 20) + b"\n"
    manifest.write_bytes(first + long_line + second)
    out = run_parhash(["check", manifest], timeout=20)
    assert_no_traceback(out)
    verdicts = check_verdicts(out.stdout)
    for path in files:
        assert verdicts.get(os.fsencode(path)) == b"OK", out
    assert out.status == 1, out
    assert "too long" in out.stderr, out


@pytest.mark.parametrize("what", ["directory", "missing"])
def test_manifest_that_is_a_directory_or_missing_is_one_message_and_status_1(
    what: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "MD5SUMS"
    if what == "directory":
        manifest.mkdir()
        (manifest / "inside").write_bytes(b"not read")
    reason = "Is a directory" if what == "directory" else "No such file or directory"
    out = run_parhash(["check", manifest])
    assert out.status == 1, out
    assert out.stdout == b""
    assert_no_traceback(out)
    assert out.stderr.splitlines() == [f"parhash: {manifest}: {reason}"], out


# Output that goes away or fills up.


def test_closed_stdout_exits_141_quietly(command: Command, lines_3000: Path) -> None:
    out = run_parhash(command.args(lines_3000, "-j", "2"), head=1)
    assert out.status == 141, out
    assert out.stderr == "", out
    assert_nothing_left_behind(out)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A directory that fills up after about 256 KiB, and the prefix to run under.

    A tmpfs of that size where mount is allowed; otherwise a file size limit
    (RLIMIT_FSIZE, through prlimit), under which writes fail with EFBIG.
    """
    with tmpfs(tmp_path / "disk", "256k") as mounted:
        yield tmp_path / "disk", [] if mounted else ["prlimit", "--fsize=65536"]


WITH_OUTPUT = [c for c in COMMANDS if c.output_option]


@pytest.mark.parametrize("command", WITH_OUTPUT, ids=str)
def test_output_to_a_full_disk_fails_clearly_and_keeps_the_old_manifest(
    command: Command, small_disk: tuple[Path, list[str]], lines_3000: Path
) -> None:
    disk, prefix = small_disk
    manifest = disk / "MD5SUMS"
    manifest.write_bytes(b"old manifest\n")
    out = run_parhash(command.args(lines_3000, "-o", str(manifest)), prefix=prefix)
    assert out.status == 1, out
    assert_no_traceback(out)
    reason = "No space left on device" if not prefix else "File too large"
    assert error_lines(out) == [f"parhash: cannot write to '{manifest}': {reason}"], out
    assert manifest.read_bytes() == b"old manifest\n"
    assert os.listdir(disk) == ["MD5SUMS"]
    assert_nothing_left_behind(out)


@pytest.mark.parametrize("command", WITH_OUTPUT, ids=str)
def test_output_file_dev_full_fails_clearly(command: Command, lines_3000: Path) -> None:
    out = run_parhash(command.args(lines_3000, "-o", "/dev/full"))
    assert out.status == 1, out
    assert_no_traceback(out)
    assert error_lines(out) == ["parhash: cannot write to '/dev/full': No space left on device"]


def test_stdout_on_a_full_device_fails_clearly(command: Command, lines_3000: Path) -> None:
    # As `md5sum FILES > /dev/full`: a write error, said once, status 1.
    with open("/dev/full", "wb") as full:
        out = run_parhash(command.args(lines_3000), stdout=full)
    assert out.status == 1, out
    assert_no_traceback(out)
    assert error_lines(out) == ["parhash: write error: No space left on device"], out


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["scan", "--help"]], ids=" ".join)
def test_help_and_version_on_a_full_device_fail_clearly(args: list[str]) -> None:
    # As `md5sum --version > /dev/full`: one line, status 1.
    with open("/dev/full", "wb") as full:
        out = run_parhash(args, stdout=full)
    assert out.status == 1, out
    assert_no_traceback(out)
    assert error_lines(out) == ["parhash: write error: No space left on device"], out


# Memory: the walk and the pool stream, so peak RSS doesn't grow with the tree.

PEAK_RSS = """\
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(run.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss_kib(root: Path) -> int:
    """Peak RSS of parhash and its workers, the largest of them, in a fresh process."""
    out = run_parhash(
        ["scan", "-a", "md5", root], prefix=[sys.executable, "-c", PEAK_RSS], timeout=120
    )
    assert out.status == 0, out
    status, peak = map(int, out.stdout.split())
    assert status == 0, out
    return peak


def test_peak_memory_is_flat_from_twenty_to_two_hundred_thousand_files(tmp_path: Path) -> None:
    # Directories of 1,000 files, as trees usually are: what is measured is
    # the pipeline, not the listing of one enormous directory.
    with tmpfs(tmp_path / "fast", "128m", inodes=300_000):
        make_empty_files(tmp_path / "fast" / "small", 20_000, per_directory=1000)
        make_empty_files(tmp_path / "fast" / "large", 200_000, per_directory=1000)
        small = _peak_rss_kib(tmp_path / "fast" / "small")
        large = _peak_rss_kib(tmp_path / "fast" / "large")
    assert large <= 1.5 * small, (small, large)


# Patterns: a class with a reversed range, such as [z-a], matches nothing in
# git's wildmatch (and in fnmatch); the patterns follow .gitignore.


@pytest.mark.parametrize(("option", "kept"), [("--exclude", True), ("--include", False)])
def test_pattern_with_a_reversed_range_matches_nothing(
    option: str, kept: bool, tmp_path: Path
) -> None:
    files = write_files(tmp_path / "t", [1, 2, 3])
    out = run_parhash(["scan", "-a", "md5", option, "[z-a]*", tmp_path / "t"])
    assert out.status == 0, out
    assert_no_traceback(out)
    assert_md5_lines(out.stdout, files if kept else [])


def test_glob_argument_with_a_reversed_range_matches_nothing(tmp_path: Path) -> None:
    write_files(tmp_path / "t", [1, 2, 3])
    out = run_parhash(["scan", "-a", "md5", "t/[z-a]*"], cwd=tmp_path)
    assert out.status == 1, out
    assert_no_traceback(out)
    assert error_lines(out) == ["parhash: 't/[z-a]*': No such file or directory"], out
