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
from typing import Any, Protocol

from parhash.results import Result, WalkError
from parhash.worker import DEFAULT_BLOCK_SIZE, Job, hash_batch

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
    """Runs ``fn`` over batches, yielding each batch's results as it completes."""

    def map_unordered(
        self, fn: Callable[[list[Item]], list[Result]], batches: Iterable[list[Item]]
    ) -> Iterator[list[Result]]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs every batch in this process, in order."""

    def map_unordered(
        self, fn: Callable[[list[Item]], list[Result]], batches: Iterable[list[Item]]
    ) -> Iterator[list[Result]]:
        return map(fn, batches)

    def close(self) -> None:
        pass


class PipelineStats:
    """What went wrong beneath the results: workers that died mid-batch."""

    def __init__(self) -> None:
        self.worker_deaths = 0
        self.retried = 0


# Worker-side bookkeeping, set by _init_worker: which batch each worker is on,
# so that the parent can tell which batch a dead worker took with it.
_SLOT = -1
_SLOTS: Any = None


def _init_worker(slots: _Slots) -> None:
    # Ctrl-C reaches the whole process group; only the parent acts on it, and
    # it stops the workers itself, with SIGTERM, which must kill them outright
    # whatever handler the parent had installed before forking.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _SLOT, _SLOTS
    slot = slots.take()
    if slot >= 0:
        _SLOT, _SLOTS = slot, slots
        slots.set_batch(slot, -1)
        slots.set_pid(slot, os.getpid())


class _Tracked:
    """Runs a batch in a worker, noting its number in the worker's slot."""

    def __init__(self, fn: Callable[[list[Item]], list[Result]]) -> None:
        self.fn = fn

    def __call__(self, task: tuple[int, list[Item]]) -> tuple[int, list[Result]]:
        number, batch = task
        if _SLOT >= 0:
            _SLOTS.set_batch(_SLOT, number)
        try:
            return number, self.fn(batch)
        finally:
            if _SLOT >= 0:
                _SLOTS.set_batch(_SLOT, -1)


def _new_pool(ctx: Any, jobs: int, initargs: tuple[Any, ...]) -> Any:
    from multiprocessing.pool import Pool

    class QuietPool(Pool):
        # Pool's maintenance thread also wakes whenever a result is waiting to
        # be read, and then spins, polling every worker, until the result
        # thread has read it: on many small batches that cost as much CPU as
        # hashing. Worker exits and the pool's own notices still wake it, as
        # in ThreadPool.
        def _get_sentinels(self) -> list[Any]:
            return [self._change_notifier._reader]  # type: ignore[attr-defined]

    return QuietPool(jobs, _init_worker, initargs, context=ctx)


class _Slots:
    """Which batch each worker is on, in memory the workers share with the parent.

    Under fork an anonymous shared mapping is inherited for free; elsewhere
    ``multiprocessing.Array`` is pickled to the workers.
    """

    def __init__(self, ctx: Any, size: int) -> None:
        self.size = size
        self.lock = ctx.Lock()
        if ctx.get_start_method() == "fork":
            import mmap

            self.memory: Any = mmap.mmap(-1, 8 * (2 * size + 1))
            self.cells: Any = memoryview(self.memory).cast("q")
        else:
            self.memory = None
            self.cells = ctx.Array("q", 2 * size + 1, lock=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "lock": self.lock, "memory": None, "cells": self.cells}

    # cells[0] counts the slots taken; then one (batch, pid) pair per worker.
    def take(self) -> int:
        with self.lock:
            slot = self.cells[0]
            self.cells[0] = slot + 1
        return slot if slot < self.size else -1

    def set_pid(self, slot: int, pid: int) -> None:
        self.cells[2 + 2 * slot] = pid

    def set_batch(self, slot: int, number: int) -> None:
        self.cells[1 + 2 * slot] = number

    def batch(self, slot: int) -> int:
        return int(self.cells[1 + 2 * slot])

    def slot_of(self) -> dict[int, int]:
        return {
            int(self.cells[2 + 2 * i]): i
            for i in range(min(int(self.cells[0]), self.size))
            if self.cells[2 + 2 * i]
        }


def _pool_context() -> Any:
    import multiprocessing

    # fork starts a worker in about a millisecond and needs no re-import; it is
    # safe because the pool is created before this process starts any thread.
    # Never rely on the platform default: it is changing to forkserver.
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


# How often the parent looks for dead workers while it waits for results.
POLL_SECONDS = 0.25
# A death the slots could not pin on a batch (a worker killed after finishing
# a batch but before handing back its results) is assumed after this long
# with no result, every live worker idle and nothing left to send.
IDLE_SECONDS = 2.0


class PoolExecutor:
    """A ``multiprocessing.Pool`` of ``jobs`` processes behind ``imap_unordered``.

    At most ``jobs * INFLIGHT_PER_WORKER`` batches are queued or running at a
    time, so a huge stream of batches is not read ahead into memory.

    A plain Pool waits forever for a batch whose worker died (killed, out of
    memory, a crash in a C library). Here each worker notes in shared memory
    which batch it is on; while waiting, the parent looks for dead workers and
    takes their batches back. Each of their paths is tried once more, alone,
    in a fresh worker; a path whose worker dies again comes back as an error.
    ``stats.worker_deaths`` counts the deaths.
    """

    def __init__(self, jobs: int, stats: PipelineStats | None = None) -> None:
        self.jobs = jobs
        self.stats = stats if stats is not None else PipelineStats()
        ctx = _pool_context()
        # Room for every worker the pool may start to replace dead ones.
        self._slots = _Slots(ctx, jobs * 8 + 16)
        self.pool = _new_pool(ctx, jobs, (self._slots,))
        self._seen: dict[int, Any] = {}
        self._closed = False
        self._stop = threading.Event()

    def map_unordered(
        self, fn: Callable[[list[Item]], list[Result]], batches: Iterable[list[Item]]
    ) -> Iterator[list[Result]]:
        lost: list[list[Item]] = []
        yield from self._run(fn, batches, lost)
        if not lost:
            return
        retry = [[item] for batch in lost for item in batch]
        self.stats.retried += len(retry)
        lost_again: list[list[Item]] = []
        yield from self._run(fn, retry, lost_again)
        for batch in lost_again:
            yield [_lost_result(item) for item in batch]

    def _run(
        self,
        fn: Callable[[list[Item]], list[Result]],
        batches: Iterable[list[Item]],
        lost: list[list[Item]],
    ) -> Iterator[list[Result]]:
        import multiprocessing

        slots = threading.BoundedSemaphore(self.jobs * INFLIGHT_PER_WORKER)
        inflight: dict[int, list[Item]] = {}
        lock = threading.Lock()
        fed_all = threading.Event()
        stop = self._stop

        ahead = _ReadAhead(batches, self.jobs * INFLIGHT_PER_WORKER, stop)

        # This runs in the pool's task-feeding thread, which close() joins: it
        # must notice a stop while it waits, so it never runs the walk itself
        # (which may wait on a pipe or a hung mount) but takes batches from
        # _ReadAhead's thread, and waits for a free slot, with timeouts.
        def feed() -> Iterator[tuple[int, list[Item]]]:
            for number, batch in enumerate(ahead):
                while not slots.acquire(timeout=0.05):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                with lock:
                    inflight[number] = batch
                yield number, batch
            fed_all.set()

        results = self.pool.imap_unordered(_Tracked(fn), feed(), chunksize=1)
        watch = _Watch()
        while True:
            with lock:
                if fed_all.is_set() and not inflight:
                    return
            try:
                number, batch_results = results.next(timeout=POLL_SECONDS)
            except StopIteration:
                return
            except multiprocessing.TimeoutError:
                for batch in self._reap(inflight, lock, fed_all, watch):
                    lost.append(batch)
                    slots.release()
                continue
            watch.idle_since = None
            with lock:
                inflight.pop(number, None)
            slots.release()
            yield batch_results

    def _reap(
        self,
        inflight: dict[int, list[Item]],
        lock: threading.Lock,
        fed_all: threading.Event,
        watch: _Watch,
    ) -> list[list[Item]]:
        """Take back and return the batches that dead workers took with them."""
        import time

        for process in list(self.pool._pool):  # no public list of the workers
            self._seen.setdefault(process.pid, process)
        slot_of = self._slots.slot_of()
        taken: list[list[Item]] = []
        for process in [p for p in self._seen.values() if p.exitcode is not None]:
            del self._seen[process.pid]
            self.stats.worker_deaths += 1
            watch.deaths += 1
            slot = slot_of.get(process.pid)
            number = self._slots.batch(slot) if slot is not None else -1
            with lock:
                batch = inflight.pop(number, None) if number >= 0 else None
            if batch is not None:
                taken.append(batch)
        if not watch.deaths or not fed_all.is_set():
            return taken
        if any(self._slots.batch(slot_of[pid]) >= 0 for pid in self._seen if pid in slot_of):
            watch.idle_since = None
            return taken
        now = time.monotonic()
        if watch.idle_since is None:
            watch.idle_since = now
        elif now - watch.idle_since >= IDLE_SECONDS:
            with lock:
                taken.extend(inflight.values())
                inflight.clear()
        return taken

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


class _ReadAhead:
    """Iterates ``batches`` in a thread of its own, up to ``depth`` ahead.

    Iterating a _ReadAhead yields the same batches; it ends early once
    ``stop`` is set, even while the thread is blocked inside ``batches``. The
    thread is a daemon: one stuck reading a path list that never ends doesn't
    keep the process alive. An exception in ``batches`` is raised to the
    iterating side.
    """

    _END = object()

    def __init__(self, batches: Iterable[list[Item]], depth: int, stop: threading.Event) -> None:
        import queue

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = stop
        self._thread = threading.Thread(
            target=self._fill, args=(batches,), name="parhash-walk", daemon=True
        )
        self._thread.start()

    def _put(self, value: Any) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, batches: Iterable[list[Item]]) -> None:
        try:
            for batch in batches:
                if not self._put(batch):
                    return
        except BaseException as e:  # handed to the iterating thread, which raises it
            self._put(_Raised(e))
            return
        self._put(self._END)

    def __iter__(self) -> Iterator[list[Item]]:
        import queue

        while not self._stop.is_set():
            try:
                value = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if value is self._END:
                return
            if isinstance(value, _Raised):
                raise value.error
            yield value


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Watch:
    """Per-run state of the dead-worker watch."""

    def __init__(self) -> None:
        self.deaths = 0
        self.idle_since: float | None = None


WORKER_DIED = "worker process died while hashing this file"


def _lost_result(item: Item) -> Result:
    if isinstance(item, WalkError):
        return item.as_result()
    return Result(str(item), {}, error=WORKER_DIED)


def _batches(items: Iterable[Item], chunksize: int, batch_bytes: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    nbytes = 0
    for item in items:
        if batch_bytes and isinstance(item, str):  # a path or a worker.Task
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
        if isinstance(item, str):
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
    stats: PipelineStats | None = None,
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
    A worker that dies costs no result (see :class:`PoolExecutor`); ``stats``,
    when given, counts such deaths.
    """
    job = Job(tuple(algos), block_size)
    fn = _HashBatch(job)
    size = chunksize or DEFAULT_CHUNKSIZE
    if executor is not None:
        yield from _flatten(executor.map_unordered(fn, _batches(items, size, BATCH_BYTES)))
        return
    jobs = clamp_jobs(jobs)
    it = iter(items)
    # With one job, don't wait for more paths before hashing the first.
    head = [] if jobs == 1 else list(itertools.islice(it, INLINE_MAX_FILES + 1))
    if jobs == 1 or (len(head) <= INLINE_MAX_FILES and _small_enough_for_inline(head)):
        inline = InlineExecutor()
        # Inline, a batch only delays the first line: hash path by path.
        yield from _flatten(inline.map_unordered(fn, _batches(itertools.chain(head, it), 1, 0)))
        return
    with PoolExecutor(jobs, stats) as pool:
        yield from _flatten(
            pool.map_unordered(fn, _batches(itertools.chain(head, it), size, BATCH_BYTES))
        )


def _flatten(batches: Iterator[list[Result]]) -> Iterator[Result]:
    for batch in batches:
        yield from batch
