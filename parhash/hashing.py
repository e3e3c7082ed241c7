"""The one file reader: :func:`hash_file` (by path) and :func:`digest_open` (an open file).

scan, check and dupes read every file through it. Their per-file loops
(``tasks._Task.files_in``, ``verify._Answer.quick``, dupes' head stage and
walk) inline its commonest case, a small regular file read whole by one
``readv`` into this process's buffer, and hand it the rest: a file larger
than a block, a short read, a change under the read, a file that is not
regular. That inlining saves 1-2 µs a file, some 10% of a small file.

Everything here is module-level so that it pickles into pool workers. Each
process reads into one reused buffer (the ``hashlib.file_digest`` idiom:
``readv`` into a ``bytearray``, then ``update(view[:n])`` for every requested
algorithm from the same read), so hashing creates no ``bytes`` per block.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from typing import NamedTuple

from parhash.algorithms import ALGORITHMS, Hasher, parse_algos
from parhash.results import Result, reason
from parhash.walk import Descent, Walked, walked_reason

# 64 KiB measured fastest among 8 KiB .. 4 MiB for every algorithm, on both
# machines the benchmarks have run on (see benchmarks/RESULTS.md): a block
# that stays in the CPU's cache between the read that fills it and the hash
# that reads it. On a CPU with a small L2 cache, 1 MiB took 1.2x (md5) to
# 2.9x (xxh3) as long.
DEFAULT_BLOCK_SIZE = 64 << 10

# Files are read, never mapped: mapping large files measured up to 15% faster
# for the xxHash family, but a mapped file truncated by another process kills
# the reader with SIGBUS, where read() just returns less.
CHANGED_WHILE_HASHING = "changed while hashing"
NOT_REGULAR = "not a regular file"

# O_NONBLOCK: a path that became a FIFO after the walk must not block open().
# It changes nothing for regular files.
OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)
# The directories of the walked files this process reads. The last one stays
# open (until another is needed, or the process ends), so that a batch of
# files from one directory costs one openat() per file, which resolves one
# name where an open() by path resolves them all.
_DIRECTORIES = Descent()


def release_directories() -> None:
    """Close the directories this process holds open for walked files (see :class:`Descent`)."""
    _DIRECTORIES.close()


def directories() -> Descent:
    """The directories this process holds open for the files it reads (see :class:`Descent`)."""
    return _DIRECTORIES


class Job(NamedTuple):
    """What to compute for each path of a batch."""

    algos: tuple[str, ...]
    block_size: int = DEFAULT_BLOCK_SIZE
    # Only the first ``head`` bytes of each file (``parhash dupes``'s heads).
    head: int | None = None


OUTSIDE_ROOT = "outside the root"


def outside(fd: int, fence: str) -> bool:
    """Whether the file open as ``fd`` lies outside directory ``fence`` (resolved, ending in "/").

    Asked of the file once it is open, by what the kernel says it opened: a
    name checked before the open could be swapped for a link in between.
    Where /proc can't tell, the check made before the open stands alone.
    """
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return not (real + "/").startswith(fence)


class _Buffer:
    """The read buffer of this process, grown on demand and then reused."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.view = memoryview(self.data)
        self.views = [self.view]

    def get(self, size: int) -> memoryview:
        if len(self.data) != size:
            self.view.release()
            self.data = bytearray(size)
            self.view = memoryview(self.data)
            self.views = [self.view]
        return self.view


_BUFFER = _Buffer()


def read_buffer(size: int) -> tuple[memoryview, list[memoryview]]:
    """This process's read buffer of ``size`` bytes: a view, and ``[view]`` for ``os.readv``.

    Valid until the next call with another size.
    """
    view = _BUFFER.get(size)
    return view, _BUFFER.views


def _constructors(algos: Sequence[str]) -> list[Callable[[], Hasher]]:
    return [ALGORITHMS[a].new for a in algos]


def hash_file(
    path: str, algos: str | Sequence[str] = ("sha256",),
    block_size: int = DEFAULT_BLOCK_SIZE, *, limit: int | None = None,
) -> Result:
    """Hash one file with every algorithm in ``algos`` from a single read.

    ``algos`` is as for :func:`parhash.scan`: names, or one string of them.
    Raises :class:`~parhash.algorithms.UnknownAlgorithm` for an unknown name.

    Never raises for a file that can't be read: an ``OSError``, a path that is
    not a regular file, or a file whose size or mtime changed while it was read
    comes back as a :class:`Result` with ``error`` set. Costs one ``open``, two
    ``fstat`` and ``size / block_size + 1`` reads. A
    :class:`~parhash.walk.Walked` path is opened as the walk found it
    (:meth:`~parhash.walk.Descent.open`): one swapped for a link since, or
    below a directory that was, comes back as an error. With ``limit``, only
    the first ``limit`` bytes are hashed (the size is still the file's).

    This is the one reader: scan, check and dupes read every file through
    it, or through a loop that inlines its commonest case (a small file read
    whole by one ``readv``) and hands it anything else.
    """
    names = parse_algos((algos,) if isinstance(algos, str) else algos)
    return _hash_file(path, _constructors(names), names, block_size, limit=limit)


def _hash_file(
    path: str,
    constructors: list[Callable[[], Hasher]],
    algos: tuple[str, ...],
    block_size: int,
    top: int = -1,
    root: tuple[int, int] | None = None,
    fence: str | None = None,
    limit: int | None = None,
) -> Result:
    """``top`` >= 0: ``path`` is a walked one, as its :class:`Walked` with ``top`` and ``root``."""
    if isinstance(path, Walked):
        top, root = path.top, path.root
        path = str(path)
    try:
        if top >= 0:
            fd = _DIRECTORIES.open_walked(path, top, OPEN_FLAGS, root)
        else:
            fd = os.open(path, OPEN_FLAGS)
    except OSError as e:
        why = walked_reason(e) if top >= 0 else reason(e)
        return Result(path, {}, error=why, errno=e.errno)
    try:
        if fence is not None and outside(fd, fence):
            return Result(path, {}, error=OUTSIDE_ROOT)
        hashers, before, error, code = digest_open(fd, constructors, block_size, limit=limit)
    except OSError as e:
        return Result(path, {}, error=reason(e), errno=e.errno)
    finally:
        os.close(fd)
    if error is not None:
        if error is CHANGED_WHILE_HASHING:
            return Result(path, {}, before.st_size, before.st_mtime_ns, before.st_dev,
                          before.st_ino, error)
        return Result(path, {}, error=error, errno=code)
    if len(hashers) == 1:
        digests = {algos[0]: hashers[0].hexdigest()}
    else:
        digests = {a: h.hexdigest() for a, h in zip(algos, hashers, strict=True)}
    return Result(path, digests, before.st_size, before.st_mtime_ns, before.st_dev, before.st_ino,
                  ctime_ns=before.st_ctime_ns)


def digest_open(
    fd: int,
    constructors: list[Callable[[], Hasher]],
    block_size: int,
    before: os.stat_result | None = None,
    first: int = -1,
    limit: int | None = None,
) -> tuple[list[Hasher], os.stat_result, str | None, int | None]:
    """Hash the file open as ``fd`` with one hasher per constructor, from one read.

    Returns the hashers, the ``fstat`` taken before the read, and None, None;
    or, for a file that is not regular, no hashers, that ``fstat``, the
    reason and its errno (``EISDIR`` for a directory, else None); for a file
    whose size, mtime or inode changed while it was read,
    :data:`CHANGED_WHILE_HASHING` (the very object) with the ``fstat`` after
    the read. Raises ``OSError``. Costs two ``fstat`` (one for a file read
    whole by its first read; ``before``, if given, is the first) and
    ``size / block_size + 1`` reads. ``first`` >= 0: the caller's first read
    put that many bytes in this process's buffer (:func:`read_buffer`).
    ``limit``: only the first ``limit`` bytes are hashed (``dupes``' heads).
    """
    if before is None:
        before = os.fstat(fd)
    if not stat.S_ISREG(before.st_mode):
        if stat.S_ISDIR(before.st_mode):
            return [], before, os.strerror(errno.EISDIR), errno.EISDIR
        return [], before, NOT_REGULAR, None
    hashers = [new() for new in constructors]
    size = before.st_size
    want = size if limit is None else min(size, limit)
    # No more than a head is read for a head (the caller's first read, if
    # any, is in a buffer of ``block_size``).
    small = limit is not None and first < 0 and 0 < limit < block_size
    view = _BUFFER.get(limit if small and limit is not None else block_size)
    views = _BUFFER.views
    block = len(view)
    total = 0
    reads = 0
    while True:
        n = os.readv(fd, views) if first < 0 else first
        first = -1
        if not n:
            break
        reads += 1
        if limit is not None and total + n > limit:
            n = limit - total
        chunk = view if n == block else view[:n]
        for h in hashers:
            h.update(chunk)
        total += n
        # A short read that reaches the size fstat gave is the end of a
        # regular file: skip the read that would return 0. A file that
        # grew meanwhile is caught by the second fstat below.
        if (n < block and total == size) or total == limit:
            break
    # A file that came whole from one read has nothing to mix from two
    # versions; one read in several may have, so check size and mtime.
    if reads <= 1 and total == want:
        return hashers, before, None, None
    if limit is not None and total < want:
        # A head that ended before the size said (a file cut short, or one
        # of /sys, whose size is not its contents): no digest of it may
        # stand for that size.
        return [], os.fstat(fd), CHANGED_WHILE_HASHING, None
    after = os.fstat(fd)
    if (
        after.st_size != size
        or after.st_mtime_ns != before.st_mtime_ns
        or after.st_ino != before.st_ino
    ):
        return [], after, CHANGED_WHILE_HASHING, None
    return hashers, before, None, None


# Names of this process's own open files: only this process can read them
# (a worker's standard input is not the user's), so they are read where the
# command runs, never in a worker. ``-`` is standard input, as for md5sum.
STDIN = "-"
_OWN_PREFIXES = ("/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")
STDIN_NAMES = frozenset({STDIN, "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
# Opened to be read to its end, as md5sum opens a file it is given: a FIFO
# waits here for its writer.
_STREAM_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


def is_own_stream(path: str) -> bool:
    """Whether ``path`` is ``-`` or names one of this process's open files (``/dev/fd/N``)."""
    return path == STDIN or path.startswith(_OWN_PREFIXES)


def _open_fds() -> frozenset[int]:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return frozenset({0, 1, 2})
    fds = set()
    for name in names:
        try:
            os.fstat(int(name))  # not the one the listing itself used
        except (OSError, ValueError):
            continue
        fds.add(int(name))
    return frozenset(fds)


# The descriptors open when parhash was loaded: the user's (standard input,
# a <(cmd) pipe). One opened since is parhash's own (a pool's pipe, a
# manifest being read): /dev/fd/N naming it names no file of the user's, and
# reading it would take the pool's messages or wait for ever.
_STARTING_FDS = _open_fds()
_STANDARD = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2, STDIN: 0}


def _own_fd(path: str) -> int | None:
    """The descriptor an own stream's name names (see :func:`is_own_stream`), if any."""
    number = _STANDARD.get(path)
    if number is not None:
        return number
    head, _, tail = path.rpartition("/")
    if head in ("/dev/fd", "/proc/self/fd") and tail.isdigit():
        return int(tail)
    return None


def anonymous(fd: int) -> bool:
    """Whether ``fd`` is a pipe or socket with no name in the file system.

    A worker that opened one through ``/proc/self/fd`` or ``/dev/fd`` (a
    name in a manifest, a link in a tree) holds its own plumbing, never a
    file of the user's: the user's are read by the main process.
    """
    try:
        return not os.readlink(f"/proc/self/fd/{fd}").startswith("/")
    except OSError:
        return False


def digest_stream(fd: int, constructors: list[Callable[[], Hasher]], block_size: int,
                  buffer: bytearray | None = None) -> tuple[list[Hasher], int]:
    """Hash what ``fd`` gives until its end: a pipe, a device, standard input.

    Returns the hashers and the bytes read; raises ``OSError``. Nothing is
    checked against a size: a stream has none. An ``fd`` opened without
    blocking (as the walk and check open every file) is waited on with
    poll: a FIFO then waits for its writer as md5sum's blocking open
    does, and its data is read even if the writer has come and gone
    already, where opening it again would wait for another writer. Reads
    into ``buffer``, or this process's buffer (:func:`read_buffer`), which
    only its main thread may use.
    """
    hashers = [new() for new in constructors]
    if buffer is None:
        view = _BUFFER.get(block_size)
        views = _BUFFER.views
    else:
        view = memoryview(buffer)
        views = [view]
    total = 0
    waiter = None
    if not os.get_blocking(fd):
        import select

        waiter = select.poll()
        # Ready on data, or once a writer that came since the open has gone
        # (POLLHUP); never for a FIFO no writer has opened yet, whose read
        # would say end of file at once.
        waiter.register(fd, select.POLLIN)
        waiter.poll()
    while True:
        try:
            n = os.readv(fd, views)
        except BlockingIOError:
            assert waiter is not None
            waiter.poll()
            continue
        if not n:
            return hashers, total
        chunk = view if n == len(view) else view[:n]
        for h in hashers:
            h.update(chunk)
        total += n


def hash_named(path: str, constructors: list[Callable[[], Hasher]], algos: tuple[str, ...],
               block_size: int, *, own: bool = False) -> Result:
    """Hash a file the user named, whatever its kind, as md5sum does; never raises.

    A regular file is read as :func:`hash_file` reads it. ``-`` is standard
    input, read from where it stands; a FIFO, a device or ``/dev/stdin`` is
    read to its end (the size is the bytes read). A socket can't be opened
    (``No such device or address``), a directory can't be read (``Is a
    directory``): both come back as errors.

    ``own``: ``path`` is one of :func:`is_own_stream`'s, read by the main
    process, maybe in a thread beside its main one: into a buffer of its
    own, and only if it names a descriptor open when parhash was loaded
    (else ``No such file or directory``). Not ``own``: a pipe or socket
    with no name (:func:`anonymous`) is no file of the user's, and is not read.
    """
    missing = Result(path, {}, error=os.strerror(errno.ENOENT), errno=errno.ENOENT)
    if own and _own_fd(path) not in _STARTING_FDS:
        if path == STDIN:  # closed
            return Result(path, {}, error=os.strerror(errno.EBADF), errno=errno.EBADF)
        return missing
    try:
        fd = os.dup(0) if path == STDIN else os.open(path, _STREAM_FLAGS)
    except OSError as e:
        return Result(path, {}, error=reason(e), errno=e.errno)
    try:
        before = os.fstat(fd)
        if stat.S_ISREG(before.st_mode) and path != STDIN and not own:
            hashers, before, error, code = digest_open(fd, constructors, block_size, before)
            if error is not None:
                return Result(path, {}, error=error, errno=code)
            size = before.st_size
        else:
            if stat.S_ISDIR(before.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not own and anonymous(fd):
                return missing
            hashers, size = digest_stream(fd, constructors, block_size,
                                          bytearray(block_size) if own else None)
            if stat.S_ISREG(before.st_mode):  # standard input from a file
                after = os.fstat(fd)
                if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    return Result(path, {}, error=CHANGED_WHILE_HASHING)
    except OSError as e:
        return Result(path, {}, error=reason(e), errno=e.errno)
    finally:
        os.close(fd)
    digests = {a: h.hexdigest() for a, h in zip(algos, hashers, strict=True)}
    return Result(path, digests, size, before.st_mtime_ns, before.st_dev, before.st_ino)


def path_hasher(job: Job) -> Callable[[str], Result]:
    """One path in, its :class:`Result` out, as :func:`hash_batch` hashes a plain path.

    The algorithms' constructors are looked up once, here, not per file.
    """
    constructors = _constructors(job.algos)
    algos = job.algos
    block_size = job.block_size
    head = job.head

    def hash_path(path: str) -> Result:
        return _hash_file(path, constructors, algos, block_size, limit=head)

    return hash_path
