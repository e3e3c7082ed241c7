"""A worker that makes no progress: stopped by SIGSTOP, or stuck on a dead mount.

The run warns once, naming the file; with ``--stall-timeout`` it gives the
file up (``no progress for N s, abandoned``), finishes the rest and exits 1
(``dupes``: 2, since the file could have been someone's duplicate). A file
that is read slowly but steadily is never given up.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    Running,
    assert_no_traceback,
    assert_nothing_left_behind,
    check_verdicts,
    error_lines,
    has_open,
    md5_of,
    regular_files,
    run_parhash,
    write_files,
    write_manifest,
)

SLOW = ("--block-size", "1", "--chunksize", "1", "-j", "2")
TIMEOUT = 3  # --stall-timeout: a warning after 1.5 s, given up after 3 s


def stalled_tree(root: Path) -> Path:
    """70 small files and one of 200 KiB that takes a while at one byte per read."""
    write_files(root, [i % 50 + 1 for i in range(70)], seed=1, prefix="small-")
    write_files(root, [200 << 10], seed=2, prefix="big-")
    return root / "big-000"


def signal_the_worker_reading(
    path: Path, signaled: list[int], signum: int = signal.SIGSTOP
) -> Callable[[Running], None]:
    """A ``during`` for run_parhash: send ``signum`` to the first worker seen reading ``path``."""

    def send(running: Running) -> None:
        found: list[int] = []

        def reading() -> bool:
            found[:] = [p for p in running.children() if has_open(p, path)]
            return bool(found)

        running.wait_for(reading, f"a worker reading {path.name}")
        os.kill(found[0], signum)
        signaled.append(found[0])

    return send


@pytest.mark.parametrize("command", ["scan", "check"])
def test_file_whose_worker_is_stopped_is_reported_given_up_and_the_rest_finished(
    command: str, tmp_path: Path
) -> None:
    big = stalled_tree(tmp_path / "tree")
    target = write_manifest(tmp_path / "tree") if command == "check" else tmp_path / "tree"
    args = ["scan", "-a", "md5"] if command == "scan" else ["check"]
    stopped: list[int] = []

    out = run_parhash(
        [*args, *SLOW, "--stall-timeout", str(TIMEOUT), target], timeout=60,
        during=signal_the_worker_reading(big, stopped),
    )
    assert stopped, out
    assert out.status == 1, out
    summary = ["parhash: WARNING: 1 listed file could not be read"] if command == "check" else []
    assert error_lines(out) == [
        f"parhash: {big}: no progress for {TIMEOUT / 2:g} s; still waiting",
        f"parhash: {big}: no progress for {TIMEOUT} s, abandoned",
        *summary,
    ], out
    others = [p for p in regular_files(tmp_path / "tree") if p != big and p.name != "MD5SUMS"]
    if command == "scan":
        lines = {line.split(b"  ", 1)[1]: line.split(b"  ", 1)[0].decode()
                 for line in out.stdout.splitlines()}
        assert lines == {os.fsencode(p): md5_of(p) for p in others}, out
    else:
        verdicts = check_verdicts(out.stdout)
        assert verdicts.pop(os.fsencode(big)) == b"FAILED open or read", out
        assert set(verdicts.values()) == {b"OK"} and len(verdicts) == len(others), out
    assert_no_traceback(out)
    assert_nothing_left_behind(out)  # the stopped worker was killed


def test_file_read_slowly_but_steadily_is_never_given_up(tmp_path: Path) -> None:
    # Two seconds and more of one-byte reads, against a one-second timeout:
    # the bytes keep coming, so it is progress.
    files = write_files(tmp_path, [2 << 20] + [10] * 70, seed=3)
    out = run_parhash(["scan", "-a", "md5", *SLOW, "--stall-timeout", "1", tmp_path], timeout=120)
    assert out.status == 0, out
    assert out.stderr == "", out
    assert len(out.stdout.splitlines()) == len(files)


def test_stalled_file_is_named_in_a_batch_of_many(tmp_path: Path) -> None:
    # Files travel by the hundred: the warning and the error must name the
    # file the worker is stuck on, not the first of its batch.
    big = stalled_tree(tmp_path / "tree")
    stopped: list[int] = []
    out = run_parhash(
        ["scan", "-a", "md5", "--block-size", "1", "-j", "2", "--stall-timeout", str(TIMEOUT),
         tmp_path / "tree"],
        timeout=60, during=signal_the_worker_reading(big, stopped),
    )
    assert stopped, out
    assert out.status == 1, out
    assert error_lines(out) == [
        f"parhash: {big}: no progress for {TIMEOUT / 2:g} s; still waiting",
        f"parhash: {big}: no progress for {TIMEOUT} s, abandoned",
    ], out
    assert len(out.stdout.splitlines()) == 70, out
    assert_nothing_left_behind(out)


def test_dupes_gives_up_a_file_that_stalls_every_time_and_exits_2(tmp_path: Path) -> None:
    # Enough files and bytes that dupes hands them to its pool.
    write_files(tmp_path / "tree", [i % 50 + 1 for i in range(400)], seed=4, prefix="more-")
    write_files(tmp_path / "tree", [8 << 20] * 6, seed=5, prefix="large-")
    big = stalled_tree(tmp_path / "tree")
    copy = big.with_name("big-copy")
    copy.write_bytes(big.read_bytes())
    stopped: list[int] = []

    def stop_whoever_reads_it(running: Running) -> None:
        while running.running():
            for pid in running.children():
                if pid not in stopped and has_open(pid, big):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            time.sleep(0.01)

    out = run_parhash(
        ["dupes", "--block-size", "1", "-j", "2", "--stall-timeout", str(TIMEOUT),
         tmp_path / "tree"],
        timeout=90, during=stop_whoever_reads_it,
    )
    assert stopped, out
    # 2: the file it gave up on could have been someone's duplicate.
    assert out.status == 2, out
    assert f"parhash: {big}: no progress for {TIMEOUT} s, abandoned" in error_lines(out), out
    assert f"parhash: {big}: no progress for {TIMEOUT / 2:g} s; still waiting" in error_lines(out)
    assert os.fsencode(big) not in out.stdout
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


def test_a_worker_killed_under_the_stall_watch_is_a_death_retried_not_a_stall(
    tmp_path: Path,
) -> None:
    # The other worker keeps sending results: the death must still be seen
    # as one, and its file hashed again, not given up as a stalled file.
    big = stalled_tree(tmp_path / "tree")
    write_files(tmp_path / "tree", [1000] * 3000, seed=6, prefix="zz-")
    killed: list[int] = []

    out = run_parhash(
        ["scan", "-a", "md5", *SLOW, "--stall-timeout", "1", tmp_path / "tree"], timeout=60,
        during=signal_the_worker_reading(big, killed, signal.SIGKILL),
    )
    assert killed, out
    assert out.status == 1, out  # a worker died: its files were hashed again
    assert "abandoned" not in out.stderr, out
    assert "worker process died" in out.stderr, out
    assert len(out.stdout.splitlines()) == 3071, out
    assert_nothing_left_behind(out)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_small_job_under_a_stall_timeout_is_watched_too(jobs: str, tmp_path: Path) -> None:
    # A job this small is hashed in the parhash process itself, where no one
    # could give up on it: with --stall-timeout it goes to a worker.
    big = tmp_path / "big"
    big.write_bytes(bytes(200 << 10))
    stopped: list[int] = []
    out = run_parhash(
        ["scan", "-a", "md5", "--block-size", "1", "-j", jobs, "--stall-timeout", "2",
         tmp_path],
        timeout=60, during=signal_the_worker_reading(big, stopped),
    )
    assert stopped, out
    assert out.status == 1, out
    assert error_lines(out)[-1] == f"parhash: {big}: no progress for 2 s, abandoned", out
    assert_nothing_left_behind(out)
