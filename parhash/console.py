"""What every command shares: signals, output, ``-o`` files, path lists, warnings, statuses.

The ``parhash`` command starts in :func:`main`, which installs the signal
handlers before anything else is imported, so that a signal at any moment of
a run ends it quietly with status 128+N:

- the first signal raises :class:`Stopped` in the main thread; the command
  unwinds, which stops the workers, drops output that can't be written at
  once and removes a half-written ``-o`` file;
- should anything in that unwinding block (a stuck output, a hung mount), a
  second signal, or :data:`FORCE_SECONDS` after the first, ends the process
  at once, after removing the temporary files still registered here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NoReturn

if TYPE_CHECKING:
    from parhash.pool import PipelineStats
    from parhash.report import Meter, Output
    from parhash.results import Pause

EXIT_OK = 0
EXIT_FILE_ERROR = 1
EXIT_DUPES_FOUND = 1  # dupes --exit-code
EXIT_USAGE = 2
EXIT_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT

# Signals whose default action ends the process and that a process may catch.
# SIGPIPE stays ignored, as Python leaves it: a closed pipe is an EPIPE, and
# status 141. SIGXFSZ too: a file too large is a write error.
STOPPING_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
                 "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGPWR", "SIGSTKFLT", "SIGIO")
    if hasattr(signal, name)
)

# How long the unwinding after a signal may take before the process ends anyway.
FORCE_SECONDS = 1.0
# How long output already computed may take to drain after a signal.
DRAIN_SECONDS = 0.3

# Set by the first stopping signal: readers of pipes (check's manifest) look at it.
STOPPING = threading.Event()


class CommandFailed(Exception):
    """Ends the command with exit status ``status``; its message is already on stderr.

    Raised where a command can't go on (its output can't be written, a path
    list can't be opened). Like any exception it unwinds the pipeline first;
    the command line then turns it into the exit status.
    """

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def warn(message: str) -> None:
    """Write ``message`` and a newline to stderr, and flush it."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Stopped(BaseException):
    """Raised in the main thread by a stopping signal, so that clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.status = 128 + signum


_temporary: set[str] = set()  # -o files being written, for a forced exit to remove
_stopped_by: list[int] = []


def _force_exit(status: int) -> NoReturn:
    # On a stuck mount the unlink itself may never return: a timer signal
    # with its default action ends the process all the same (even a wait
    # that only a fatal signal interrupts).
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    for path in list(_temporary):
        with contextlib.suppress(OSError):
            os.unlink(path)
    os._exit(status)


def _on_signal(signum: int, frame: Any) -> None:
    if _stopped_by:
        # A second signal, or the timer the first one set: the unwinding is stuck.
        _force_exit(128 + _stopped_by[0])
    _stopped_by.append(signum)
    STOPPING.set()
    # A timer signal, not a thread: a thread started from a handler could
    # wait for the lock of a thread being started when the signal came.
    signal.setitimer(signal.ITIMER_REAL, FORCE_SECONDS)
    raise Stopped(signum)


def _exit_at_once(signum: int, frame: Any) -> None:
    _force_exit(128 + (_stopped_by[0] if _stopped_by else signum))


def _unraisable(hook: Any) -> Any:
    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, Stopped):
            # The signal came while Python ran a callback whose exceptions it
            # can only print and drop (a weakref's, as an import finishes):
            # nothing would unwind, so end now, quietly, as a second signal would.
            _force_exit(info.exc_value.status)
        hook(info)

    return unraisable


def install_signal_handlers() -> None:
    """Make every stopping signal raise :class:`Stopped` (see the module's docstring)."""
    sys.unraisablehook = _unraisable(sys.unraisablehook)
    for s in STOPPING_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(s, _on_signal)


def stopped_status() -> int | None:
    """128+N once signal N has stopped the run, else None."""
    return 128 + _stopped_by[0] if _stopped_by else None


# --- Output -------------------------------------------------------------------


class Sink:
    """A buffered byte stream over a file descriptor that can be abandoned.

    :class:`io.BufferedWriter` flushes on close, whatever is going on: into a
    pipe that no one reads, that waits forever. Here a normal end writes
    everything; :meth:`abandon` gives the reader :data:`DRAIN_SECONDS` to take
    what is pending, and drops the rest.
    """

    def __init__(self, fd: int, buffer_size: int = 1 << 20) -> None:
        self.fd = fd
        self.limit = buffer_size
        self.pending = bytearray()

    def fileno(self) -> int:
        return self.fd

    def write(self, data: bytes) -> int:
        self.pending += data
        if len(self.pending) >= self.limit:
            self.flush()
        return len(data)

    def flush(self) -> None:
        pending = self.pending
        if not pending:
            return
        view = memoryview(pending)
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        finally:
            view.release()
            del pending[:done]

    def abandon(self) -> None:
        """Write what the reader takes within :data:`DRAIN_SECONDS`; drop the rest."""
        import select
        import time

        deadline = time.monotonic() + DRAIN_SECONDS
        pending = self.pending
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self.fd], [], left)[1]:
                    break
                # At most PIPE_BUF once the descriptor is writable: a pipe with
                # room for that much takes it without blocking.
                n = os.write(self.fd, bytes(pending[: select.PIPE_BUF]))
                del pending[:n]
        except (OSError, ValueError):
            pass
        pending.clear()


def open_output(path: str | None, mtime_ns: int | None = None
                ) -> contextlib.AbstractContextManager[Any]:
    """Standard output, or ``path`` written atomically (see :func:`atomic_file`).

    Yields a stream with ``write`` and ``flush``. On an exception the output
    is abandoned, never flushed into a stuck reader, and a temporary file is
    removed. A write error ends the command with a message and status 1
    (:class:`CommandFailed`).
    """
    if path is None or path == "-":
        return _standard_output()
    return atomic_file(path, mtime_ns)


@contextlib.contextmanager
def _standard_output() -> Iterator[Any]:
    sys.stdout.flush()
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        # No file descriptor behind sys.stdout (CliRunner, an embedding
        # application): write through its own binary buffer.
        yield sys.stdout.buffer
        return
    sink = Sink(fileno)
    try:
        yield sink
        sink.flush()
    except BrokenPipeError:
        raise
    except OSError as e:  # a full disk, /dev/full, a quota
        sink.pending.clear()
        _write_error(e)
    except BaseException:
        sink.abandon()
        raise


def _write_error(e: OSError) -> NoReturn:
    warn(f"parhash: write error: {e.strerror or e}")
    raise CommandFailed(EXIT_FILE_ERROR) from None


# The suffix of every -o file being written. Another run's walk may list one
# (two runs writing manifests into the tree they scan): the scan leaves such
# names out of what it reports, as it leaves out its own output.
TEMPORARY_SUFFIX = ".parhash-tmp"


def is_temporary_output(path: str) -> bool:
    """Whether ``path`` names an ``-o`` file that a parhash run is still writing."""
    name = path.rpartition("/")[2]
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


@contextlib.contextmanager
def atomic_file(path: str, mtime_ns: int | None = None) -> Iterator[Any]:
    """Write ``path`` through a temporary file beside it, renamed over it at the end.

    With ``mtime_ns``, the file's times are set to it before the rename: a
    manifest's mtime then says when the scan that wrote it began (see
    :mod:`parhash.update`).

    A special file (``/dev/null``, a FIFO) is written in place instead: a
    rename would replace the device or pipe itself. A replaced file keeps its
    owner (when this process may set it) and permission bits, never its
    set-user-ID and set-group-ID bits. Through a symlink, the file it names is
    replaced and the link kept. A link, a FIFO or a file that the kernel's
    ``protected_symlinks``, ``protected_fifos`` or ``protected_regular``
    rules guard (one planted by another user in ``/tmp``) is refused.
    """
    _check_output_links(path)
    try:
        st: os.stat_result | None = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        import errno

        _cannot_write(path, os.strerror(errno.EISDIR))
    if st is not None:
        _check_planted(path, st)
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as e:
            _cannot_write(path, e.strerror or str(e))
        device = Sink(fd, 1 << 16)
        try:
            yield device
            device.flush()
        except OSError as e:
            _cannot_write(path, e.strerror or str(e))
        except BaseException:
            device.abandon()
            raise
        finally:
            os.close(fd)
        return
    target = os.path.realpath(path) if os.path.islink(path) else path
    import tempfile

    directory, _, base = target.rpartition("/")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory or ".", prefix=f".{base}.",
                                   suffix=TEMPORARY_SUFFIX)
    except OSError as e:
        _cannot_write(path, e.strerror or str(e))
    _temporary.add(tmp)
    stream = Sink(fd, 1 << 16)
    try:
        _set_mode(fd, st)
        yield stream
        stream.flush()
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        os.fsync(fd)
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _cannot_write(path, e.strerror or str(e))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        _temporary.discard(tmp)
        os.close(fd)


def _set_mode(fd: int, replaced: os.stat_result | None) -> None:
    if replaced is None:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    if os.geteuid() == 0 or replaced.st_uid == os.geteuid():
        with contextlib.suppress(OSError):
            os.fchown(fd, replaced.st_uid, replaced.st_gid)
    # Never the set-user-ID, set-group-ID or sticky bits: a manifest that
    # replaced a program must not run as its owner.
    os.fchmod(fd, stat.S_IMODE(replaced.st_mode) & 0o777)


# What the kernel refuses in a sticky, world-writable directory (/tmp) when
# the thing's owner is neither the directory's owner nor the user:
# following a link (fs.protected_symlinks), and opening an existing FIFO or
# regular file to write it (fs.protected_fifos, fs.protected_regular). The
# classic trap of a name planted where a victim, often root, will write.
_PLANTED = "owned by another user in a sticky world-writable directory"


def _planted(owner: int, directory: str) -> bool:
    try:
        parent = os.stat(directory)
    except OSError:
        return False
    sticky_world = parent.st_mode & stat.S_ISVTX and parent.st_mode & stat.S_IWOTH
    return bool(sticky_world) and owner not in (parent.st_uid, os.geteuid())


def _check_output_links(path: str) -> None:
    """Refuse ``-o`` through a link that ``fs.protected_symlinks`` would not follow.

    Checked here, not left to the kernel: the link is resolved to a name,
    and the file is then written through a rename, which follows nothing.
    Stops at a link to something that is not a path (``/proc/self/fd/1``
    naming a pipe).
    """
    import errno

    current = path
    for _ in range(40):
        try:
            link = os.lstat(current)
        except OSError:
            return
        if not stat.S_ISLNK(link.st_mode):
            return
        directory = os.path.dirname(current) or "."
        if _planted(link.st_uid, directory):
            _cannot_write(path, f"{os.strerror(errno.EACCES)} (a symlink {_PLANTED})")
        current = os.path.join(directory, os.readlink(current))
    _cannot_write(path, os.strerror(errno.ELOOP))


def _check_planted(path: str, st: os.stat_result) -> None:
    """Refuse to write over a FIFO or file planted as ``fs.protected_fifos``/``_regular`` would."""
    import errno

    if stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        where = os.path.dirname(os.path.realpath(path)) or "."
        if _planted(st.st_uid, where):
            _cannot_write(path, f"{os.strerror(errno.EACCES)} ({_PLANTED})")


def _cannot_write(path: str, reason: str) -> NoReturn:
    from parhash.formats.names import quote_name

    warn(f"parhash: cannot write to {quote_name(path, always=True)}: {reason}")
    raise CommandFailed(EXIT_FILE_ERROR)


# --- What a command's pipeline shares ---------------------------------------------


def path_arguments(
    paths: Sequence[str], files_from: str | None, files0_from: str | None
) -> tuple[Sequence[str], Iterator[str | Pause]]:
    """PATH arguments (``.`` when there are none at all) and the names of any lists.

    ``files_from`` and ``files0_from`` name lists of paths, one per line or
    NUL-separated (``-`` for standard input). Each list is opened now, so
    that one that can't be read ends the command at once: its message goes
    to stderr, and :class:`CommandFailed` is raised with status 1.
    """
    lists = []
    if files_from:
        lists.append(_read_list(files_from, b"\n"))
    if files0_from:
        lists.append(_read_list(files0_from, b"\0"))
    if not paths and not lists:
        paths = (".",)
    return paths, _chain(lists)


def _read_list(name: str, separator: bytes) -> Iterator[str | Pause]:
    from parhash.walk import read_path_list

    stream = _open_list(name)  # opened now, so that a missing list fails at once

    def names() -> Iterator[str | Pause]:
        with stream:
            yield from read_path_list(stream, separator, pauses=True)

    return names()


def _chain(lists: list[Iterator[str | Pause]]) -> Iterator[str | Pause]:
    for names in lists:
        yield from names


def _open_list(name: str) -> BinaryIO:
    if name == "-":
        # A stream of our own, not sys.stdin: a worker forked while the walk
        # thread waits in sys.stdin's read would hang on its lock at start-up.
        return open(os.dup(sys.stdin.fileno()), "rb")
    try:
        return open(name, "rb")
    except OSError as e:
        from parhash.formats.names import quote_name

        quoted = quote_name(name, always=True)
        warn(f"parhash: cannot open {quoted} for reading: {e.strerror}")
        raise CommandFailed(EXIT_FILE_ERROR) from None


class FlushWhenIdle:
    """The pipeline's idle hook: flushes :attr:`out` once the output is open.

    The hook is handed to the pipeline before the output exists; whatever
    was written waits in the buffer no longer than the pipeline idles.
    """

    def __init__(self, meter: Meter | None = None) -> None:
        self.out: Output | None = None
        self.meter = meter  # its bar moves while the pipeline waits

    def __call__(self) -> None:
        if self.out is not None:
            self.out.flush_pending()
        if self.meter is not None:
            self.meter.tick()


def pipeline_stats(stall_timeout: float | None) -> PipelineStats:
    """The pool's counters for a command: a stalled file is reported on stderr.

    With ``stall_timeout`` a file that makes no progress for that long is
    given up on; without it, :func:`warn_stall`'s warning is all it costs.
    """
    from parhash.pool import PipelineStats

    return PipelineStats(stall_timeout=stall_timeout, on_stall=warn_stall)


def warn_stall(item: Any, sub: int, seconds: float) -> None:
    """``parhash: NAME: no progress for 60 s; still waiting``, on stderr."""
    from parhash.formats.names import quote_name

    warn(f"parhash: {quote_name(_item_name(item, sub))}: no progress for {seconds:g} s; "
         "still waiting")


def _item_name(item: Any, sub: int = 0) -> str:
    """The file or directory a unit of work names: a path, a directory, a file of a group."""
    from parhash.pool import Within

    if isinstance(item, Within):
        return item.name
    directory = getattr(item, "directory", None)  # a part of a directory
    if directory is not None:
        return _item_name(directory)
    manifest = getattr(item, "manifest", None)  # check's lines, or a file of them
    if isinstance(manifest, str):
        path = getattr(item, "path", None)
        return path if isinstance(path, str) else manifest
    for attribute in ("shown", "path"):
        if isinstance(getattr(item, attribute, None), str):
            return str(getattr(item, attribute))
    if isinstance(item, tuple):
        if len(item) == 4 and isinstance(item[0], int) and len(item[3]):
            # A run of dupes' files of one size: (group, start, whole, files).
            files = item[3]
            return _item_name(files[min(sub, len(files) - 1)])
        return str(item[0])  # one of dupes' files: (path, size, ...)
    return str(item)


def warn_worker_deaths(stats: PipelineStats, redone: str = "their files were hashed again"
                       ) -> None:
    """``parhash: WARNING: N worker processes died; REDONE in a fresh worker``, on stderr."""
    n = stats.worker_deaths
    warn(
        f"parhash: WARNING: {n} worker process{'es' if n > 1 else ''} died; "
        f"{redone} in a fresh worker"
    )


# --- The command's start and end -------------------------------------------------


def main() -> NoReturn:
    """Entry point of the ``parhash`` command (and ``python -m parhash``)."""
    install_signal_handlers()
    stdout: IO[bytes] = sys.stdout.buffer
    try:
        finish(_run(stdout), stdout)
    except Stopped as e:  # after _run, or while it handled another exception
        finish(e.status, stdout)


def _run(stdout: IO[bytes]) -> int:
    try:
        # Imported once the handlers are in place: a signal while click and
        # the rest load ends the run as quietly as one during the work.
        from parhash.cli import run

        rc = run()
        stdout.flush()
    except Stopped as e:
        rc = e.status
    except KeyboardInterrupt:  # SIGINT before the handlers, or from a library
        rc = EXIT_INTERRUPTED
    except BrokenPipeError:
        rc = EXIT_PIPE
    except OSError as e:
        # Commands report their own file errors; what gets here is click
        # writing help or a version to a full or failing standard output.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"parhash: write error: {e.strerror or e}\n")
        rc = EXIT_FILE_ERROR
    except Exception as e:
        # A signal's exception raised where Python wraps what is raised (a
        # class's __set_name__ while a module loads wraps it in RuntimeError).
        status = _stopped_within(e)
        if status is None:
            raise
        rc = status
    return rc


def _stopped_within(e: BaseException) -> int | None:
    """The status of the :class:`Stopped` (or Ctrl-C) that caused ``e``, if one did."""
    seen = 0
    cause: BaseException | None = e
    while cause is not None and seen < 16:
        if isinstance(cause, Stopped):
            return cause.status
        if isinstance(cause, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return None


def finish(rc: int, stdout: IO[bytes]) -> NoReturn:
    """Flush what is left and leave with status ``rc`` (or 128+N after signal N)."""
    # From here on a signal ends the process at once: there is nothing left
    # to unwind, and an exception would escape as a traceback. Blocked while
    # the handlers change, a signal waits for the new one.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING_SIGNALS)
    for s in STOPPING_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(s, _exit_at_once)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    rc = stopped_status() or rc
    if rc == EXIT_PIPE or _stdout_broken(stdout):
        # Point stdout at /dev/null so that a last flush doesn't fail again
        # on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        rc = EXIT_PIPE if not _stopped_by else rc
    if _stopped_by:
        # Whatever still waits in the text layer waits for a reader that may
        # never come: drop it.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    try:
        sys.stdout.flush()  # what click.echo left in the text layer (--help, --version)
    except BrokenPipeError:
        rc = EXIT_PIPE
    except (OSError, ValueError) as e:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"parhash: write error: {getattr(e, 'strerror', None) or e}\n")
        rc = rc or EXIT_FILE_ERROR
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    # Everything is written and every pool is stopped: leave without the
    # interpreter's teardown, which frees every module (some 8 ms of a
    # one-file run) and would wait on the lock of standard input if a walk
    # thread is still blocked reading a path list from a live producer.
    os._exit(rc)


def _stdout_broken(stdout: IO[bytes]) -> bool:
    try:
        stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False

