"""The executor seam: scan, check and find_dupes run on any executor handed to them.

An executor written here on ``concurrent.futures`` (nothing of parhash's
pool) stands for the cluster's: if it works with no change anywhere else,
so can another engine.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest

import parhash
from parhash.executor import Feed
from parhash.tasks import ALONE_BYTES


class FuturesExecutor:
    """``map_unordered`` on a ``concurrent.futures`` process pool."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.batches = 0
        # Forked, not spawned: spawning starts a resource tracker that outlives
        # the executor, a child of the test process that later tests would see.
        self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))

    def map_unordered(
        self,
        fn: Callable[[list[Any]], list[Any]],
        batches: Iterable[list[Any]] | Feed,
        idle: Callable[[], None] | None = None,
        lost: Callable[[Any, str], Any] | None = None,
    ) -> Iterator[list[Any]]:
        feed = batches if isinstance(batches, Feed) else None
        given = None if isinstance(batches, Feed) else iter(batches)
        running: set[Future[list[Any]]] = set()
        while True:
            while len(running) < 2 * self.jobs:
                if feed is not None:
                    batch = feed.get(0 if running else 0.05)
                else:
                    assert given is not None
                    batch = next(given, None)
                if batch is None:
                    break
                self.batches += 1
                running.add(self._pool.submit(fn, batch))
            if not running:
                if feed is None or feed.done:
                    return
                continue
            done, running = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self) -> None:
        self._pool.shutdown()


@pytest.fixture(scope="module")
def futures() -> Iterator[FuturesExecutor]:
    executor = FuturesExecutor(2)
    yield executor
    executor.close()


def _tree(root: Path) -> dict[str, bytes]:
    """Nested directories of small files, some of them copies, and one large file."""
    files = {}
    for d in range(12):
        sub = root / f"d{d}" / f"e{d % 3}"
        sub.mkdir(parents=True)
        for i in range(25):
            data = f"{d}-{i}\n".encode() * (i + 1) if i % 5 else b"same contents\n" * d
            files[str(sub / f"f{i}")] = data
    files[str(root / "large")] = os.urandom(ALONE_BYTES + 12345)
    files[str(root / "d0" / "large copy")] = files[str(root / "large")]
    for path, data in files.items():
        Path(path).write_bytes(data)
    return files


def _md5sum(paths: Iterable[str]) -> list[str]:
    if shutil.which("md5sum") is None:
        pytest.fail("md5sum (coreutils) is needed to compare with")
    done = subprocess.run(["md5sum", "--", *sorted(paths)], check=True, capture_output=True)
    return sorted(done.stdout.decode().splitlines())


def _expected_groups(files: dict[str, bytes]) -> list[list[str]]:
    by_digest: dict[str, list[str]] = {}
    for path, data in files.items():
        if data:
            by_digest.setdefault(hashlib.sha256(data).hexdigest(), []).append(path)
    return sorted(sorted(g) for g in by_digest.values() if len(g) > 1)


@pytest.mark.parametrize("make", ["inline", "pool", "futures"])
def test_scan_check_and_dupes_run_on_a_given_executor(
    tmp_path: Path, make: str, futures: FuturesExecutor
) -> None:
    files = _tree(tmp_path / "tree")
    makers: dict[str, Callable[[], Any]] = {
        "inline": parhash.InlineExecutor,
        "pool": lambda: parhash.PoolExecutor(2),
        "futures": lambda: futures,
    }
    executor = makers[make]()
    before = futures.batches
    try:
        results = list(parhash.scan([str(tmp_path / "tree")], algos=("md5",),
                                    executor=executor))
        assert sorted(f"{r.digests['md5']}  {r.path}" for r in results) == _md5sum(files)

        manifest = tmp_path / "MD5SUMS"
        manifest.write_text("\n".join(_md5sum(files)) + "\n")
        Path(next(iter(files))).write_bytes(b"changed")
        verdicts = list(parhash.check([str(manifest)], executor=executor))
        assert sorted(v.status for v in verdicts) == ["failed"] + ["ok"] * (len(files) - 1)
        assert [v.path for v in verdicts if v.status == "failed"] == [next(iter(files))]
        # In manifest order, as md5sum -c answers.
        assert [v.line for v in verdicts] == list(range(1, len(files) + 1))

        files[next(iter(files))] = b"changed"
        groups = [g for g in parhash.find_dupes([str(tmp_path / "tree")], algo="sha256",
                                               executor=executor)
                  if isinstance(g, parhash.DupeGroup)]
        assert sorted(sorted(g.paths) for g in groups) == _expected_groups(files)
        for g in groups:
            assert g.digest == hashlib.sha256(files[g.paths[0]]).hexdigest()
    finally:
        if make == "pool":
            executor.close()
    if make == "futures":
        # Every task went to the given executor: none was done in this process.
        assert futures.batches - before >= 3


def test_a_given_executor_is_left_open_for_the_next_run(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    with parhash.PoolExecutor(2) as pool:
        for _ in range(3):
            (r,) = parhash.scan([str(tmp_path / "a")], algos=("md5",), executor=pool)
            assert r.digests == {"md5": hashlib.md5(b"a").hexdigest()}
        assert pool.pool is not None


def test_an_executor_s_task_scale_makes_fewer_larger_tasks_and_the_same_answers(
    tmp_path: Path, futures: FuturesExecutor
) -> None:
    # A cluster's executor asks for tasks task_scale times the local ones: its
    # scheduler pays per task. The answers are the same; the tasks fewer.
    root = tmp_path / "tree"
    files = {}
    for d in range(40):
        (root / f"d{d:02}").mkdir(parents=True)
        for i in range(60):
            path = root / f"d{d:02}" / f"f{i:02}"
            path.write_bytes(b"%d %d\n" % (d, i % 7) * (i + 1))
            files[str(path)] = path.read_bytes()
    manifest = tmp_path / "MD5SUMS"
    manifest.write_text("\n".join(_md5sum(files)) + "\n")
    answers = []
    batches = []
    try:
        for scale in (1, 8):
            futures.task_scale = scale  # type: ignore[attr-defined]
            before = futures.batches
            scanned = sorted(f"{r.digests['md5']}  {r.path}" for r in parhash.scan(
                [str(root)], algos=("md5",), chunksize=60, executor=futures))
            checked = [(v.path, v.status) for v in parhash.check(
                [str(manifest)], chunksize=60, executor=futures)]
            groups = sorted(sorted(g.paths) for g in parhash.find_dupes(
                [str(root)], chunksize=60, executor=futures))
            answers.append((scanned, checked, groups))
            batches.append(futures.batches - before)
    finally:
        del futures.task_scale  # type: ignore[attr-defined]
    assert answers[0] == answers[1]
    assert answers[0][0] == _md5sum(files)
    assert answers[0][2] == _expected_groups(files)
    assert batches[1] * 2 < batches[0], batches
