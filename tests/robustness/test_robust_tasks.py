"""Faults met inside a worker's task: what it hands back, what it names, what it reads.

scan and check give a worker whole tasks (directories, parts of one, ranges
of manifest lines); each case here once lost files, read the wrong one, or
blamed the wrong one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from harness import (
    assert_no_traceback,
    error_lines,
    gnu_lines,
    md5_of,
    run_parhash,
    write_files,
)

import parhash
import parhash.walk as walk_module

# Run parhash with one system call made to hang on any name holding HANG, as
# it would on a dead network mount.
HANGING = """
import os, runpy, sys, time
real = os.{call}
def hanging(path, *args, **kwargs):
    if isinstance(path, str) and "HANG" in path and {when}:
        time.sleep(3600)
    return real(path, *args, **kwargs)
os.{call} = hanging
sys.argv = ["parhash", *sys.argv[4:]]
runpy.run_module("parhash", run_name="__main__")
"""


def hanging(tmp_path: Path, call: str, when: str = "True") -> list[str]:
    """A prefix for run_parhash: parhash with ``os.<call>`` hanging on HANG names."""
    script = tmp_path / f"hanging_{call}.py"
    script.write_text(HANGING.format(call=call, when=when))
    return [sys.executable, str(script)]


def test_follow_keeps_every_directory_that_a_full_task_hands_back(tmp_path: Path) -> None:
    # A task takes several directories and hands back those it has no room
    # for; with -L the feed took them for new ones met again, and dropped them.
    for d in range(40):
        (tmp_path / "t" / f"d{d:02d}").mkdir(parents=True)
        for i in range(600):
            (tmp_path / "t" / f"d{d:02d}" / f"f{i:03d}").write_bytes(b"%d" % (i % 7))
    plain = run_parhash(["scan", "-a", "md5", "-j", "2", tmp_path / "t"], timeout=120)
    followed = run_parhash(["scan", "-a", "md5", "-j", "2", "-L", tmp_path / "t"], timeout=120)
    assert plain.status == followed.status == 0, (plain, followed)
    assert len(gnu_lines(followed.stdout)) == 24_000
    assert gnu_lines(followed.stdout) == gnu_lines(plain.stdout)


@pytest.mark.parametrize("jobs", [1, 2])
def test_glob_match_swapped_for_a_link_after_the_walk_is_not_read(
    jobs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The glob is expanded in this process; its matches are read where the
    # work runs (here, or a worker), always below what the walk saw.
    (tmp_path / "g" / "d").mkdir(parents=True)
    (tmp_path / "g" / "d" / "a").write_bytes(b"a\n")
    (tmp_path / "g" / "d" / "x").write_bytes(b"innocent\n")
    secret = tmp_path / "secret"
    secret.write_bytes(b"TOP SECRET\n")
    expand = walk_module.walk_glob

    def swapping(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for item in expand(*args, **kwargs):  # type: ignore[arg-type]
            yield item
            if str(item).endswith("/x"):
                os.unlink(tmp_path / "g" / "d" / "x")
                os.symlink(secret, tmp_path / "g" / "d" / "x")

    monkeypatch.setattr(walk_module, "walk_glob", swapping)
    results = {r.path: r for r in parhash.scan([f"{tmp_path}/g/d/[ax]"], algos=("md5",),
                                              jobs=jobs)}
    assert results[f"{tmp_path}/g/d/a"].digests == {"md5": md5_of(tmp_path / "g" / "d" / "a")}
    swapped = results[f"{tmp_path}/g/d/x"]
    assert swapped.error == walk_module.CHANGED_DURING_WALK and not swapped.digests


def test_subdirectory_whose_lstat_hangs_is_given_up_and_its_siblings_hashed(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "t"
    (tree / "d" / "zHANG").mkdir(parents=True)
    files = write_files(tree / "d", [10, 20, 30])
    files.update(write_files(tree, [40] * 70, seed=2, prefix="top-"))
    out = run_parhash(
        ["scan", "-a", "md5", "-j", "2", "--stall-timeout", "1", tree],
        prefix=hanging(tmp_path, "stat", 'kwargs.get("dir_fd") is not None'), timeout=60,
    )
    assert_no_traceback(out)
    assert out.status == 1, out
    hung = tree / "d" / "zHANG"
    assert error_lines(out) == [
        f"parhash: {hung}: no progress for 0.5 s; still waiting",
        f"parhash: {hung}: no progress for 1 s, abandoned",
    ], out
    assert gnu_lines(out.stdout) == {os.fsencode(p): md5_of(p) for p in files}


def test_check_name_whose_resolving_hangs_under_root_is_given_up_alone(tmp_path: Path) -> None:
    root = tmp_path / "K"
    (root / "HANG").mkdir(parents=True)
    names = ["a", "b", "HANG/x", "c"]
    for name in names:
        (root / name).write_bytes(name.encode())
    manifest = tmp_path / "K.md5"
    manifest.write_text("".join(f"{md5_of(root / n)}  {n}\n" for n in names))
    out = run_parhash(
        ["check", "-j", "2", "--stall-timeout", "1", "--root", root, manifest],
        prefix=hanging(tmp_path, "lstat"), timeout=60,
    )
    assert_no_traceback(out)
    assert out.status == 1, out
    assert out.stdout == b"a: OK\nb: OK\nHANG/x: FAILED open or read\nc: OK\n", out
    assert error_lines(out) == [
        f"parhash: {root / 'HANG/x'}: no progress for 0.5 s; still waiting",
        f"parhash: {root / 'HANG/x'}: no progress for 1 s, abandoned",
        "parhash: WARNING: 1 listed file could not be read",
    ], out


def test_csv_rows_after_a_quote_left_open_past_the_limit_are_checked(tmp_path: Path) -> None:
    files = write_files(tmp_path / "t", [5] * 50)
    rows = [b"%s,5,%s,\n" % (os.fsencode(p), md5_of(p).encode()) for p in sorted(files)]
    manifest = tmp_path / "M.csv"
    manifest.write_bytes(b"path,size,md5,error\n" + rows[0] + b'"open quote,1,\n'
                         + b"aaaaaaaaaa\n" * 95_400 + b"".join(rows[1:]))
    out = run_parhash(["check", manifest], timeout=60)
    assert_no_traceback(out)
    assert out.stdout.count(b": OK\n") == 50, out
    assert out.stderr.endswith("lines are improperly formatted\n"), out
