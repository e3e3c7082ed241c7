"""Batching, the pool, and the one seam between them.

``hash_paths`` turns a stream of paths into a stream of :class:`Result` values.
It cuts the stream into batches, hands them to an :class:`Executor` and
yields each batch's results as soon as it completes. The executor is the only
place that knows about processes: :class:`InlineExecutor` runs batches in this
process, :class:`PoolExecutor` on a ``multiprocessing.Pool`` through
``imap_unordered``. Another engine can take their place by implementing
``map_unordered``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

from parhash.results import Result, WalkError
from parhash.worker import DEFAULT_BLOCK_SIZE, Job, hash_batch

T = TypeVar("T")
R = TypeVar("R")

Item = str | WalkError

# Batches close at whichever comes first: this many paths, or this many bytes
# (see benchmarks/RESULTS.md). Large files travel alone, so two workers share
# a few big files evenly; small files travel by the hundred, so the cost of a
# round trip to a worker is spread over many files.
DEFAULT_CHUNKSIZE = 256
BATCH_BYTES = 16 << 20

# A job this small is hashed in this process: starting a pool costs more.
INLINE_MAX_FILES = 64
INLINE_MAX_BYTES = 32 << 20

# Batches queued or running per worker; bounds memory on huge trees.
INFLIGHT_PER_WORKER = 4


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
    """Runs ``fn`` over tasks, yielding results in completion order."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs every task in this process, in order."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        return map(fn, tasks)

    def close(self) -> None:
        pass


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group; only the parent acts on it, and
    # it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the CLI's SIGTERM handler, which only sets a
    # flag for Python to act on later. When Pool.terminate() signals a worker
    # that is about to block on the task queue's lock (held by a worker that
    # has just died), the flag is never looked at and join() waits forever.
    # The default action ends the worker at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _pool_context() -> Any:
    import multiprocessing

    # fork starts a worker in about a millisecond and needs no re-import; it is
    # safe because the pool is created before this process starts any thread.
    # Never rely on the platform default: it is changing to forkserver.
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class PoolExecutor:
    """A ``multiprocessing.Pool`` of ``jobs`` processes behind ``imap_unordered``.

    At most ``jobs * INFLIGHT_PER_WORKER`` tasks are queued or running at a
    time, so a huge stream of tasks is not read ahead into memory.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = _pool_context().Pool(jobs, initializer=_init_worker)
        self._closed = False
        self._stop = threading.Event()

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        slots = threading.BoundedSemaphore(self.jobs * INFLIGHT_PER_WORKER)

        stop = self._stop

        # This runs in the pool's task-feeding thread, which close() joins:
        # it must notice a stop while it waits for a free slot.
        def throttled() -> Iterator[T]:
            for task in tasks:
                while not slots.acquire(timeout=0.05):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                yield task

        for result in self.pool.imap_unordered(fn, throttled(), chunksize=1):
            slots.release()
            yield result

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.pool.terminate()
        self.pool.join()

    def __enter__(self) -> PoolExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _batches(items: Iterable[Item], chunksize: int, batch_bytes: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    nbytes = 0
    for item in items:
        if type(item) is str and batch_bytes:
            try:
                size = os.stat(item).st_size
            except OSError:
                size = 0  # the worker will report why
            if size >= batch_bytes:
                yield [item]
                continue
            nbytes += size
        batch.append(item)
        if len(batch) >= chunksize or nbytes >= batch_bytes:
            yield batch
            batch = []
            nbytes = 0
    if batch:
        yield batch


def _small_enough_for_inline(items: Sequence[Item]) -> bool:
    total = 0
    for item in items:
        if type(item) is str:
            with contextlib.suppress(OSError):
                total += os.stat(item).st_size
    return total <= INLINE_MAX_BYTES


class _HashBatch:
    """``hash_batch`` bound to a job; a class so that it pickles."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, batch: list[Item]) -> list[Result]:
        return hash_batch(self.job, batch)


def hash_paths(
    items: Iterable[Item],
    *,
    algos: Sequence[str] = ("sha256",),
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    executor: Executor | None = None,
) -> Generator[Result, None, None]:
    """Hash every path in ``items``, yielding results as batches complete.

    ``items`` are paths and :class:`WalkError` values, as :func:`walk_paths`
    yields them; each becomes exactly one :class:`Result`, in completion order.
    Per-file failures are values (``Result.error``); only bugs raise.

    ``jobs=1``, or a job of at most ``INLINE_MAX_FILES`` files and
    ``INLINE_MAX_BYTES`` bytes, runs in this process with no pool. Otherwise a
    pool of ``jobs`` processes is started on the first result requested and
    stopped when the iterator is exhausted or closed (Ctrl-C included).
    ``chunksize`` caps the paths per batch (default ``DEFAULT_CHUNKSIZE``);
    a batch also closes at ``BATCH_BYTES``, so large files travel alone.
    """
    job = Job(tuple(algos), block_size)
    fn = _HashBatch(job)
    size = chunksize or DEFAULT_CHUNKSIZE
    if executor is not None:
        yield from _flatten(executor.map_unordered(fn, _batches(items, size, BATCH_BYTES)))
        return
    jobs = clamp_jobs(jobs)
    it = iter(items)
    head = list(itertools.islice(it, INLINE_MAX_FILES + 1))
    if jobs == 1 or (len(head) <= INLINE_MAX_FILES and _small_enough_for_inline(head)):
        inline = InlineExecutor()
        # Inline, a batch only delays the first line: hash path by path.
        yield from _flatten(inline.map_unordered(fn, _batches(itertools.chain(head, it), 1, 0)))
        return
    with PoolExecutor(jobs) as pool:
        yield from _flatten(
            pool.map_unordered(fn, _batches(itertools.chain(head, it), size, BATCH_BYTES))
        )


def _flatten(batches: Iterator[list[Result]]) -> Iterator[Result]:
    for batch in batches:
        yield from batch
