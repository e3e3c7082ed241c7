"""Real processes: python -m, the Pool, a closed pipe, Ctrl-C and SIGTERM."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    ALGOS,
    ENV,
    PARHASH,
    Tree,
    alive,
    children,
    digest,
    gnu_line,
    no_traceback,
    random_bytes,
    records,
    run,
)


def test_python_dash_m_prints_md5sum_lines(tree: Tree) -> None:
    proc = run(["scan", "tree", "-a", "md5"], cwd=tree.root.parent)
    assert proc.returncode == 0
    assert proc.stderr == b""
    assert set(records(proc.stdout)) == tree.expected_gnu("md5", b"tree/")


@pytest.mark.parametrize("fmt", [[], ["--tag"], ["-z"]])
def test_one_job_and_two_jobs_give_the_same_lines(fmt: list[str], many: Tree) -> None:
    end = b"\0" if "-z" in fmt else b"\n"
    one = run(["scan", many.root, "-a", "md5", "-j", "1", *fmt])
    two = run(["scan", many.root, "-a", "md5", "-j", "2", "--chunksize", "3", *fmt])
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert one.stderr == two.stderr == b""
    assert len(records(one.stdout, end)) == len(many.files)
    assert sorted(records(one.stdout, end)) == sorted(records(two.stdout, end))


def test_pool_results_equal_the_reference_digests(many: Tree) -> None:
    proc = run(["scan", many.root, "-a", "sha256", "-j", "2"])
    assert proc.returncode == 0, proc.stderr
    assert set(records(proc.stdout)) == many.expected_gnu("sha256", many.broot + b"/")


def test_closed_pipe_downstream_ends_quietly(tmp_path: Path) -> None:
    root = tmp_path / "lines"
    root.mkdir()
    for i in range(1500):  # more output than a pipe holds
        (root / f"f{i:04d}").write_bytes(b"%d" % i)
    proc = subprocess.run(
        ["bash", "-c", '"$@" | head -1; echo "parhash exit status ${PIPESTATUS[0]}" >&2',
         "bash", *PARHASH, "scan", str(root), "-j", "2", "--chunksize", "16"],
        capture_output=True, env=ENV, timeout=60, check=False,
    )
    assert len(proc.stdout.splitlines()) == 1
    # 141 = 128 + SIGPIPE, what a shell reports for md5sum in the same place.
    assert proc.stderr == b"parhash exit status 141\n"


@pytest.fixture
def slow_tree(tmp_path: Path) -> Path:
    """A few MiB that take seconds to hash: every algorithm, one byte per read."""
    root = tmp_path / "slow"
    root.mkdir()
    for i in range(100):
        (root / f"f{i:03d}").write_bytes(random_bytes(i, 32 << 10))
    return root


SLOW = ["--json", "-a", ",".join(ALGOS), "--block-size", "1", "-j", "2", "--chunksize", "1"]


def start(args: list[str | os.PathLike[str]], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*PARHASH, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, start_new_session=True,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_for_workers(proc: subprocess.Popen[bytes], count: int = 2) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        workers = children(proc.pid)
        if len(workers) >= count:
            time.sleep(0.3)  # let them get to work
            return children(proc.pid)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    pytest.fail("the pool never started its workers")


def finish(proc: subprocess.Popen[bytes], timeout: float = 20) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"parhash did not stop within {timeout} s of the signal")


def assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "worker processes outlived parhash"


@pytest.mark.parametrize(
    "signum, to_group, status",
    [
        (signal.SIGINT, False, 130),
        (signal.SIGINT, True, 130),  # Ctrl-C in a terminal: the whole process group
        (signal.SIGTERM, False, 143),
    ],
)
def test_signal_stops_the_workers_and_exits_quietly(
    signum: int, to_group: bool, status: int, slow_tree: Path
) -> None:
    proc = start(["scan", slow_tree, *SLOW])
    workers = wait_for_workers(proc)
    assert proc.poll() is None, "the scan finished before the signal: make slow_tree slower"
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    _, err = finish(proc)
    no_traceback(err)
    assert proc.returncode == status
    assert err == b""
    assert_gone(workers)


def test_interrupt_leaves_the_existing_manifest_and_no_temporary_file(
    slow_tree: Path, tmp_path: Path
) -> None:
    target = tmp_path / "SUMS"
    target.write_bytes(b"old\n")
    proc = start(["scan", slow_tree, *SLOW, "-o", target])
    workers = wait_for_workers(proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = finish(proc)
    no_traceback(err)
    assert proc.returncode == 130
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SUMS", "slow"]
    assert_gone(workers)


def test_interrupt_while_the_path_list_is_still_open(tmp_path: Path) -> None:
    # The pool is running and idle, waiting for more names on standard input:
    # Ctrl-C must still stop it (a producer that hangs, a list typed by hand).
    for i in range(100):
        (tmp_path / f"f{i}").write_bytes(b"%d" % i)
    proc = start(
        ["scan", "--files0-from", "-", "-j", "2", "--chunksize", "1"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    proc.stdin.write(b"".join(os.fsencode(tmp_path / f"f{i}") + b"\0" for i in range(100)))
    proc.stdin.flush()
    workers = wait_for_workers(proc)
    os.kill(proc.pid, signal.SIGINT)
    hung = False
    try:
        proc.wait(timeout=5)  # a healthy run stops well within a second
    except subprocess.TimeoutExpired:
        hung = True
        os.killpg(proc.pid, signal.SIGKILL)
    proc.stdin.close()
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait()
    if hung:
        pytest.fail("Ctrl-C hung while the walk waited for more paths on standard input")
    no_traceback(err)
    assert proc.returncode == 130
    assert len(records(out)) == 100
    assert_gone(workers)


def test_one_job_hashes_listed_paths_while_the_list_is_still_being_written(
    tmp_path: Path,
) -> None:
    # -j 1 needs no look-ahead to decide between the pool and this process.
    (tmp_path / "first").write_bytes(b"first")
    proc = subprocess.Popen(
        [*PARHASH, "scan", "--files0-from", "-", "-a", "md5", "-j", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        time.sleep(0.5)  # let output's first flush come due
        proc.stdin.write(os.fsencode(tmp_path / "first") + b"\0")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 5)
        assert ready, "with -j 1, no line came out until more paths arrived (read ahead)"
        line = proc.stdout.readline()
        assert line == gnu_line(digest("md5", b"first"), os.fsencode(tmp_path / "first"))
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0


def test_the_pool_reports_idle_while_a_long_file_holds_the_next_result(tmp_path: Path) -> None:
    # The CLI flushes its output on these calls, so that lines already
    # computed never wait in a buffer behind a file that takes seconds.
    import parhash

    small = [tmp_path / f"a{i}" for i in range(8)]
    for i, p in enumerate(small):
        p.write_bytes(b"x" * i)
    big = tmp_path / "z"
    with open(big, "wb") as f:
        f.truncate(256 << 20)  # sparse: read at memory speed, hashed slowly
    idle_at: list[float] = []
    done_at: dict[str, float] = {}
    for r in parhash.scan([str(big), *map(str, small)], algos=("sha3-512",), jobs=2,
                          idle=lambda: idle_at.append(time.monotonic())):
        assert r.error is None, r
        done_at[r.path] = time.monotonic()
    assert len(done_at) == 9
    last_small = max(t for p, t in done_at.items() if p != str(big))
    waiting = [t for t in idle_at if last_small < t < done_at[str(big)]]
    assert len(waiting) >= 2, (len(idle_at), done_at[str(big)] - last_small)


def _read_records(stream: int, want: int, end: bytes, timeout: float) -> list[bytes]:
    """Read from a pipe until ``want`` records have come, or ``timeout`` passes."""
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(end) < want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream, 1 << 16)
        if not chunk:
            break
        data += chunk
    return records(data, end)


def _feed_in_parts(args: list[str], parts: list[tuple[bytes, list[bytes]]], *,
                   ordered: bool) -> None:
    """Run parhash with a pipe for stdin; write each part and wait for its lines.

    Each part is ``(bytes to write, the lines that must then come)``, in
    that order if ``ordered``; stdin stays open until every part has been
    answered, so the lines have to come while the producer is still running.
    """
    proc = subprocess.Popen([*PARHASH, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        out = proc.stdout.fileno()
        for data, lines in parts:
            proc.stdin.write(data)
            proc.stdin.flush()
            got = _read_records(out, len(lines), b"\n", timeout=20)
            assert (got if ordered else sorted(got)) == (lines if ordered else sorted(lines))
        proc.stdin.close()
        assert _read_records(out, 1, b"\n", timeout=20) == []
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    no_traceback(proc.stderr.read() if proc.stderr else b"")


def _files(tmp_path: Path, n: int) -> list[Path]:
    files = []
    for i in range(n):
        p = tmp_path / f"f{i:03d}"
        p.write_bytes(random_bytes(i, i))
        files.append(p)
    return files


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("option, end", [("--files-from", b"\n"), ("--files0-from", b"\0")])
def test_a_list_that_stalls_gets_its_lines_while_the_producer_runs(
    tmp_path: Path, jobs: str, option: str, end: bytes
) -> None:
    # `slow-producer | parhash scan --files-from -`: the paths read so far are
    # hashed and printed while the producer is still running, not held back
    # for a full batch or for the end of the list.
    files = _files(tmp_path, 300)
    parts = [  # fewer than a batch, then more than one
        (b"".join(bytes(p) + end for p in part),
         [gnu_line(digest("md5", p.read_bytes()), bytes(p)) for p in part])
        for part in (files[:5], files[5:])
    ]
    _feed_in_parts(["scan", "-a", "md5", "-j", jobs, option, "-"], parts, ordered=False)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_manifest_that_stalls_gets_its_verdicts_while_the_producer_runs(
    tmp_path: Path, jobs: str
) -> None:
    # `slow-producer | parhash check -`: as md5sum -c, each verdict comes
    # while the rest of the manifest is still on its way, in manifest order.
    files = _files(tmp_path, 300)
    parts = [
        (b"".join(gnu_line(digest("md5", p.read_bytes()), bytes(p)) for p in part),
         [bytes(p) + b": OK\n" for p in part])
        for part in (files[:5], files[5:])
    ]
    _feed_in_parts(["check", "-j", jobs, "-"], parts, ordered=True)
