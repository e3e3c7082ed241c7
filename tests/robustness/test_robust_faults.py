"""Faults during a run: dead workers, signals, files that change, vanish or can't be read.

A run is made slow without large files by reading one byte per system call
(``--block-size 1``): an 80 KiB file then takes about a tenth of a second, so
that a test can act while parhash is in the middle of it. ``--chunksize 1``
gives each file a task of its own, and more than 64 files make parhash start
its pool rather than hash in-process.

``dupes`` reads only files whose size another file has; it reads the first
64 KiB of each in one system call whatever the block size, and then, block by
block, the whole of those whose first 64 KiB another file shares. So its slow
files are larger than that, and share sizes and beginnings.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    COMMANDS,
    NO_DAC,
    Command,
    Running,
    assert_dupe_groups,
    assert_md5_lines,
    assert_no_traceback,
    assert_nothing_left_behind,
    assert_whole_records,
    error_lines,
    expected_dupe_groups,
    has_open,
    run_parhash,
    write_files,
)

SLOW = ("--block-size", "1", "--chunksize", "1", "-j", "2")
# More files than parhash hashes in-process (INLINE_MAX_FILES is 64).
POOL_FILES = 70
# Runs that would take a second or two; longer is a hang.
HANG = 15


@pytest.fixture(params=COMMANDS, ids=str)
def command(request: pytest.FixtureRequest) -> Command:
    return request.param  # type: ignore[no-any-return]


# Larger than the head `dupes` reads at once (64 KiB).
SLOW_SIZE = 80 << 10
SHARED_HEAD = random.Random(9).randbytes(64 << 10)


def slow_tree(root: Path, slow: int, tiny: int = POOL_FILES) -> dict[Path, bytes]:
    """``slow-N`` files of 80 KiB, then ``tiny-N`` files of a few bytes, in walk order.

    The slow files differ only after their first 64 KiB, and the tiny ones
    have sizes that recur: `dupes` reads every file, and the slow ones whole.
    """
    files = write_files(root, [SLOW_SIZE - len(SHARED_HEAD)] * slow, seed=1, prefix="slow-")
    for path, tail in files.items():
        files[path] = SHARED_HEAD + tail
        path.write_bytes(files[path])
    files.update(write_files(root, [i % 20 for i in range(tiny)], seed=2, prefix="tiny-"))
    return files


def duplicated_tree(root: Path, count: int) -> dict[Path, bytes]:
    """``slow-N`` files of 80 KiB, each with an identical ``copy-N``: ``count`` in all."""
    files = write_files(root, [SLOW_SIZE] * (count // 2), seed=1, prefix="slow-")
    for path, data in list(files.items()):
        copy = path.with_name(path.name.replace("slow-", "copy-"))
        copy.write_bytes(data)
        files[copy] = data
    assert len(expected_dupe_groups(files)) == count // 2
    return files


def worker_holding(running: Running, path: Path) -> int | None:
    for pid in running.children():
        if has_open(pid, path):
            return pid
    return None


# Dead workers.


def test_worker_killed_mid_file_costs_no_result_warns_and_exits_1(
    command: Command, tmp_path: Path
) -> None:
    files = slow_tree(tmp_path, slow=8)
    killed: list[int] = []

    def kill_a_busy_worker(running: Running) -> None:
        target = tmp_path / "slow-002"
        found: list[int] = []

        def busy() -> bool:
            pid = worker_holding(running, target)
            found[:] = [pid] if pid is not None else []
            return bool(found)

        running.wait_for(busy, "a worker hashing slow-002")
        os.kill(found[0], signal.SIGKILL)
        killed.append(found[0])

    out = run_parhash(command.args(tmp_path, *SLOW), during=kill_a_busy_worker, timeout=HANG)
    assert killed
    command.verify(out.stdout, files)
    assert "worker process died" in out.stderr, out
    assert out.status == command.death_status, out
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


def killer(cursed: Path, kills: list[int]) -> Callable[[Running], None]:
    """Kill, with SIGKILL, each worker seen holding ``cursed`` open; note its pid in ``kills``."""

    def kill_whoever_reads_it(running: Running) -> None:
        while running.running():
            pid = worker_holding(running, cursed)
            if pid is not None and pid not in kills:
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)
            time.sleep(0.005)

    return kill_whoever_reads_it


def test_file_whose_worker_dies_every_time_is_reported_and_the_rest_hashed(
    tmp_path: Path,
) -> None:
    files = slow_tree(tmp_path, slow=4)
    cursed = tmp_path / "slow-001"
    kills: list[int] = []

    out = run_parhash(
        ["scan", "-a", "md5", *SLOW, tmp_path], during=killer(cursed, kills), timeout=HANG
    )
    assert len(kills) == 2, out  # the first attempt, then the one retry
    assert out.status == 1, out
    del files[cursed]
    assert_md5_lines(out.stdout, files)
    assert f"parhash: {cursed}: worker process died while hashing this file" in out.stderr, out
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


def test_dupes_file_whose_worker_dies_every_time_costs_only_that_file(tmp_path: Path) -> None:
    # Four pairs of copies, all of one size: each stage sends them to a
    # worker together, and the worker that reads slow-000 is killed every
    # time. Only slow-000 may be lost; its copy is read on its own.
    files = duplicated_tree(tmp_path, 8)
    # Enough small files of recurring sizes that the work goes to a pool.
    files.update(write_files(tmp_path, [1 + i % 20 for i in range(POOL_FILES)], seed=2,
                             prefix="tiny-"))
    cursed = tmp_path / "slow-000"
    kills: list[int] = []

    out = run_parhash(
        ["dupes", "--block-size", "1", "-j", "2", tmp_path],
        during=killer(cursed, kills),
        timeout=HANG,
    )
    assert len(kills) >= 4, out  # the part twice, then the file alone twice
    assert out.status == 2, out  # a file that could not be compared could hide a duplicate
    errors = [line for line in out.stderr.splitlines() if line.startswith("parhash: /")]
    assert errors == [f"parhash: {cursed}: worker process died while hashing this file"], out
    del files[cursed], files[tmp_path / "copy-000"]
    assert_dupe_groups(out.stdout, files)
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


def idle_workers(running: Running, busy: int) -> list[int]:
    """The workers other than ``busy`` once they have been asleep for a while."""
    quiet = 0
    while quiet < 10:
        others = [p for p in running.children() if p != busy]
        states = []
        for pid in others:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    states.append(f.read().rsplit(b")", 1)[1].split()[0])
            except OSError:
                states.append(b"?")
        quiet = quiet + 1 if others and all(s == b"S" for s in states) else 0
        running.still_running("idle workers")
        time.sleep(0.02)
    return others


# Not dupes: it never opens the slow file, whose size no other file has; and
# a partner of that size would keep the other worker busy as long.
@pytest.mark.parametrize("command", [c for c in COMMANDS if c.name != "dupes"], ids=str)
def test_worker_killed_while_waiting_for_work_does_not_hang_the_run(
    command: Command, tmp_path: Path
) -> None:
    # One worker hashes a slow file while the other has finished every small
    # one and waits for a task that will never come. A worker waiting for a
    # task holds the lock of the pool's shared task queue: killing it must
    # not leave the run (or its shutdown) waiting for that lock forever.
    files = write_files(tmp_path / "t", [1 << 20] + [10] * POOL_FILES, seed=3)
    slow = next(iter(files))
    killed: list[int] = []

    def kill_the_idle_ones(running: Running) -> None:
        found: list[int] = []

        def busy() -> bool:
            pid = worker_holding(running, slow)
            found[:] = [pid] if pid is not None else []
            return bool(found)

        running.wait_for(busy, "a worker on the slow file")
        for pid in idle_workers(running, found[0]):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    out = run_parhash(command.args(tmp_path / "t", *SLOW), during=kill_the_idle_ones, timeout=HANG)
    assert killed
    assert out.status == 1, out
    command.verify(out.stdout, files)
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


def test_workers_killed_while_a_slow_file_list_arrives_do_not_hang_the_run(
    tmp_path: Path,
) -> None:
    # The list comes from a pipe, as from `find -print0`: the workers finish
    # the first names and wait for more. They are killed while they wait;
    # the names written afterwards must still be hashed. Their replacements
    # start while another thread of parhash is blocked reading that pipe.
    files = write_files(tmp_path / "t", [100] * (2 * POOL_FILES), seed=4)
    names = [os.fsencode(p) + b"\0" for p in files]
    first, rest = b"".join(names[:POOL_FILES]), b"".join(names[POOL_FILES:])

    def kill_waiting_workers_then_send_the_rest(running: Running) -> None:
        stdin = running.proc.stdin
        assert stdin is not None
        stdin.write(first)
        stdin.flush()
        running.wait_for_workers(2)
        for pid in idle_workers(running, busy=-1):
            os.kill(pid, signal.SIGKILL)
        running.wait_for_workers(2)  # the pool starts replacements
        stdin.write(rest)
        stdin.close()

    out = run_parhash(
        ["scan", "-a", "md5", "-j", "2", "--chunksize", "1", "--files0-from", "-"],
        stdin=subprocess.PIPE,
        during=kill_waiting_workers_then_send_the_rest,
        timeout=HANG,
    )
    assert out.status == 1, out
    assert_md5_lines(out.stdout, files)
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


# Signals.

SIGNALS = [
    # (signal, sent to the whole process group as a terminal or a service
    # manager does, expected status)
    pytest.param(signal.SIGINT, True, 130, id="SIGINT-group"),
    pytest.param(signal.SIGTERM, False, 143, id="SIGTERM-parent"),
    pytest.param(signal.SIGTERM, True, 143, id="SIGTERM-group"),
    # A closed terminal, and Ctrl-\: every catchable stopping signal is 128+N.
    pytest.param(signal.SIGHUP, True, 129, id="SIGHUP-group"),
    pytest.param(signal.SIGHUP, False, 129, id="SIGHUP-parent"),
    pytest.param(signal.SIGQUIT, True, 131, id="SIGQUIT-group"),
    pytest.param(signal.SIGUSR1, False, 138, id="SIGUSR1-parent"),
]


@pytest.mark.parametrize(("signum", "group", "status"), SIGNALS)
def test_signal_mid_run_exits_quietly_with_whole_records_and_no_workers(
    command: Command, signum: int, group: bool, status: int, tmp_path: Path
) -> None:
    # Duplicates, so that a dupes run that missed the signal would print.
    duplicated_tree(tmp_path / "tree", POOL_FILES)

    def interrupt_mid_run(running: Running) -> None:
        running.wait_for_workers(2)
        if command.streams:
            running.wait_for_stdout(1)
        else:  # nothing on stdout before the end: wait until it reads
            running.wait_until_open(tmp_path / "tree" / "copy-003")
        (running.signal_group if group else running.signal)(signum)

    out = run_parhash(command.args(tmp_path / "tree", *SLOW), during=interrupt_mid_run)
    assert out.status == status, out
    if command.streams:
        assert out.stdout, "the signal was meant to arrive mid-run, after some output"
    assert_whole_records(out.stdout, command.record_end)
    assert_no_traceback(out)
    assert out.stderr == "", out
    assert_nothing_left_behind(out)


@pytest.mark.parametrize(("signum", "group", "status"), SIGNALS)
@pytest.mark.parametrize("command", [c for c in COMMANDS if c.output_option], ids=str)
def test_signal_mid_run_leaves_the_existing_manifest_and_no_temporary_file(
    command: Command, signum: int, group: bool, status: int, tmp_path: Path
) -> None:
    slow_tree(tmp_path / "tree", slow=POOL_FILES, tiny=0)
    manifest = tmp_path / "out" / "MD5SUMS"
    manifest.parent.mkdir()
    manifest.write_bytes(b"old manifest\n")

    def interrupt_mid_run(running: Running) -> None:
        running.wait_for_workers(2)
        running.wait_until_open(tmp_path / "tree" / "slow-003")
        (running.signal_group if group else running.signal)(signum)

    out = run_parhash(
        command.args(tmp_path / "tree", *SLOW, "-o", str(manifest)), during=interrupt_mid_run
    )
    assert out.status == status, out
    assert manifest.read_bytes() == b"old manifest\n"
    assert os.listdir(manifest.parent) == ["MD5SUMS"]
    assert out.stdout == b""
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


# Files that change or vanish under parhash.


def _change(path: Path, how: str, stop: threading.Event) -> None:
    with open(path, "r+b") as f:
        if how == "truncate":
            f.truncate(len(f.read()) // 2)
            return
        while not stop.wait(0.01):
            if how == "append":
                f.seek(0, os.SEEK_END)
                f.write(b"more")
            else:  # rewrite in place: same size, new mtime
                f.seek(100)
                f.write(os.urandom(4))
            f.flush()


@pytest.mark.parametrize("how", ["append", "rewrite", "truncate"])
@pytest.mark.parametrize("pool", [False, True], ids=["inline", "pool"])
def test_file_changed_while_hashed_is_reported_and_never_printed(
    how: str, pool: bool, tmp_path: Path
) -> None:
    files = write_files(tmp_path / "t", [256 << 10] + [10] * (POOL_FILES if pool else 1), seed=5)
    moving = next(iter(files))
    stop = threading.Event()

    def change_it_once_open(running: Running) -> None:
        running.wait_until_open(moving)
        threading.Thread(target=_change, args=(moving, how, stop), daemon=True).start()

    try:
        out = run_parhash(["scan", "-a", "md5", *SLOW, tmp_path / "t"], during=change_it_once_open)
    finally:
        stop.set()
    assert out.status == 1, out
    assert error_lines(out) == [f"parhash: {moving}: changed while hashing"], out
    del files[moving]
    assert_md5_lines(out.stdout, files)
    assert_no_traceback(out)


def test_large_file_truncated_while_hashed_with_xxhash_is_reported_not_a_crash(
    tmp_path: Path,
) -> None:
    # Large files are mapped for the xxHash family; a mapped file that
    # shrinks under the reader raises SIGBUS on the next page it touches.
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(16 << 20)

    def truncate_once_open(running: Running) -> None:
        running.wait_until_open(big)
        os.truncate(big, 0)

    out = run_parhash(["scan", "-a", "xxh3", "--block-size", "16", big], during=truncate_once_open)
    assert out.status == 1, out
    assert error_lines(out) == [f"parhash: {big}: changed while hashing"], out
    assert out.stdout == b""
    assert_no_traceback(out)


def test_file_removed_between_walk_and_read_is_no_such_file_and_the_rest_hashed(
    tmp_path: Path,
) -> None:
    # Slow files are read one to a task, in name order: the ten ahead of
    # `victim` keep the workers busy while it is removed, after the walk has
    # listed it.
    files = slow_tree(tmp_path, slow=10)
    victim = tmp_path / "victim"
    victim.write_bytes(bytes(SLOW_SIZE))

    def remove_it_mid_run(running: Running) -> None:
        running.wait_until_open(tmp_path / "slow-000")
        victim.unlink()

    out = run_parhash(["scan", "-a", "md5", *SLOW, tmp_path], during=remove_it_mid_run)
    assert out.status == 1, out
    assert error_lines(out) == [f"parhash: {victim}: No such file or directory"], out
    assert_md5_lines(out.stdout, files)
    assert_no_traceback(out)


def test_listed_file_that_does_not_exist_is_no_such_file_and_the_rest_hashed(
    tmp_path: Path,
) -> None:
    files = write_files(tmp_path / "t", [10, 20, 30])
    listed = [*map(str, files), str(tmp_path / "gone"), str(tmp_path / "t" / "gone-too")]
    (tmp_path / "list").write_text("\n".join(sorted(listed)) + "\n")
    out = run_parhash(["scan", "-a", "md5", "--files-from", tmp_path / "list"])
    assert out.status == 1, out
    assert error_lines(out) == [
        f"parhash: {tmp_path / 'gone'}: No such file or directory",
        f"parhash: {tmp_path / 't' / 'gone-too'}: No such file or directory",
    ]
    assert_md5_lines(out.stdout, files)


# Permissions: root reads everything unless the capabilities that bypass
# permissions are dropped (NO_DAC).


@pytest.mark.parametrize("pool", [False, True], ids=["inline", "pool"])
def test_unreadable_file_and_directory_are_reported_and_the_rest_hashed(
    pool: bool, tmp_path: Path
) -> None:
    root = tmp_path / "t"
    files = write_files(root / "ok", [10] * (POOL_FILES if pool else 3), seed=6)
    secret = root / "secret.txt"
    secret.write_bytes(b"no")
    closed = root / "closed"
    closed.mkdir()
    (closed / "inside").write_bytes(b"unreachable")
    secret.chmod(0)
    closed.chmod(0)
    try:
        out = run_parhash(["scan", "-a", "md5", "-j", "2", root], prefix=NO_DAC)
    finally:
        closed.chmod(stat.S_IRWXU)
    assert out.status == 1, out
    assert sorted(error_lines(out)) == [
        f"parhash: {closed}: Permission denied",
        f"parhash: {secret}: Permission denied",
    ], out
    assert_md5_lines(out.stdout, files)
    assert_no_traceback(out)
