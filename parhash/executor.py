"""The seam between the work and the processes that do it.

An :class:`Executor` runs a function over batches (lists of work items, the
tasks of :mod:`parhash.tasks` and :mod:`parhash.verify`) and yields each
batch's results as soon as it completes. The batches come from an iterable,
or from a :class:`Feed` that the results of finished batches add to.
:class:`InlineExecutor` runs them in this process; ``PoolExecutor``
(:mod:`parhash.pool`) on a ``multiprocessing.Pool``. Another engine plugs in
by implementing ``map_unordered`` over a :class:`Feed`. :func:`run_tasks`
chooses between them and drives a feed to its end.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from parhash.hashing import DEFAULT_BLOCK_SIZE, release_directories
from parhash.results import WalkError

if TYPE_CHECKING:
    from parhash.pool import PipelineStats
    from parhash.tasks import TaskFeed

Item = str | WalkError
T = TypeVar("T")
R = TypeVar("R")

# dupes' batches close at whichever comes first: this many paths, or this
# many bytes (see benchmarks/RESULTS.md). Large files travel alone, so two
# workers share a few big files evenly; small files travel by the hundred,
# so the cost of a round trip to a worker is spread over many files. (scan's
# and check's tasks have their own sizes: tasks.TASK_FILES, verify.RANGE_LINES.)
DEFAULT_CHUNKSIZE = 256
BATCH_BYTES = 16 << 20

# The read buffer is allocated in every worker: beyond this, a larger one
# only costs memory (64 KiB is the fastest size measured).
MAX_BLOCK_SIZE = 64 << 20

# A job this small is hashed in this process: starting a pool costs more
# (some 20 ms here: importing multiprocessing.pool, then the workers' fork).
INLINE_MAX_FILES = 64
INLINE_MAX_BYTES = 32 << 20

# Batches queued or running per worker; bounds memory on huge trees.
INFLIGHT_PER_WORKER = 4


class ClusterError(RuntimeError):
    """A cluster that can't run the work: unreachable, another version of parhash,
    a worker that can't see the files. Its message names what; the command
    line says it and exits 2."""


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def clamp_jobs(jobs: int | None) -> int:
    """``None`` means every available CPU; more than 4 per CPU is never useful."""
    cpus = available_cpus()
    if jobs is None:
        return cpus
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    return min(jobs, 4 * cpus)


class Executor(Protocol):
    """Runs ``fn`` over batches, yielding each batch's results as it completes.

    ``jobs`` is how many batches it runs at once: the feeds size their
    batches by it. An executor handed to :func:`run_tasks` (and so to
    ``parhash.scan``, ``check`` and ``find_dupes``) stays open afterwards:
    whoever made it closes it, and may use it for several runs.
    """

    jobs: int

    def map_unordered(
        self,
        fn: Callable[[list[T]], list[R]],
        batches: Iterable[list[T]] | Feed,
        idle: Callable[[], None] | None = None,
        lost: Callable[[Any, str], R] | None = None,
    ) -> Iterator[list[R]]:
        """``idle``, if given, is called whenever the caller would otherwise
        wait: no result and no batch for a moment. ``lost(item, reason)`` makes
        the result of an item that could not be run (its worker died on it,
        twice; it made no progress for the stall timeout); by default, a
        :class:`Result` with an error for a path."""
        ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs every batch in this process, in order."""

    jobs = 1

    def map_unordered(
        self,
        fn: Callable[[list[T]], list[R]],
        batches: Iterable[list[T]] | Feed,
        idle: Callable[[], None] | None = None,
        lost: Callable[[Any, str], R] | None = None,
    ) -> Iterator[list[R]]:
        # Waits only for a feed's next batch: ``idle`` is called then.
        if isinstance(batches, Feed):
            return _drain(fn, batches, idle)
        return map(fn, batches)

    def close(self) -> None:
        pass


def _drain(
    fn: Callable[[list[T]], list[R]], feed: Feed, idle: Callable[[], None] | None
) -> Iterator[list[R]]:
    while True:
        batch = feed.get(0)
        if batch is None and not feed.done:
            if idle is not None:
                idle()  # the feed waits: so may the caller's output
            batch = feed.get(POLL_SECONDS)
        if batch is not None:
            yield fn(batch)
        elif feed.done:
            return


# How long the parent waits for a result before it looks for dead workers.
POLL_SECONDS = 0.1


class Feed:
    """Batches handed out one at a time, which finished batches may add to.

    An executor given one instead of an iterable asks :meth:`get` for the
    next batch whenever it has room, and ends once :attr:`done` is true with
    nothing in flight: a batch's results, handled by the caller before the
    executor resumes, may add batches meanwhile.
    """

    @property
    def done(self) -> bool:
        """No batch now, and none to come unless a batch in flight adds some."""
        raise NotImplementedError

    def get(self, timeout: float) -> list[Any] | None:
        """The next batch; None if there is none yet (waiting at most ``timeout``
        seconds for one) or none any more (:attr:`done`)."""
        raise NotImplementedError


class ReadAhead(Feed):
    """Iterates ``batches`` in a thread of its own, up to ``depth`` ahead.

    :meth:`get` hands out the batches; the thread is a daemon, so one stuck
    reading a path list that never ends keeps neither Ctrl-C waiting nor the
    process alive. An exception in ``batches`` is raised by :meth:`get`.
    """

    _END = object()

    def __init__(self, batches: Iterable[list[Any]], depth: int, stop: threading.Event,
                 name: str = "parhash-walk") -> None:
        import queue

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = stop
        self._done = False
        self._thread = threading.Thread(
            target=self._fill, args=(batches,), name=name, daemon=True
        )
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._done

    def _put(self, value: Any) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, batches: Iterable[list[Any]]) -> None:
        try:
            for batch in batches:
                if not self._put(batch):
                    return
        except BaseException as e:  # handed to the main thread, which raises it
            self._put(Raised(e))
            return
        self._put(self._END)

    def get(self, timeout: float) -> list[Any] | None:
        """The next batch, or None if there is none yet (or no more: see ``done``)."""
        import queue

        if self._done:
            return None
        try:
            value = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return None
        if value is self._END:
            self._done = True
            return None
        if isinstance(value, Raised):
            self._done = True
            raise value.error
        batch: list[Any] = value
        return batch


class Raised:
    """An exception raised in a reader thread, for the main thread to raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Answer(Protocol):
    """What a task gives back, as far as the feed and the executor see it."""

    @property
    def tasks(self) -> list[Any]: ...  # new items to share out
    @property
    def alone(self) -> list[Any]: ...  # new items, each for a task of its own
    @property
    def rest(self) -> list[Any]: ...  # the task's own items it had no room for
    @property
    def files(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def errors(self) -> int: ...


A = TypeVar("A", bound=Answer)

# The first tasks of scan and check are done in this process, up to
# INLINE_MAX_FILES files and FIRST_BYTES bytes, so that a small job never
# starts a pool. Unlike dupes, which knows its sizes before it decides,
# they learn them as they hash, while the pool waits to start: on the
# standard library (7,733 files) 128 files of its top directory hashed here
# cost 40 ms of a 330 ms run. The bytes are also capped at this many reads
# of the block size, so that a tiny --block-size does not keep the work in
# this process for long.
FIRST_BYTES = 4 << 20
INLINE_MAX_READS = 512


def inline_bytes(block_size: int) -> int:
    """How many bytes the first tasks may hash in this process."""
    return min(FIRST_BYTES, INLINE_MAX_READS * block_size)


def _through(
    executor: Executor,
    run: Callable[[list[Any]], list[A]],
    feed: TaskFeed,
    idle: Callable[[], None] | None,
    lost: Callable[[Any, str], A] | None,
) -> Generator[A, None, None]:
    """The results of ``feed``'s tasks on ``executor``, each in the feed before it is yielded."""
    for results in executor.map_unordered(run, feed, idle, lost):
        for result in results:
            feed.add(result)
            yield result


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
    executor: Executor | None = None,
    pool: Callable[[], Executor] | None = None,
) -> Generator[A, None, None]:
    """Do every task of ``feed`` with ``run``; yield each result as it completes.

    ``jobs=1`` runs the tasks in this process. Otherwise, unless ``stats``
    sets a stall timeout (only a worker can be given up on), tasks are first
    done here with ``first`` (``run`` with a small budget) until
    :data:`INLINE_MAX_FILES` files or :func:`inline_bytes` bytes are done,
    or the feed has to wait: a small job never starts a pool. The rest goes
    to a pool of ``jobs`` processes, ``INFLIGHT_PER_WORKER`` tasks each at
    most; ``lost`` is the result of an item the pool could not do (see
    :class:`~parhash.pool.PoolExecutor`), ``idle`` is called whenever the
    pool waits. Each result's new items are in the feed before the next task
    is handed out. An ``executor`` given does every task, and is left open;
    ``jobs`` then comes from it. ``pool``, if given, makes the executor of
    the tasks past the first ones, in place of a pool of ``jobs``; it is
    left open too, for the caller's later stages.
    """
    jobs = clamp_jobs(jobs) if executor is None else executor.jobs
    feed.jobs = jobs
    watched = stats is not None and stats.stall_timeout is not None
    try:
        if executor is not None:
            feed.share = jobs > 1
            yield from _through(executor, run, feed, idle, lost)
            return
        if jobs == 1 and not watched:
            yield from _through(InlineExecutor(), run, feed, idle, lost)
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
            release_directories()  # not to be inherited by the workers
        feed.share = True
        if pool is not None:
            yield from _through(pool(), run, feed, idle, lost)
            return
        from parhash.pool import PoolExecutor

        with PoolExecutor(jobs, stats) as processes:
            yield from _through(processes, run, feed, idle, lost)
    finally:
        feed.close()
        release_directories()
