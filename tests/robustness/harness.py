"""Run the real ``parhash`` in a subprocess and see what it did and left behind.

Every robustness case goes through :func:`run_parhash`: the CLI as a user runs
it (``python -m parhash``), with a timeout, returning stdout as bytes, stderr
as text, the exit status, the worker processes seen while it ran and those
still alive after it exited. A hang is a test failure, never a stuck suite:
on timeout the whole process group is killed.

The cases that hold for every command take a ``command`` from
:data:`COMMANDS`, so that ``check`` and ``dupes`` join them by adding an
entry there (see :class:`Command`).

This is not a ``conftest.py``: a second one below ``tests/`` would shadow the
``conftest`` module that the tests above import by name. For the same reason
(pytest's default import mode keys modules by file name) the test modules
here are named ``test_robust_*``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

PARHASH = [sys.executable, "-m", "parhash"]
# One locale for every run, so that quoting of names in messages is stable.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
ENV.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
# Root reads everything; this keeps uid 0 but drops the capabilities that
# bypass file permissions, so that mode 000 means unreadable again. (Not
# another user: the interpreter may live in root's home, mode 0700.)
NO_DAC = (
    ("setpriv", "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
)

# How long processes of the run may take to disappear after it exited
# before they count as left behind.
GRACE_SECONDS = 2.0
POLL_SECONDS = 0.02


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes() -> Iterator[tuple[int, list[bytes]]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] != b"Z":
                yield int(entry), fields


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    return [p for p, fields in _processes() if int(fields[1]) == pid]


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the run's own session, see run_parhash)."""
    return [p for p, fields in _processes() if int(fields[3]) == sid and p != sid]


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def has_open(pid: int, path: os.PathLike[str] | str) -> bool:
    """True when process ``pid`` holds ``path`` open (or mapped)."""
    target = os.fspath(path)
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
    with contextlib.suppress(OSError), open(f"/proc/{pid}/maps", "rb") as f:
        return os.fsencode(target) in f.read()
    return False


@dataclass(repr=False)
class Outcome:
    """What one run of parhash did."""

    args: list[str]
    status: int  # as Popen gives it: negative when killed by a signal
    stdout: bytes
    stderr: str
    pid: int
    workers: set[int] = field(default_factory=set)  # children seen while it ran
    most_workers: int = 0  # children alive at once, at most
    left_behind: list[int] = field(default_factory=list)  # alive after it exited

    def __repr__(self) -> str:
        return (
            f"parhash {' '.join(self.args)}\n-> status {self.status}\n"
            f"stderr:\n{self.stderr[-3000:]}\nstdout (end): {self.stdout[-300:]!r}"
        )


class Running:
    """A parhash process as the ``during`` callback of :func:`run_parhash` sees it."""

    def __init__(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.deadline = deadline
        self.stdout = bytearray()  # grows while parhash runs
        self.stderr = bytearray()
        self.workers: set[int] = set()
        self.most_workers = 0
        self.done = threading.Event()

    def children(self) -> list[int]:
        return children_of(self.pid)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Poll ``condition`` until it holds; fail (not hang) if the run ends or times out."""
        while not condition():
            self.still_running(what)
            time.sleep(POLL_SECONDS)

    def running(self) -> bool:
        """False once parhash has exited; a failure once the deadline has passed."""
        if self.proc.poll() is not None:
            return False
        if time.monotonic() > self.deadline:
            pytest.fail("timed out: parhash is still running")
        return True

    def still_running(self, what: str) -> None:
        """Fail the test if parhash has exited or the deadline has passed."""
        if self.proc.poll() is not None:
            pytest.fail(f"parhash exited ({self.proc.returncode}) before {what}")
        if time.monotonic() > self.deadline:
            pytest.fail(f"timed out waiting for {what}")

    def wait_for_stdout(self, nbytes: int = 1) -> None:
        """Wait until parhash has written at least ``nbytes`` to stdout: it is mid-run."""
        self.wait_for(lambda: len(self.stdout) >= nbytes, f"{nbytes} bytes on stdout")

    def wait_for_workers(self, n: int) -> list[int]:
        found: list[int] = []

        def enough() -> bool:
            found[:] = self.children()
            return len(found) >= n

        self.wait_for(enough, f"{n} worker processes")
        return found

    def wait_until_open(self, path: os.PathLike[str] | str) -> None:
        """Wait until parhash or one of its workers has ``path`` open."""
        self.wait_for(
            lambda: any(has_open(p, path) for p in [self.pid, *self.children()]),
            f"parhash to open {path}",
        )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def signal_group(self, signum: int) -> None:
        """As Ctrl-C in a terminal: the signal reaches parhash and its workers."""
        os.killpg(self.pid, signum)


def _read_all(fd: int, into: bytearray, head: int | None) -> None:
    try:
        while True:
            data = os.read(fd, 1 << 16)
            if not data:
                return
            into += data
            if head is not None and into.count(b"\n") >= head:
                return  # as `head -N`: stop reading and close the pipe
    finally:
        os.close(fd)


def _watch_workers(running: Running) -> None:
    while not running.done.is_set():
        kids = running.children()
        running.workers.update(kids)
        running.most_workers = max(running.most_workers, len(kids))
        running.done.wait(0.05)


def run_parhash(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: os.PathLike[str] | str | None = None,
    input: bytes | None = None,
    stdin: int = subprocess.DEVNULL,
    prefix: Sequence[str] = (),
    timeout: float = 60,
    head: int | None = None,
    stdout: IO[bytes] | None = None,
    during: Callable[[Running], None] | None = None,
) -> Outcome:
    """Run ``[*prefix, python, -m, parhash, *args]``; fail the test if it hangs.

    parhash gets a session (and process group) of its own, so that every
    process it starts can be found after it exited, and killed if it hangs.
    ``head=N`` closes the read end of stdout after N lines, as ``| head -N``
    does; ``stdout`` sends it to a file instead (``> /dev/full``). ``during``
    is called once the process is started, to signal it or kill its workers;
    the timeout covers it too.
    """
    argv = [*prefix, *PARHASH, *map(os.fspath, args)]
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=ENV,
        stdin=subprocess.PIPE if input is not None else stdin,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    running = Running(proc, deadline)
    readers = []
    pipes = [(proc.stdout, running.stdout, head), (proc.stderr, running.stderr, None)]
    for pipe, into, lines in pipes:
        if pipe is not None:
            # The thread owns a descriptor of its own, which it closes when
            # done: for stdout with `head`, that is what the writer sees.
            fd = os.dup(pipe.fileno())
            pipe.close()
            readers.append(threading.Thread(target=_read_all, args=(fd, into, lines), daemon=True))
    watcher = threading.Thread(target=_watch_workers, args=(running,), daemon=True)
    for t in [*readers, watcher]:
        t.start()
    if input is not None:
        assert proc.stdin is not None
        threading.Thread(target=_feed, args=(proc.stdin, input), daemon=True).start()
    try:
        if during is not None:
            during(running)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_session(proc.pid)
            proc.wait()
            for t in readers:
                t.join(5)
            pytest.fail(
                f"parhash hung (no exit within {timeout} s): {' '.join(argv)}\n"
                f"stderr:\n{running.stderr.decode(errors='replace')[-3000:]}"
            )
    except BaseException:
        _kill_session(proc.pid)
        proc.wait()
        raise
    finally:
        running.done.set()
    for t in readers:
        t.join(10)
    watcher.join(5)
    left = _left_behind(proc.pid)
    return Outcome(
        list(map(os.fspath, args)),
        proc.returncode,
        bytes(running.stdout),
        running.stderr.decode("utf-8", errors="replace"),
        proc.pid,
        running.workers,
        running.most_workers,
        left,
    )


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError):
        pipe.write(data)
        pipe.close()


def _left_behind(sid: int) -> list[int]:
    """Processes of the run still alive ``GRACE_SECONDS`` after it exited; killed."""
    end = time.monotonic() + GRACE_SECONDS
    while True:
        left = session_members(sid)
        if not left or time.monotonic() > end:
            break
        time.sleep(POLL_SECONDS)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


def _kill_session(sid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(sid, signal.SIGKILL)
    for pid in session_members(sid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# What every run must satisfy, whatever happened to it.


def assert_no_traceback(out: Outcome) -> None:
    assert "Traceback" not in out.stderr, str(out)


def assert_nothing_left_behind(out: Outcome) -> None:
    assert out.left_behind == [], f"processes left running: {out.left_behind}\n{out}"
    still = [p for p in out.workers if alive(p)]
    assert still == [], f"workers still alive: {still}\n{out}"


def assert_whole_records(stdout: bytes, end: bytes = b"\n") -> None:
    """Output stops after a record terminator, never in the middle of a line."""
    assert stdout == b"" or stdout.endswith(end), stdout[-200:]


def error_lines(out: Outcome) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("parhash: ")]


# Files and expected output.


def md5_of(path: os.PathLike[str] | str | bytes) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def gnu_lines(stdout: bytes) -> dict[bytes, str]:
    """``{path: digest}`` from md5sum lines without escapes; a path twice is an error."""
    found: dict[bytes, str] = {}
    for line in stdout.splitlines():
        digest, name = line.split(b"  ", 1)
        assert name not in found, f"{name!r} printed twice"
        found[name] = digest.decode()
    return found


def write_files(
    directory: Path, sizes: Sequence[int], *, seed: int = 0, prefix: str = "f"
) -> dict[Path, bytes]:
    """Files ``f000``, ``f001``... of the given sizes, of pseudo-random bytes."""
    import random

    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, size in enumerate(sizes):
        path = directory / f"{prefix}{i:03d}"
        data = rng.randbytes(size)
        path.write_bytes(data)
        files[path] = data
    return files


def make_empty_files(directory: Path, count: int, per_directory: int | None = None) -> None:
    """``count`` empty files, in subdirectories of ``per_directory`` entries if given."""
    directory.mkdir(parents=True, exist_ok=True)
    per = per_directory or count
    fd = -1
    try:
        for i in range(count):
            if i % per == 0:
                if fd >= 0:
                    os.close(fd)
                sub = directory / f"d{i // per:04d}" if per_directory else directory
                sub.mkdir(exist_ok=True)
                fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
            os.close(os.open(f"f{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def tmpfs(path: Path, size: str, inodes: int | None = None) -> Iterator[bool]:
    """Mount a tmpfs at ``path`` if this process may; yields whether it did."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


# The commands the cases run against. `check` and `dupes` join by adding an
# entry: ``build`` turns a directory of files into the arguments that make the
# command read every one of them (for `check`, after writing a manifest of
# them), plus the options a case adds; ``verify`` asserts that the output of
# a complete run accounts for every file correctly. The other fields say how
# the command differs where a case depends on it.


def assert_md5_lines(stdout: bytes, files: Iterable[Path]) -> None:
    """One md5sum line per file, each with the digest of what is on disk now."""
    assert gnu_lines(stdout) == {os.fsencode(p): md5_of(p) for p in files}


def regular_files(root: Path) -> list[Path]:
    """The regular files under ``root``, in byte order of their paths; links not followed."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return sorted(found, key=os.fsencode)


def write_manifest(root: Path) -> Path:
    """``md5sum`` lines for every file under ``root``, in a file beside it (not inside).

    Written here, not by ``parhash scan``: a `check` case then depends on no
    other command being right.
    """
    manifest = root.with_name(root.name + ".MD5SUMS")
    lines = []
    for path in regular_files(root):
        name = os.fsencode(path)
        assert b"\\" not in name and b"\n" not in name, "a name that needs escaping"
        lines.append(md5_of(path).encode() + b"  " + name + b"\n")
    manifest.write_bytes(b"".join(lines))
    return manifest


def check_verdicts(stdout: bytes) -> dict[bytes, bytes]:
    """``{name: word}`` from ``NAME: OK`` / ``NAME: FAILED`` lines; a name twice is an error."""
    found: dict[bytes, bytes] = {}
    for line in stdout.splitlines():
        name, word = line.rsplit(b": ", 1)
        assert name not in found, f"{name!r} has two verdicts"
        found[name] = word
    return found


def assert_check_ok(stdout: bytes, files: Iterable[Path]) -> None:
    """``NAME: OK`` once per file, in manifest (byte) order, and nothing else."""
    names = sorted(map(os.fsencode, files))
    assert stdout == b"".join(name + b": OK\n" for name in names), stdout[-300:]


def dupe_groups(stdout: bytes) -> set[frozenset[bytes]]:
    """The groups of ``dupes`` text output: a path per line, a blank line after each group."""
    assert stdout == b"" or stdout.endswith(b"\n\n"), stdout[-200:]
    groups = [block.split(b"\n") for block in stdout[:-2].split(b"\n\n")] if stdout else []
    seen = [path for group in groups for path in group]
    assert len(seen) == len(set(seen)), "a path in two groups, or twice in one"
    return {frozenset(group) for group in groups}


def expected_dupe_groups(files: Iterable[Path]) -> set[frozenset[bytes]]:
    """Files with the same contents, by size and digest; groups of two or more."""
    by_contents: dict[tuple[int, str], set[bytes]] = {}
    for path in files:
        key = (os.stat(path).st_size, md5_of(path))
        by_contents.setdefault(key, set()).add(os.fsencode(path))
    return {frozenset(group) for group in by_contents.values() if len(group) > 1}


def assert_dupe_groups(stdout: bytes, files: Iterable[Path]) -> None:
    assert dupe_groups(stdout) == expected_dupe_groups(files)


@dataclass(frozen=True)
class Command:
    name: str
    build: Callable[[Path, Sequence[str]], list[str]]
    verify: Callable[[bytes, Iterable[Path]], None]
    # Prints each record as soon as it is done (dupes prints every group at
    # the end, once the search is over).
    streams: bool = True
    # What ends a record on stdout: a line, or for dupes a group.
    record_end: bytes = b"\n"
    # Has ``-o FILE`` (written atomically).
    output_option: bool = False
    # Exit status after a worker died and its files were hashed again.
    death_status: int = 1

    def args(self, root: Path, *options: str) -> list[str]:
        return self.build(root, options)

    def __str__(self) -> str:
        return self.name


def _scan_args(root: Path, options: Sequence[str]) -> list[str]:
    return ["scan", "-a", "md5", *options, str(root)]


def _check_args(root: Path, options: Sequence[str]) -> list[str]:
    return ["check", *options, str(write_manifest(root))]


def _dupes_args(root: Path, options: Sequence[str]) -> list[str]:
    # Empty files too, so that every file whose size another file has is read.
    return ["dupes", "--include-empty", *options, str(root)]


COMMANDS = [
    Command("scan", _scan_args, assert_md5_lines, output_option=True),
    Command("check", _check_args, assert_check_ok),
    # dupes keeps its statuses for what can hide a duplicate (2) and for
    # --exit-code (1): a death whose files were hashed again hides none.
    Command(
        "dupes", _dupes_args, assert_dupe_groups, streams=False, record_end=b"\n\n", death_status=0
    ),
]
