"""The seam between the work and the processes that do it, at the level of tasks.

:func:`run_tasks` hands tasks (lists of work items, see :mod:`parhash.tasks`)
to an executor and yields each task's result as it completes; a result's new
items go back into the :class:`TaskFeed` before the next task is handed out.
The executors are :mod:`parhash.pipeline`'s: ``InlineExecutor`` runs tasks in
this process, ``PoolExecutor`` on a ``multiprocessing.Pool``; another engine
plugs in by implementing ``map_unordered`` over a
:class:`~parhash.pipeline.Feed`.
"""

from __future__ import annotations

import collections
import errno
import functools
import queue
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol, TypeVar

from parhash.pipeline import (
    INFLIGHT_PER_WORKER,
    INLINE_MAX_BYTES,
    INLINE_MAX_FILES,
    POLL_SECONDS,
    Feed,
    InlineExecutor,
    PipelineStats,
    PoolExecutor,
    clamp_jobs,
)
from parhash.results import Pause, WalkError
from parhash.tasks import (
    NEVER_ALONE,
    Part,
    RunTask,
    ScanJob,
    TaskResult,
    lost_item,
    release_descent,
)
from parhash.walk import LOOP, Directory, Walked, _loop_ancestor, named_paths
from parhash.worker import DEFAULT_BLOCK_SIZE


class Answer(Protocol):
    """What a task gives back, as far as the feed and the executor see it."""

    @property
    def tasks(self) -> list[Any]: ...  # new items to share out
    @property
    def alone(self) -> list[Any]: ...  # new items, each for a task of its own
    @property
    def files(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def errors(self) -> int: ...


A = TypeVar("A", bound=Answer)

# Directories per task at most.
MAX_DIRS_PER_TASK = 32

# The first tasks are done in this process, up to pipeline.INLINE_MAX_FILES
# files and INLINE_MAX_BYTES bytes, so that a small job never starts a pool.
# The bytes are also capped at this many reads of the block size, so that a
# tiny --block-size does not keep the work in this process for long.
INLINE_MAX_READS = 512


class TaskFeed(Feed):
    """The items still to do, handed out as tasks.

    Named paths (arguments, lists, a glob's matches) are read from ``named``
    in a thread of its own, so that a list that waits on a pipe never stops
    Ctrl-C; they are cut into tasks of ``chunksize`` items, and at each
    :class:`~parhash.results.Pause`. Directories that tasks hand back are
    kept on a stack and handed out depth first, several to a task once
    there are enough to go round (``share``); parts of directories and
    items to do alone travel one to a task.

    With ``follow``, each directory is entered once, by device and inode: a
    directory met again is dropped, or reported if it leads back to one of
    its own ancestors (a loop).
    """

    def __init__(
        self,
        named: Iterable[str | WalkError | Pause],
        *,
        chunksize: int,
        jobs: int = 1,
        follow: bool = False,
    ) -> None:
        self.chunksize = chunksize
        self.jobs = jobs
        self.follow = follow
        self.share = False  # several directories to a task
        self.dirs: list[Directory] = []
        self.items: collections.deque[Any] = collections.deque()
        self.alone: collections.deque[Any] = collections.deque()
        self.visited: set[tuple[int, int]] = set()
        self.fed = False
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(4, jobs * INFLIGHT_PER_WORKER))
        self._thread = threading.Thread(
            target=self._read, args=(named,), name="parhash-paths", daemon=True
        )
        self._thread.start()

    @property
    def done(self) -> bool:
        return self.fed and not (self.dirs or self.items or self.alone)

    def close(self) -> None:
        self._stop.set()

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, named: Iterable[str | WalkError | Pause]) -> None:
        batch: list[Any] = []
        walked = False  # the batch holds a glob's walked files
        try:
            for item in named:
                if isinstance(item, Pause):
                    if batch and not self._put(batch):
                        return
                    batch = []
                    continue
                is_walked = type(item) is Walked
                if batch and (is_walked != walked or len(batch) >= self.chunksize):
                    if not self._put(batch):
                        return
                    batch = []
                walked = is_walked
                batch.append(item)
            if batch and not self._put(batch):
                return
        except BaseException as e:  # handed to the main thread, which raises it
            self._put(_Raised(e))
            return
        self._put(_END)

    def add(self, result: Answer) -> None:
        """Take in the new items of a finished task."""
        found: list[Directory] = []
        for item in result.tasks:
            if type(item) is Directory:
                if self.follow and item.ancestor is not None and not self._first_visit(item):
                    continue
                found.append(item)
            else:
                self.items.append(item)
        if found:
            found.reverse()
            self.dirs.extend(found)
        self.alone.extend(result.alone)

    def _first_visit(self, d: Directory) -> bool:
        node = d.ancestor
        assert node is not None
        key = (node.dev, node.ino)
        if key not in self.visited:
            self.visited.add(key)
            return True
        ancestor = _loop_ancestor(node.parent, *key)
        if ancestor is not None:
            self.items.append(WalkError(node.path, LOOP, errno.ELOOP, d.depth, ancestor))
        return False

    def get(self, timeout: float) -> list[Any] | None:
        if self.alone:
            return [self.alone.popleft()]
        dirs = self.dirs
        if dirs:
            k = 1
            if self.share:
                k = max(1, min(MAX_DIRS_PER_TASK, len(dirs) // (2 * self.jobs)))
            task = dirs[-k:]
            del dirs[-k:]
            task.reverse()
            return task
        items = self.items
        if items:
            if type(items[0]) is Part:
                return [items.popleft()]
            task = []
            while items and len(task) < self.chunksize and type(items[0]) is not Part:
                task.append(items.popleft())
            return task
        if self.fed:
            return None
        try:
            value = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return None
        if value is _END:
            self.fed = True
            return None
        if isinstance(value, _Raised):
            self.fed = True
            raise value.error
        batch: list[Any] = value
        return batch


_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def inline_bytes(block_size: int) -> int:
    """How many bytes a job may have to be done in this process."""
    return min(INLINE_MAX_BYTES, INLINE_MAX_READS * block_size)


def run_tasks(
    run: Callable[[list[Any]], list[A]],
    feed: TaskFeed,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    jobs: int | None = None,
    stats: PipelineStats | None = None,
    idle: Callable[[], None] | None = None,
    lost: Callable[[Any, str], A] | None = None,
    first: Callable[[list[Any]], list[A]] | None = None,
) -> Generator[A, None, None]:
    """Do every task of ``feed`` with ``run``; yield each result as it completes.

    ``jobs=1`` runs the tasks in this process. Otherwise, unless ``stats``
    sets a stall timeout (only a worker can be given up on), tasks are first
    done here with ``first`` (``run`` with a small budget) until
    :data:`INLINE_MAX_FILES` files or :func:`inline_bytes` bytes are done,
    or the feed has to wait: a small job never starts a pool. The rest goes
    to a pool of ``jobs`` processes, ``INFLIGHT_PER_WORKER`` tasks each at
    most; ``lost`` is the result of an item the pool could not do (see
    :class:`~parhash.pipeline.PoolExecutor`), ``idle`` is called whenever the
    pool waits. Each result's new items are in the feed before the next task
    is handed out.
    """
    jobs = clamp_jobs(jobs)
    feed.jobs = jobs
    watched = stats is not None and stats.stall_timeout is not None
    try:
        if jobs == 1 and not watched:
            for results in InlineExecutor().map_unordered(run, feed, idle):
                for result in results:
                    feed.add(result)
                    yield result
            return
        if first is not None and not watched:
            files = nbytes = 0
            while files < INLINE_MAX_FILES and nbytes < inline_bytes(block_size):
                task = feed.get(POLL_SECONDS)
                if task is None:
                    break  # done, or the feed waits: the pool takes what comes
                for result in first(task):
                    files += result.files + result.errors
                    nbytes += result.nbytes
                    if result.alone:  # large files, kept for the pool
                        files = INLINE_MAX_FILES
                    feed.add(result)
                    yield result
            if feed.done:
                return
            release_descent()  # not to be inherited by the workers
        feed.share = True
        with PoolExecutor(jobs, stats) as pool:
            for results in pool.map_unordered(run, feed, idle, lost):
                for result in results:
                    feed.add(result)
                    yield result
    finally:
        feed.close()
        release_descent()


def scan_tasks(
    paths: Iterable[str | Pause],
    job: ScanJob,
    *,
    listed: Iterable[str | Pause] = (),
    jobs: int | None = None,
    stats: PipelineStats | None = None,
    idle: Callable[[], None] | None = None,
) -> Generator[TaskResult, None, None]:
    """Hash every file reachable from ``paths`` and ``listed`` as ``job`` says; the
    results of the tasks, as they complete.

    ``paths`` are files, directories and globs, ``listed`` names taken
    literally (see :func:`~parhash.walk.named_paths`). Per-file failures are
    in the results; only bugs raise. See :func:`run_tasks` for ``jobs``,
    ``stats`` and ``idle``.
    """
    if clamp_jobs(jobs) == 1:
        job = job._replace(alone=NEVER_ALONE)
    named = named_paths(paths, listed, follow=job.follow, select=job.select)
    feed = TaskFeed(named, chunksize=job.files, follow=job.follow)
    small = inline_bytes(job.block_size)
    first = RunTask(job._replace(files=INLINE_MAX_FILES, nbytes=small,
                                 alone=min(job.alone, small), first=True))
    return run_tasks(RunTask(job), feed, block_size=job.block_size, jobs=jobs, stats=stats,
                     idle=idle,
                     lost=functools.partial(lost_item, job), first=first)
