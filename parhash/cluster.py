"""A Dask cluster behind the executor seam: :class:`DaskExecutor`.

The only module that imports ``distributed``, and nothing imports it but
``--executor dask`` and a caller who asks for :class:`DaskExecutor`:
``import distributed`` costs 0.2-0.4 s.

The tasks are the local pipeline's (scan's directories, check's ranges,
dupes' runs of files), sent through Dask's futures API: ``client.map`` of
a window of tasks, results in order of arrival through ``as_completed``.
Dask costs some 1.7 ms a task here, against 0.02 ms for the local pool
(``/work/shared/design/distributed.md`` has the figures), which the tasks'
sizes make small: a thousand small files, or 16 MiB, a task. Each task
travels as one ``bytes`` object each way, pickled by parhash: Dask's own
handling of a list of a thousand records cost 35 ms more a task than the
same list pickled into bytes.

Security: Dask's ``tcp://`` is unauthenticated and carries pickles, so
anyone who can reach the scheduler's port can run code on the cluster.
Use ``tls://`` with certificates (:class:`distributed.Security`) wherever
others can reach the network.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

import distributed

from parhash.executor import POLL_SECONDS, ClusterError, Feed, ReadAhead
from parhash.pool import WORKER_DIED, _lost_result
from parhash.walk import pack_walked, unpack_walked

T = TypeVar("T")
R = TypeVar("R")

# Tasks in flight per worker thread, at least: below it the workers wait
# between tasks. A refill is one client.map of what the window has room for,
# once half of it has come back: 5,000 no-op tasks took 8.3 s with a window
# of 200, as many as all at once, 9.2 s with 32, and 16.2 s refilled four at
# a time (one client.submit per task cost 3.6 ms against 1.9).
WINDOW_PER_THREAD = 4
# The local pipeline's tasks (a thousand small files, 16 MiB) are some 20 ms
# of a worker's time, where a scheduler spends 1-2 ms of its CPU on each
# (benchmarks/RESULTS.md): one scheduler would saturate at about ten workers.
# A task this many times larger keeps the scheduler's share small.
TASK_SCALE = 8

DEFAULT_CONNECT_TIMEOUT = 10.0

__all__ = ["ClusterError", "DaskExecutor"]


# --- in the workers ----------------------------------------------------------------

# Read buffers and open directories are per process in parhash (see
# parhash.hashing): two threads of one worker must not share them. A worker's
# parhash tasks take turns; run workers with --nthreads 1 and --nworkers N.
_TURN = threading.Lock()


def run_packed(packed: bytes) -> bytes:
    """Run one task on a worker: ``(function, batch, directory)`` in, its results out.

    Both ways as one pickled ``bytes``. The task runs in the client's
    working directory, so that relative names mean what they mean there;
    the worker's own is put back afterwards.
    """
    from parhash.hashing import release_directories

    fn, batch, cwd = pickle.loads(packed)
    with _TURN:
        before = None
        with contextlib.suppress(OSError):
            before = os.getcwd()
        if before != cwd:
            os.chdir(cwd)
        try:
            results = fn(unpack_walked(batch))
        finally:
            # Held open by path: another client's task may have another cwd.
            release_directories()
            if before is not None and before != cwd:
                with contextlib.suppress(OSError):
                    os.chdir(before)
    return pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)


def parhash_version() -> str:
    """The version of parhash where this runs (the probe sends it by reference:
    it fails where parhash can't be imported)."""
    import parhash

    return parhash.__version__


def unseen(paths: Sequence[tuple[str, bool]], cwd: str) -> list[tuple[str, str]]:
    """``(path, why)`` for each of ``paths`` (``(path, is a directory)``) that is
    not here as the client sees it."""
    missing = []
    for path, is_dir in paths:
        try:
            st = os.stat(os.path.join(cwd, path))
        except OSError as e:
            missing.append((path, e.strerror or str(e)))
            continue
        import stat

        if stat.S_ISDIR(st.st_mode) != is_dir:
            missing.append((path, "a directory here, not there" if not is_dir
                            else "not a directory"))
    return missing


# --- in the client -----------------------------------------------------------------


class DaskExecutor:
    """Runs the pipeline's tasks on a Dask cluster, through its futures API.

    Give it a ``client`` (a :class:`distributed.Client` of your own: a
    dask-jobqueue, Kubernetes or Coiled cluster's; it is left open), or the
    ``address`` (``tcp://host:8786``, ``tls://...``) or ``scheduler_file``
    of a scheduler to connect to within ``connect_timeout`` seconds, with
    ``security`` (a :class:`distributed.Security`) for ``tls://``; a client
    made here is closed by :meth:`close`.

    ``jobs`` is the cluster's worker threads. At most ``window`` tasks
    (default :data:`WINDOW_PER_THREAD` per thread) are on the scheduler at
    a time; each result's future is released as soon as it is read. A task
    whose worker died is run again by Dask; one that Dask gave up on
    (``KilledWorker``, after ``distributed.scheduler.allowed-failures``) is
    tried again item by item, and an item that kills again is ``lost``: an
    error for that file. A run stopped early (Ctrl-C, the caller closing
    the iterator) cancels its tasks, so that the cluster goes idle.

    Parhash must be installed, at the same version, on the client, the
    scheduler and every worker, and the files must be at the same paths
    everywhere. The constructor checks the versions and raises
    :class:`ClusterError`, naming the scheduler or worker, on a mismatch
    or when the scheduler can't be reached; :meth:`check_paths` checks
    the paths.
    """

    def __init__(
        self,
        *,
        client: Any = None,
        address: str | None = None,
        scheduler_file: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        security: Any = None,
        window: int | None = None,
        task_scale: int = TASK_SCALE,
    ) -> None:
        if window is not None and window < 1:
            raise ValueError("window must be at least 1")
        self._own = client is None
        self._seen_dirs: set[str] = set()
        self.tasks = 0  # sent to the cluster so far, retries included
        self.task_scale = task_scale
        self.connect_timeout = connect_timeout
        if client is None:
            client = _connect(address, scheduler_file, connect_timeout, security)
        self.client = client
        self.window_given = window
        try:
            self._check_scheduler()
            self.jobs = self._threads()
            self._check_workers()
        except BaseException:
            self.close()
            raise

    @property
    def window(self) -> int:
        return self.window_given or WINDOW_PER_THREAD * self.jobs

    def _threads(self) -> int:
        """The worker threads of the cluster, once at least one worker is there."""
        threads = sum(self.client.nthreads().values())
        if not threads:
            try:
                self.client.wait_for_workers(1, timeout=self.connect_timeout)
            except (TimeoutError, OSError) as e:
                raise ClusterError(
                    f"no worker joined the scheduler at {self.address} within "
                    f"{self.connect_timeout:g} s"
                ) from e
            threads = sum(self.client.nthreads().values())
        return max(1, int(threads))

    @property
    def address(self) -> str:
        return str(getattr(self.client.scheduler, "address", None) or "(unknown)")

    def _worker_names(self) -> dict[str, str]:
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # before n_workers
            workers = self.client.scheduler_info()["workers"]
        return {address: _shown_worker(address, info.get("name")) for address, info
                in workers.items()}

    def _check_scheduler(self) -> None:
        """Raise :class:`ClusterError` unless the scheduler runs this client's parhash.

        The scheduler unpickles every task, so it needs parhash too (Dask
        says "Error during deserialization of the task graph" otherwise).
        The probe is a function of parhash sent by reference: it fails where
        parhash can't be imported, as the tasks would.
        """
        from parhash import __version__

        try:
            there = _within(self.connect_timeout,
                            lambda: self.client.run_on_scheduler(parhash_version),
                            f"the scheduler at {self.address}")
        except ClusterError:
            raise
        except Exception as e:  # what failed there: any exception, sent back
            raise ClusterError(
                f"the scheduler at {self.address} can't run parhash "
                f"({_why(e)}): install parhash {__version__} beside it"
            ) from None
        if there != __version__:
            raise ClusterError(
                f"the scheduler at {self.address} runs parhash {there}, this client "
                f"{__version__}"
            )

    def _check_workers(self) -> None:
        """Raise :class:`ClusterError` naming a worker that does not run this client's
        parhash (see :meth:`_check_scheduler`)."""
        from parhash import __version__

        answers = _within(self.connect_timeout,
                          lambda: self.client.run(parhash_version, on_error="return"),
                          "a worker asked for its parhash version")
        names = self._worker_names()
        for address, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                raise ClusterError(
                    f"worker {names.get(address, address)} can't run parhash "
                    f"({_why(answer)}): install parhash {__version__} there"
                )
            if answer != __version__:
                raise ClusterError(
                    f"worker {names.get(address, address)} runs parhash {answer}, "
                    f"this client {__version__}"
                )

    def check_paths(self, paths: Iterable[str]) -> None:
        """Raise :class:`ClusterError` naming a worker that can't see one of ``paths``
        (relative to this process's working directory, which is checked too)
        as this process sees it. Paths this process can't see are left to the run."""
        cwd = os.getcwd()
        wanted: list[tuple[str, bool]] = [(cwd, True)]
        for path in paths:
            try:
                st = os.stat(os.path.join(cwd, path))
            except (OSError, ValueError):
                continue
            import stat

            wanted.append((path, stat.S_ISDIR(st.st_mode)))
        answers = _within(self.connect_timeout,
                          lambda: self.client.run(unseen, wanted, cwd, on_error="return"),
                          "a worker asked whether it sees the paths (a dead mount?)")
        names = self._worker_names()
        for address, answer in sorted(answers.items()):
            worker = names.get(address, address)
            if isinstance(answer, BaseException):
                raise ClusterError(f"worker {worker} can't run parhash ({_why(answer)})")
            if answer:
                path, why = answer[0]
                from parhash.formats.names import quote_name

                raise ClusterError(f"worker {worker} can't see {quote_name(path)}: {why}")
        self._seen_dirs.add(cwd)

    def map_unordered(
        self,
        fn: Callable[[list[T]], list[R]],
        batches: Iterable[list[T]] | Feed,
        idle: Callable[[], None] | None = None,
        lost: Callable[[Any, str], R] | None = None,
    ) -> Iterator[list[R]]:
        return self._run(fn, batches, idle, lost)

    def _run(
        self,
        fn: Callable[[list[T]], list[R]],
        batches: Iterable[list[T]] | Feed,
        idle: Callable[[], None] | None,
        lost: Callable[[Any, str], R] | None,
    ) -> Iterator[list[R]]:
        import queue

        client = self.client
        cwd = os.getcwd()
        if cwd not in self._seen_dirs:
            self.check_paths(())
        self.jobs = max(1, sum(client.nthreads().values()))
        window = self.window
        stop = threading.Event()
        ahead: Feed = (batches if isinstance(batches, Feed)
                       else ReadAhead(batches, window, stop))
        lose = lost if lost is not None else cast(Callable[[Any, str], R], _lost_result)
        # Batches to send, with whether they are a retry (one item, after Dask
        # gave up on the batch it came in).
        pending: collections.deque[tuple[list[T], bool]] = collections.deque()
        inflight: dict[str, tuple[list[T], bool, Any]] = {}
        done = distributed.as_completed(  # type: ignore[no-untyped-call]
            loop=client.loop, with_results=True, raise_errors=False)
        heard = time.monotonic()  # the last result, or the last look at the workers
        try:
            while True:
                if len(inflight) <= window // 2:
                    # Workers come and go: the window follows their threads.
                    self.jobs = max(1, sum(client.nthreads().values()))
                    window = self.window
                    self._refill(fn, cwd, ahead, pending, inflight, done, window)
                if not inflight:
                    if ahead.done and not pending:
                        return
                    if idle is not None:
                        idle()  # waited for a batch: the input stalls
                    continue
                try:
                    first = done.queue.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if idle is not None:
                        idle()
                    if time.monotonic() - heard > self.connect_timeout:
                        heard = time.monotonic()
                        if not client.nthreads():
                            raise ClusterError(
                                f"no worker is left on the scheduler at {self.address}"
                            ) from None
                    continue
                heard = time.monotonic()
                ready = done.next_batch(block=False)  # type: ignore[no-untyped-call]
                for future, result in [first, *ready]:
                    batch, retry, _ = inflight.pop(future.key)
                    status = future.status
                    future.release()
                    if status == "finished":
                        yield pickle.loads(result)
                        continue
                    error = result[1] if isinstance(result, tuple) else result
                    if not isinstance(error, distributed.KilledWorker):
                        # A worker that can't enter the client's directory, the
                        # scheduler gone (the tasks cancelled)...: the run
                        # can't go on, and says why in one line.
                        why = (_why(error) if isinstance(error, BaseException)
                               else f"{status}: {error!r}")
                        raise ClusterError(f"a task failed on the cluster at "
                                           f"{self.address} ({why})")
                    if retry:
                        yield [lose(item, WORKER_DIED) for item in batch]
                    else:
                        # Which item killed its workers is not known: each is
                        # tried alone, so that only that one is lost.
                        pending.extend(([item], True) for item in batch)
        except (ClusterError, GeneratorExit):
            raise
        except Exception as e:  # the connection to the scheduler, lost mid-run
            raise ClusterError(f"lost the scheduler at {self.address} ({_why(e)})") from None
        finally:
            stop.set()
            if inflight:
                with contextlib.suppress(Exception):
                    client.cancel([f for _, _, f in inflight.values()], force=True)
                inflight.clear()

    def _refill(
        self,
        fn: Callable[[list[T]], list[R]],
        cwd: str,
        ahead: Feed,
        pending: collections.deque[tuple[list[T], bool]],
        inflight: dict[str, tuple[list[T], bool, Any]],
        done: Any,
        window: int,
    ) -> None:
        """Send as many batches as the window has room for, in one ``client.map``."""
        sent: list[tuple[list[T], bool]] = []
        while len(inflight) + len(sent) < window:
            if pending:
                sent.append(pending.popleft())
                continue
            got = ahead.get(POLL_SECONDS if not inflight and not sent else 0)
            if got is None:
                break
            sent.append((got, False))
        if not sent:
            return
        packed = [pickle.dumps((fn, pack_walked(batch), cwd), protocol=pickle.HIGHEST_PROTOCOL)
                  for batch, _ in sent]
        futures = self.client.map(run_packed, packed, pure=False)
        self.tasks += len(futures)
        for (batch, retry), future in zip(sent, futures, strict=True):
            inflight[future.key] = (batch, retry, future)
        done.update(futures)

    def close(self) -> None:
        """Close the client if this executor made it; a client given is left open."""
        client = getattr(self, "client", None)
        if client is not None and self._own:
            self.client = None
            with contextlib.suppress(Exception):
                client.close(timeout=2)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shown_worker(address: str, name: Any) -> str:
    return address if name is None or str(name) == address else f"{name} ({address})"


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _within(seconds: float, call: Callable[[], R], what: str) -> R:
    """``call()``, or :class:`ClusterError` saying ``what`` did not answer in ``seconds``.

    For Dask's calls that wait without a bound of their own: a handshake with
    a port that is no scheduler, a probe of a worker stuck on a dead mount.
    The call goes on in a daemon thread, which the process's end leaves behind.
    """
    got: list[Any] = []

    def run() -> None:
        try:
            got.append((True, call()))
        except BaseException as e:  # handed to the caller's thread
            got.append((False, e))

    thread = threading.Thread(target=run, daemon=True, name="parhash-cluster-call")
    thread.start()
    thread.join(seconds)
    if not got:
        raise ClusterError(f"{what} did not answer within {seconds:g} s")
    ok, value = got[0]
    if not ok:
        raise value
    return cast(R, value)


def _connect(address: str | None, scheduler_file: str | None, timeout: float,
             security: Any) -> Any:
    """A client of the scheduler at ``address`` or in ``scheduler_file``; raises
    :class:`ClusterError` if it can't be reached within ``timeout`` seconds."""
    if (address is None) == (scheduler_file is None):
        raise ValueError("give one of address and scheduler_file (or a client)")
    where = address if address is not None else f"named in {scheduler_file}"
    if scheduler_file is not None and not os.path.exists(scheduler_file):
        raise ClusterError(f"no scheduler file {scheduler_file}")
    def connect() -> Any:
        return distributed.Client(  # type: ignore[no-untyped-call]
            address, scheduler_file=scheduler_file, timeout=timeout, security=security,
            set_as_default=False,
        )

    try:
        # One bound on the whole of it: Dask's own leaves the handshake unbounded.
        return _within(timeout + 1, connect, f"the scheduler {where}")
    except ClusterError as e:
        raise ClusterError(f"cannot reach the scheduler {where} within {timeout:g} s "
                           "(it did not answer as a Dask scheduler)") from e
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"cannot reach the scheduler {where} within {timeout:g} s "
                           f"({_why(e)})") from None
    except ValueError as e:  # not an address
        raise ClusterError(f"bad scheduler address {where}: {e}") from None
    except Exception as e:  # tls:// without a certificate, a port that speaks another protocol
        raise ClusterError(f"cannot connect to the scheduler {where}: {_why(e)}") from None
