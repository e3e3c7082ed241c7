"""Find files with identical contents, reading as little as possible.

The search is a short list of grouping stages, named in :class:`Stage`. Each
takes the groups of candidates left by the one before, splits them by
something dearer to learn, and drops every group left with a single file
(the shape of fclones' ``group.rs``):

1. :func:`group_by_size`: the walk's files, each ``stat``-ed once, grouped
   by size. A file whose size no other file has is done: it is never opened.
2. :func:`group_by_inode`: names of one file (same device and inode: hard
   links, or a symlink followed with ``-L``) become one candidate, so a file
   is never its own duplicate.
3. :func:`group_by_head`: the first ``head_size`` bytes of each candidate are
   hashed in the pool. A file no larger than that has now been read whole,
   and its head digest is its contents digest.
4. :func:`group_by_contents`: whole files are hashed, only in groups that
   still have two files or more and only for files larger than the head.

Both hashing stages run the worker's :func:`~parhash.worker.hash_batch` on
one executor of :mod:`parhash.pipeline` (a pool, or this process for small
jobs), started only if some group reaches stage 3.

Files are never claimed equal on a stale look: each digest comes with the
size, mtime and inode the worker saw, and a file that no longer matches its
stage-1 ``stat`` leaves the search with an error, as does a file that fails
to read. Two files are reported as duplicates only when their whole contents
have the same digest.
"""

from __future__ import annotations

import enum
import errno
import functools
import gc
import itertools
import logging
import os
import stat
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import NamedTuple

from parhash.algorithms import parse_algos
from parhash.manifest import FS_ENCODING, FS_ERRORS
from parhash.pipeline import (
    BATCH_BYTES,
    DEFAULT_CHUNKSIZE,
    INLINE_MAX_BYTES,
    INLINE_MAX_FILES,
    Executor,
    InlineExecutor,
    PipelineStats,
    PoolExecutor,
    batch_by_size,
    clamp_jobs,
)
from parhash.results import DupeError, DupeGroup, Pause, Result, WalkError, reason
from parhash.select import Selector
from parhash.walk import LOOP, NOT_REGULAR, walk_paths
from parhash.worker import DEFAULT_BLOCK_SIZE, Job, hash_batch

log = logging.getLogger(__name__)

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


class FileInfo(NamedTuple):
    """A candidate: one file, with what stage 1's ``stat`` saw of it."""

    path: str
    size: int
    mtime_ns: int
    dev: int
    ino: int
    links: tuple[str, ...] = ()  # its other names, once group_by_inode has run


class Group(NamedTuple):
    """Files that agree on everything the stages so far have looked at.

    ``digest`` is unset after stages 1 and 2, the head digest after stage 3
    and the contents digest after stage 4. When ``size`` is at most the head
    size, the head digest already is the contents digest.
    """

    size: int
    files: list[FileInfo]
    digest: str | None = None


def _sort_key(path: str) -> bytes:
    """A path as its bytes (``os.fsencode`` without its checks): the order of the report."""
    return path.encode(FS_ENCODING, FS_ERRORS)


def _file_key(f: FileInfo) -> bytes:
    return f.path.encode(FS_ENCODING, FS_ERRORS)


def _vanished(err: int | None) -> bool:
    # A file that no longer exists is no one's duplicate.
    return err == errno.ENOENT


def _walk_error(e: WalkError) -> DupeError:
    harmless = (
        e.loop_ancestor is not None
        or e.error in (LOOP, NOT_REGULAR)
        # A link to itself, or links to each other, under -L: the loop is
        # not a file, so it hides nothing.
        or (e.depth > 0 and (_vanished(e.errno) or e.errno == errno.ELOOP))
    )
    return DupeError(e.path, e.error, e.errno, not harmless)


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
    count = 0
    for item in items:
        if type(item) is not str:
            if isinstance(item, Pause):
                continue  # every file is wanted before stage 1 ends anyway
            assert isinstance(item, WalkError)
            yield _walk_error(item)
            continue
        try:
            st = os.stat(item)
        except OSError as e:
            yield DupeError(item, reason(e), e.errno, not _vanished(e.errno))
            continue
        if not stat.S_ISREG(st.st_mode):  # replaced since the walk saw a file
            yield DupeError(item, NOT_REGULAR, None, False)
            continue
        size = st.st_size
        if size < min_size or (max_size is not None and size > max_size):
            continue
        if size == 0 and not include_empty:
            continue
        yield FileInfo(item, size, st.st_mtime_ns, st.st_dev, st.st_ino)
        count += 1
        if progress is not None and count % 1024 == 0:
            progress(Stage.SIZE, count, 0)


def group_by_size(files: Iterable[FileInfo]) -> list[Group]:
    """Stage 1: group files by size, keeping the sizes shared by two or more."""
    by_size: dict[int, list[FileInfo]] = {}
    for f in files:
        by_size.setdefault(f.size, []).append(f)
    return [Group(size, members) for size, members in by_size.items() if len(members) > 1]


def group_by_inode(groups: list[Group]) -> list[Group]:
    """Stage 2: make the names of one file one candidate; keep groups of two files or more.

    The candidate is named by the first of its names in byte order and keeps
    the others in ``links``. The same name met twice counts once.
    """
    out = []
    for group in groups:
        files = group.files
        if (files[0].ino != files[1].ino if len(files) == 2
                else len({f.ino for f in files}) == len(files)):
            # The common case: every name a file of its own (files on two
            # devices may share an inode number, never a distinct one).
            out.append(group)
            continue
        by_inode: dict[tuple[int, int], list[FileInfo]] = {}
        for f in group.files:
            by_inode.setdefault((f.dev, f.ino), []).append(f)
        if len(by_inode) < 2:
            continue
        files = []
        for names in by_inode.values():
            if len(names) == 1:
                files.append(names[0])
                continue
            names.sort(key=_file_key)
            first = names[0]
            links = tuple(dict.fromkeys(f.path for f in names[1:] if f.path != first.path))
            files.append(first._replace(links=links))
        out.append(group._replace(files=files))
    return out


class Hashing:
    """What the hashing stages share: one executor, the digest, the errors met.

    The executor is made on first use: this process for a job of at most
    ``INLINE_MAX_FILES`` files and ``INLINE_MAX_BYTES`` bytes to read, or
    ``jobs=1``; otherwise a pool, which later stages reuse. :meth:`close`
    stops it.
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

    def _executor(self, files: Sequence[FileInfo], cost: Callable[[FileInfo], int]) -> Executor:
        if self._pool is not None:
            return self._pool
        if self.jobs == 1 or (
            len(files) <= INLINE_MAX_FILES and sum(map(cost, files)) <= INLINE_MAX_BYTES
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

    def digests(self, stage: Stage, files: Sequence[FileInfo]) -> dict[str, str]:
        """Hash ``files`` (their heads in the HEAD stage); return digest by path.

        A file that fails, or no longer matches its stage-1 ``stat``, is left
        out and recorded in :attr:`errors`.
        """
        head = self.head_size if stage is Stage.HEAD else None
        job = Job((self.algo,), self.block_size, head)

        def cost(f: FileInfo) -> int:
            return f.size if head is None else min(f.size, head)

        executor = self._executor(files, cost)
        by_path = {f.path: f for f in files}
        # Sizes are known from stage 1: no second stat, and a head costs only
        # the bytes it reads.
        batches = batch_by_size(((f.path, cost(f)) for f in files), self.chunksize, BATCH_BYTES)
        out: dict[str, str] = {}
        done = 0
        results: Iterator[list[Result]] = executor.map_unordered(
            functools.partial(hash_batch, job), batches
        )
        algo = self.algo
        for batch in results:
            for r in batch:
                f = by_path[r.path]
                if r.error is not None:
                    self.errors.append(DupeError(r.path, r.error, r.errno, not _vanished(r.errno)))
                elif (
                    r.mtime_ns != f.mtime_ns or r.size != f.size or r.ino != f.ino
                    or r.dev != f.dev
                ):
                    self.errors.append(DupeError(r.path, CHANGED))
                else:
                    out[r.path] = r.digests[algo]
            done += len(batch)
            if self.progress is not None:
                self.progress(stage, done, len(files))
        return out

    def take_errors(self) -> list[DupeError]:
        errors, self.errors = self.errors, []
        return errors

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _split(group: Group, digests: dict[str, str]) -> list[Group]:
    files = group.files
    if len(files) == 2:  # most groups: a pair agrees or is no group at all
        digest = digests.get(files[0].path)
        if digest is not None and digest == digests.get(files[1].path):
            return [Group(group.size, files, digest)]
        return []
    by_digest: dict[str, list[FileInfo]] = {}
    for f in files:
        digest = digests.get(f.path)
        if digest is not None:
            by_digest.setdefault(digest, []).append(f)
    return [Group(group.size, files, d) for d, files in by_digest.items() if len(files) > 1]


def group_by_head(groups: list[Group], hashing: Hashing) -> list[Group]:
    """Stage 3: split groups by the digest of each file's first ``head_size`` bytes."""
    files = [f for g in groups for f in g.files]
    digests = hashing.digests(Stage.HEAD, files)
    return [sub for g in groups for sub in _split(g, digests)]


def group_by_contents(groups: list[Group], hashing: Hashing) -> list[Group]:
    """Stage 4: split groups by the digest of the whole contents.

    Groups of files no larger than the head were read whole by stage 3 and
    pass through unread.
    """
    done = [g for g in groups if g.size <= hashing.head_size]
    todo = [g for g in groups if g.size > hashing.head_size]
    if not todo:
        return done
    digests = hashing.digests(Stage.CONTENTS, [f for g in todo for f in g.files])
    return done + [sub for g in todo for sub in _split(g, digests)]


def _candidates(groups: list[Group]) -> int:
    return sum(len(g.files) for g in groups)


def _log_stage(stage: Stage, groups: list[Group]) -> None:
    log.info("%s: %d candidates left in %d groups", stage.value, _candidates(groups), len(groups))


def to_dupe_group(group: Group, algo: str) -> DupeGroup:
    """The reported form of a group that has been through every stage."""
    assert group.digest is not None
    files = group.files
    if len(files) == 2 and not files[0].links and not files[1].links:
        a, b = files[0].path, files[1].path
        paths = (a, b) if _sort_key(a) <= _sort_key(b) else (b, a)
        return DupeGroup(group.size, algo, group.digest, paths, ())
    files = sorted(files, key=_file_key)
    return DupeGroup(
        group.size,
        algo,
        group.digest,
        tuple(f.path for f in files),
        tuple((f.path, *f.links) for f in files if f.links),
    )


def _report_key(g: DupeGroup) -> tuple[int, bytes]:
    return -g.wasted, _sort_key(g.paths[0])


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
    are never reported as duplicates of each other.

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
    items = itertools.chain(
        walk_paths(paths, follow=follow, select=select),
        walk_paths(listed, follow=follow, select=select, expand_globs=False),
    )
    hashing = Hashing(
        algo=names[0],
        head_size=head_size,
        jobs=clamp_jobs(jobs),
        chunksize=chunksize or DEFAULT_CHUNKSIZE,
        block_size=block_size,
        progress=progress,
        stats=stats,
    )
    return _search(items, hashing, min_size, max_size, include_empty, progress)


def _search(
    items: Iterable[str | WalkError | Pause],
    hashing: Hashing,
    min_size: int,
    max_size: int | None,
    include_empty: bool,
    progress: ProgressFn | None,
) -> Generator[DupeGroup | DupeError, None, None]:
    try:
        files: list[FileInfo] = []
        for item in stat_files(
            items,
            min_size=min_size,
            max_size=max_size,
            include_empty=include_empty,
            progress=progress,
        ):
            if type(item) is FileInfo:
                files.append(item)
            else:
                assert isinstance(item, DupeError)
                yield item
        log.info("walk: %d files", len(files))
        groups = group_by_size(files)
        del files
        _log_stage(Stage.SIZE, groups)
        groups = group_by_inode(groups)
        _log_stage(Stage.INODE, groups)
        if groups:
            groups = group_by_head(groups, hashing)
            yield from hashing.take_errors()
            _log_stage(Stage.HEAD, groups)
            groups = group_by_contents(groups, hashing)
            yield from hashing.take_errors()
            _log_stage(Stage.CONTENTS, groups)
        hashing.close()
        yield from sorted((to_dupe_group(g, hashing.algo) for g in groups), key=_report_key)
    finally:
        hashing.close()
