"""The search: the stages in order, and its groups as the report wants them."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from parhash.algorithms import parse_algos
from parhash.dupes.candidates import (
    DEFAULT_DUPES_ALGO,
    HEAD_SIZE,
    Group,
    ProgressFn,
    Stage,
    _in_path_order,
    _info,
    _path,
    _sort_key,
)
from parhash.dupes.order import DEFAULT_ORDER, PATH_ORDER, FileOrder, Order
from parhash.dupes.stages import (
    Hashing,
    SizeGroups,
    group_by_contents,
    group_by_head,
    group_by_inode,
)
from parhash.dupes.walk import SizeLimits, StatTask, walk_job
from parhash.executor import (
    DEFAULT_CHUNKSIZE,
    Executor,
    clamp_jobs,
)
from parhash.hashing import (
    DEFAULT_BLOCK_SIZE,
)
from parhash.pool import PipelineStats
from parhash.results import DupeError, DupeGroup, Pause
from parhash.select import Selector
from parhash.tasks import TaskResult, scan_tasks, task_scale


def _candidates(groups: list[Group]) -> int:
    return sum(len(g.files) for g in groups)


def _log_stage(stage: Stage, groups: list[Group], settled: Settled | None = None) -> None:
    files = _candidates(groups) + (settled.files if settled is not None else 0)
    count = len(groups) + (len(settled.groups) if settled is not None else 0)
    _info("%s: %d candidates left in %d groups", stage.value, files, count)


class Settled:
    """The groups no later stage can split, in their reported form, as they come."""

    def __init__(self, algo: str, order: FileOrder = PATH_ORDER) -> None:
        self.algo = algo
        self.order = order
        self.groups: list[DupeGroup] = []
        self.files = 0

    def __call__(self, group: Group) -> None:
        self.groups.append(to_dupe_group(group, self.algo, self.order))
        self.files += len(group[1])


def to_dupe_group(group: Group, algo: str, order: FileOrder = PATH_ORDER) -> DupeGroup:
    """The reported form of a group that has been through every stage, its files in ``order``."""
    assert group.digest is not None
    files = group.files
    if order.plain and len(files) == 2 and not files[0][5] and not files[1][5]:
        # The commonest group, in byte order, without a sort.
        a, b = files[0][0], files[1][0]
        if not (a.isascii() and b.isascii()):
            a, b = sorted((a, b), key=_sort_key)
        elif b < a:
            a, b = b, a
        return _dupe_group((group.size, algo, group.digest, (a, b), ()))
    ascii = all(f[0].isascii() for f in files)
    files = sorted(files, key=order.key(ascii))
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
    order: Order = DEFAULT_ORDER,
    prefer: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    progress: ProgressFn | None = None,
    stats: PipelineStats | None = None,
    executor: Executor | None = None,
    cache: Any = None,
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

    ``order`` and ``prefer`` choose which file of a group comes first (the
    one to keep) and the order of the rest; the names of one file in
    ``hardlinks`` follow the same order, and the first of them is the name
    in ``paths``. Files under the first path of ``prefer`` come first, then
    those under the second, and so on, then files under none; a path holds
    what is under it as the report spells it, by whole components
    (``./a/`` holds ``a/x``, not ``ab/x``; see
    :class:`~parhash.dupes.order.FileOrder`). Within a rank, ``order``
    decides: ``"path"`` (the default) the bytes of the path, ``"name"``
    the base name's then the path's, ``"mtime"`` the oldest first,
    ``"-mtime"`` the newest first, ties by path. A single string (or
    ``os.PathLike``) for ``prefer`` is one path. The order costs a sort of
    each group, done once.

    Cost: one ``stat`` per file; one read of at most ``head_size`` bytes per
    file whose size another file has; one whole read per file larger than
    ``head_size`` whose head another file shares. ``progress`` is called as
    stages advance. ``executor``, if given, does the walk's and the hashing
    stages' tasks (see :func:`parhash.scan`). ``cache``, a hash cache's
    file (``True``: as :func:`parhash.scan` takes it) or an open
    :class:`~parhash.cache.Cache`, answers for whole contents of files it
    holds unchanged, and takes the digests of those read; its ``hits``
    count the files it answered for. Raises
    :class:`~parhash.algorithms.UnknownAlgorithm` or ``ValueError`` for bad
    arguments, before any work starts.
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
    file_order = FileOrder(order, prefer)
    select = Selector.from_patterns(include, exclude)
    hashing = Hashing(
        algo=names[0],
        head_size=head_size,
        jobs=clamp_jobs(jobs) if executor is None else executor.jobs,
        chunksize=(chunksize or DEFAULT_CHUNKSIZE) * task_scale(executor),
        block_size=block_size,
        progress=progress,
        stats=stats,
        given=executor,
    )
    opened = None
    if cache is not None and cache is not False and not hasattr(cache, "write"):
        from parhash.cache import Cache, chosen_path

        path = chosen_path(True, None) if cache is True else str(cache)
        assert path is not None
        cache = opened = Cache.open(path)
    hashing.cache = cache or None
    limits = SizeLimits(min_size, max_size, include_empty)
    found = _search(_walk(paths, listed, hashing, follow, select, limits), hashing, progress,
                    hardlinks, file_order)
    return found if opened is None else _closing(found, opened)


def _closing(found: Generator[DupeGroup | DupeError, None, None], cache: Any
             ) -> Generator[DupeGroup | DupeError, None, None]:
    try:
        yield from found
    finally:
        found.close()
        cache.close()


def _walk(
    paths: Iterable[str | Pause],
    listed: Iterable[str | Pause],
    hashing: Hashing,
    follow: bool,
    select: Selector | None,
    limits: SizeLimits,
) -> Iterator[TaskResult]:
    """Stage 1: the tasks of scan's walk over ``paths`` and ``listed``, as :class:`StatTask`.

    The first tasks run in this process, the rest on the hashing stages'
    executor, which the pool they start becomes. Yields each task's
    result as it completes.
    """
    own = None
    if hashing.cache is not None:
        spec = hashing.cache.spec()
        own = (spec.home, spec.own)
    job = walk_job(hashing.algo, limits, head_size=hashing.head_size, own=own,
                   block_size=hashing.block_size, follow=follow, select=select)
    return scan_tasks(paths, job, listed=listed, jobs=hashing.jobs, stats=hashing.stats,
                      executor=hashing.given, kind=StatTask, pool=hashing.executor,
                      streams=False)


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


def _search(
    walk: Iterator[TaskResult],
    hashing: Hashing,
    progress: ProgressFn | None,
    hardlinks: bool = True,
    order: FileOrder = PATH_ORDER,
) -> Generator[DupeGroup | DupeError, None, None]:
    try:
        late: list[DupeError] = []  # stage 1's errors, reported once it ends
        sizes = SizeGroups()
        with _collector_paused():
            # Grouped while the tasks' records arrive: this process has time
            # to spare while the workers walk.
            for result in walk:
                if result.matched and hashing.stats is not None:
                    hashing.stats.matched |= result.matched
                records = result.records
                if result.errors:
                    late.extend(r for r in records if type(r) is DupeError)
                    records = [r for r in records if type(r) is tuple]
                sizes.add(records)
                if progress is not None:
                    progress(Stage.SIZE, sizes.files, 0)
            groups = sizes.groups()
            sizes.clear()
        if hashing.stats is not None:
            hashing.stats.files = sizes.files
        yield from _in_path_order(late)
        _info("walk: %d files", sizes.files)
        _log_stage(Stage.SIZE, groups)
        # Groups are reported as soon as a stage has read them whole: their
        # files are freed, and the report built, while the workers still read.
        settled = Settled(hashing.algo, order)
        with _collector_paused():
            groups = group_by_inode(groups, sizes.linked, keep_links=hardlinks, order=order)
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
