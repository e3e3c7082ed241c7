"""A ``multiprocessing.Pool`` behind the executor seam, and all it takes to trust one.

:class:`PoolExecutor` runs batches on a pool through ``imap_unordered``. This
is the only module that knows about processes, and the only one that touches
the pool's private state: worker deaths, stalls and signals are handled
here, once for every command (see :class:`PoolExecutor` and
:class:`PipelineStats`). Workers tell the parent which item and which file
they are on through memory they share with it (:func:`note_item`).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, NamedTuple, TypeVar, cast

from parhash.executor import INFLIGHT_PER_WORKER, POLL_SECONDS, Feed, Item, ReadAhead
from parhash.results import Result, WalkError
from parhash.walk import pack_walked, unpack_walked

T = TypeVar("T")
R = TypeVar("R")

# A worker whose item has made no progress for this long is reported once.
STALL_WARNING_SECONDS = 60.0
# How often the parent looks for stalled workers.
STALL_CHECK_SECONDS = 0.5


def stalled_reason(seconds: float) -> str:
    """The error of an item given up after ``seconds`` without progress."""
    return f"no progress for {seconds:g} s, abandoned"


class PipelineStats:
    """What went wrong beneath the results, and what to do about stalls.

    ``worker_deaths`` counts workers that died mid-batch. A worker that makes
    no progress on one item (a file on a dead network mount, a process
    stopped by SIGSTOP) is reported to ``on_stall(item, sub, seconds)`` once
    (``sub`` as given to :func:`note_item`),
    after ``stall_warning`` seconds (at most half of ``stall_timeout``); with
    ``stall_timeout``, the item is given up after that many seconds: the
    worker is killed (or, stuck in the kernel, left behind), the item comes
    back as an error, and the rest of the work goes on. ``abandoned`` counts
    those items. ``files`` counts the files a search's walk found, and
    ``matched`` holds the ``--include``/``--exclude`` patterns that matched a
    path (see :class:`~parhash.select.Selector`), for the command to warn of
    a pattern, or a walk, that found nothing.
    """

    def __init__(
        self,
        *,
        stall_timeout: float | None = None,
        stall_warning: float = STALL_WARNING_SECONDS,
        on_stall: Callable[[Any, int, float], None] | None = None,
    ) -> None:
        self.worker_deaths = 0
        self.retried = 0
        self.abandoned = 0
        self.files = 0
        self.matched: set[tuple[str, str]] = set()
        # Set by the pool: the bytes its workers have read so far, files they
        # are still reading included (a progress bar's, where Linux tells).
        self.reading: Callable[[], int] | None = None
        self.stall_timeout = stall_timeout
        self.stall_warning = (
            stall_warning if stall_timeout is None else min(stall_warning, stall_timeout / 2)
        )
        self.on_stall = on_stall


# Worker-side bookkeeping, set by _init_worker: which batch each worker is on,
# so that the parent can tell which batch a dead worker took with it.
_SLOT = -1
_SLOTS: Any = None


def _handled_signals() -> set[int]:
    """Signals the parent handles in Python, and the two it stops workers with."""
    handled: set[int] = {signal.SIGINT, signal.SIGTERM}
    for s in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            if callable(signal.getsignal(s)):
                handled.add(s)
    return handled


_PRCTL: Any = None


def _load_prctl() -> None:
    """Look up ``prctl`` in the parent, so that a forked worker pays no import."""
    global _PRCTL
    if _PRCTL is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, ImportError):
            import ctypes

            _PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies.

    Without it a worker whose parent was killed outright (SIGKILL, the OOM
    killer) lives on as an orphan. Linux's ``PR_SET_PDEATHSIG``; elsewhere
    nothing.
    """
    _load_prctl()
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    # The parent may have died before the request: then the signal never comes.
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(slots: _Slots, handled: set[int], parent: int) -> None:
    _die_with_parent(parent)
    # Signals reach the whole process group (Ctrl-C, a closed terminal's
    # SIGHUP); only the parent acts on them, and it stops the workers itself,
    # with SIGTERM or SIGKILL. SIGTERM must kill a worker outright whatever
    # handler the parent had installed before forking.
    for s in handled:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(s, signal.SIG_DFL if s == signal.SIGTERM else signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
    # The parent may have paused its cyclic collector (dupes does, while it
    # keeps every candidate); a worker runs for the whole job and collects.
    gc.enable()
    global _SLOT, _SLOTS
    slot = slots.take()
    if slot >= 0:
        _SLOT, _SLOTS = slot, slots
        slots.set_batch(slot, -1)
        slots.set_pid(slot, os.getpid())


def note_item(index: int, sub: int = 0, name: str | None = None) -> None:
    """In a worker: the batch's item ``index`` is being worked on now.

    What a stall is reported against (see :class:`PipelineStats`); a batch
    function that never calls it has its first item blamed. ``sub`` is the
    file within an item that holds several (a group of ``dupes``), for the
    warning to name. ``name`` is that file's path (as shown), where
    only the worker knows it (a file of a directory it lists): a stall is
    then reported and given up as :class:`Within` the item. Costs one or two
    writes to memory shared with the parent.
    """
    if _SLOT >= 0:
        _SLOTS.set_item(_SLOT, index, sub, None if name is None else os.fsencode(name))


def note_directory(index: int, top: str) -> tuple[Any, Any, int, int] | None:
    """:func:`note_item` for a loop over the files of one directory, at its start.

    Notes item ``index`` and the directory ``top`` (as shown, ending in
    "/"), and returns ``(view, cells, cell, start)``: the loop names each
    file by writing its name, encoded, into ``view[start:]`` and the end of
    what it wrote into ``cells[cell]`` (an end past ``len(view)`` is not
    written). That costs a quarter of a :func:`note_item` call per file,
    which measured a microsecond, 8% of hashing a small file. None outside
    a pool's worker.
    """
    if _SLOT < 0:
        return None
    encoded = os.fsencode(top)
    _SLOTS.set_item(_SLOT, index, 0, encoded)
    room = _SLOTS.NAME_ROOM
    start = room * _SLOT
    return _SLOTS.names[start:start + room], _SLOTS.cells, 5 + _SLOTS.CELLS * _SLOT, len(encoded)


class Within(NamedTuple):
    """The file ``name`` of work item ``item``, which names it only by its directory."""

    item: Any
    name: str


class _Tracked:
    """Runs a batch in a worker, noting its number in the worker's slot."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]]) -> None:
        self.fn = fn

    def __call__(self, task: tuple[int, Any]) -> tuple[int, list[Any]]:
        number, packed = task
        batch = unpack_walked(packed)
        if _SLOT >= 0:
            _SLOTS.set_item(_SLOT, -1, 0)  # until the batch function says which
            _SLOTS.set_batch(_SLOT, number)
        try:
            return number, self.fn(batch)
        finally:
            if _SLOT >= 0:
                _SLOTS.set_batch(_SLOT, -1)


def _new_pool(ctx: Any, jobs: int, slots: _Slots, born: list[Any]) -> Any:
    from multiprocessing.pool import Pool

    class QuietPool(Pool):
        # Pool's maintenance thread also wakes whenever a result is waiting to
        # be read, and then spins, polling every worker, until the result
        # thread has read it: on many small batches that cost as much CPU as
        # hashing. Worker exits and the pool's own notices still wake it, as
        # in ThreadPool.
        def _get_sentinels(self) -> list[Any]:
            return [self._change_notifier._reader]  # type: ignore[attr-defined]

        # Every worker the pool starts, replacements included, is recorded:
        # the pool forgets a dead worker within milliseconds.
        def Process(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # noqa: N802
            process = super().Process(*args, **kwargs)
            born.append(process)
            return process

    # A worker gets the parent's handlers until _init_worker replaces them:
    # a signal in between (the pool stopping a fresh replacement, a Ctrl-C)
    # would run the parent's handler in the worker. Blocked here, in this
    # thread and in the pool's threads that start now (and fork replacements
    # later), the signals wait in each new worker until its own handlers are
    # in place.
    handled = _handled_signals()
    _load_prctl()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        return QuietPool(jobs, _init_worker, (slots, handled, os.getpid()), context=ctx)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Slots:
    """Which batch each worker is on, in memory the workers share with the parent.

    Under fork an anonymous shared mapping is inherited for free; elsewhere
    ``multiprocessing.Array`` is pickled to the workers. Beside the numbers,
    each worker has room for the name of the file it is on (:func:`note_item`).
    """

    CELLS = 5  # batch, pid, item, sub, length of the name
    NAME_ROOM = 4096  # PATH_MAX: a longer name is cut

    def __init__(self, ctx: Any, size: int) -> None:
        self.size = size
        self.lock = ctx.Lock()
        cells = self.CELLS * size + 1
        if ctx.get_start_method() == "fork":
            import mmap

            self.memory: Any = mmap.mmap(-1, 8 * cells + self.NAME_ROOM * size)
            view = memoryview(self.memory)
            self.cells: Any = view[: 8 * cells].cast("q")
            self.names: Any = view[8 * cells:]
        else:
            self.memory = None
            self.cells = ctx.Array("q", cells, lock=False)
            self.names = ctx.Array("B", self.NAME_ROOM * size, lock=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "lock": self.lock, "memory": None, "cells": self.cells,
                "names": self.names}

    # cells[0] counts the slots taken; then CELLS cells per worker.
    def take(self) -> int:
        with self.lock:
            slot = self.cells[0]
            self.cells[0] = slot + 1
        return slot if slot < self.size else -1

    def set_pid(self, slot: int, pid: int) -> None:
        self.cells[2 + self.CELLS * slot] = pid

    def set_batch(self, slot: int, number: int) -> None:
        self.cells[1 + self.CELLS * slot] = number

    def set_item(self, slot: int, index: int, sub: int = 0, name: bytes | None = None) -> None:
        base = self.CELLS * slot
        cells = self.cells
        cells[3 + base] = index
        cells[4 + base] = sub
        if name is None:
            cells[5 + base] = 0
        else:
            n = min(len(name), self.NAME_ROOM)
            start = self.NAME_ROOM * slot
            self.names[start:start + n] = name[:n]
            cells[5 + base] = n

    def batch_of(self, pid: int | None) -> int:
        """The batch the worker ``pid`` was on, or -1 (idle, or not known)."""
        for i in range(min(int(self.cells[0]), self.size)):
            if self.cells[2 + self.CELLS * i] == pid:
                return int(self.cells[1 + self.CELLS * i])
        return -1

    def file_of(self, pid: int | None) -> str | None:
        """The name the worker ``pid`` noted last (see :func:`note_item`), if any."""
        for i in range(min(int(self.cells[0]), self.size)):
            if self.cells[2 + self.CELLS * i] == pid:
                n = int(self.cells[5 + self.CELLS * i])
                start = self.NAME_ROOM * i
                return os.fsdecode(bytes(self.names[start:start + n])) if n else None
        return None

    def working(self) -> Iterator[tuple[int, int, int, int, str | None]]:
        """``(pid, batch, item, sub, name)`` of each worker that is on a batch."""
        cells = self.cells
        for i in range(min(int(cells[0]), self.size)):
            base = self.CELLS * i
            batch = int(cells[1 + base])
            if batch >= 0:
                n = int(cells[5 + base])
                name = None
                if n:
                    start = self.NAME_ROOM * i
                    name = os.fsdecode(bytes(self.names[start:start + n]))
                yield int(cells[2 + base]), batch, int(cells[3 + base]), int(cells[4 + base]), name


def _pool_context() -> Any:
    import multiprocessing

    # fork starts a worker in about a millisecond and needs no re-import. It
    # is safe with the threads that run when the pool starts (the readers of
    # path lists and manifests): they hold no lock a worker takes, reading
    # from descriptors of their own, never sys.stdin.
    # Never rely on the platform default: it is changing to forkserver.
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


# How long a drained pool may take to wind down before it is killed instead.
CLOSE_SECONDS = 5.0
# Deaths after which the run gives up on the pool.
MAX_WORKER_DEATHS = 64


class WorkersKeepDying(RuntimeError):
    """Raised when worker processes die faster than the work gets done."""


class PoolExecutor:
    """A ``multiprocessing.Pool`` of ``jobs`` processes behind ``imap_unordered``.

    At most ``jobs * INFLIGHT_PER_WORKER`` batches are queued or running at a
    time, so a huge stream of batches is not read ahead into memory. The
    batches are read in a thread of their own (:class:`_ReadAhead`) and handed
    to the pool by this process's main thread, so a walk that waits (on a
    path list from a pipe, on a hung mount) never stops Ctrl-C.

    A plain Pool waits forever for a batch whose worker died (killed, out of
    memory, a crash in a C library), and a worker killed while it waits for
    work takes the lock of the task queue with it, which hangs the others and
    ``terminate()``. So a death here retires the whole pool: its processes are
    killed, a fresh pool takes over, and the batches that were queued or
    running are sent again. Each worker notes in shared memory which batch it
    is on; the items of the batch a worker died on (paths, or whatever the
    caller's batches hold) are tried once more, one by one, and an item whose
    worker dies again comes back as ``lost(item)``: for a path, an error.
    ``stats.worker_deaths`` counts the deaths.
    """

    def __init__(self, jobs: int, stats: PipelineStats | None = None) -> None:
        self.jobs = jobs
        self.stats = stats if stats is not None else PipelineStats()
        self._ctx = _pool_context()
        self._stop = threading.Event()
        self._closed = False
        self._drained = False  # the last map_unordered got every batch back
        self._born: list[Any] = []
        self._baseline: dict[int, int] = {}
        self._start_pool()
        self.stats.reading = self._reading

    def _reading(self) -> int:
        """The bytes the workers read since each was first asked (``rchar``)."""
        total = 0
        baseline = self._baseline
        for process in self._born:
            pid = process.pid
            read = _bytes_read(pid) if pid is not None else None
            if read is None:
                continue
            total += read - baseline.setdefault(pid, read)
        return total

    def _start_pool(self) -> None:
        # A worker must not inherit a live SQLite connection (see parhash.cache).
        cache = sys.modules.get("parhash.cache")
        if cache is not None:
            cache.release()
        self._born = []
        # Room for every worker the pool may start (it replaces dead ones).
        self._slots = _Slots(self._ctx, self.jobs * 4 + 8)
        self.pool = _new_pool(self._ctx, self.jobs, self._slots, self._born)

    def map_unordered(
        self,
        fn: Callable[[list[T]], list[R]],
        batches: Iterable[list[T]] | Feed,
        idle: Callable[[], None] | None = None,
        lost: Callable[[Any, str], R] | None = None,
    ) -> Iterator[list[R]]:
        import collections
        import multiprocessing
        import queue

        self._drained = False
        ahead: Feed = (batches if isinstance(batches, Feed)
                       else ReadAhead(batches, self.jobs * INFLIGHT_PER_WORKER, self._stop))
        limit = self.jobs * INFLIGHT_PER_WORKER
        lose = lost if lost is not None else cast(Callable[[Any, str], R], _lost_result)
        # Batches to send again after a death, with whether they are a retry.
        pending: collections.deque[tuple[list[T], bool]] = collections.deque()
        numbers = itertools.count()
        tracked = _Tracked(fn)
        watch = _StallWatch(self.stats)
        while True:
            # One generation: one pool, one imap_unordered, fed from `tasks`.
            tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
            generation_stop = threading.Event()
            results = self.pool.imap_unordered(
                tracked, _feed(tasks, generation_stop, self._stop), chunksize=1
            )
            inflight: dict[int, tuple[list[T], bool]] = {}
            dead: list[Any] = []
            # batch number -> (index of the item given up, what of it, seconds
            # without progress)
            abandoned: dict[int, tuple[int, Any, float]] = {}
            while True:
                while len(inflight) < limit:
                    if pending:
                        batch, retry = pending.popleft()
                    else:
                        got = ahead.get(POLL_SECONDS if not inflight else 0)
                        if got is None:
                            break
                        batch, retry = got, False
                    number = next(numbers)
                    inflight[number] = (batch, retry)
                    tasks.put((number, pack_walked(batch)))
                if not inflight and ahead.done and not pending:
                    tasks.put(None)
                    self._drained = True
                    return
                if not inflight:
                    if idle is not None:
                        idle()  # waited POLL_SECONDS for a batch: the input stalls
                    continue
                try:
                    number, batch_results = results.next(
                        timeout=POLL_SECONDS if len(inflight) >= self.jobs else 0.01
                    )
                except multiprocessing.TimeoutError:
                    if idle is not None:
                        idle()
                    dead = self._dead_workers()
                    if dead:
                        break
                    number = -1
                if time.monotonic() >= watch.due:
                    # A death first: its slot still names the batch it took.
                    dead = self._dead_workers()
                    if dead:
                        break
                    living = {p.pid: p for p in self._born if p.exitcode is None}
                    for pid, stuck, index, what, seconds in watch.check(self._slots, inflight):
                        if pid in living:
                            abandoned[stuck] = (index, what, seconds)
                            with contextlib.suppress(OSError, ValueError, AttributeError):
                                living[pid].kill()
                    if abandoned:
                        break
                if number < 0:
                    continue
                inflight.pop(number, None)
                yield batch_results
            # Workers died or were given up on: retire this pool and send its
            # work again, less the items given up.
            generation_stop.set()
            culprits = {self._slots.batch_of(p.pid) for p in dead}
            # The file a worker named as it died, for an item of several files.
            named = {self._slots.batch_of(p.pid): self._slots.file_of(p.pid) for p in dead}
            self.stats.worker_deaths += len(dead)
            if self.stats.worker_deaths + self.stats.abandoned > MAX_WORKER_DEATHS:
                raise WorkersKeepDying(
                    f"{self.stats.worker_deaths} worker processes died and "
                    f"{self.stats.abandoned} stalled"
                    if self.stats.abandoned else
                    f"{self.stats.worker_deaths} worker processes died"
                )
            self._retire_pool()
            self._start_pool()
            for number, (batch, retry) in sorted(inflight.items()):
                if number in abandoned and abandoned[number][0] < 0 < len(batch) - 1:
                    # Stalled on an item its function never named: each is
                    # tried alone, so that only the one that stalls is given up.
                    pending.extend(([item], retry) for item in batch)
                elif number in abandoned:
                    index, what, seconds = abandoned[number]
                    index = max(index, 0)
                    self.stats.abandoned += 1
                    # A file the item named itself: the item's function is
                    # told, through ``lost``, to do the item again without it.
                    yield [lose(what if isinstance(what, Within) else batch[index],
                                stalled_reason(seconds))]
                    rest = batch[:index] + batch[index + 1 :]
                    if rest:
                        pending.append((rest, retry))
                elif number not in culprits:
                    pending.append((batch, retry))
                elif retry:
                    name = named.get(number)
                    if name is not None and len(batch) == 1:
                        yield [lose(Within(batch[0], name), WORKER_DIED)]
                    else:
                        yield [lose(item, WORKER_DIED) for item in batch]
                else:
                    self.stats.retried += len(batch)
                    pending.extend(([item], True) for item in batch)

    def _dead_workers(self) -> list[Any]:
        return [p for p in self._born if p.exitcode is not None]

    def _retire_pool(self) -> None:
        """Kill the pool's processes and let go of it without waiting on its locks.

        ``Pool.terminate()`` takes the task queue's lock, which a worker that
        died while waiting for work still holds; so the pool is told to stop,
        its workers are killed, and its threads (daemons, blocked on pipes
        that no one writes any more) are left to the end of the process.
        """
        pool = self.pool
        pool._terminate.cancel()  # its exit handler would wait on that lock
        pool._state = "TERMINATE"
        for thread in (pool._worker_handler, pool._task_handler, pool._result_handler):
            thread._state = "TERMINATE"
        # The maintenance thread replaces dead workers: wake it so that it
        # sees the state and ends, and let it finish a replacement it may be
        # starting, so that no worker is born after the kills below.
        with contextlib.suppress(OSError, ValueError):
            pool._change_notifier.put(None)
        pool._worker_handler.join(timeout=1.0)
        for process in self._born:
            if process.exitcode is None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    process.kill()
        for process in self._born:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                process.join(timeout=1.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._drained and not self._dead_workers() and self._close_drained():
            return
        # Stopped with work in flight (a write error, Ctrl-C, SIGTERM). A
        # worker that terminate() kills while it sends a result holds the
        # result queue's lock, and terminate() then waits on it forever: kill
        # the workers and let go of the pool instead.
        self._retire_pool()

    def _close_drained(self) -> bool:
        """Every batch came back: end the workers with close()'s sentinels.

        Waits at most ``CLOSE_SECONDS`` for the workers and the pool's
        threads; False if something is still running then (a worker killed
        meanwhile can leave a queue's lock taken), for the caller to retire
        the pool instead.
        """
        import time

        pool = self.pool
        pool.close()
        deadline = time.monotonic() + CLOSE_SECONDS
        waited = [*self._born, pool._worker_handler, pool._task_handler, pool._result_handler]
        for each in waited:
            each.join(max(0.0, deadline - time.monotonic()))
        return not any(each.is_alive() for each in waited)

    def __enter__(self) -> PoolExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _feed(
    tasks: Any, generation_stop: threading.Event, stop: threading.Event
) -> Iterator[tuple[int, list[Item]]]:
    # Runs in the pool's task-feeding thread, which terminate() joins: it
    # must notice a stop while it waits, so it only takes what the main
    # thread hands it, with a timeout.
    import queue

    while not (stop.is_set() or generation_stop.is_set()):
        try:
            task = tasks.get(timeout=0.05)
        except queue.Empty:
            continue
        if task is None:
            return
        yield task


class _StallWatch:
    """Finds workers that make no progress on their item.

    Progress is a new batch or item in the worker's slot, or, where Linux
    tells, bytes read by the worker (``rchar`` of ``/proc/PID/io``): a large
    file read slowly is not stalled, a read that waits on a dead server or
    a stopped process is.
    """

    def __init__(self, stats: PipelineStats) -> None:
        self.stats = stats
        self.due = time.monotonic() + STALL_CHECK_SECONDS
        # pid -> ((batch, item, sub, name, bytes read), no progress since, warned)
        self.seen: dict[int, tuple[Any, float, bool]] = {}

    def check(
        self, slots: _Slots, inflight: dict[int, tuple[list[Any], bool]]
    ) -> list[tuple[int, int, Any, int, float]]:
        """``(pid, batch, item index, item, seconds)`` of each worker to give up on.

        ``item`` is the batch's item, or :class:`Within` it the file the
        worker named. Warns on the way.
        """
        now = time.monotonic()
        self.due = now + STALL_CHECK_SECONDS
        stats = self.stats
        give_up = []
        seen = {}
        for pid, batch, item, sub, name in slots.working():
            read = _bytes_read(pid)
            key = (batch, item, sub, name, read)
            before = self.seen.get(pid)
            if before is None or before[0] != key:
                seen[pid] = (key, now, False)
                continue
            since, warned = before[1], before[2]
            stalled = now - since
            # Item -1: the batch function has not said which item it is on.
            known = batch in inflight and -1 <= item < len(inflight[batch][0])
            what: Any = None
            if known:
                what = inflight[batch][0][max(item, 0)]
                if name is not None:
                    what = Within(what, name)
            if known and not warned and stalled >= stats.stall_warning:
                warned = True
                if stats.on_stall is not None:
                    stats.on_stall(what, 0 if name is not None else sub, stats.stall_warning)
            seen[pid] = (key, since, warned)
            if known and stats.stall_timeout is not None and stalled >= stats.stall_timeout:
                give_up.append((pid, batch, item, what, stats.stall_timeout))
        self.seen = seen
        return give_up


def _bytes_read(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io", "rb") as f:
            return int(f.readline().split()[1])  # "rchar: N"
    except (OSError, ValueError, IndexError):
        return None


WORKER_DIED = "worker process died while hashing this file"


def _lost_result(item: Item, reason: str) -> Result:
    if isinstance(item, WalkError):
        return item.as_result()
    return Result(str(item), {}, error=reason)


