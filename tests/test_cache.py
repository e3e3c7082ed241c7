"""The hash cache: ``parhash scan --cache``, ``parhash cache stats|prune|clear``, ``scan(cache=)``.

Real files in ``tmp_path``, real ``python -m parhash`` processes, expected
digests from hashlib. The racy-file rule (see ``parhash.cache``) keeps an
entry from answering until its file's times are older than the start of its
reading by 100 ms (2.1 s for whole-second times): a test that wants hits
waits :data:`SETTLE` after writing its files, and the tests of the rule
itself do the opposite on purpose.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    AWKWARD_NAMES,
    ENV,
    NO_DAC,
    PARHASH,
    gnu_line,
    need_setpriv,
    random_bytes,
    records,
)

import parhash

# Longer than the racy-file rule's margin for nanosecond times (100 ms).
SETTLE = 0.2
NOBODY = 65534
SUMMARY_TAIL = re.compile(rb"; (\d+) from the cache\n\Z")

Arg = str | bytes | os.PathLike[str]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- running parhash ------------------------------------------------------------------


class CLI:
    """``python -m parhash`` run in ``cwd`` with an environment of its own.

    The environment has no ``PARHASH_CACHE`` and an ``XDG_CACHE_HOME`` (and
    ``HOME``) inside the test's directory: no run ever touches the real
    user's cache.
    """

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in ENV.items() if k != "PARHASH_CACHE"}
        self.env["XDG_CACHE_HOME"] = str(cwd / "xdg-cache")
        self.env["HOME"] = str(cwd / "home")

    def __call__(
        self,
        *args: Arg,
        env: dict[str, str | None] | None = None,
        prefix: Sequence[str] = (),
        input: bytes | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*prefix, *PARHASH, *args],
            cwd=self.cwd,
            input=input,
            capture_output=True,
            env=self.environment(env),
            timeout=timeout,
            check=False,
        )

    def environment(self, extra: dict[str, str | None] | None = None) -> dict[str, str]:
        env = dict(self.env)
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def popen(self, *args: Arg, **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*PARHASH, *args], cwd=self.cwd, env=self.env, **kwargs)

    def stats(self, cache: Arg, **kwargs: Any) -> dict[str, Any]:
        """``parhash cache stats --json`` of ``cache``."""
        proc = self("cache", "stats", "--json", "--cache-file", cache, **kwargs)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stderr == b""
        result: dict[str, Any] = json.loads(proc.stdout)
        return result


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


def text(proc: subprocess.CompletedProcess[bytes]) -> str:
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]!r}\n"
            f"--- stderr\n{proc.stderr.decode(errors='replace')}")


def quiet(proc: subprocess.CompletedProcess[bytes]) -> bytes:
    """The stdout of a run that exited 0 and said nothing on stderr."""
    assert proc.returncode == 0 and proc.stderr == b"", text(proc)
    return proc.stdout


def one_warning(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The only line on stderr of a run that exited 0: a warning about the cache."""
    assert proc.returncode == 0, text(proc)
    assert b"Traceback" not in proc.stderr, text(proc)
    lines = proc.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1, text(proc)
    assert lines[0].startswith("parhash: warning: ") and "cache" in lines[0], text(proc)
    return lines[0]


def hits(proc: subprocess.CompletedProcess[bytes]) -> int:
    """N of the ``--summary`` line's ``; N from the cache`` (the last line on stderr)."""
    assert proc.returncode == 0, text(proc)
    found = SUMMARY_TAIL.search(proc.stderr)
    assert found is not None, text(proc)
    return int(found.group(1))


def summary_files(proc: subprocess.CompletedProcess[bytes]) -> int:
    found = re.search(rb"parhash: hashed (\d+) files?,", proc.stderr)
    assert found is not None, text(proc)
    return int(found.group(1))


def jsonl(stdout: bytes) -> dict[bytes, dict[str, Any]]:
    """``--json`` records by path (as bytes: names that are not UTF-8 come back whole)."""
    out: dict[bytes, dict[str, Any]] = {}
    for line in records(stdout):
        record = json.loads(line)
        path = os.fsencode(record["path"])
        assert path not in out, line
        out[path] = record
    return out


# --- trees ----------------------------------------------------------------------------


def write(path: Path | bytes, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_tree(root: Path, files: dict[str, bytes]) -> dict[bytes, bytes]:
    """Write ``files`` (name relative to ``root`` -> contents); returns them keyed by
    their paths as a run in ``root``'s parent names them (``t/d0/f000``)."""
    out = {}
    for rel, data in files.items():
        write(root / rel, data)
        out[os.fsencode(os.path.join(root.name, rel))] = data
    return out


def small_files(dirs: int, per_dir: int, seed: int = 0) -> dict[str, bytes]:
    """``d0/f000`` ... of up to 3 kB each, their sizes all different."""
    return {
        f"d{d}/f{i:03d}": random_bytes(seed + 1000 * d + i, (d * 131 + i * 37) % 3000)
        for d in range(dirs)
        for i in range(per_dir)
    }


def gnu_expected(files: dict[bytes, bytes], algo: str = "md5") -> list[bytes]:
    h = {"md5": md5, "sha256": sha256}[algo]
    return sorted(gnu_line(h(data), path) for path, data in files.items())


def check_json(stdout: bytes, files: dict[bytes, bytes], cached: bool | None = None,
               algos: Sequence[str] = ("md5",)) -> dict[bytes, dict[str, Any]]:
    """Every file of ``files`` once, with the right size and digests (and ``cached``)."""
    got = jsonl(stdout)
    assert set(got) == set(files)
    funcs = {"md5": md5, "sha256": sha256}
    for path, record in got.items():
        data = files[path]
        assert record["size"] == len(data), record
        for algo in algos:
            assert record[algo] == funcs[algo](data), record
        if cached is not None:
            assert record["cached"] is cached, record
    return got


def rewrite_same_size(path: Path | bytes, data: bytes) -> None:
    """New contents of the same size, in place (same inode)."""
    with open(path, "r+b") as f:
        assert os.fstat(f.fileno()).st_size == len(data)
        f.write(data)


def key(path: Path | bytes) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


# --- 1. cold and warm -----------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_cold_then_warm_scan_prints_what_a_scan_without_cache_prints(
        tmp_path: Path, cli: CLI, jobs: str) -> None:
    content = small_files(4, 30)
    content["d1/large.bin"] = random_bytes(7, 5 << 20)  # a file of its own task
    content["d2/empty"] = b""
    files = make_tree(tmp_path / "t", content)
    time.sleep(SETTLE)
    expected = gnu_expected(files)

    plain = quiet(cli("scan", "-a", "md5", "-j", jobs, "t"))
    assert sorted(records(plain)) == expected

    cache = tmp_path / "cache.sqlite"
    cold = cli("scan", "-a", "md5", "-j", jobs, "--summary", "--cache-file", cache, "t")
    assert sorted(records(cold.stdout)) == expected
    assert hits(cold) == 0 and summary_files(cold) == len(files)
    assert cold.stderr.count(b"\n") == 1, text(cold)
    warm = cli("scan", "-a", "md5", "-j", jobs, "--summary", "--cache-file", cache, "t")
    assert sorted(records(warm.stdout)) == expected
    assert hits(warm) == len(files) and summary_files(warm) == len(files)

    jcache = "json.sqlite"  # relative: the workers find it all the same
    first = quiet(cli("scan", "--json", "-a", "md5", "-j", jobs, "--cache-file", jcache, "t"))
    check_json(first, files, cached=False)
    second = quiet(cli("scan", "--json", "-a", "md5", "-j", jobs, "--cache-file", jcache, "t"))
    check_json(second, files, cached=True)


def test_directory_larger_than_a_task_is_answered_whole_on_the_warm_run(
        tmp_path: Path, cli: CLI) -> None:
    # More files than a task holds (1024): the directory is read in parts,
    # each looking up only its range of names.
    files = make_tree(tmp_path / "t", {f"big/n{i:05d}": b"%d\n" % i for i in range(2600)})
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    for algos in (["-a", "md5"], ["-a", "md5,sha256"]):
        cold = cli("scan", "--json", "--summary", *algos, "-j", "3", "--cache-file", cache, "t")
        check_json(cold.stdout, files, cached=False, algos=algos[1].split(","))
        warm = cli("scan", "--json", "--summary", *algos, "-j", "3", "--cache-file", cache, "t")
        check_json(warm.stdout, files, cached=True, algos=algos[1].split(","))
        assert hits(warm) == len(files)


# --- 2. changes after caching ---------------------------------------------------------


def test_changed_new_and_deleted_files_are_read_again_or_gone(tmp_path: Path, cli: CLI) -> None:
    root = tmp_path / "t"
    content = {
        "grow.txt": b"short\n",
        "same.txt": b"A" * 4000,
        "gone.txt": b"bye\n",
        "keep.txt": b"stays the same\n",
        "sub/large.bin": random_bytes(1, 5 << 20),
    }
    files = make_tree(root, content)
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    check_json(quiet(cli(*scan)), files, cached=False)
    check_json(quiet(cli(*scan)), files, cached=True)

    before = os.stat(root / "same.txt")
    time.sleep(0.05)
    rewrite_same_size(root / "same.txt", b"B" * 4000)
    assert os.stat(root / "same.txt").st_mtime_ns != before.st_mtime_ns
    with open(root / "grow.txt", "ab") as f:
        f.write(b"and longer\n")
    large = bytearray(content["sub/large.bin"])
    large[3 << 20] ^= 0xFF
    rewrite_same_size(root / "sub/large.bin", bytes(large))
    (root / "gone.txt").unlink()
    write(root / "new.txt", b"new file\n")
    files = {
        b"t/grow.txt": b"short\nand longer\n",
        b"t/same.txt": b"B" * 4000,
        b"t/keep.txt": content["keep.txt"],
        b"t/sub/large.bin": bytes(large),
        b"t/new.txt": b"new file\n",
    }
    time.sleep(SETTLE)

    after = check_json(quiet(cli(*scan)), files)
    assert {p: r["cached"] for p, r in after.items()} == {
        b"t/grow.txt": False,
        b"t/same.txt": False,
        b"t/keep.txt": True,
        b"t/sub/large.bin": False,
        b"t/new.txt": False,
    }
    # What was read again is what answers now.
    check_json(quiet(cli(*scan)), files, cached=True)


# --- 3. the racy-file rule on an ordinary file system ---------------------------------


def test_same_size_rewrite_with_mtime_put_back_is_read_again(tmp_path: Path, cli: CLI) -> None:
    f = tmp_path / "t" / "racy.txt"
    write(f, b"first contents\n")
    cache = tmp_path / "c.sqlite"
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    first = jsonl(quiet(cli(*scan)))
    assert first[b"t/racy.txt"]["md5"] == md5(b"first contents\n")
    st = os.stat(f)
    rewrite_same_size(f, b"other contents\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(f).st_size, os.stat(f).st_mtime_ns, os.stat(f).st_ino) == (
        st.st_size, st.st_mtime_ns, st.st_ino)
    second = jsonl(quiet(cli(*scan)))
    assert second[b"t/racy.txt"]["md5"] == md5(b"other contents\n")
    assert second[b"t/racy.txt"]["cached"] is False


def test_entry_read_right_after_writing_is_unconfirmed_and_never_answers(
        tmp_path: Path, cli: CLI) -> None:
    # In this process, with no interpreter to start: the file is read well
    # within 100 ms of being written (and the rewrite may even keep its
    # ctime: the kernel's clock for file times ticks every few ms).
    d = tmp_path / "t"
    f = d / "fresh.txt"
    cache = str(tmp_path / "c.sqlite")

    def scan() -> parhash.Result:
        (r,) = parhash.scan([str(d)], algos="md5", jobs=1, cache=cache)
        return r

    write(f, b"1" * 64)
    first = scan()
    st = os.stat(f)
    rewrite_same_size(f, b"2" * 64)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = scan()
    assert (first.digests, first.cached) == ({"md5": md5(b"1" * 64)}, False)
    assert (second.digests, second.cached) == ({"md5": md5(b"2" * 64)}, False)
    stats = cli.stats(cache)
    assert stats["entries"] == 1 and stats["unconfirmed"] == 1

    time.sleep(SETTLE)
    third = scan()  # read again, its times now old: confirmed
    assert (third.digests, third.cached) == ({"md5": md5(b"2" * 64)}, False)
    assert cli.stats(cache)["unconfirmed"] == 0
    fourth = scan()
    assert (fourth.digests, fourth.cached) == ({"md5": md5(b"2" * 64)}, True)


def test_cli_entry_of_a_file_with_fresh_times_is_unconfirmed(tmp_path: Path, cli: CLI) -> None:
    # A process takes about the margin to start, so "right after writing"
    # is made certain with an mtime a second ahead (nanoseconds kept).
    files = make_tree(tmp_path / "t", {"old.txt": b"old\n", "fresh.txt": b"fresh\n"})
    time.sleep(SETTLE)
    ahead = time.time_ns() + 2_000_000_000
    ahead += 123_456_789 - ahead % 1_000_000_000
    os.utime(tmp_path / "t/fresh.txt", ns=(ahead, ahead))
    cache = tmp_path / "c.sqlite"
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    check_json(quiet(cli(*scan)), files, cached=False)
    stats = cli.stats(cache)
    assert (stats["entries"], stats["unconfirmed"]) == (2, 1)
    again = check_json(quiet(cli(*scan)), files)
    assert {p: r["cached"] for p, r in again.items()} == {b"t/old.txt": True,
                                                          b"t/fresh.txt": False}


# --- 4. the racy-file rule with whole-second times ------------------------------------


@pytest.fixture
def coarse_fs(tmp_path: Path) -> Iterator[Path]:
    """An ext2 file system with 128-byte inodes (whole-second times), loop-mounted."""
    image = tmp_path / "ext2.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mke2fs") is None:
        pytest.skip("SKIPPED LOUDLY: mke2fs (e2fsprogs) is not installed, so the racy-file "
                    "rule on a file system with whole-second times is NOT tested")
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    made = subprocess.run(["mke2fs", "-q", "-F", "-I", "128", "-t", "ext2", str(image)],
                          capture_output=True, check=False)
    assert made.returncode == 0, made.stderr
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("SKIPPED LOUDLY: the loop device is unavailable (mount -o loop failed: "
                    f"{mounted.stderr.decode(errors='replace').strip()}), so the racy-file "
                    "rule on a file system with whole-second times is NOT tested; run as "
                    "root where /dev/loop* can be used")
    try:
        yield mnt
    finally:
        for _ in range(10):
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _wait_for_start_of_second() -> None:
    """Sleep to a little after a whole second: what follows has most of one to itself."""
    fraction = time.time() % 1
    time.sleep(1 - fraction + 0.02)


def test_same_second_same_size_rewrite_on_whole_second_fs_is_read_again(
        tmp_path: Path, cli: CLI, coarse_fs: Path) -> None:
    d = coarse_fs / "d"
    d.mkdir()
    f = d / "f.bin"
    cache = tmp_path / "c.sqlite"  # on the ordinary file system
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, str(d))
    path = os.fsencode(f)
    a, b = random_bytes(1, 1000), random_bytes(2, 1000)
    identical = 0
    for attempt in range(3):
        _wait_for_start_of_second()
        write(f, a)
        st = os.stat(f)
        assert st.st_mtime_ns % 1_000_000_000 == 0 and st.st_ctime_ns % 1_000_000_000 == 0, (
            "not a file system with whole-second times")
        first = jsonl(quiet(cli(*scan)))[path]
        assert (first["md5"], first["cached"]) == (md5(a), False)
        assert cli.stats(cache)["unconfirmed"] == 1
        rewrite_same_size(f, b)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        identical += key(f) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        second = jsonl(quiet(cli(*scan)))[path]
        assert second["md5"] == md5(b), f"attempt {attempt}: the old contents' digest"
        assert second["cached"] is False
        a, b = b, a
        if identical:
            break
    # The rewrite left size, mtime, ctime and inode all as they were: only
    # the rule kept the stale digest from answering.
    assert identical, "could not rewrite the file within the second it was written"
    expected = md5(a)  # what the file holds now (swapped above)

    # Past the coarse margin (2.1 s) after the file's last whole second.
    time.sleep(max(0.0, max(key(f)[1:3]) / 1e9 + 2.5 - time.time()))
    third = jsonl(quiet(cli(*scan)))[path]
    assert (third["md5"], third["cached"]) == (expected, False)
    fourth = jsonl(quiet(cli(*scan)))[path]
    assert (fourth["md5"], fourth["cached"]) == (expected, True)
    assert cli.stats(cache)["unconfirmed"] == 0


# --- 5. killed outright ---------------------------------------------------------------


def test_sigkill_during_a_run_leaves_a_usable_cache(tmp_path: Path, cli: CLI) -> None:
    base = random_bytes(5, 1 << 20)
    content = {f"d{i % 4}/f{i:03d}": i.to_bytes(4, "big") + base[4:] for i in range(200)}
    files = make_tree(tmp_path / "big", content)
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    out_path = tmp_path / "killed.out"

    def lines() -> list[bytes]:
        return out_path.read_bytes().split(b"\n")[:-1]

    # The names come from a pipe kept open, so that the run can't end
    # before it is killed: two directories first, and once they are out,
    # two more, killed a moment later with their tasks (and their cache
    # transactions, one per two files) under way.
    with open(out_path, "wb") as out:
        proc = cli.popen("scan", "--cache-file", cache, "-j", "2", "-a", "md5", "--chunksize",
                         "2", "--files-from", "-", stdin=subprocess.PIPE, stdout=out,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"big/d0\nbig/d1\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while len(lines()) < 100 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert len(lines()) == 100, out_path.read_bytes()[-500:]
        proc.stdin.write(b"big/d2\nbig/d3\n")
        proc.stdin.flush()
        time.sleep(0.06)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    assert proc.returncode == -signal.SIGKILL
    printed = {line.split(b"  ", 1)[1] for line in lines()}
    assert len(printed) >= 100

    after = cli("scan", "--json", "--summary", "-a", "md5", "-j", "2", "--cache-file", cache,
                "big/d0", "big/d1", "big/d2", "big/d3")
    assert b"warning" not in after.stderr, text(after)
    flags = {p: r["cached"] for p, r in check_json(after.stdout, files).items()}
    # Whatever was printed had been committed: each of those files hits.
    assert all(flags[p] for p in printed), sorted(p for p in printed if not flags[p])
    assert hits(after) == sum(flags.values()) >= len(printed)

    stats = cli.stats(cache)
    assert stats["entries"] == len(files) and stats["digests"] == {"md5": len(files)}
    with contextlib.closing(sqlite3.connect(cache)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check_json(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "big")), files,
               cached=True)


# --- 6. several processes at once -----------------------------------------------------


def test_concurrent_scans_share_one_cache_file(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", small_files(6, 120))
    time.sleep(SETTLE)
    cache = tmp_path / "shared.sqlite"
    subtrees = {
        "t": files,
        "t/d1": {p: d for p, d in files.items() if p.startswith(b"t/d1/")},
        "t/d4": {p: d for p, d in files.items() if p.startswith(b"t/d4/")},
    }

    def together(trees: Sequence[str]) -> list[bytes]:
        procs = [cli.popen("scan", "--json", "-a", "md5", "-j", "2", "--cache-file", cache, t,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE) for t in trees]
        outs = []
        for proc, tree in zip(procs, trees, strict=True):
            stdout, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 0, stderr
            assert b"locked" not in stderr and b"warning" not in stderr, stderr
            assert stderr == b"", stderr
            check_json(stdout, subtrees[tree])
            outs.append(stdout)
        return outs

    together(["t", "t", "t"])  # all three create the file at once
    together(["t", "t/d1", "t/d4"])
    check_json(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "t")), files,
               cached=True)
    assert cli.stats(cache)["entries"] == len(files)


def test_cache_clear_during_a_running_scan_leaves_no_orphan_entries(
        tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", small_files(1, 150))
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    out_path = tmp_path / "scan.out"

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while out_path.read_bytes().count(b"\n") < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out_path.read_bytes().count(b"\n") == n

    # One run reads the directory, someone clears the cache, the run reads
    # the same directory again (by another spelling) and writes its entries.
    with open(out_path, "wb") as out:
        proc = cli.popen("scan", "-a", "md5", "--cache-file", cache, "--files-from", "-",
                         stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"t/d0\n")
        proc.stdin.flush()
        wait_for(150)
        cleared = cli("cache", "clear", "--cache-file", cache)
        assert cleared.stderr == b"parhash: cleared 150 entries\n", text(cleared)
        proc.stdin.write(b"./t/d0\n")
        proc.stdin.flush()
        wait_for(300)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == 0 and stderr == b"", stderr
    stats = cli.stats(cache)
    # The entries written after the clear belong to their directory...
    assert (stats["entries"], stats["directories"]) == (150, 1), stats
    # ... and answer the next run.
    warm = cli("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache, "t/d0")
    check_json(warm.stdout, files, cached=True)
    assert hits(warm) == 150


# --- 7. a damaged or foreign file at the cache's path ---------------------------------


def _garbage(cli: CLI, path: Path) -> None:
    path.write_bytes(random_bytes(77, 5000))


def _foreign(cli: CLI, path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE t(x)")
        db.execute("INSERT INTO t VALUES ('precious')")
        db.commit()


def _checkpointed(cli: CLI, path: Path) -> int:
    """A real cache of one file, its WAL folded in; returns its page size."""
    write(path.parent / "seed" / "f", b"seed\n")
    quiet(cli("scan", "-a", "md5", "--cache-file", path, path.parent / "seed"))
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size: int = db.execute("PRAGMA page_size").fetchone()[0]
    return size


def _overwrite_page(path: Path, page: int, size: int) -> None:
    with open(path, "r+b") as f:
        f.seek((page - 1) * size + (100 if page == 1 else 0))
        f.write(random_bytes(page, size - (100 if page == 1 else 0)))


def _malformed_first_page(cli: CLI, path: Path) -> None:
    _overwrite_page(path, 1, _checkpointed(cli, path))


@pytest.mark.parametrize("damage", [_garbage, _foreign, _malformed_first_page],
                         ids=["garbage", "foreign-sqlite", "malformed-first-page"])
def test_unreadable_cache_is_moved_aside_once_and_replaced(
        tmp_path: Path, cli: CLI, damage: Any) -> None:
    files = make_tree(tmp_path / "t", small_files(2, 10))
    cache = tmp_path / "state" / "cache.sqlite"
    cache.parent.mkdir()
    damage(cli, cache)
    time.sleep(SETTLE)
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    first = cli(*scan)
    warning = one_warning(first)
    assert "moved it to" in warning and str(cache) in warning
    check_json(first.stdout, files, cached=False)
    aside = sorted(cache.parent.glob("cache.sqlite.bad-*[0-9]"))
    assert len(aside) == 1, os.listdir(cache.parent)
    assert str(aside[0]) in warning
    if damage is _foreign:  # moved, not lost
        with contextlib.closing(sqlite3.connect(aside[0])) as db:
            assert db.execute("SELECT x FROM t").fetchall() == [("precious",)]

    check_json(quiet(cli(*scan)), files, cached=True)
    assert len(list(cache.parent.glob("cache.sqlite.bad-*[0-9]"))) == 1


def test_cache_with_a_damaged_table_is_replaced_not_warned_about_forever(
        tmp_path: Path, cli: CLI) -> None:
    # The header and the schema are whole, the table of entries is not:
    # "database disk image is malformed" only once a query reaches it.
    cache = tmp_path / "state" / "cache.sqlite"
    size = _checkpointed(cli, cache)
    with contextlib.closing(sqlite3.connect(cache)) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]
    _overwrite_page(cache, root, size)
    files = make_tree(tmp_path / "t", small_files(2, 10))
    time.sleep(SETTLE)
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    first = cli(*scan)
    one_warning(first)
    check_json(first.stdout, files, cached=False)
    # Damage is one warning, then a cache that works: not the same warning
    # on every run, the cache never used again.
    second = cli(*scan)
    check_json(second.stdout, files)
    assert second.stderr == b"", text(second)


def test_cache_commands_on_a_damaged_cache_say_why_without_a_traceback(
        tmp_path: Path, cli: CLI) -> None:
    wrong = []
    for n, command in enumerate((["stats"], ["stats", "--json"], ["prune"], ["clear"])):
        # A damaged cache of its own for each: the first look moves it aside.
        cache = tmp_path / f"state{n}" / "cache.sqlite"
        size = _checkpointed(cli, cache)
        with contextlib.closing(sqlite3.connect(cache)) as db:
            root = db.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]
        _overwrite_page(cache, root, size)
        proc = cli("cache", *command, "--cache-file", cache)
        # "Exit status: 0, or 2 for a cache that can't be used": a line that
        # says why, not a traceback.
        if (b"Traceback" in proc.stderr or proc.returncode not in (0, 2)
                or not proc.stderr.startswith(b"parhash: ")):
            last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            wrong.append(f"parhash cache {' '.join(command)}: exit {proc.returncode}, {last}")
    assert not wrong, "\n".join(wrong)


def test_cache_stats_on_garbage_moves_it_aside_only_once(tmp_path: Path, cli: CLI) -> None:
    cache = tmp_path / "state" / "cache.sqlite"
    cache.parent.mkdir()
    _garbage(cli, cache)
    first = cli("cache", "stats", "--cache-file", cache)
    assert b"Traceback" not in first.stderr and first.returncode in (0, 2), text(first)
    second = cli("cache", "stats", "--cache-file", cache)
    assert b"Traceback" not in second.stderr and second.returncode in (0, 2), text(second)
    # The garbage is moved aside once; the second look finds nothing to move
    # (not the empty file the first one left, "started a new one").
    assert b"unreadable" not in second.stderr, text(second)
    assert len(list(cache.parent.glob("cache.sqlite.bad-*[0-9]"))) == 1, os.listdir(cache.parent)


# --- 8. a cache that can't be used ----------------------------------------------------


@pytest.mark.parametrize("case", ["missing-directory", "a-directory", "unwritable-directory",
                                  "read-only-cache"])
def test_unusable_cache_is_one_warning_and_the_right_output(
        tmp_path: Path, cli: CLI, case: str) -> None:
    files = make_tree(tmp_path / "t", small_files(2, 10))
    state = tmp_path / "state"
    state.mkdir()
    cache = state / "c.sqlite"
    prefix: list[str] = []
    if case == "missing-directory":
        cache = state / "nowhere" / "c.sqlite"
    elif case == "a-directory":
        cache.mkdir()
    elif case == "unwritable-directory":
        need_setpriv("a cache that root can't write")
        prefix = NO_DAC
        state.chmod(0o555)
    else:
        need_setpriv("a cache that root can't write")
        prefix = NO_DAC
        time.sleep(SETTLE)
        quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
        write(tmp_path / "t" / "d0" / "new", b"not in the cache\n")
        files[b"t/d0/new"] = b"not in the cache\n"
        for p in state.iterdir():
            p.chmod(0o444)
        state.chmod(0o555)
    before = sorted(os.listdir(state))
    time.sleep(SETTLE)
    try:
        proc = cli("scan", "-a", "md5", "--cache-file", cache, "t", prefix=prefix)
        warning = one_warning(proc)
        # A read-only cache still answers; what this run reads is not added.
        assert "going on without" in warning or "is not added to it" in warning, warning
        assert sorted(records(proc.stdout)) == gnu_expected(files)
        assert sorted(os.listdir(state)) == before
    finally:
        state.chmod(0o755)
    assert not (state / "nowhere").exists()


def test_cache_of_another_user_is_not_used(tmp_path: Path, cli: CLI) -> None:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: not root, so a cache owned by another user is NOT tested")
    files = make_tree(tmp_path / "t", {"a": b"aaa\n", "b": b"bbb\n"})
    time.sleep(SETTLE)
    state = tmp_path / "state"
    state.mkdir()
    cache = state / "c.sqlite"
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    check_json(quiet(cli(*scan)), files, cached=False)
    # Another user's cache could say anything: make it lie about "a".
    with contextlib.closing(sqlite3.connect(cache)) as db:
        # Entries are packed a directory's run at a time: each algorithm's
        # digests end to end in one column.
        db.execute("UPDATE chunks SET md5 = replace(md5, ?, ?)", (md5(b"aaa\n"), md5(b"a lie")))
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # The control: its owner's run believes it.
    control = jsonl(quiet(cli(*scan)))
    assert control[b"t/a"] == {"path": "t/a", "size": 4, "md5": md5(b"a lie"), "cached": True}

    for p in state.iterdir():
        os.chown(p, NOBODY, NOBODY)
    contents = {p.name: p.read_bytes() for p in state.iterdir()}
    proc = cli(*scan)
    warning = one_warning(proc)
    assert "belongs to another user" in warning and "going on without the cache" in warning
    got = check_json(proc.stdout, files)
    assert all(r.get("cached") in (None, False) for r in got.values())
    assert {p.name: p.read_bytes() for p in state.iterdir()} == contents
    assert all(p.stat().st_uid == NOBODY for p in state.iterdir())

    stats = cli("cache", "stats", "--cache-file", cache)
    assert stats.returncode == 2 and b"belongs to another user" in stats.stderr, text(stats)


# --- 9. switching it on and off -------------------------------------------------------


def test_no_cache_overrides_parhash_cache_and_cache_file(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", {"a": b"a\n"})
    env_cache = tmp_path / "env.sqlite"
    file_cache = tmp_path / "file.sqlite"
    env = {"PARHASH_CACHE": str(env_cache)}
    for args in (["--no-cache"], ["--no-cache", "--cache-file", str(file_cache)],
                 ["--cache-file", str(file_cache), "--no-cache"], ["--cache", "--no-cache"]):
        out = quiet(cli("scan", "--json", "-a", "md5", *args, "t", env=env))
        got = check_json(out, files)
        assert "cached" not in got[b"t/a"], args
    assert not env_cache.exists() and not file_cache.exists()
    assert not (tmp_path / "xdg-cache").exists()


def test_parhash_cache_alone_switches_the_cache_on(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", {"a": b"a\n", "b": b"b\n"})
    time.sleep(SETTLE)
    env_cache = tmp_path / "env.sqlite"
    env = {"PARHASH_CACHE": str(env_cache)}
    check_json(quiet(cli("scan", "--json", "-a", "md5", "t", env=env)), files, cached=False)
    assert env_cache.is_file()
    check_json(quiet(cli("scan", "--json", "-a", "md5", "t", env=env)), files, cached=True)
    # --cache with PARHASH_CACHE: that file; stats finds it through the variable.
    check_json(quiet(cli("scan", "--json", "--cache", "-a", "md5", "t", env=env)), files,
               cached=True)
    stats = json.loads(quiet(cli("cache", "stats", "--json", env=env)))
    assert stats["file"] == str(env_cache) and stats["entries"] == 2
    # --cache-file wins over the variable.
    other = tmp_path / "other.sqlite"
    check_json(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", other, "t", env=env)),
               files, cached=False)
    assert other.is_file()
    # An empty value is no cache.
    out = quiet(cli("scan", "--json", "-a", "md5", "t", env={"PARHASH_CACHE": ""}))
    assert "cached" not in jsonl(out)[b"t/a"]
    assert not (tmp_path / "xdg-cache").exists()


def test_cache_flag_uses_xdg_cache_home_else_home(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", {"a": b"a\n", "b": b"b\n"})
    time.sleep(SETTLE)
    xdg = tmp_path / "xdg-cache" / "parhash" / "hashes.sqlite"
    check_json(quiet(cli("scan", "--json", "--cache", "-a", "md5", "t")), files, cached=False)
    assert xdg.is_file()
    assert xdg.stat().st_mode & 0o077 == 0  # it names the user's files: theirs alone
    check_json(quiet(cli("scan", "--json", "--cache", "-a", "md5", "t")), files, cached=True)
    assert cli.stats(xdg)["entries"] == 2
    assert json.loads(quiet(cli("cache", "stats", "--json")))["file"] == str(xdg)

    home = tmp_path / "home" / ".cache" / "parhash" / "hashes.sqlite"
    for env in ({"XDG_CACHE_HOME": None}, {"XDG_CACHE_HOME": "relative/is/ignored"}):
        existed = home.exists()
        out = quiet(cli("scan", "--json", "--cache", "-a", "md5", "t", env=env))
        check_json(out, files, cached=existed)
        assert home.is_file()
    assert not (tmp_path / "relative").exists()


def test_cache_is_off_by_default(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", {"a": b"a\n"})
    for _ in range(2):
        proc = cli("scan", "--json", "--summary", "-a", "md5", "t")
        got = check_json(proc.stdout, files)
        assert "cached" not in got[b"t/a"]
        assert b"from the cache" not in proc.stderr
    assert not (tmp_path / "xdg-cache").exists() and not (tmp_path / "home").exists()


# --- 10. stats, prune, clear ----------------------------------------------------------


def test_cache_stats_counts_entries_directories_and_digests(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", small_files(3, 7))
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
    stats = cli.stats(cache)
    assert stats["file"] == str(cache)
    assert (stats["entries"], stats["unconfirmed"], stats["directories"]) == (len(files), 0, 3)
    assert stats["digests"] == {"md5": len(files)}
    assert stats["bytes"] > 0
    shown = quiet(cli("cache", "stats", "--cache-file", cache)).decode()
    assert f"entries: {len(files)}\n" in shown
    assert "directories: 3\n" in shown and f"digests: md5 {len(files)}\n" in shown


def test_prune_removes_entries_of_deleted_and_changed_files(tmp_path: Path, cli: CLI) -> None:
    root = tmp_path / "t"
    files = make_tree(root, small_files(2, 5))
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
    assert cli.stats(cache)["entries"] == 10
    (root / "d0/f000").unlink()
    (root / "d1/f004").unlink()
    st = os.stat(root / "d1/f002")  # same size, mtime put back: only ctime tells
    rewrite_same_size(root / "d1/f002", bytes(st.st_size))
    os.utime(root / "d1/f002", ns=(st.st_atime_ns, st.st_mtime_ns))
    shutil.rmtree(root / "d0")  # and then the whole directory goes
    os.makedirs(root / "d0")
    proc = cli("cache", "prune", "--cache-file", cache)
    assert proc.returncode == 0 and proc.stdout == b"", text(proc)
    assert proc.stderr == b"parhash: pruned 7 entries; 3 left\n"
    stats = cli.stats(cache)
    assert (stats["entries"], stats["directories"]) == (3, 1)
    proc = cli("cache", "prune", "--cache-file", cache)
    assert proc.stderr == b"parhash: pruned 0 entries; 3 left\n", text(proc)
    left = {p: d for p, d in files.items() if p.startswith(b"t/d1/")
            and p not in (b"t/d1/f004", b"t/d1/f002")}
    got = check_json(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "t/d1")),
                     {**left, b"t/d1/f002": bytes(st.st_size)})
    assert {p for p, r in got.items() if r["cached"]} == set(left)


def test_prune_older_than_removes_directories_no_run_wrote_to_since(
        tmp_path: Path, cli: CLI) -> None:
    # A directory's "used" time moves when a run writes entries of it (and
    # on a lookup at most twice a day): a warm run writes nothing.
    root = tmp_path / "t"
    files = make_tree(root, {"old/a": b"a\n", "old/b": b"b\n", "old/c": b"c\n",
                             "fresh/x": b"x\n", "fresh/y": b"y\n"})
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
    time.sleep(1.0)
    write(root / "fresh" / "z", b"z\n")
    files[b"t/fresh/z"] = b"z\n"
    time.sleep(SETTLE)
    got = check_json(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "t")),
                     files)
    assert [p for p, r in got.items() if not r["cached"]] == [b"t/fresh/z"]
    proc = cli("cache", "prune", "--older-than", "1s", "--cache-file", cache)
    assert proc.returncode == 0 and proc.stderr == b"parhash: pruned 3 entries; 3 left\n", (
        text(proc))
    stats = cli.stats(cache)
    assert (stats["entries"], stats["directories"]) == (3, 1)
    proc = cli("cache", "prune", "--older-than", "1h", "--cache-file", cache)
    assert proc.stderr == b"parhash: pruned 0 entries; 3 left\n", text(proc)
    got = check_json(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "t")),
                     files)
    assert {p for p, r in got.items() if r["cached"]} == {b"t/fresh/x", b"t/fresh/y",
                                                          b"t/fresh/z"}


def test_clear_empties_the_cache(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", small_files(2, 6))
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
    proc = cli("cache", "clear", "--cache-file", cache)
    assert proc.returncode == 0 and proc.stderr == b"parhash: cleared 12 entries\n", text(proc)
    stats = cli.stats(cache)
    assert (stats["entries"], stats["directories"], stats["digests"]) == (0, 0, {})
    scan = ("scan", "--json", "-a", "md5", "--cache-file", cache, "t")
    check_json(quiet(cli(*scan)), files, cached=False)
    check_json(quiet(cli(*scan)), files, cached=True)


def test_bad_older_than_is_a_usage_error(tmp_path: Path, cli: CLI) -> None:
    make_tree(tmp_path / "t", {"a": b"a\n"})
    cache = tmp_path / "c.sqlite"
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
    for age in ("abc", "10", "-1d", "5y", "d", "nand", "infd", ""):
        proc = cli("cache", "prune", "--older-than", age, "--cache-file", cache)
        assert proc.returncode == 2, (age, text(proc))
        assert b"--older-than" in proc.stderr and b"Traceback" not in proc.stderr, text(proc)
    assert cli.stats(cache)["entries"] == 1


def test_cache_commands_on_a_missing_cache_create_nothing(tmp_path: Path, cli: CLI) -> None:
    cache = tmp_path / "missing.sqlite"
    proc = cli("cache", "stats", "--cache-file", cache)
    assert proc.returncode == 0, text(proc)
    assert "entries: 0\n" in proc.stdout.decode()
    assert cli.stats(cache)["entries"] == 0
    for command in ("prune", "clear"):
        proc = cli("cache", command, "--cache-file", cache)
        assert proc.returncode == 0 and b"no cache at" in proc.stderr, text(proc)
    proc = cli("cache", "stats")  # the default file, under XDG_CACHE_HOME
    assert proc.returncode == 0 and b"entries: 0\n" in proc.stdout, text(proc)
    assert not cache.exists() and not (tmp_path / "xdg-cache").exists()


# --- 11. several algorithms -----------------------------------------------------------


def test_digests_of_several_algorithms_accumulate(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", small_files(2, 8))
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"

    def scan(algos: str) -> bytes:
        return quiet(cli("scan", "--json", "-a", algos, "--cache-file", cache, "t"))

    check_json(scan("md5"), files, cached=False)
    check_json(scan("sha256"), files, cached=False, algos=["sha256"])
    assert cli.stats(cache)["digests"] == {"md5": len(files), "sha256": len(files)}
    check_json(scan("md5"), files, cached=True)
    check_json(scan("sha256"), files, cached=True, algos=["sha256"])
    check_json(scan("md5,sha256"), files, cached=True, algos=["md5", "sha256"])
    assert cli.stats(cache)["entries"] == len(files)


def test_file_changed_between_algorithms_loses_its_stale_digest(tmp_path: Path, cli: CLI) -> None:
    root = tmp_path / "t"
    files = make_tree(root, {"a": b"alpha\n", "b": b"bravo\n", "c": b"charlie\n",
                             "d": b"delta\n"})
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"

    def scan(algos: str) -> dict[bytes, dict[str, Any]]:
        got = check_json(quiet(cli("scan", "--json", "-a", algos, "--cache-file", cache, "t")),
                         files, algos=algos.split(","))
        return got

    scan("md5")
    # b: other contents, another size; c: the same size, its mtime put back.
    write(root / "b", b"bravo, changed\n")
    st = os.stat(root / "c")
    rewrite_same_size(root / "c", b"CHARLIE\n")
    os.utime(root / "c", ns=(st.st_atime_ns, st.st_mtime_ns))
    files[b"t/b"] = b"bravo, changed\n"
    files[b"t/c"] = b"CHARLIE\n"
    time.sleep(SETTLE)
    got = scan("sha256")
    assert not any(r["cached"] for r in got.values())
    assert cli.stats(cache)["digests"] == {"md5": 2, "sha256": 4}
    got = scan("md5")  # the md5 of b and c read before they changed must not answer
    assert {p: r["cached"] for p, r in got.items()} == {
        b"t/a": True, b"t/b": False, b"t/c": False, b"t/d": True}
    got = scan("md5,sha256")
    assert all(r["cached"] for r in got.values())


# --- 12. the Python API ---------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_api_scan_with_cache_sets_cached_flags(tmp_path: Path, jobs: int) -> None:
    root = tmp_path / "t"
    content = small_files(3, 40)
    make_tree(root, content)
    time.sleep(SETTLE)
    cache = tmp_path / "api.sqlite"
    by_path = {str(root / rel): data for rel, data in content.items()}

    def scan(algos: Any = "md5", **kwargs: Any) -> list[parhash.Result]:
        results = list(parhash.scan([str(root)], algos=algos, jobs=jobs, **kwargs))
        assert sorted(r.path for r in results) == sorted(by_path)
        for r in results:
            assert r.ok and r.size == len(by_path[r.path])
            assert r.digests["md5"] == md5(by_path[r.path])
        return results

    assert {r.cached for r in scan()} == {None}
    assert {r.cached for r in scan(cache=str(cache))} == {False}
    assert {r.cached for r in scan(cache=str(cache))} == {True}
    assert {r.cached for r in scan(cache=cache)} == {True}  # a path object too
    both = scan(["md5", "sha256"], cache=str(cache))
    assert {r.cached for r in both} == {False}
    assert all(r.digests["sha256"] == sha256(by_path[r.path]) for r in both)
    assert {r.cached for r in scan(["sha256", "md5"], cache=str(cache))} == {True}


def test_api_cache_true_uses_parhash_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "t"
    make_tree(root, {"a": b"a\n"})
    time.sleep(SETTLE)
    cache = tmp_path / "env.sqlite"
    monkeypatch.setenv("PARHASH_CACHE", str(cache))
    assert [r.cached for r in parhash.scan([str(root)], algos="md5", cache=True)] == [False]
    assert [r.cached for r in parhash.scan([str(root)], algos="md5", cache=True)] == [True]
    assert cache.is_file()
    # An unusable cache: a warning, and results as without one.
    cache.unlink()
    cache.mkdir()
    (r,) = parhash.scan([str(root)], algos="md5", cache=True)
    assert r.digests == {"md5": md5(b"a\n")} and r.cached in (None, False)
    assert "not a regular file" in capfd.readouterr().err


# --- 13. the same bytes out -----------------------------------------------------------


@pytest.mark.parametrize("fmt", [
    ["-a", "md5"],
    ["-a", "md5", "-z"],
    ["-a", "md5", "--tag"],
    ["-a", "md5", "--csv"],
    ["-a", "md5,sha256", "--tag", "-j", "1"],
], ids=["gnu", "zero", "tag", "csv", "two-algos-tag-one-job"])
def test_cache_never_changes_the_output_bytes(tmp_path: Path, cli: CLI, fmt: list[str]) -> None:
    root = os.fsencode(tmp_path / "t")
    files: dict[bytes, bytes] = {}
    for i, name in enumerate((*AWKWARD_NAMES, b"caf\xe9", b"sub/caf\xe9/x\\y\nz")):
        write(os.path.join(root, name), random_bytes(i, i * 17 % 400))
        files[b"t/" + name] = random_bytes(i, i * 17 % 400)
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    end = b"\0" if "-z" in fmt else b"\n"
    plain = quiet(cli("scan", *fmt, "--sort", "t"))
    if fmt == ["-a", "md5"]:
        assert sorted(records(plain)) == gnu_expected(files)
    cold = cli("scan", *fmt, "--sort", "--summary", "--cache-file", cache, "t")
    warm = cli("scan", *fmt, "--sort", "--summary", "--cache-file", cache, "t")
    assert hits(cold) == 0 and hits(warm) == len(files)
    assert cold.stdout == plain
    assert warm.stdout == plain
    unsorted = cli("scan", *fmt, "--summary", "--cache-file", cache, "t")
    assert hits(unsorted) == len(files)
    assert sorted(records(unsorted.stdout, end)) == sorted(records(plain, end))


# --- 14. named files and lists --------------------------------------------------------


def test_named_files_hit_whatever_their_spelling(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", {"a.txt": b"a\n", "sub/b.txt": b"b\n",
                                       "sub/large.bin": random_bytes(3, 5 << 20)})
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    names = ["t/a.txt", "t/sub/b.txt", "t/sub/large.bin"]
    cold = cli("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache, *names)
    check_json(cold.stdout, files, cached=False)
    assert hits(cold) == 0
    for spelling in (names, ["./" + n for n in names], [str(tmp_path / n) for n in names],
                     ["t/sub/../a.txt", "t//sub/b.txt", "t/./sub/large.bin"]):
        proc = cli("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache, *spelling)
        got = jsonl(proc.stdout)
        assert sorted(got) == sorted(os.fsencode(s) for s in spelling)
        for s in spelling:
            data = files[os.fsencode(os.path.relpath(os.path.normpath(tmp_path / s), tmp_path))]
            assert got[os.fsencode(s)]["md5"] == md5(data)
            assert got[os.fsencode(s)]["cached"] is True, (spelling, s)
        assert hits(proc) == 3


def test_files_from_and_files0_from_lists_hit(tmp_path: Path, cli: CLI) -> None:
    content = small_files(2, 5)
    content["odd/new\nline"] = b"newline\n"
    content["odd/back\\slash"] = b"backslash\n"
    files = make_tree(tmp_path / "t", content)
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    plain_names = sorted(p for p in files if b"\n" not in p)
    (tmp_path / "list").write_bytes(b"".join(p + b"\n" for p in plain_names))
    (tmp_path / "list0").write_bytes(b"".join(p + b"\0" for p in sorted(files)))
    (tmp_path / "dirs").write_bytes(b"t/d0\nt/odd\n")
    plain = {p: files[p] for p in plain_names}
    dirs = {p: d for p, d in files.items() if p.startswith((b"t/d0/", b"t/odd/"))}
    for args, expected in ((["--files-from", "list"], plain), (["--files0-from", "list0"], files),
                           (["--files-from", "dirs"], dirs)):
        scan = ("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache, *args)
        first = cli(*scan)
        check_json(first.stdout, expected)
        second = cli(*scan)
        check_json(second.stdout, expected, cached=True)
        assert hits(second) == len(expected)
    # The same list from standard input.
    proc = cli("scan", "--json", "-a", "md5", "--cache-file", cache, "--files0-from", "-",
               input=(tmp_path / "list0").read_bytes())
    check_json(quiet(proc), files, cached=True)


def test_standard_input_is_never_answered_from_the_cache(tmp_path: Path, cli: CLI) -> None:
    make_tree(tmp_path / "t", {"a": b"a\n"})
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    for data in (b"one\n", b"two\n", b"two\n"):
        got = jsonl(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "-", "t/a",
                              input=data)))
        assert got[b"-"]["md5"] == md5(data) and got[b"-"]["cached"] is False


# --- 15. links ------------------------------------------------------------------------


def test_directory_through_a_symlink_shares_entries_with_its_real_path(
        tmp_path: Path, cli: CLI) -> None:
    content = small_files(2, 6)
    make_tree(tmp_path / "real", content)
    os.symlink("real", tmp_path / "link")
    os.makedirs(tmp_path / "elsewhere")
    os.symlink("../real/d1", tmp_path / "elsewhere" / "d1link")
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"

    def scan(top: str, expect_cached: bool, subtree: str = "") -> None:
        proc = cli("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache, top)
        expected = {os.fsencode(f"{top}/{rel[len(subtree):]}"): data
                    for rel, data in content.items() if rel.startswith(subtree)}
        check_json(proc.stdout, expected, cached=expect_cached)
        assert hits(proc) == (len(expected) if expect_cached else 0)

    scan("link", False)
    scan("real", True)
    scan(str(tmp_path / "link"), True)
    scan("elsewhere/d1link", True, "d1/")
    scan("link/d0", True, "d0/")


def test_links_followed_with_L_hit_and_are_counted(tmp_path: Path, cli: CLI) -> None:
    root = tmp_path / "t"
    make_tree(root, {"b": b"bravo\n", "c": b"charlie\n"})
    make_tree(tmp_path / "outside", {"a": b"alpha\n"})
    os.symlink("b", root / "filelink")
    os.symlink("../outside", root / "dirlink")
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    files = {b"t/b": b"bravo\n", b"t/c": b"charlie\n", b"t/filelink": b"bravo\n",
             b"t/dirlink/a": b"alpha\n"}
    scan = ("scan", "-L", "--json", "--summary", "-a", "md5", "--cache-file", cache, "t")
    cold = cli(*scan)
    check_json(cold.stdout, files, cached=False)
    assert hits(cold) == 0
    warm = cli(*scan)
    check_json(warm.stdout, files, cached=True)
    # The summary counts every record that says "cached": true.
    assert hits(warm) == len(files)
    gnu = cli("scan", "-L", "--summary", "-a", "md5", "--cache-file", cache, "t")
    assert sorted(records(gnu.stdout)) == gnu_expected(files)
    assert hits(gnu) == len(files)


def test_globs_hit_on_the_second_run(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", small_files(3, 12))
    time.sleep(SETTLE)
    cache = tmp_path / "c.sqlite"
    matched = {p: d for p, d in files.items() if re.fullmatch(rb"t/d[12]/f00\d", p)}
    scan = ("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache, "t/**/f00?")
    first = cli(*scan)
    check_json(first.stdout, {p: d for p, d in files.items() if p.split(b"/")[2][:3] == b"f00"},
               cached=False)
    second = cli("scan", "--json", "--summary", "-a", "md5", "--cache-file", cache,
                 "t/d[12]/f00?")
    check_json(second.stdout, matched, cached=True)
    assert hits(second) == len(matched)


def test_the_cache_in_the_scanned_tree_is_left_out(tmp_path: Path, cli: CLI) -> None:
    # As the scan's own -o file is: its digests would change from run to run.
    files = make_tree(tmp_path / "t", {"a": b"a\n", "s/b": b"b\n"})
    time.sleep(SETTLE)
    for _ in range(2):
        proc = cli("scan", "-a", "md5", "--cache-file", tmp_path / "t" / "c.sqlite", "t")
        assert proc.returncode == 0 and proc.stderr == b"", text(proc)
        assert sorted(records(proc.stdout)) == gnu_expected(files)


# --- file systems, links, busy files, large inodes, the root fence -----------------


def test_pseudo_file_systems_are_never_kept(tmp_path: Path, cli: CLI) -> None:
    # /proc's files keep their size and times while their contents change.
    cache = tmp_path / "c.sqlite"
    for _ in range(2):
        got = jsonl(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache,
                              "/proc/self/stat", "/proc/loadavg")))
        assert all(r["cached"] is False for r in got.values()), got
    assert cli.stats(cache)["entries"] == 0


def _image_of(tmp_path: Path, name: str, contents: bytes) -> Path:
    """An ext4 image made from a tree whose one file has ``contents`` and old times:
    mkfs copies the times, and gives the file the same inode in every image."""
    tree = tmp_path / f"{name}-tree"
    write(tree / "etc" / "app.conf", contents)
    os.utime(tree / "etc" / "app.conf", (1_700_000_000, 1_700_000_000))
    image = tmp_path / f"{name}.img"
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image)],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("SKIPPED LOUDLY: mkfs.ext4 -d failed, so a cache over two file systems "
                    f"mounted in turn is NOT tested: {made.stderr.decode(errors='replace')}")
    return image


def test_another_file_system_mounted_at_the_same_path_is_read_again(
        tmp_path: Path, cli: CLI) -> None:
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("SKIPPED LOUDLY: mkfs.ext4 (e2fsprogs) is not installed, so a cache over "
                    "two file systems mounted in turn is NOT tested")
    # Both images within one second, so that mkfs gives their files the same ctime.
    _wait_for_start_of_second()
    images = {v: _image_of(tmp_path, v, f"version={v}\n".encode()) for v in ("1.2.3", "1.2.4")}
    time.sleep(2.3)  # past the margin of whole-second times: the entries are confirmed
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cache = tmp_path / "c.sqlite"
    seen = []
    for _ in range(2):
        for version, image in images.items():
            mounted = subprocess.run(["mount", "-o", "loop,ro", str(image), str(mnt)],
                                     capture_output=True, check=False)
            if mounted.returncode != 0:
                pytest.skip("SKIPPED LOUDLY: the loop device is unavailable, so a cache over "
                            "two file systems mounted in turn is NOT tested")
            try:
                st = os.stat(mnt / "etc" / "app.conf")
                seen.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
                got = jsonl(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache,
                                      mnt)))
                record = got[os.fsencode(mnt / "etc" / "app.conf")]
                assert record["md5"] == md5(f"version={version}\n".encode()), record
            finally:
                subprocess.run(["umount", str(mnt)], capture_output=True, check=False)
    # The files had the same key in both images: only the file system tells them apart.
    assert seen[0] == seen[1], seen


def test_a_link_at_the_cache_path_is_not_followed(tmp_path: Path, cli: CLI) -> None:
    files = make_tree(tmp_path / "t", {"a": b"a\n"})
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "c.sqlite").symlink_to(target)
    proc = cli("scan", "-a", "md5", "--cache-file", tmp_path / "c.sqlite", "t")
    assert "not a regular file" in one_warning(proc)
    assert sorted(records(proc.stdout)) == gnu_expected(files)
    assert target.read_bytes() == b""


def test_a_cache_in_a_directory_others_can_write_is_refused(tmp_path: Path, cli: CLI) -> None:
    # Another user could put a -wal of their own beside it.
    files = make_tree(tmp_path / "t", {"a": b"a\n"})
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    proc = cli("scan", "-a", "md5", "--cache-file", shared / "c.sqlite", "t")
    assert "other users can write" in one_warning(proc)
    assert sorted(records(proc.stdout)) == gnu_expected(files)
    assert list(shared.iterdir()) == []


def test_a_busy_cache_is_not_moved_aside(tmp_path: Path, cli: CLI) -> None:
    cache = tmp_path / "c.sqlite"
    files = make_tree(tmp_path / "t", {"a": b"a\n"})
    time.sleep(SETTLE)
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, "t"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "db.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(7)",
         str(cache)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        proc = cli("cache", "clear", "--cache-file", cache)
        assert proc.returncode == 2 and b"Traceback" not in proc.stderr, text(proc)
        assert b"locked" in proc.stderr and b"moved it" not in proc.stderr, text(proc)
    finally:
        holder.kill()
        holder.wait()
    assert not list(tmp_path.glob("c.sqlite.bad-*"))
    got = jsonl(quiet(cli("scan", "--json", "-a", "md5", "--cache-file", cache, "t")))
    assert all(r["cached"] is True for r in got.values()) and len(got) == len(files)


def test_inode_numbers_past_63_bits_are_kept_and_found() -> None:
    # overlayfs with xino, some FUSE and CIFS mounts: inodes >= 2**63.
    from array import array

    from parhash.cache import CacheSpec, Known, Recorder, signed

    recorder = Recorder(CacheSpec("/nonexistent", lookup=False))
    ino = (1 << 63) + 5
    recorder.keep(b"/d", "f", 3, 1_000_000_000_123, 1_000_000_000_456, ino, 1, ("md5",),
                  [md5(b"abc")])
    rows = recorder.rows()
    assert rows is not None and len(rows.chunks) == 1
    chunk = rows.chunks[0]
    keys = array("q")
    keys.frombytes(chunk.keys)
    assert keys[3] == signed(ino) < 0
    known = Known({"f": 0}, keys, list(chunk.columns), [32])
    st = os.stat_result((0o100644, ino, 1, 1, 0, 0, 3, 0, 0, 0, 0.0, 0.0, 0.0,
                         0, 1_000_000_000_123, 1_000_000_000_456))
    assert known.hit("f", st) == 0
    assert known.digests(0) == [md5(b"abc")]


def test_trust_cache_keeps_the_root_fence(tmp_path: Path, cli: CLI) -> None:
    # A file outside --root that the cache holds is still outside the root.
    outside = tmp_path / "outside"
    write(outside / "secret", b"PIN=1234\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "lnk").symlink_to(outside)
    cache = tmp_path / "c.sqlite"
    time.sleep(SETTLE)
    quiet(cli("scan", "-a", "md5", "--cache-file", cache, outside))
    (tmp_path / "SUMS").write_bytes(f"{md5(b'PIN=1234' + bytes([10]))}  lnk/secret\n".encode())
    proc = cli("check", "--trust-cache", "--cache-file", cache, "--root", root, "SUMS")
    assert proc.returncode == 1, text(proc)
    assert b"lnk/secret: FAILED open or read" in proc.stdout, text(proc)


def test_dupes_leaves_out_the_cache_in_the_tree_it_searches(tmp_path: Path, cli: CLI) -> None:
    # The cache's files change as the search writes them.
    make_tree(tmp_path / "t", {"a": b"same\n" * 5000, "b": b"same\n" * 5000, "c": b"other\n"})
    time.sleep(SETTLE)
    for _ in range(2):
        proc = cli("dupes", "--summary", "--cache-file", tmp_path / "t" / "c.sqlite", "t")
        assert proc.returncode == 0, text(proc)
        assert proc.stdout == b"t/a\nt/b\n\n", text(proc)
        assert b"3 files compared" in proc.stderr, text(proc)


def test_a_cache_on_a_network_file_system_is_recognised() -> None:
    # No NFS server here: the mount table's words, as the kernel writes them.
    from parhash.cache import file_system_of, is_network, parse_mountinfo

    mounts = parse_mountinfo(
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "40 22 0:41 / /home rw,relatime - nfs4 server:/home rw,vers=4.2\n"
        "41 40 0:42 / /home/a\\040b rw - fuse.sshfs host: rw\n")
    assert file_system_of("/home/me/.cache/parhash/hashes.sqlite", mounts) == "nfs4"
    assert file_system_of("/home/a b/c.sqlite", mounts) == "fuse.sshfs"
    assert file_system_of("/var/cache/c.sqlite", mounts) == "ext4"
    assert is_network("nfs4") and is_network("fuse.sshfs") and not is_network("ext4")
