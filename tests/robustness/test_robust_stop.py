"""Stopping a run whatever it is doing: blocked output, a killed parent, start-up.

A signal must end ``scan``, ``check`` and ``dupes`` within about a second,
with status 128+N, no traceback and no process left behind, even when
standard output is a pipe that no one reads, or ``-o`` names a FIFO that no
one opens: output that can't be written at once is dropped, never flushed
into the stuck reader. A worker must not outlive a parent killed outright.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    COMMANDS,
    PARHASH,
    Command,
    Running,
    assert_no_traceback,
    assert_nothing_left_behind,
    run_parhash,
    write_files,
)

# Well within the harness's timeout, and far beyond a clean stop's fraction
# of a second: a run still going after this long is one that hangs.
HANG = 20


@pytest.fixture(scope="module")
def tree_3000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 files of 2 KB: more output than a pipe holds, some of it duplicated."""
    root = tmp_path_factory.mktemp("tree")
    files = write_files(root, [2000] * 2500, seed=5, prefix="f-")
    for i, (path, data) in enumerate(files.items()):
        if i < 500:
            path.with_name(f"copy-{i:04d}").write_bytes(data)
    return root


def _pipe_held(fd: int) -> int:
    """Bytes waiting in the pipe whose read end is ``fd``."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


def signal_once_blocked(read_end: int, signum: int) -> Callable[[Running], None]:
    """A ``during`` that sends ``signum`` once the pipe or FIFO read at ``read_end`` is full.

    It holds 64 KiB on Linux, and parhash has more to write: it is blocked
    in write().
    """

    def send(running: Running) -> None:
        running.wait_for(lambda: _pipe_held(read_end) >= 60_000, "a full pipe")
        time.sleep(0.3)
        running.signal(signum)

    return send


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.streams], ids=str)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_while_stdout_is_a_full_pipe_ends_the_run_at_once(
    command: Command, signum: int, tree_3000: Path
) -> None:
    read_end, write_end = os.pipe()
    try:
        with open(write_end, "wb", closefd=True) as stdout:
            out = run_parhash(
                command.args(tree_3000, "-j", "2"), stdout=stdout, timeout=HANG,
                during=signal_once_blocked(read_end, signum),
            )
    finally:
        os.close(read_end)
    assert out.status == 128 + signum, out
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_output_file_is_a_fifo_no_one_reads_ends_the_run(
    signum: int, tree_3000: Path, tmp_path: Path
) -> None:
    # As a file on a stuck mount: it opens, then a write blocks. (A FIFO is
    # written in place, not through a temporary file.)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        out = run_parhash(
            ["scan", "-a", "md5", "-j", "2", "-o", fifo, tree_3000], timeout=HANG,
            during=signal_once_blocked(reader, signum),
        )
    finally:
        os.close(reader)
    assert out.status == 128 + signum, out
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_workers_die_with_a_parent_killed_outright(command: Command, tmp_path: Path) -> None:
    files = write_files(tmp_path / "tree", [80 << 10] * 70, seed=3, prefix="slow-")
    for path, data in list(files.items()):
        path.with_name(path.name.replace("slow-", "copy-")).write_bytes(data)
    replaced: list[int] = []

    def kill_a_worker_then_the_parent(running: Running) -> None:
        first = running.wait_for_workers(2)
        # A replacement worker is started by the pool's own thread, not the
        # main one: it too must die with the parent.
        os.kill(first[0], signal.SIGKILL)
        running.wait_for(
            lambda: any(p not in first for p in running.children()), "a replacement worker"
        )
        replaced.extend(p for p in running.children() if p not in first)
        running.signal(signal.SIGKILL)

    out = run_parhash(
        command.args(tmp_path / "tree", "--block-size", "1", "--chunksize", "1", "-j", "2"),
        timeout=HANG, during=kill_a_worker_then_the_parent,
    )
    assert out.status == -signal.SIGKILL, out
    assert replaced, out
    assert_nothing_left_behind(out)


def _in_python_start_up(err: bytes) -> bool:
    """Whether Python reported a Ctrl-C that came before parhash's first line.

    The interpreter imports its site packages, then runpy or the console
    script finds the ``parhash`` package, with Python's own SIGINT handler in
    place: no code of parhash's has run, and Python reports the interruption
    itself (README says so): "Fatal Python error: init_import_site", "Could
    not import runpy module", or a KeyboardInterrupt traceback. A frame in
    parhash's own files means parhash let it through.
    """
    frames = [line for line in err.splitlines() if line.strip().startswith(b"File ")]
    return b"KeyboardInterrupt" in err and not any(b"/parhash/" in line for line in frames)


def test_ctrl_c_at_any_moment_of_start_up_exits_130_quietly(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env.update(LC_ALL="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
    statuses = set()
    # From before the interpreter is up to well after the command started.
    for delay_ms in range(0, 160, 4):
        proc = subprocess.Popen(
            [*PARHASH, "scan", "--block-size", "1", str(tmp_path / "a")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(delay_ms / 1000)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=HANG)
        statuses.add(proc.returncode)
        if proc.returncode == 0:
            continue  # done before the signal came
        if _in_python_start_up(err):
            continue
        # -SIGINT: the signal came before Python had set up its handler, and
        # killed it as it would any program (a shell shows 130).
        assert proc.returncode in (130, -signal.SIGINT), (delay_ms, proc.returncode, err)
        assert err == b"", (delay_ms, err)
    assert 130 in statuses, statuses


@pytest.mark.parametrize(("command", "status"), [("scan", 1), ("dupes", 2)])
def test_giving_up_on_workers_that_keep_dying_has_the_error_status(
    command: str, status: int, tmp_path: Path
) -> None:
    files = write_files(tmp_path, [80 << 10] * 70, seed=4, prefix="slow-")
    for path, data in list(files.items()):
        path.with_name(path.name.replace("slow-", "copy-")).write_bytes(data)

    def kill_every_worker(running: Running) -> None:
        while running.running():
            for pid in running.children():
                try:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                            continue
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    out = run_parhash(
        [command, "--block-size", "1", "--chunksize", "1", "-j", "2", tmp_path],
        timeout=60, during=kill_every_worker,
    )
    # dupes' 1 means "duplicates found" to --exit-code: a search it gave up
    # on must not look like one.
    assert out.status == status, out
    assert "worker processes died; giving up" in out.stderr, out
    assert_no_traceback(out)
    assert_nothing_left_behind(out)


def test_signal_in_a_callback_whose_exceptions_python_drops_still_stops_quietly() -> None:
    # A weakref's callback (importlib runs them as a module finishes loading):
    # Python prints "Exception ignored" for what a handler raises there, and
    # goes on. The handler's stop must not be lost, nor that line printed.
    code = (
        "import os, signal, time, weakref\n"
        "from parhash.console import install_signal_handlers\n"
        "install_signal_handlers()\n"
        "class A: pass\n"
        "a = A()\n"
        "def callback(ref):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.5)\n"
        "ref = weakref.ref(a, callback)\n"
        "del a\n"
        "time.sleep(2)\n"
        "print('went on')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=HANG)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, b"", b"")
