"""Find files with identical contents, reading as little as possible.

The search is a short list of grouping stages, named in :class:`Stage`. Each
takes the groups of candidates left by the one before, splits them by
something dearer to learn, and drops every group left with a single file
(the shape of fclones' ``group.rs``):

1. :func:`group_by_size`: the walk's files, each ``stat``-ed once, grouped
   by size. A file whose size no other file has is done: it is never opened.
   The workers share the walk of each directory argument
   (:func:`walk_in_parallel`), each reading a few directories at a time and
   ``stat``-ing what it finds; with ``-L`` or one job, one process walks.
2. :func:`group_by_inode`: names of one file (same device and inode: hard
   links, or a symlink followed with ``-L``) become one candidate, so a file
   is never its own duplicate.
3. :func:`group_by_head`: the first ``head_size`` bytes of each candidate are
   hashed in the pool. A file no larger than that has now been read whole,
   and its head digest is its contents digest.
4. :func:`group_by_contents`: whole files are hashed, only in groups that
   still have two files or more and only for files larger than the head.

Both hashing stages send whole groups (or runs of a large group) to one
executor of :mod:`parhash.executor` (a pool, or this process for small
jobs); the pool is started by the walk of a tree too big for one process,
or else by the first hashing stage that needs it. A worker reads each file
with the worker module's readers and sends back only the buckets of files
that agree, so the parent never handles a digest per file.

A candidate is a :data:`FileInfo` tuple, some 250 bytes, while its size
group is small. A group of :data:`PACK_AT` files or more, and what a walk
task finds past :data:`PACK_RUN` files, is kept in columns instead
(:class:`PackedFiles`, some 50 bytes a file), and made into tuples a run at
a time as it goes to the workers: a directory of a million files of one
size is searched in about 100 MB, not 300. The names a report holds come
on top, some 100 bytes each.

Files are never claimed equal on a stale look: each digest comes with the
size, mtime and inode the worker saw, and a file that no longer matches its
stage-1 ``stat`` leaves the search with an error, as does a file that fails
to read. Two files are reported as duplicates only when their whole contents
have the same digest.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import gc
import itertools
import operator
import os
import stat
import sys
from array import array
from collections.abc import Callable, Container, Generator, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast, overload

from parhash.algorithms import hexdigest_function, parse_algos
from parhash.executor import (
    BATCH_BYTES,
    DEFAULT_CHUNKSIZE,
    INLINE_MAX_BYTES,
    INLINE_MAX_FILES,
    Executor,
    InlineExecutor,
    clamp_jobs,
)
from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.pool import WORKER_DIED, PipelineStats, PoolExecutor, note_item
from parhash.results import DupeError, DupeGroup, Pause, WalkError, reason
from parhash.select import Selector
from parhash.walk import (
    CHANGED_DURING_WALK,
    LOOP,
    NOT_REGULAR,
    PSEUDO_FS,
    Descent,
    Directory,
    Stated,
    Walked,
    read_dir,
    walk_paths,
    walked_reason,
)
from parhash.worker import (
    DEFAULT_BLOCK_SIZE,
    OPEN_FLAGS,
    Job,
    path_hasher,
    read_buffer,
    read_head,
)


def _info(message: str, *args: object) -> None:
    """Log at INFO level, if anyone listens.

    Importing logging costs some 10 ms of a run; a program that set up no
    logging has not imported it, and so has nobody to tell.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(__name__).info(message, *args)


DEFAULT_DUPES_ALGO = "xxh128"

# Reading 64 KiB of a file in the page cache costs little more than reading
# 4 KiB (the system call and the open dominate), and every file up to that
# size is settled by the head stage alone, with no second read.
HEAD_SIZE = 64 << 10

CHANGED = "changed during the search"


class Stage(enum.Enum):
    """The stages of the search, in order; the values are progress labels."""

    SIZE = "grouping by size"
    INODE = "grouping by inode"
    HEAD = "hashing heads"
    CONTENTS = "hashing contents"


# Called as (stage, files done, files in the stage or 0 when not yet known).
ProgressFn = Callable[[Stage, int, int], None]


# A candidate: one file, with what stage 1's ``stat`` saw of it:
# (path, size, mtime_ns, dev, ino, links), where ``links`` holds its other
# names once group_by_inode has run. A plain tuple, not a named one: it
# pickles in C, where a named tuple's __reduce__ is a Python call per file
# (that made a worker's listing of a walk three times dearer to send, and a
# batch of heads six times), and the stages never copy it into another type
# (a pass over the candidates in group order costs a cache miss per file).
FileInfo = tuple[str, int, int, int, int, tuple[str, ...]]


# A group of this many files or more is kept as a PackedFiles, not a list:
# from here a list's 250 bytes a file outweigh the Python step per file that
# packing and unpacking cost (a list of tuples costs none: the pickler builds
# it). The largest group of the benchmark's tree of 40,012 files has 116
# (1,226 empty files with --include-empty): its run does not pack.
PACK_AT = 1024
# A walk task packs its files in runs of this many once it has found that
# many: a huge directory crosses to the parent packed. Most tasks find fewer
# (WALK_BUDGET entries), and send their tuples as they are.
PACK_RUN = 8192

_size = operator.itemgetter(1)
_mtime = operator.itemgetter(2)
_dev = operator.itemgetter(3)
_links = operator.itemgetter(5)


class PackedFiles:
    """Candidates in columns: some 50 bytes a file where a FileInfo costs 250.

    A :data:`FileInfo` is a tuple, a ``str`` and four ``int`` objects: a
    million empty files kept so held 300 MB in ``dupes --include-empty``.
    Here a file is its name's bytes after the last ``/`` in one buffer, its
    directory an index into ``dirs``, and its numbers items of 64-bit
    arrays. A file that has ``links``, or a number that does not fit, is
    also kept whole in ``whole``, by position. Only an mtime can be such a
    number (past the year 2262, in nanoseconds): sizes, devices and inodes
    are 64-bit numbers to the system, so the columns read directly
    (``sizes``, ``devs``, ``inos``) hold every file's own.

    It reads back as a sequence of FileInfo tuples, each built when asked
    for (``files[i]``, iteration), so what reads a list of them reads this
    too, one file at a time. ``files[a:b]`` and :meth:`take` make new
    PackedFiles; :meth:`extend` and :meth:`extend_tuples` append. Pickled,
    it is its buffers.
    """

    __slots__ = ("dirs", "_numbers", "dir_at", "names", "ends", "sizes", "mtimes", "devs",
                 "inos", "whole")

    def __init__(self) -> None:
        self.dirs: list[str] = []
        self._numbers: dict[str, int] | None = {}  # dirs' positions, made again when needed
        self.dir_at = array("I")
        self.names = bytearray()
        self.ends = array("q")  # where each name ends in ``names``
        self.sizes = array("q")
        self.mtimes = array("q")
        self.devs = array("q")
        self.inos = array("Q")
        self.whole: dict[int, FileInfo] = {}

    def _columns(self) -> tuple[array[int], array[int], array[int], array[int]]:
        return self.sizes, self.mtimes, self.devs, self.inos

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpickle_packed, (self.dirs, self.dir_at, self.names, self.ends,
                                  *self._columns(), self.whole)

    def __repr__(self) -> str:
        return f"<PackedFiles of {len(self)} files>"

    def __len__(self) -> int:
        return len(self.ends)

    def _dir(self, directory: str) -> int:
        numbers = self._numbers
        if numbers is None:
            numbers = self._numbers = {d: i for i, d in enumerate(self.dirs)}
        number = numbers.get(directory)
        if number is None:
            number = numbers[directory] = len(self.dirs)
            self.dirs.append(directory)
        return number

    def path(self, i: int) -> str:
        """File ``i``'s path."""
        ends = self.ends
        name = self.names[ends[i - 1] if i else 0:ends[i]]
        return self.dirs[self.dir_at[i]] + name.decode(FS_ENCODING, FS_ERRORS)

    def sort_key(self) -> Callable[[int], bytes]:
        """A file's path as bytes, by position: the order of the report."""
        tops = list(map(_sort_key, self.dirs))
        names, ends, dir_at = self.names, self.ends, self.dir_at

        def key(i: int) -> bytes:
            return tops[dir_at[i]] + names[ends[i - 1] if i else 0:ends[i]]

        return key

    @overload
    def __getitem__(self, i: int) -> FileInfo: ...

    @overload
    def __getitem__(self, i: slice) -> PackedFiles: ...

    def __getitem__(self, i: int | slice) -> FileInfo | PackedFiles:
        if isinstance(i, slice):
            return self.take(range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        f = self.whole.get(i) if self.whole else None
        if f is not None:
            return f
        return self.path(i), self.sizes[i], self.mtimes[i], self.devs[i], self.inos[i], ()

    def __iter__(self) -> Iterator[FileInfo]:
        dirs, names, whole = self.dirs, self.names, self.whole
        start = 0
        for i, (end, d, size, mtime, dev, ino) in enumerate(zip(
            self.ends, self.dir_at, *self._columns(), strict=True
        )):
            f = whole.get(i) if whole else None
            if f is None:
                path = dirs[d] + names[start:end].decode(FS_ENCODING, FS_ERRORS)
                f = path, size, mtime, dev, ino, ()
            yield f
            start = end

    def extend_tuples(self, files: Sequence[FileInfo]) -> None:
        """Append ``files``."""
        if not files:
            return
        base = len(self)
        paths = list(map(_path, files))
        top = paths[0][:paths[0].rfind("/") + 1]
        cut = len(top)
        joined = "\0".join(map(operator.itemgetter(slice(cut, None)), paths))  # no path holds a NUL
        if "/" not in joined and all(map(top.__eq__, map(operator.itemgetter(slice(cut)), paths))):
            # All in ``top``, as a walk's run of one directory: cut apart in a
            # few calls, not a Python step a file (packing takes 440 ns a
            # file so, 630 ns through the loop below).
            names = joined.encode(FS_ENCODING, FS_ERRORS).split(b"\0")
            self.dir_at.extend(array("I", [self._dir(top)]) * len(paths))
        else:
            dir_at = self.dir_at
            names = []
            last, cut_at, number = "", -1, 0
            for path in paths:
                at = path.rfind("/") + 1
                # Files come a directory at a time: look the directory up once.
                if at != cut_at or not path.startswith(last):
                    last, cut_at = path[:at], at
                    number = self._dir(last)
                dir_at.append(number)
                names.append(path[at:].encode(FS_ENCODING, FS_ERRORS))
        del paths, joined
        self.ends.extend(itertools.islice(
            itertools.accumulate(map(len, names), initial=len(self.names)), 1, None))
        self.names += b"".join(names)
        del names
        columns = self._columns()
        try:
            for column, get in zip(columns, (_size, _mtime, _dev, _ino), strict=True):
                column.extend(map(get, files))
        except OverflowError:
            # A number 64 bits can't hold: the file is kept whole, and its
            # columns hold 0 for that number.
            for column in columns:
                del column[base:]
            for i, f in enumerate(files, base):
                for column, number in zip(columns, f[1:5], strict=True):
                    try:
                        column.append(number)
                    except OverflowError:
                        column.append(0)
                        self.whole[i] = f
        if any(map(_links, files)):
            self.whole.update((i, f) for i, f in enumerate(files, base) if f[5])

    def extend(self, other: PackedFiles, positions: Sequence[int] | None = None) -> None:
        """Append the files of ``other`` at ``positions``, or all of them."""
        base = len(self)
        end = len(self.names)
        if positions is None:
            table = [self._dir(d) for d in other.dirs]
            self.dir_at.extend(map(table.__getitem__, other.dir_at))
            self.names += other.names
            self.ends.extend(map(end.__add__, other.ends))
            for mine, theirs in zip(self._columns(), other._columns(), strict=True):
                mine.extend(theirs)
            self.whole.update((base + i, f) for i, f in other.whole.items())
            return
        names, ends, dir_at, dirs = other.names, other.ends, other.dir_at, other.dirs
        my_dir_at = self.dir_at
        numbers: dict[int, int] = {}  # other's directory numbers -> ours
        pieces = []
        for i in positions:
            pieces.append(names[ends[i - 1] if i else 0:ends[i]])
            d = dir_at[i]
            number = numbers.get(d)
            if number is None:
                number = numbers[d] = self._dir(dirs[d])
            my_dir_at.append(number)
        self.ends.extend(itertools.islice(itertools.accumulate(map(len, pieces), initial=end),
                                          1, None))
        self.names += b"".join(pieces)
        for mine, theirs in zip(self._columns(), other._columns(), strict=True):
            mine.extend(map(theirs.__getitem__, positions))
        if other.whole:
            whole = other.whole
            self.whole.update((base + k, whole[i]) for k, i in enumerate(positions) if i in whole)

    def take(self, positions: Sequence[int]) -> PackedFiles:
        """The files at ``positions``, in that order, packed."""
        taken = PackedFiles()
        taken.extend(self, positions)
        return taken


def _unpickle_packed(dirs: list[str], dir_at: array[int], names: bytearray, ends: array[int],
                     sizes: array[int], mtimes: array[int], devs: array[int], inos: array[int],
                     whole: dict[int, FileInfo]) -> PackedFiles:
    out = PackedFiles.__new__(PackedFiles)
    out.dirs, out._numbers, out.dir_at, out.names, out.ends = dirs, None, dir_at, names, ends
    out.sizes, out.mtimes, out.devs, out.inos, out.whole = sizes, mtimes, devs, inos, whole
    return out


def pack(files: Sequence[FileInfo]) -> PackedFiles:
    """``files`` as a PackedFiles."""
    out = PackedFiles()
    out.extend_tuples(files)
    return out


# The candidates of a group: a list of FileInfo, or packed when many.
Files = list[FileInfo] | PackedFiles


class Group(NamedTuple):
    """Files that agree on everything the stages so far have looked at.

    ``digest`` is unset after stages 1 and 2, the head digest after stage 3
    and the contents digest after stage 4. When ``size`` is at most the head
    size, the head digest already is the contents digest.
    """

    size: int
    files: Files
    digest: str | None = None


# Group(...) without the named tuple's Python __new__: one per group.
_group: Callable[[tuple[int, Files, str | None]], Group] = functools.partial(
    tuple.__new__, Group
)
# What Hashing.split leaves in place of a group it is done with.
_RELEASED = Group(0, [])


def _sort_key(path: str) -> bytes:
    """A path as its bytes (``os.fsencode`` without its checks): the order of the report."""
    return path.encode(FS_ENCODING, FS_ERRORS)


def _file_key(f: FileInfo) -> bytes:
    return f[0].encode(FS_ENCODING, FS_ERRORS)


_ino = operator.itemgetter(4)  # a FileInfo's inode, without a call per file
_path = operator.itemgetter(0)  # a FileInfo's path; for ASCII names, the order of their bytes


def _in_path_order(errors: Iterable[DupeError]) -> list[DupeError]:
    """Errors in byte order of their paths: the same lines whichever process met them."""
    return sorted(errors, key=lambda e: _sort_key(e.path))


def _vanished(err: int | None) -> bool:
    # A file that no longer exists is no one's duplicate.
    return err == errno.ENOENT


def _walk_error(e: WalkError) -> DupeError:
    if e.error == PSEUDO_FS:
        return DupeError(e.path, e.error, None, False, skipped=True)
    harmless = e.error != CHANGED_DURING_WALK and (
        e.loop_ancestor is not None
        or e.error in (LOOP, NOT_REGULAR)
        # A link to itself, or links to each other, under -L: the loop is
        # not a file, so it hides nothing.
        or (e.depth > 0 and (_vanished(e.errno) or e.errno == errno.ELOOP))
    )
    return DupeError(e.path, e.error, e.errno, not harmless)


class SizeLimits(NamedTuple):
    """Which files stage 1 keeps, by size."""

    min_size: int = 0
    max_size: int | None = None
    include_empty: bool = False


def stat_file(
    path: str, limits: SizeLimits, descent: Descent | None = None
) -> FileInfo | DupeError | None:
    """``stat`` one file: its :data:`FileInfo`, an error, or None if out of limits.

    A path named by the caller is followed; a :class:`~parhash.walk.Walked`
    one is looked at as the walk found it, through ``descent``'s open
    directories, without following a link it may have become
    (:data:`~parhash.walk.CHANGED`): what stage 1 sees of a file is what
    the later stages check that they read.
    """
    if type(path) is not Walked:
        try:
            st = os.stat(path)
        except OSError as e:
            return DupeError(path, reason(e), e.errno, not _vanished(e.errno))
        return _row(path, st, limits)
    active = descent if descent is not None else Descent()
    try:
        directory, name = active.parent(path)
        st = os.stat(name, dir_fd=directory, follow_symlinks=False)
    except OSError as e:
        return DupeError(str(path), walked_reason(e), e.errno, not _vanished(e.errno))
    finally:
        if active is not descent:
            active.close()
    if stat.S_ISLNK(st.st_mode):
        return DupeError(str(path), CHANGED_DURING_WALK)
    return _row(str(path), st, limits)


def _row(path: str, st: os.stat_result, limits: SizeLimits) -> FileInfo | DupeError | None:
    if not stat.S_ISREG(st.st_mode):  # replaced since the walk saw a file
        return DupeError(path, NOT_REGULAR, None, False)
    size = st.st_size
    if size < limits.min_size or (limits.max_size is not None and size > limits.max_size):
        return None
    if size == 0 and not limits.include_empty:
        return None
    return (path, size, st.st_mtime_ns, st.st_dev, st.st_ino, ())


def stat_files(
    items: Iterable[str | WalkError | Pause],
    *,
    min_size: int = 0,
    max_size: int | None = None,
    include_empty: bool = False,
    progress: ProgressFn | None = None,
) -> Iterator[FileInfo | DupeError]:
    """``stat`` each walked file once; yield the ones within the size limits.

    Empty files are left out unless ``include_empty``. Walk errors and files
    that can't be ``stat``-ed come back as :class:`DupeError` values.
    """
    limits = SizeLimits(min_size, max_size, include_empty)
    count = 0
    descent = Descent()
    try:
        for item in items:
            if not isinstance(item, str):
                if isinstance(item, Pause):
                    continue  # every file is wanted before stage 1 ends anyway
                yield _walk_error(item)
                continue
            got = stat_file(item, limits, descent)
            if got is None:
                continue
            if isinstance(got, DupeError):
                yield got
            else:
                yield got
                count += 1
                if progress is not None and count % 1024 == 0:
                    progress(Stage.SIZE, count, 0)
    finally:
        descent.close()


# --- Stage 1 over several processes ---------------------------------------------

# Entries (files kept, subdirectories, errors) a walk task meets before it
# hands the directories it has not read yet back to the parent, to share
# them out: enough that a task outweighs its round trip, few enough that
# both workers stay busy to the end. A directory is never split.
WALK_BUDGET = 2048
# The first task, in the parent: a tree this small is walked without a pool.
# A larger one needs the pool for its heads anyway, so the pool should start
# soon.
FIRST_WALK_BUDGET = 512
# Directories per walk task, when the parent shares them out.
WALK_TASK_DIRS = 8


class Listing(NamedTuple):
    """What one walk task found: files ``stat``-ed, errors, directories left.

    Past :data:`PACK_RUN` files, the files go in ``runs`` of that many, packed.
    """

    taken: int  # the task's directories, read or handed back in ``rest``
    files: list[FileInfo]
    errors: list[DupeError]
    rest: list[Directory]
    runs: list[PackedFiles]


def walk_and_stat(
    select: Selector | None,
    limits: SizeLimits,
    dirs: list[Directory],
    budget: int = WALK_BUDGET,
) -> list[Listing]:
    """Read ``dirs`` and the directories below them, ``stat`` each file found.

    Runs in a worker, or in the parent for the first task. Stops after
    ``budget`` entries, handing back what it has not read yet; a directory
    is read whole, however large.
    """
    walk = _walk_and_stat(select, limits, dirs, budget)
    runs = []
    while True:
        try:
            runs.append(next(walk))
        except StopIteration as done:
            listing: Listing = done.value
            listing.runs.extend(runs)
            return [listing]


def _walk_and_stat(
    select: Selector | None, limits: SizeLimits, dirs: list[Directory], budget: int
) -> Generator[PackedFiles, None, Listing]:
    """:func:`walk_and_stat`, yielding its packed runs as they fill.

    The parent reads its first task with it, so that a huge directory goes
    to the size groups a run at a time: held whole until the listing ends,
    its runs and the groups they went to would both be in memory.
    """
    files: list[FileInfo] = []
    errors: list[DupeError] = []
    stack = dirs[::-1]
    seen = 0
    descent = Descent()
    try:
        while stack and seen < budget:
            subdirs: list[Directory] = []
            for item in read_dir(
                stack.pop(), select=select, stat_files=True, descent=descent, skip_pseudo=True
            ):
                seen += 1
                if type(item) is tuple:  # a file, not one of the named tuples
                    path, st = cast(Stated, item)
                    got = _row(path, st, limits)
                    if isinstance(got, DupeError):
                        errors.append(got)
                    elif got is not None:
                        files.append(got)
                        if len(files) >= PACK_RUN:
                            yield pack(files)
                            files = []
                elif isinstance(item, Directory):
                    subdirs.append(item)
                else:
                    assert isinstance(item, WalkError)
                    errors.append(_walk_error(item))
            stack.extend(reversed(subdirs))
    finally:
        descent.close()
    return Listing(len(dirs), files, errors, stack[::-1], [])


WALKER_DIED = "worker process died while reading this directory"


def _lost_dir(d: Directory, reason: str = WORKER_DIED) -> Listing:
    # The pool has already tried this directory alone, twice (or gave up on
    # it for another ``reason``, which the pool may pass).
    return Listing(1, [], [DupeError(d.shown, WALKER_DIED if reason == WORKER_DIED else reason)],
                   [], [])


def _dir_tasks(dirs: list[Directory]) -> Iterator[list[Directory]]:
    for i in range(0, len(dirs), WALK_TASK_DIRS):
        yield dirs[i:i + WALK_TASK_DIRS]


def _files_of(listing: Listing) -> Iterator[list[FileInfo] | PackedFiles]:
    """A listing's files, each run let go of once the caller has taken it."""
    yield listing.files
    runs = listing.runs
    runs.reverse()
    while runs:
        yield runs.pop()


def _count(listing: Listing) -> int:
    return len(listing.files) + sum(map(len, listing.runs))


def walk_in_parallel(
    tops: list[Directory],
    hashing: Hashing,
    select: Selector | None,
    limits: SizeLimits,
    errors: list[DupeError],
    progress: ProgressFn | None = None,
    count: int = 0,
) -> Iterator[list[FileInfo] | PackedFiles]:
    """Stage 1 for directories named by the caller, on the hashing stages' executor.

    The first task runs in this process, so a small tree never starts a
    pool; what it leaves goes to the workers, a few directories a task,
    and each task hands back what it had no time to read. Yields the files
    of each task as it ends (a list, then any packed runs), in no set order;
    the errors go to ``errors``.
    """
    import queue

    if not tops:
        return
    walk = _walk_and_stat(select, limits, tops, FIRST_WALK_BUDGET)
    while True:
        try:
            run = next(walk)
        except StopIteration as done:
            first: Listing = done.value
            break
        count += len(run)
        yield run
    count += len(first.files)
    yield first.files
    errors.extend(first.errors)
    if not first.rest:
        return
    todo: queue.SimpleQueue[list[Directory] | None] = queue.SimpleQueue()
    outstanding = 0

    def share(dirs: list[Directory]) -> None:
        nonlocal outstanding
        for task in _dir_tasks(dirs):
            todo.put(task)
            outstanding += len(task)

    def tasks() -> Iterator[list[Directory]]:
        while (task := todo.get()) is not None:
            yield task

    share(first.rest)
    executor = hashing.executor()
    try:
        for listings in executor.map_unordered(
            functools.partial(walk_and_stat, select, limits), tasks(), lost=_lost_dir
        ):
            for listing in listings:
                count += _count(listing)
                yield from _files_of(listing)
                errors.extend(listing.errors)
                share(listing.rest)
                outstanding -= listing.taken
            if progress is not None:
                progress(Stage.SIZE, count, 0)
            if not outstanding:
                todo.put(None)
    finally:
        todo.put(None)  # the reader of tasks() must not wait for ever


class SizeGroups:
    """Stage 1's groups, built as the walk's files arrive, in batches.

    It also notes the sizes where an inode number came twice: only a group
    of such a size can hold two names of one file, for stage 2 to merge.
    Both happen in one step per file, while the file is fresh in memory.

    A size's files go to a :class:`PackedFiles` in ``packed`` once they are
    :data:`PACK_AT`; the list in ``by_size`` then holds only those come
    since. Stage 2 looks at every packed group, so the inodes of files that
    come packed (a huge directory's, from the walk) are not noted: a set of
    a million inodes is 60 MB.
    """

    def __init__(self) -> None:
        self.by_size: dict[int, list[FileInfo]] = {}
        self.packed: dict[int, PackedFiles] = {}
        self.inodes: set[int] = set()
        self.linked: set[int] = set()  # sizes whose group may hold one file twice
        self.files = 0

    def add(self, files: Iterable[FileInfo] | PackedFiles) -> None:
        if type(files) is PackedFiles:
            self._add_packed(files)
            return
        by_size = self.by_size
        get = by_size.get
        inodes = self.inodes
        seen = len(inodes)
        n = self.files
        for f in files:
            n += 1
            size = f[1]
            same = get(size)
            if same is None:
                by_size[size] = [f]
            else:
                same.append(f)
                if len(same) >= PACK_AT:
                    self._pack(size, same)
            inodes.add(f[4])
            if len(inodes) == seen:
                self.linked.add(size)
            else:
                seen += 1
        self.files = n

    def _pack(self, size: int, files: list[FileInfo]) -> PackedFiles:
        """Move ``files`` (``by_size[size]``, left empty) to the packed group of ``size``."""
        to = self.packed.get(size)
        if to is None:
            to = self.packed[size] = PackedFiles()
        to.extend_tuples(files)
        files.clear()
        return to

    def _add_packed(self, run: PackedFiles) -> None:
        sizes = run.sizes
        if not sizes:
            return
        # Positions by size; None for all, when the run has one size (a
        # directory of empty files, or of photos from one camera).
        at_size: dict[int, list[int] | None] = {}
        if sizes.count(sizes[0]) == len(sizes):
            at_size[sizes[0]] = None
        else:
            for i, size in enumerate(sizes):
                got = at_size.get(size)
                if got is None:
                    at_size[size] = [i]
                else:
                    got.append(i)
        for size, positions in at_size.items():
            count = len(sizes) if positions is None else len(positions)
            same = self.by_size.setdefault(size, [])
            if size not in self.packed and len(same) + count < PACK_AT:
                self.add([run[i] for i in (range(count) if positions is None else positions)])
                continue
            self._pack(size, same).extend(run, positions)
            self.files += count

    def groups(self) -> list[Group]:
        """The sizes shared by two files or more."""
        out = []
        packed = self.packed
        for size, files in self.by_size.items():
            if size in packed:
                group = self._pack(size, files)
                if len(group) > 1:
                    out.append(_group((size, group, None)))
            elif len(files) > 1:
                out.append(_group((size, files, None)))
        return out

    def clear(self) -> None:
        """Let go of the candidates: the groups hold them now."""
        self.by_size.clear()
        self.packed.clear()


def group_by_size(files: Iterable[FileInfo]) -> list[Group]:
    """Stage 1: group files by size, keeping the sizes shared by two or more."""
    sizes = SizeGroups()
    sizes.add(files)
    return sizes.groups()


def group_by_inode(
    groups: list[Group], linked: Container[int] | None = None, *, keep_links: bool = True
) -> list[Group]:
    """Stage 2: make the names of one file one candidate; keep groups of two files or more.

    The candidate is named by the first of its names in byte order and keeps
    the others in ``links`` (left empty without ``keep_links``). The same
    name met twice counts once. With ``linked`` (:attr:`SizeGroups.linked`),
    groups of other sizes are taken as they are, but for packed ones.
    """
    out = []
    for group in groups:
        files = group[1]
        if type(files) is PackedFiles:
            merged = _merge_packed(files, keep_links)
            if merged is not None:
                out.append(group if merged is files else _group((group[0], merged, group[2])))
            continue
        if (
            (linked is not None and group[0] not in linked)
            or (files[0][4] != files[1][4] if len(files) == 2
                else len(set(map(_ino, files))) == len(files))
        ):
            # The common case: every name a file of its own (files on two
            # devices may share an inode number, never a distinct one).
            out.append(group)
            continue
        by_inode: dict[tuple[int, int], list[FileInfo]] = {}
        for f in files:
            by_inode.setdefault((f[3], f[4]), []).append(f)
        if len(by_inode) < 2:
            continue
        merged = []
        for names in by_inode.values():
            if len(names) == 1:
                merged.append(names[0])
                continue
            names.sort(key=_file_key)
            first = names[0][0]
            links = tuple(dict.fromkeys(f[0] for f in names[1:] if f[0] != first))
            merged.append(names[0][:5] + (links if keep_links else (),))
        out.append(_group((group[0], merged, group[2])))
    return out


def _merge_packed(files: PackedFiles, keep_links: bool) -> Files | None:
    """:func:`group_by_inode` for one packed group, in a few bytes a file.

    Returns ``files`` itself when every name is a file of its own, None when
    fewer than two files are left.
    """
    repeated = _repeated(files.inos)
    if not repeated:
        return files
    kept = array("q")
    by_ino = {ino: array("q") for ino in repeated}
    get = by_ino.get
    for i, ino in enumerate(files.inos):
        at = get(ino)
        if at is None:
            kept.append(i)
        else:
            at.append(i)
    del repeated
    by_inode: list[array[int]] = []
    devs = files.devs
    one_device = devs.count(devs[0]) == len(devs)
    for at in by_ino.values():
        if one_device or len({devs[i] for i in at}) == 1:
            by_inode.append(at)
        else:  # one inode number on several devices: several files
            on: dict[int, array[int]] = {}
            for i in at:
                on.setdefault(devs[i], array("q")).append(i)
            by_inode.extend(on.values())
    del by_ino
    merged: list[FileInfo] = []  # with their links
    by_path = files.sort_key()
    for names in by_inode:
        if len(names) == 1:
            kept.append(names[0])
        elif not keep_links:
            kept.append(min(names, key=by_path))
        else:
            order = sorted(names, key=by_path)
            first = files.path(order[0])
            links = tuple(dict.fromkeys(p for p in map(files.path, order[1:]) if p != first))
            merged.append(files[order[0]][:5] + (links,))
    del by_inode
    count = len(kept) + len(merged)
    if count < 2:
        return None
    if count < PACK_AT:
        return [files[i] for i in kept] + merged
    out = files.take(kept)
    out.extend_tuples(merged)
    return out


def _repeated(numbers: Sequence[int] | memoryview, shift: int = 0) -> set[int]:
    """The numbers found more than once in ``numbers``, all below 2**64.

    A set of them all would cost some 60 bytes a number. This counts the
    numbers, up to two, by some of their bits (from bit ``shift`` on) in a
    table of 8 to 16 bytes a number, and keeps those whose bits came twice:
    where the bits are random (the heads of digests), one number in ten. It
    looks at the next bits of those the same way, until what is kept no
    longer shrinks, and counts that exactly.
    """
    count = len(numbers)
    if count > 1 << 12 and shift < 64:
        bits = (8 * count).bit_length()
        mask = (1 << bits) - 1
        seen = bytearray(mask + 1)
        for n in numbers:
            low = n >> shift & mask
            seen[low] = 2 if seen[low] else 1
        if 2 not in seen:
            return set()
        kept = array("Q", (n for n in numbers if seen[n >> shift & mask] == 2))
        del seen
        if len(kept) < count:
            return _repeated(kept, shift + bits)
        numbers = kept
    counts: dict[int, int] = {}
    for n in numbers:
        counts[n] = counts.get(n, 0) + 1
    return {n for n, times in counts.items() if times > 1}


# A run of one group's files: (group number, start in the group, whether it
# is the whole group, its files). A worker may drop lone files of a whole group.
# The files go as they are: a whole group is its own list, sent unchanged. A
# run of a packed group goes as a list too, unless it is longer than PACK_AT
# (a --chunksize that large): then it goes packed, and the worker builds
# its tuples one at a time.
Part = tuple[int, int, bool, Files]


class Split(NamedTuple):
    """What a worker learnt of a :class:`Part`: its files bucketed by digest.

    ``buckets`` holds ``(digest, positions in the part)``; for a whole part
    only the buckets of two files or more, since the others are no one's
    duplicate. ``errors`` has the files that failed or changed.
    """

    group: int
    start: int
    taken: int  # files in the part
    buckets: list[tuple[str, list[int]]]
    errors: list[DupeError]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return tuple.__new__, (Split, tuple(self))


def split_parts(job: Job, parts: Sequence[Part]) -> list[Split]:
    """Hash each part's files (their heads when ``job.head`` is set) and bucket them.

    Runs in a worker. A file that fails to read, or no longer matches the
    ``stat`` of stage 1, leaves its part with a :class:`DupeError`. Only the
    buckets go back, not a digest per file: the parent's share of the work
    is one step per group that survives, not one per file.
    """
    if job.head is not None:
        return _split_heads(job, job.head, parts)
    digest_of = _digester(job)
    out = []
    for k, (number, start, whole, files) in enumerate(parts):
        by_digest: dict[str, list[int]] = {}
        errors = []
        for i, sent in enumerate(files):
            note_item(k, i)
            got = digest_of(sent[0])
            if isinstance(got, DupeError):
                errors.append(got)
            elif got[1] != sent[1:5]:
                errors.append(DupeError(sent[0], CHANGED))
            else:
                by_digest.setdefault(got[0], []).append(i)
        buckets = [(d, at) for d, at in by_digest.items() if len(at) > 1 or not whole]
        out.append(Split(number, start, len(files), buckets, errors))
    return out


def _split_heads(job: Job, head: int, parts: Sequence[Part]) -> list[Split]:
    """:func:`split_parts` for heads, the stage that reads most candidates.

    Each file costs an open, one read, an fstat and a close, with no Python
    call in between: the loop of :func:`split_parts` through
    :func:`~parhash.worker.read_head` cost a tenth more. A file that is not
    read whole in one go (a short read, a change under the read, not a
    regular file any more) is read again by ``read_head``, which sorts it out.
    """
    careful = _digester(job)
    hexdigest = hexdigest_function(job.algos[0])
    view, views = read_buffer(head)
    open_, readv, fstat, close, is_regular = os.open, os.readv, os.fstat, os.close, stat.S_ISREG
    out = []
    for k, (number, start, whole, files) in enumerate(parts):
        by_digest: dict[str, list[int]] = {}
        errors = []
        for i, f in enumerate(files):
            note_item(k, i)
            path = f[0]
            try:
                fd = open_(path, OPEN_FLAGS)
                try:
                    total = readv(fd, views)
                    st = fstat(fd)
                finally:
                    close(fd)
            except OSError as e:
                errors.append(DupeError(path, reason(e), e.errno, not _vanished(e.errno)))
                continue
            size = st.st_size
            if total == (size if size < head else head) and is_regular(st.st_mode):
                if (size != f[1] or st.st_mtime_ns != f[2] or st.st_dev != f[3]
                        or st.st_ino != f[4]):
                    errors.append(DupeError(path, CHANGED))
                    continue
                key = hexdigest(view[:total])
            else:
                got = careful(path)
                if isinstance(got, DupeError):
                    errors.append(got)
                    continue
                if got[1] != f[1:5]:
                    errors.append(DupeError(path, CHANGED))
                    continue
                key = got[0]
            same = by_digest.get(key)
            if same is None:
                by_digest[key] = [i]
            else:
                same.append(i)
        buckets = [(d, at) for d, at in by_digest.items() if len(at) > 1 or not whole]
        out.append(Split(number, start, len(files), buckets, errors))
    return out


# A digest, with the size, mtime_ns, dev and ino the reader saw.
Seen = tuple[str, tuple[int, int, int, int]]


def _digester(job: Job) -> Callable[[str], Seen | DupeError]:
    """What a worker runs per file: a path in, its digest (of the head, with ``job.head``) out."""
    algo = job.algos[0]
    if job.head is None:
        hash_path = path_hasher(job)

        def digest_whole(path: str) -> Seen | DupeError:
            r = hash_path(path)
            if r.error is not None:
                return DupeError(path, r.error, r.errno, not _vanished(r.errno))
            return r.digests[algo], (r.size, r.mtime_ns, r.dev, r.ino)

        return digest_whole
    hexdigest = hexdigest_function(algo)
    head = job.head

    # The head stage reads most candidates, so it skips the Result that
    # hash_path builds (a third of its cost on small files).
    def digest_head(path: str) -> Seen | DupeError:
        try:
            chunk, st, problem = read_head(path, head)
        except OSError as e:
            return DupeError(path, reason(e), e.errno, not _vanished(e.errno))
        if problem is not None:
            return DupeError(path, problem)
        return hexdigest(chunk), (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)

    return digest_head


def cut_parts(
    groups: Sequence[Group], cost: Callable[[int], int], chunksize: int, batch_bytes: int
) -> Iterator[list[Part]]:
    """Cut ``groups`` into batches of :class:`Part` for the workers.

    A batch closes at ``chunksize`` files or ``batch_bytes`` bytes to read
    (``cost`` of a size); a file costing ``batch_bytes`` or more travels alone. A group goes
    whole into a batch where it fits, else in runs over several batches.
    """
    batch: list[Part] = []
    count = nbytes = 0
    for number, group in enumerate(groups):
        files = group[1]
        each = cost(group[0])
        if each >= batch_bytes:
            whole = len(files) == 1
            for i, f in enumerate(files):
                alone: list[FileInfo] = [f]
                yield [(number, i, whole, alone)]
            continue
        start = 0
        while start < len(files):
            room = min(chunksize - count, -(-(batch_bytes - nbytes) // max(each, 1)))
            run: Files
            if start == 0 and room >= len(files):
                run = files if type(files) is list or len(files) > PACK_AT else list(files)
                batch.append((number, start, True, run))
            else:
                stop = min(start + room, len(files))
                run = (files[start:stop] if type(files) is list or stop - start > PACK_AT
                       else [files[i] for i in range(start, stop)])
                batch.append((number, start, False, run))
            start += len(run)
            count += len(run)
            nbytes += len(run) * each
            if count >= chunksize or nbytes >= batch_bytes:
                yield batch
                batch = []
                count = nbytes = 0
    if batch:
        yield batch


class Hashing:
    """What the hashing stages share: one executor, the digest, the errors met.

    The executor is made on first use: this process for a job of at most
    ``INLINE_MAX_FILES`` files and ``INLINE_MAX_BYTES`` bytes, or ``jobs=1``;
    otherwise a pool, which later stages reuse. :meth:`close` stops it.
    """

    def __init__(
        self,
        *,
        algo: str,
        head_size: int,
        jobs: int,
        chunksize: int,
        block_size: int,
        progress: ProgressFn | None = None,
        stats: PipelineStats | None = None,
    ) -> None:
        self.stats = stats
        self.algo = algo
        self.head_size = head_size
        self.jobs = jobs
        self.chunksize = chunksize
        self.block_size = block_size
        self.progress = progress
        self.errors: list[DupeError] = []
        self._pool: PoolExecutor | None = None

    def executor(self, files: int | None = None, nbytes: int = 0) -> Executor:
        """The pool, started now if need be; this process for a small job
        (``files`` given, and few) or ``jobs=1``."""
        if self._pool is not None:
            return self._pool
        if self.jobs == 1 or (
            files is not None and files <= INLINE_MAX_FILES and nbytes <= INLINE_MAX_BYTES
        ):
            return InlineExecutor()
        # Forked workers share this process's memory until they write to it;
        # a collection in a worker would touch every object the walk left
        # here and copy it. Frozen objects are never collected.
        gc.freeze()
        try:
            self._pool = PoolExecutor(self.jobs, self.stats)
        finally:
            gc.unfreeze()
        return self._pool

    def split(
        self, stage: Stage, groups: list[Group], settle: Callable[[Group], None] | None = None
    ) -> list[Group]:
        """Split every group by the digest of its files (their heads in the HEAD stage).

        Keeps the groups of two files or more. A file that fails, or no
        longer matches its stage-1 ``stat``, is left out and recorded in
        :attr:`errors`.

        With ``settle``, a group whose digest covers the whole of its files
        (in the HEAD stage, one no larger than the head) goes to ``settle``
        as soon as it is known, not into the result; and each group split
        whole leaves ``groups`` then, so that the files that are no one's
        duplicate are freed while the workers are still busy.
        """
        head = self.head_size if stage is Stage.HEAD else None

        def cost(size: int) -> int:
            return size if head is None else min(size, head)

        total = sum(len(g.files) for g in groups)
        executor = self.executor(total, sum(len(g.files) * cost(g.size) for g in groups))
        job = Job((self.algo,), self.block_size, head)
        out: list[Group] = []

        def keeper(size: int) -> Callable[[Group], None]:
            # Where a group of this size goes: settled once read whole.
            return out.append if settle is None or (head is not None and size > head) else settle

        # The digests of the groups that came back in several parts.
        runs: dict[int, _Digests] = {}
        lost: list[tuple[Part, str]] = []
        done = 0

        def lose(part: Part, reason: str = WORKER_DIED) -> Split:
            lost.append((part, reason))
            return Split(part[0], part[1], 0, [], [])

        def hash_parts(batches: Iterable[list[Part]]) -> None:
            nonlocal done
            for splits in executor.map_unordered(
                functools.partial(split_parts, job), batches, lost=lose
            ):
                for s in splits:
                    group = groups[s.group]
                    files = group.files
                    if s.errors:
                        self.errors.extend(s.errors)
                    if s.taken == len(files):
                        size = group[0]
                        keep = keeper(size)
                        for digest, at in s.buckets:
                            if len(at) > 1:
                                keep(_group((size, _pick(files, at), digest)))
                        if settle is not None:
                            groups[s.group] = _RELEASED
                    else:
                        digests = runs.get(s.group)
                        if digests is None:
                            digests = runs[s.group] = _Digests(len(files))
                        digests.add(s.start, s.buckets)
                    done += s.taken
                if self.progress is not None:
                    self.progress(stage, done, total)

        hash_parts(cut_parts(groups, cost, self.chunksize, BATCH_BYTES))
        while lost:
            # A part whose worker died on it twice goes again file by file, a
            # file a task, so that only a file that kills a worker by itself
            # is lost, not the group or run it came with.
            parts, lost[:] = lost[:], []
            self.errors.extend(
                DupeError(part[3][0][0], reason) for part, reason in parts if len(part[3]) == 1
            )
            hash_parts(
                [(number, start + i, False, [f])]
                for (number, start, _, files), _ in parts
                if len(files) > 1
                for i, f in enumerate(files)
            )
        for number, digests in runs.items():
            size, files, _ = groups[number]
            keep = keeper(size)
            for d, at in digests.shared():
                keep(_group((size, _pick(files, at), d)))
        return out

    def take_errors(self) -> list[DupeError]:
        """The errors met since the last call, in byte order of their paths."""
        errors, self.errors = self.errors, []
        return _in_path_order(errors)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class _Digests:
    """The digest of each file of a group that comes back in several parts.

    Only the digests that two files share make a group, but which those are
    is known only once every part is back: until then, each file's digest
    is kept, as its bytes at its place in one buffer (a dict of a million
    hex digests took 230 MB; this, 17 MB).
    """

    def __init__(self, count: int) -> None:
        self.count = count  # files in the group
        self.width = 0  # bytes a digest, once one came
        self.digests = bytearray()
        self.known = bytearray(count)  # 1 where a digest came: not for a file that failed

    def add(self, start: int, buckets: Iterable[tuple[str, Sequence[int]]]) -> None:
        """Take the buckets of a part that starts at ``start`` in its group."""
        known = self.known
        for digest, at in buckets:
            raw = bytes.fromhex(digest)
            width = len(raw)
            if not self.width:
                self.width = width
                self.digests = bytearray(width * self.count)
            digests = self.digests
            for i in at:
                place = start + i
                digests[place * width:(place + 1) * width] = raw
                known[place] = 1

    def shared(self) -> list[tuple[str, array[int]]]:
        """Each digest that two files or more have, with their positions."""
        width = self.width
        if not width:
            return []
        # A number from each digest's first bytes (read in place) finds the
        # repeated ones in a few bytes a file; only those are looked at whole.
        digests = memoryview(self.digests)
        if width % 8 == 0:
            heads = digests.cast("Q")[::width // 8]
        elif width % 4 == 0:
            heads = digests.cast("I")[::width // 4]
        else:
            heads = digests[::width]
        known = self.known
        repeated = _repeated(heads)
        by_digest: dict[bytes, array[int]] = {}
        for k, head in enumerate(heads):
            if head in repeated and known[k]:
                digest = bytes(digests[k * width:(k + 1) * width])
                at = by_digest.get(digest)
                if at is None:
                    at = by_digest[digest] = array("q")
                at.append(k)
        return [(digest.hex(), at) for digest, at in by_digest.items() if len(at) > 1]


def _pick(files: Files, at: Sequence[int]) -> Files:
    """The files at positions ``at``: packed if they are many."""
    if isinstance(files, list):
        return list(map(files.__getitem__, at))
    return files.take(at) if len(at) >= PACK_AT else [files[i] for i in at]


def group_by_head(
    groups: list[Group], hashing: Hashing, settle: Callable[[Group], None] | None = None
) -> list[Group]:
    """Stage 3: split groups by the digest of each file's first ``head_size`` bytes.

    With ``settle``, the groups this stage reads whole go there, not into the
    result, and ``groups`` is emptied as it goes (:meth:`Hashing.split`).
    """
    return hashing.split(Stage.HEAD, groups, settle)


def group_by_contents(
    groups: list[Group], hashing: Hashing, settle: Callable[[Group], None] | None = None
) -> list[Group]:
    """Stage 4: split groups by the digest of the whole contents.

    Groups of files no larger than the head were read whole by stage 3 and
    pass through unread. With ``settle``, every group found goes there, and
    the result is empty.
    """
    done = [g for g in groups if g.size <= hashing.head_size]
    todo = [g for g in groups if g.size > hashing.head_size]
    if settle is not None:
        for g in done:
            settle(g)
        done = []
    if not todo:
        return done
    return done + hashing.split(Stage.CONTENTS, todo, settle)


def _candidates(groups: list[Group]) -> int:
    return sum(len(g.files) for g in groups)


def _log_stage(stage: Stage, groups: list[Group], settled: Settled | None = None) -> None:
    files = _candidates(groups) + (settled.files if settled is not None else 0)
    count = len(groups) + (len(settled.groups) if settled is not None else 0)
    _info("%s: %d candidates left in %d groups", stage.value, files, count)


class Settled:
    """The groups no later stage can split, in their reported form, as they come."""

    def __init__(self, algo: str) -> None:
        self.algo = algo
        self.groups: list[DupeGroup] = []
        self.files = 0

    def __call__(self, group: Group) -> None:
        self.groups.append(to_dupe_group(group, self.algo))
        self.files += len(group[1])


def to_dupe_group(group: Group, algo: str) -> DupeGroup:
    """The reported form of a group that has been through every stage."""
    assert group.digest is not None
    files = group.files
    if len(files) == 2 and not files[0][5] and not files[1][5]:
        a, b = files[0][0], files[1][0]
        if not (a.isascii() and b.isascii()):
            a, b = sorted((a, b), key=_sort_key)
        elif b < a:
            a, b = b, a
        return _dupe_group((group.size, algo, group.digest, (a, b), ()))
    ascii = all(f[0].isascii() for f in files)
    files = sorted(files, key=_path if ascii else _file_key)
    return _dupe_group((
        group.size,
        algo,
        group.digest,
        tuple(map(_path, files)),
        tuple((f[0], *f[5]) for f in files if f[5]),
    ))


# DupeGroup(...) without the named tuple's Python __new__: one per group.
_dupe_group: Callable[[tuple[int, str, str, tuple[str, ...], tuple[tuple[str, ...], ...]]],
                      DupeGroup] = functools.partial(tuple.__new__, DupeGroup)


def report_order(groups: Iterable[DupeGroup]) -> list[DupeGroup]:
    """``groups`` most wasted bytes first, then by the bytes of the first path."""
    groups = list(groups)
    # An ASCII name sorts the same as a str and as bytes: most trees skip
    # encoding every name.
    if all(g.paths[0].isascii() for g in groups):
        return sorted(groups, key=lambda g: (-g.size * (len(g.paths) - 1), g.paths[0]))
    return sorted(groups, key=lambda g: (-g.wasted, _sort_key(g.paths[0])))


def find_dupes(
    paths: Iterable[str] = (".",),
    *,
    algo: str = DEFAULT_DUPES_ALGO,
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    head_size: int = HEAD_SIZE,
    min_size: int = 0,
    max_size: int | None = None,
    include_empty: bool = False,
    follow: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    listed: Iterable[str | Pause] = (),
    hardlinks: bool = True,
    progress: ProgressFn | None = None,
    stats: PipelineStats | None = None,
) -> Generator[DupeGroup | DupeError, None, None]:
    """Find the groups of files with identical contents under ``paths``.

    ``paths``, ``listed``, ``follow``, ``include`` and ``exclude`` choose files
    exactly as in :func:`parhash.scan`. Files smaller than ``min_size`` or
    larger than ``max_size`` are left out, and so are empty files unless
    ``include_empty``. ``algo`` is the digest that decides equality (any name
    in :data:`~parhash.algorithms.ALGORITHMS`; xxh128 by default: fast, and
    128 bits make a chance collision negligible, though not a crafted one:
    use a cryptographic digest such as sha256 for files from an adversary).

    Yields :class:`DupeError` values as the stages meet them (unreadable or
    changing files, walk errors), then every :class:`DupeGroup`, most wasted
    bytes first. A group's ``paths`` are distinct files; names of one file
    are never reported as duplicates of each other. A file or directory that
    the walk listed and that became a link is an error, never followed (see
    :mod:`parhash.walk`). Files and directories on pseudo file systems
    (``/proc``, ``/sys``...), whose sizes are not their contents, are left
    out with a notice: a :class:`DupeError` with ``skipped`` set, one per
    argument or directory. With ``hardlinks=False`` every group's
    ``hardlinks`` is left empty, and the other names of a file are let go
    of as soon as stage 2 has seen them: a million names cost some 120 MB
    to keep for a report that does not print them.

    Cost: one ``stat`` per file; one read of at most ``head_size`` bytes per
    file whose size another file has; one whole read per file larger than
    ``head_size`` whose head another file shares. ``progress`` is called as
    stages advance. Raises :class:`~parhash.algorithms.UnknownAlgorithm` or
    ``ValueError`` for bad arguments, before any work starts.
    """
    names = parse_algos([algo])
    if len(names) != 1:
        raise ValueError("dupes compares with exactly one algorithm")
    if chunksize is not None and chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    if head_size < 1:
        raise ValueError("head_size must be at least 1")
    if min_size < 0:
        raise ValueError("min_size must not be negative")
    if max_size is not None and max_size < min_size:
        raise ValueError("max_size must not be below min_size")
    select = Selector.from_patterns(include, exclude)
    hashing = Hashing(
        algo=names[0],
        head_size=head_size,
        jobs=clamp_jobs(jobs),
        chunksize=chunksize or DEFAULT_CHUNKSIZE,
        block_size=block_size,
        progress=progress,
        stats=stats,
    )
    # Without -L, each directory is read once whichever process reads it, so
    # the workers can share the walk; with -L, one process keeps the set of
    # directories entered, and walks alone.
    descend = follow or hashing.jobs == 1
    # Files on /proc, /sys and the like say sizes that are not their
    # contents: compared by size, each would be a change under the read.
    items = itertools.chain(
        walk_paths(paths, follow=follow, select=select, descend=descend, skip_pseudo=True),
        walk_paths(listed, follow=follow, select=select, expand_globs=False, descend=descend,
                   skip_pseudo=True),
    )
    limits = SizeLimits(min_size, max_size, include_empty)
    return _search(items, hashing, select, limits, progress, hardlinks)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, if it runs.

    The search keeps what it makes until its stage ends, so a collection
    frees nothing; each one traverses every candidate kept so far. Resumed,
    the collector would at once traverse all that the pause made, as young
    objects: they go straight to the oldest generation instead, which
    ``freeze`` then ``unfreeze`` do without looking at them (this also
    unfreezes what the caller froze, as starting a pool does). Nothing here
    yields inside.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def _kept_files(
    items: Iterable[FileInfo | DupeError], errors: list[DupeError]
) -> Iterator[FileInfo]:
    for item in items:
        if isinstance(item, DupeError):
            errors.append(item)
        else:
            yield item


def _search(
    items: Iterable[str | WalkError | Pause | Directory],
    hashing: Hashing,
    select: Selector | None,
    limits: SizeLimits,
    progress: ProgressFn | None,
    hardlinks: bool = True,
) -> Generator[DupeGroup | DupeError, None, None]:
    tops: list[Directory] = []

    def apart(items: Iterable[str | WalkError | Pause | Directory]) -> Iterator[
        str | WalkError | Pause
    ]:
        for item in items:
            if isinstance(item, Directory):
                tops.append(item)
            else:
                yield item

    try:
        late: list[DupeError] = []  # stage 1's errors, reported once it ends
        sizes = SizeGroups()
        with _collector_paused():
            sizes.add(_kept_files(
                stat_files(
                    apart(items),
                    min_size=limits.min_size,
                    max_size=limits.max_size,
                    include_empty=limits.include_empty,
                    progress=progress,
                ),
                late,
            ))
            # Grouped while the workers' listings arrive: the parent has time
            # to spare while they walk.
            for rows in walk_in_parallel(
                tops, hashing, select, limits, late, progress, sizes.files
            ):
                sizes.add(rows)
            groups = sizes.groups()
            sizes.clear()
        yield from _in_path_order(late)
        _info("walk: %d files", sizes.files)
        _log_stage(Stage.SIZE, groups)
        # Groups are reported as soon as a stage has read them whole: their
        # files are freed, and the report built, while the workers still read.
        settled = Settled(hashing.algo)
        with _collector_paused():
            groups = group_by_inode(groups, sizes.linked, keep_links=hardlinks)
            del sizes
            _log_stage(Stage.INODE, groups)
            hashed = bool(groups)
            if hashed:
                groups = group_by_head(groups, hashing, settled)
        if hashed:
            yield from hashing.take_errors()
            _log_stage(Stage.HEAD, groups, settled)
            with _collector_paused():
                groups = group_by_contents(groups, hashing, settled)
            yield from hashing.take_errors()
            _log_stage(Stage.CONTENTS, groups, settled)
        hashing.close()
        with _collector_paused():
            found = report_order(settled.groups)
        del settled
        yield from found
    finally:
        hashing.close()
