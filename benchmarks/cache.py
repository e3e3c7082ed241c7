"""The hash cache's figures that are not a timed case: a run killed halfway and
resumed, and the cache's size per entry.

A scan that fills a new cache is killed with SIGKILL halfway: once it has
printed the records of half the files (each task's digests are written
before its records are). Then the same scan runs again to the end and is
timed. What it costs, against a full cold scan, says how much of the killed
run's work the cache kept (the issue's "about half").
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ResumeFigures:
    corpus: str
    full_s: float  # median wall time of a cold scan to the end
    resumed_s: float  # median wall time of the scan after one killed halfway
    kept: float  # median share of the corpus's files in the cache after the kill
    bytes_per_entry: float  # the full cache's size over its entries
    entries: int
    rounds: int

    @property
    def ratio(self) -> float:
        return self.resumed_s / self.full_s


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _scan(argv: tuple[str, ...], cache: Path, paths: list[str], workdir: Path,
          watch: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*argv, "scan", "-a", "md5", "-j", "2", "--cache-file", str(cache),
                             *paths], cwd=workdir,
                            stdout=subprocess.PIPE if watch else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stats(argv: tuple[str, ...], cache: Path) -> dict[str, int]:
    import json

    out = subprocess.run([*argv, "cache", "stats", "--json", "--cache-file", str(cache)],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = json.loads(out)
    return found


def measure_resume(argv: tuple[str, ...], workdir: Path, corpus: str, paths: list[str],
                   files: int, rounds: int) -> ResumeFigures:
    """Cold scans of ``paths`` (``files`` files in all), killed halfway and resumed."""
    cache = workdir / f"cache-resume-{corpus}.sqlite"
    full = []
    for _ in range(rounds):
        _remove(cache)
        start = time.perf_counter()
        if _scan(argv, cache, paths, workdir).wait() != 0:
            raise RuntimeError(f"parhash scan of {corpus} failed")
        full.append(time.perf_counter() - start)
    stats = _stats(argv, cache)
    entries = stats["entries"]
    per_entry = stats["bytes"] / entries if entries else 0.0
    resumed, kept = [], []
    for _ in range(rounds):
        _remove(cache)
        proc = _scan(argv, cache, paths, workdir, watch=True)
        assert proc.stdout is not None
        printed = 0
        while printed < files / 2 and proc.stdout.readline():
            printed += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        kept.append(_stats(argv, cache)["entries"] / files if cache.exists() else 0.0)
        start = time.perf_counter()
        if _scan(argv, cache, paths, workdir).wait() != 0:
            raise RuntimeError(f"parhash scan of {corpus} failed after a kill")
        resumed.append(time.perf_counter() - start)
    _remove(cache)
    return ResumeFigures(corpus, statistics.median(full), statistics.median(resumed),
                         statistics.median(kept), per_entry, entries, rounds)
