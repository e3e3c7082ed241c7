"""Running commands: wall time, peak memory, and rounds that alternate the commands.

Each run starts the command with standard output on ``/dev/null`` and times
it with ``time.perf_counter`` from just before the fork to just after
``os.wait4`` returns. Peak memory is ``ru_maxrss`` as ``wait4`` reports it to a
small launcher (see :class:`Runner`): the peak resident set of the command or
of any process it waited for (a pool worker, a pipeline stage), whichever was
largest.

For the parent-CPU case a run also reads the command's CPU time split between
its main process and its children (see :func:`read_cpu`), from
``/proc/PID/stat`` after the process has exited and before it is reaped.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


@dataclass(frozen=True)
class Command:
    """One way of doing a case's work, as a user would type it.

    ``label`` names it in tables (``parhash -j2``, ``md5sum``); ``argv`` is
    what runs, from the work directory; ``shown`` is the command line
    printed in RESULTS.md. ``unavailable`` says why it can't run here (a
    missing peer tool, a parhash command that doesn't exist yet).
    ``succeeds`` is the exit status of a run that did its work (``diff``
    says 1 when the files differ).
    """

    label: str
    argv: tuple[str, ...]
    shown: str
    is_parhash: bool = False
    unavailable: str | None = None
    succeeds: int = 0


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of one run: the main process's own, and its reaped children's."""

    own: float
    children: float


class Outcome(NamedTuple):
    """One run: wall seconds, peak RSS in bytes (under the launcher), exit status, CPU."""

    seconds: float
    rss: int | None
    status: int
    cpu: Cpu | None = None


@dataclass
class Samples:
    """The runs of one command: wall seconds of the timed runs, peak RSS in bytes of the
    runs made under the memory launcher (the warm-up run, or every run of a memory case),
    and the CPU split of the timed runs of a case that reads it."""

    command: Command
    seconds: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    cpu: list[Cpu] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.command.unavailable is None and bool(self.seconds)


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float
    q1: float
    q3: float
    n: int


def stats(values: Sequence[float]) -> Stats:
    """Median, min, max and quartiles of ``values`` (quartiles equal the median below 3 values)."""
    median = statistics.median(values)
    if len(values) >= 3:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = median
    return Stats(median, min(values), max(values), q1, q3, len(values))


# Runs argv[2:] as a child and writes its ru_maxrss (KiB) to argv[1]: the fallback
# when GNU time is missing. Its own interpreter sets the floor of what it can see.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write("%d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


class Runner:
    """Runs commands from ``cwd``, keeping each run's standard error for failures.

    Peak memory is measured through a small launcher process (GNU time, else
    a minimal Python), never from the harness's own ``wait4``: a child forked
    from the harness starts with the harness's resident pages, so its
    ``ru_maxrss`` could never read below the harness's size. ``rss_floor`` is
    what the launcher reports for ``true``: values near it mean "at most this".
    """

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = env
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        fd, name = tempfile.mkstemp(prefix="parhash-bench-rss-")
        os.close(fd)
        self._rss_file = Path(name)
        gnu_time = shutil.which("time") or (
            "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
        )
        if gnu_time and _is_gnu_time(gnu_time):
            self.launcher: tuple[str, ...] = (gnu_time, "-q", "-f", "%M", "-o",
                                              str(self._rss_file))
            self.launcher_name = "GNU time"
        else:
            self.launcher = (sys.executable, "-S", "-I", "-c", _LAUNCHER, str(self._rss_file))
            self.launcher_name = "a minimal Python launcher (GNU time not installed)"
        self.rss_floor = 0
        self.rss_floor = self.run(Command("true", ("true",), "true"), rss=True).rss or 0

    def close(self) -> None:
        self._stderr.close()
        self._rss_file.unlink(missing_ok=True)

    def run(self, command: Command, rss: bool = False, cpu: bool = False) -> Outcome:
        """Run ``command`` once: wall seconds, peak RSS in bytes or None, exit status.

        With ``rss``, the command runs under the launcher, which adds about a
        millisecond; only then is the peak RSS known. With ``cpu``, the
        command's CPU time is read from ``/proc`` between its exit and its
        reaping (:func:`read_cpu`); it must then run directly, not under the
        launcher, whose process would be the one read.
        """
        if rss and cpu:
            raise ValueError("a run reads either peak RSS (launcher) or CPU (direct), not both")
        self._stderr.seek(0)
        self._stderr.truncate()
        argv = (*self.launcher, *command.argv) if rss else command.argv
        with open(os.devnull, "wb") as devnull:
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv, cwd=self.cwd, env=self.env,
                stdin=subprocess.DEVNULL, stdout=devnull, stderr=self._stderr,
            )
            used = None
            if cpu:
                # Wait for the exit but leave the process a zombie: its /proc
                # entry, with its own and its children's times, lasts until wait4.
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
                elapsed = time.perf_counter() - start
                used = read_cpu(proc.pid)
                _, status, _usage = os.wait4(proc.pid, 0)
            else:
                _, status, _usage = os.wait4(proc.pid, 0)
                elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = None
        if rss:
            lines = self._rss_file.read_text().split()
            # ru_maxrss is in KiB on Linux.
            peak = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else None
        return Outcome(elapsed, peak, proc.returncode, used)

    def stderr_tail(self, limit: int = 600) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-limit:]


CLOCK_TICK = 1 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def read_cpu(pid: int) -> Cpu | None:
    """The CPU time of process ``pid`` (exited, not yet reaped), from ``/proc/PID/stat``.

    ``own`` is utime+stime: the process's own threads only, which for parhash
    is the main process that walks and schedules. ``children`` is
    cutime+cstime: the children it has reaped, by its exit all of its pool
    workers. Both are whole clock ticks (``CLOCK_TICK``, 10 ms on most
    kernels), so one reading is coarse and the case averages many. None where
    there is no ``/proc``.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces; the
    # fields after it start at 3 (state), so utime (14) is the 12th of them.
    fields = text.rpartition(")")[2].split()
    try:
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    except ValueError:
        return None
    return Cpu((utime + stime) * CLOCK_TICK, (cutime + cstime) * CLOCK_TICK)


def _is_gnu_time(path: str) -> bool:
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "GNU" in proc.stdout + proc.stderr


class CpuMeter:
    """How busy the rest of the machine was while a case ran.

    The CPU time all processes used (``/proc/stat``) minus what the harness and
    the commands it ran used (``os.times``, children included), over the wall
    time: the average number of cores other processes took. On a shared
    machine it says which cases ran while something else was competing.
    """

    def __init__(self) -> None:
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        # user nice system idle iowait irq softirq steal: all but idle and iowait
        values = [int(v) for v in fields[1:9]]
        busy = (sum(values) - values[3] - values[4]) / self._hz
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        return time.perf_counter(), busy, ours

    def other_cores(self) -> float | None:
        """Average cores used by other processes since this meter was created."""
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        if wall <= 0:
            return None
        other = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, other / wall)


def run_rounds(
    runner: Runner,
    commands: Sequence[Command],
    rounds: int,
    warmup: bool = True,
    metric: str = "time",
    progress: Callable[[str], None] | None = None,
    cpu: bool = False,
) -> list[Samples]:
    """Time every command ``rounds`` times, alternating them within each round.

    Round ``r`` runs the commands once each, starting at the ``r``-th one
    (round-robin with rotation), so that a slow spell of the machine or the
    after-effects of one command (cache, clock speed) fall on all of them
    alike rather than on whichever ran in that stretch. With ``warmup``, each
    command first runs once untimed, under the memory launcher: that run
    gives its peak RSS. When ``metric`` is ``"rss"`` every run is measured
    that way. With ``cpu``, every timed run also reads the command's CPU
    split (:func:`read_cpu`); the warm-up run, under the launcher, does not.
    A command that exits non-zero is recorded as failed, with the tail of its
    standard error, and not run again.
    """
    samples = [Samples(c) for c in commands]
    live = [s for s in samples if s.command.unavailable is None]
    if warmup:
        for s in live:
            _run_into(runner, s, record=False, rss=True, cpu=False)
    for r in range(rounds):
        runnable = [s for s in live if s.error is None]
        if not runnable:
            break
        k = r % len(runnable)
        for s in runnable[k:] + runnable[:k]:
            _run_into(runner, s, record=True, rss=metric == "rss", cpu=cpu and metric != "rss")
        if progress:
            progress(f"round {r + 1}/{rounds}")
    return samples


def _run_into(runner: Runner, s: Samples, record: bool, rss: bool, cpu: bool) -> None:
    if s.error is not None:
        return
    outcome = runner.run(s.command, rss=rss, cpu=cpu)
    if outcome.status != s.command.succeeds:
        s.error = f"exit status {outcome.status}: {runner.stderr_tail()}".strip().rstrip(":")
        return
    if outcome.rss is not None:
        s.rss.append(outcome.rss)
    if record:
        s.seconds.append(outcome.seconds)
        if outcome.cpu is not None:
            s.cpu.append(outcome.cpu)
