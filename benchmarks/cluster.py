"""A Dask cluster on this machine for the cluster cases, and what its scheduler costs.

The cluster is what the README tells a user to start: one ``dask scheduler``
and two ``dask worker`` processes of one thread each, on 127.0.0.1, from the
venv that runs the benchmarks (so they see the same parhash). The cases
reach it through ``SCHEDULER_FILE``, relative to the work directory the
commands run from.

:func:`measure_scheduler` scans the small files through the Python API at
a few task sizes, reading the scheduler's CPU time (``/proc/PID/stat``)
around each scan and counting the tasks the executor sent: CPU per task is
what bounds the tasks per second one scheduler can take.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.timing import CLOCK_TICK

SCHEDULER_FILE = "cluster/scheduler.json"
WORKERS = 2
# Files per task of the scheduler's measurement: scan's default (1024), and
# smaller ones that make many tasks of little work.
SCHEDULER_CHUNKSIZES = (1024, 64, 16)


def unavailable() -> str | None:
    """Why the cluster cases can't run here, or None."""
    if importlib.util.find_spec("distributed") is None:
        return "distributed not installed (pip install '.[dask]', which `make bench` does)"
    if not (Path(sys.executable).parent / "dask").exists():
        return "no `dask` command beside this Python"
    return None


@dataclass
class Cluster:
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    file: Path


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK  # utime + stime


@contextlib.contextmanager
def local_cluster(workdir: Path, log: object = print) -> Iterator[Cluster]:
    """Start the scheduler and the workers; stop them (by process group) on the way out."""
    dask = str(Path(sys.executable).parent / "dask")
    file = workdir / SCHEDULER_FILE
    file.parent.mkdir(parents=True, exist_ok=True)
    file.unlink(missing_ok=True)
    logs = file.parent
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(logs / f"{name}.log", "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(proc)
        return proc

    try:
        scheduler = start("scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                        "--no-dashboard", "--scheduler-file", str(file)])
        deadline = time.monotonic() + 60
        while not file.exists():
            if time.monotonic() > deadline or scheduler.poll() is not None:
                raise RuntimeError(f"the scheduler did not start: see {logs}/scheduler.log")
            time.sleep(0.1)
        workers = [start(f"worker-{i}", [dask, "worker", "--scheduler-file", str(file),
                                         "--nthreads", "1", "--nworkers", "1",
                                         "--no-dashboard", "--host", "127.0.0.1"])
                   for i in range(WORKERS)]
        from distributed import Client

        with Client(scheduler_file=str(file), timeout=60) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(WORKERS, timeout=60)
        yield Cluster(scheduler, workers, file)
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass
class SchedulerFigures:
    """One task size's scans of the small files through the cluster, summed over rounds."""

    chunksize: int
    rounds: int
    files: int
    tasks: int
    seconds: float
    scheduler_cpu: float
    client_cpu: float

    @property
    def per_task_ms(self) -> float:
        return self.scheduler_cpu / self.tasks * 1000

    @property
    def client_per_task_ms(self) -> float:
        return self.client_cpu / self.tasks * 1000

    @property
    def tasks_per_second(self) -> float:
        return self.tasks / self.seconds


def measure_scheduler(cluster: Cluster, workdir: Path, corpus: str, chunksizes: tuple[int, ...],
                      rounds: int) -> list[SchedulerFigures]:
    """Scan ``corpus`` through the cluster at each task size (files per task)."""
    from distributed import Client

    import parhash

    figures = []
    here = os.getcwd()
    os.chdir(workdir)
    try:
        with (Client(scheduler_file=str(cluster.file), timeout=60) as client,  # type: ignore[no-untyped-call]
              parhash.DaskExecutor(client=client) as executor):
            for chunksize in chunksizes:
                files = tasks = 0
                seconds = scheduler_cpu = client_cpu = 0.0
                for _ in range(rounds):
                    before_tasks = executor.tasks
                    cpu0 = _cpu_seconds(cluster.scheduler.pid)
                    own0 = time.process_time()
                    t0 = time.perf_counter()
                    files += sum(1 for _ in parhash.scan(
                        [corpus], algos="md5", chunksize=chunksize, executor=executor))
                    seconds += time.perf_counter() - t0
                    client_cpu += time.process_time() - own0
                    scheduler_cpu += _cpu_seconds(cluster.scheduler.pid) - cpu0
                    tasks += executor.tasks - before_tasks
                figures.append(SchedulerFigures(chunksize, rounds, files, tasks, seconds,
                                                scheduler_cpu, client_cpu))
    finally:
        os.chdir(here)
    return figures
