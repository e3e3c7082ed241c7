"""``-o`` files and option values that an attacker or a typo can choose.

- Sizes far beyond any use (``--block-size 1024G``) are a usage error, never
  an allocation in every process.
- Two runs writing ``-o`` into the tree they scan never list each other's
  temporary file.
- ``-o`` never hands out privileges: a replaced file keeps its owner and
  permission bits but never its set-user-ID and set-group-ID bits, and a
  symlink that the kernel's ``protected_symlinks`` rule would not follow is
  not written through.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from harness import (
    Running,
    assert_md5_lines,
    assert_no_traceback,
    assert_nothing_left_behind,
    error_lines,
    md5_of,
    regular_files,
    run_parhash,
    write_files,
)

NOBODY = 65534


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--block-size", "1024G"],
        ["scan", "--block-size", "4G"],
        ["check", "--block-size", "1T"],
        ["dupes", "--head-size", "1024G"],
        ["dupes", "--block-size", "99999999999999999999999G"],
    ],
    ids=" ".join,
)
def test_absurd_sizes_are_a_usage_error(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"a")
    manifest = tmp_path / "SUMS"
    manifest.write_bytes(b"0cc175b9c0f1b6a831c399e269772661  a\n")
    target = manifest if args[0] == "check" else tmp_path
    out = run_parhash([*args, target], timeout=30)
    assert out.status == 2, out
    assert out.stdout == b""
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and "above the largest allowed, 64M" in lines[0], out
    assert lines[1].endswith(" --help' for more information."), out
    assert_no_traceback(out)


def test_largest_allowed_block_size_works(tmp_path: Path) -> None:
    files = write_files(tmp_path, [100, 70_000], seed=1)
    out = run_parhash(["scan", "-a", "md5", "--block-size", "64M", tmp_path], timeout=30)
    assert out.status == 0, out
    assert_md5_lines(out.stdout, files)


def test_two_runs_writing_into_the_tree_they_scan_never_list_each_others_temporary_file(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    write_files(tree, [80 << 10] * 8 + [10] * 70, seed=2)
    first = tree / "FIRST.md5"
    second = tree / "SECOND.md5"

    def second_run_while_the_first_writes(running: Running) -> None:
        # The first run is slow (one byte per read): its temporary file sits
        # in the tree while the second run walks it.
        running.wait_for(
            lambda: any(p.name.startswith(".FIRST.md5.") for p in tree.iterdir()),
            "the first run's temporary file",
        )
        other = run_parhash(["scan", "-a", "md5", "-o", second, tree], timeout=60)
        assert other.status == 0, other
        assert_no_traceback(other)

    out = run_parhash(
        ["scan", "-a", "md5", "--block-size", "1", "-j", "2", "-o", first, tree],
        timeout=120, during=second_run_while_the_first_writes,
    )
    assert out.status == 0, out
    listed = second.read_bytes()
    assert b".FIRST.md5." not in listed, listed
    assert b"SECOND" not in first.read_bytes()
    assert sorted(os.listdir(tree)).count("FIRST.md5") == 1
    assert not [n for n in os.listdir(tree) if n.startswith(".")], os.listdir(tree)
    if shutil.which("md5sum") is None:
        pytest.fail("md5sum (coreutils) is needed to verify the manifests")
    for manifest in (first, second):
        check = subprocess.run(["md5sum", "-c", "--quiet", manifest], capture_output=True)
        assert check.returncode == 0, (manifest, check.stdout, check.stderr)
    # Each lists every file of the tree but the manifests being written.
    expected = {p for p in regular_files(tree) if p.suffix != ".md5"}
    assert {tree / line.split(b"  ", 1)[1].decode().removeprefix(f"{tree}/")
            for line in listed.splitlines()} >= expected


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree of one file, ``a``, to write manifests of."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a").write_bytes(b"a")
    return tmp_path / "tree"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as another user")
def test_replacing_a_set_uid_file_keeps_its_owner_and_mode_but_not_the_set_id_bits(
    tree: Path,
    tmp_path: Path,
) -> None:
    program = tmp_path / "program"
    program.write_bytes(b"\x7fELF not really")
    os.chown(program, NOBODY, NOBODY)
    os.chmod(program, 0o6777)

    out = run_parhash(["scan", "-a", "md5", "-o", program, tree], timeout=30)
    assert out.status == 0, out
    st = os.stat(program)
    assert stat.S_IMODE(st.st_mode) == 0o777, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    assert program.read_bytes().endswith(b"/tree/a\n")


@pytest.fixture
def sticky_dir(tmp_path: Path) -> Path:
    """A directory like /tmp: world-writable and sticky, owned by root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to plant a link owned by another user")
    os.chmod(tmp_path, 0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    return shared


def test_symlink_planted_by_another_user_in_a_sticky_directory_is_not_written_through(
    tree: Path, sticky_dir: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    trap = sticky_dir / "MD5SUMS"
    trap.symlink_to(victim)
    os.lchown(trap, NOBODY, NOBODY)

    out = run_parhash(["scan", "-a", "md5", "-o", trap, tree], timeout=30)
    assert out.status == 1, out
    assert victim.read_bytes() == b"precious\n"
    assert trap.is_symlink()
    assert error_lines(out) == [
        f"parhash: cannot write to '{trap}': Permission denied (a symlink owned by another user "
        "in a sticky world-writable directory)"
    ], out
    assert os.listdir(sticky_dir) == ["MD5SUMS"]
    assert_no_traceback(out)


def test_symlink_of_the_running_user_in_a_sticky_directory_is_written_through(
    tree: Path, sticky_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "real"
    target.write_bytes(b"old\n")
    link = sticky_dir / "MD5SUMS"
    link.symlink_to(target)

    out = run_parhash(["scan", "-a", "md5", "-o", link, tree], timeout=30)
    assert out.status == 0, out
    assert link.is_symlink()
    assert target.read_bytes().endswith(b"/tree/a\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant a link owned by another user")
def test_symlink_to_a_device_planted_in_a_sticky_directory_is_not_opened(
    tree: Path, sticky_dir: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for writing would wait for a reader
    trap = sticky_dir / "out"
    trap.symlink_to(fifo)
    os.lchown(trap, NOBODY, NOBODY)
    started = time.monotonic()
    out = run_parhash(["scan", "-a", "md5", "-o", trap, tree], timeout=30)
    assert out.status == 1, (out, time.monotonic() - started)
    assert "Permission denied" in out.stderr, out
    assert_nothing_left_behind(out)


@pytest.mark.parametrize("kind", ["fifo", "file"])
def test_fifo_or_file_planted_by_another_user_in_a_sticky_directory_is_not_written(
    kind: str, sticky_dir: Path, tree: Path
) -> None:
    planted = sticky_dir / "MD5SUMS"
    if kind == "fifo":
        os.mkfifo(planted)  # root's manifest would go to whoever reads it
    else:
        planted.write_bytes(b"theirs\n")  # replaced, root's manifest would be theirs
    os.chown(planted, NOBODY, NOBODY)
    out = run_parhash(["scan", "-a", "md5", "-o", planted, tree], timeout=30)
    assert out.status == 1, out
    assert error_lines(out) == [
        f"parhash: cannot write to '{planted}': Permission denied (owned by another user in a "
        "sticky world-writable directory)"
    ], out
    assert os.stat(planted).st_uid == NOBODY
    if kind == "file":
        assert planted.read_bytes() == b"theirs\n"
    assert_nothing_left_behind(out)


def test_output_to_dev_stdout_into_a_pipe_is_written_in_place(tree: Path) -> None:
    out = run_parhash(["scan", "-a", "md5", "-o", "/dev/stdout", tree], timeout=30)
    assert out.status == 0, out
    assert out.stdout == f"{md5_of(tree / 'a')}  {tree}/a\n".encode()
