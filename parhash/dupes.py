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
executor of :mod:`parhash.pipeline` (a pool, or this process for small
jobs); the pool is started by the walk of a tree too big for one process,
or else by the first hashing stage that needs it. A worker reads each file
with the worker module's readers and sends back only the buckets of files
that agree, so the parent never handles a digest per file.

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
from collections.abc import Callable, Container, Generator, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast

from parhash.algorithms import hexdigest_function, parse_algos
from parhash.manifest import FS_ENCODING, FS_ERRORS
from parhash.pipeline import (
    BATCH_BYTES,
    DEFAULT_CHUNKSIZE,
    INLINE_MAX_BYTES,
    INLINE_MAX_FILES,
    WORKER_DIED,
    Executor,
    InlineExecutor,
    PipelineStats,
    PoolExecutor,
    clamp_jobs,
    note_item,
)
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


class Group(NamedTuple):
    """Files that agree on everything the stages so far have looked at.

    ``digest`` is unset after stages 1 and 2, the head digest after stage 3
    and the contents digest after stage 4. When ``size`` is at most the head
    size, the head digest already is the contents digest.
    """

    size: int
    files: list[FileInfo]
    digest: str | None = None


# Group(...) without the named tuple's Python __new__: one per group.
_group: Callable[[tuple[int, list[FileInfo], str | None]], Group] = functools.partial(
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
    """What one walk task found: files ``stat``-ed, errors, directories left."""

    taken: int  # the task's directories, read or handed back in ``rest``
    files: list[FileInfo]
    errors: list[DupeError]
    rest: list[Directory]


def walk_and_stat(
    select: Selector | None,
    limits: SizeLimits,
    dirs: list[Directory],
    budget: int = WALK_BUDGET,
) -> list[Listing]:
    """Read ``dirs`` and the directories below them, ``stat`` each file found.

    Runs in a worker, or in the parent for the first task. Stops after
    ``budget`` entries, handing back what it has not read yet.
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
                elif isinstance(item, Directory):
                    subdirs.append(item)
                else:
                    assert isinstance(item, WalkError)
                    errors.append(_walk_error(item))
            stack.extend(reversed(subdirs))
    finally:
        descent.close()
    return [Listing(len(dirs), files, errors, stack[::-1])]


WALKER_DIED = "worker process died while reading this directory"


def _lost_dir(d: Directory, reason: str = WORKER_DIED) -> Listing:
    # The pool has already tried this directory alone, twice (or gave up on
    # it for another ``reason``, which the pool may pass).
    return Listing(1, [], [DupeError(d.shown, WALKER_DIED if reason == WORKER_DIED else reason)],
                   [])


def _dir_tasks(dirs: list[Directory]) -> Iterator[list[Directory]]:
    for i in range(0, len(dirs), WALK_TASK_DIRS):
        yield dirs[i:i + WALK_TASK_DIRS]


def walk_in_parallel(
    tops: list[Directory],
    hashing: Hashing,
    select: Selector | None,
    limits: SizeLimits,
    errors: list[DupeError],
    progress: ProgressFn | None = None,
    count: int = 0,
) -> Iterator[list[FileInfo]]:
    """Stage 1 for directories named by the caller, on the hashing stages' executor.

    The first task runs in this process, so a small tree never starts a
    pool; what it leaves goes to the workers, a few directories a task,
    and each task hands back what it had no time to read. Yields the files
    of each task as it ends, in no set order; the errors go to ``errors``.
    """
    import queue

    if not tops:
        return
    first = walk_and_stat(select, limits, tops, FIRST_WALK_BUDGET)[0]
    yield first.files
    count += len(first.files)
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
                yield listing.files
                errors.extend(listing.errors)
                share(listing.rest)
                outstanding -= listing.taken
                count += len(listing.files)
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
    """

    def __init__(self) -> None:
        self.by_size: dict[int, list[FileInfo]] = {}
        self.inodes: set[int] = set()
        self.linked: set[int] = set()  # sizes whose group may hold one file twice
        self.files = 0

    def add(self, files: Iterable[FileInfo]) -> None:
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
            inodes.add(f[4])
            if len(inodes) == seen:
                self.linked.add(size)
            else:
                seen += 1
        self.files = n

    def groups(self) -> list[Group]:
        """The sizes shared by two files or more."""
        return [_group((size, files, None)) for size, files in self.by_size.items()
                if len(files) > 1]


def group_by_size(files: Iterable[FileInfo]) -> list[Group]:
    """Stage 1: group files by size, keeping the sizes shared by two or more."""
    sizes = SizeGroups()
    sizes.add(files)
    return sizes.groups()


def group_by_inode(groups: list[Group], linked: Container[int] | None = None) -> list[Group]:
    """Stage 2: make the names of one file one candidate; keep groups of two files or more.

    The candidate is named by the first of its names in byte order and keeps
    the others in ``links``. The same name met twice counts once. With
    ``linked`` (:attr:`SizeGroups.linked`), groups of other sizes are taken
    as they are.
    """
    out = []
    for group in groups:
        files = group[1]
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
            merged.append(names[0][:5] + (links,))
        out.append(_group((group[0], merged, group[2])))
    return out


# A run of one group's files: (group number, start in the group, whether it
# is the whole group, its files). A worker may drop lone files of a whole group.
# The files go as they are: a whole group is its own list, sent unchanged.
Part = tuple[int, int, bool, list[FileInfo]]


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
    (``cost`` of a size), as :func:`~parhash.pipeline.batch_by_size` cuts a
    scan; a file costing ``batch_bytes`` or more travels alone. A group goes
    whole into a batch where it fits, else in runs over several batches.
    """
    batch: list[Part] = []
    count = nbytes = 0
    for number, group in enumerate(groups):
        files = group[1]
        each = cost(group[0])
        if each >= batch_bytes:
            whole = len(files) == 1
            yield from ([(number, i, whole, [f])] for i, f in enumerate(files))
            continue
        start = 0
        while start < len(files):
            room = min(chunksize - count, -(-(batch_bytes - nbytes) // max(each, 1)))
            run = files if start == 0 and room >= len(files) else files[start:start + room]
            batch.append((number, start, run is files, run))
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

        # Buckets of the groups that came back in several parts, by group.
        runs: dict[int, dict[str, list[FileInfo]]] = {}
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
                                keep(_group((size, list(map(files.__getitem__, at)), digest)))
                        if settle is not None:
                            groups[s.group] = _RELEASED
                    else:
                        merged = runs.setdefault(s.group, {})
                        for digest, at in s.buckets:
                            merged.setdefault(digest, []).extend(files[s.start + i] for i in at)
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
        for number, merged in runs.items():
            size = groups[number].size
            keep = keeper(size)
            for d, run in merged.items():
                if len(run) > 1:
                    keep(_group((size, run, d)))
        return out

    def take_errors(self) -> list[DupeError]:
        """The errors met since the last call, in byte order of their paths."""
        errors, self.errors = self.errors, []
        return _in_path_order(errors)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


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
    argument or directory.

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
    return _search(items, hashing, select, limits, progress)


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
            sizes.by_size.clear()  # the groups hold the candidates; the rest can go
        yield from _in_path_order(late)
        _info("walk: %d files", sizes.files)
        _log_stage(Stage.SIZE, groups)
        # Groups are reported as soon as a stage has read them whole: their
        # files are freed, and the report built, while the workers still read.
        settled = Settled(hashing.algo)
        with _collector_paused():
            groups = group_by_inode(groups, sizes.linked)
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
