"""The Python API: parhash.scan() streams typed results, errors as values."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ENV, Tree, alive, children, digest

import parhash


def test_scan_yields_one_result_per_file_with_what_the_worker_saw(tree: Tree) -> None:
    results = list(parhash.scan([str(tree.root)], algos=("md5", "xxh3"), jobs=1))
    assert len(results) == len(tree.files)
    for r in results:
        assert isinstance(r, parhash.Result)
        assert r.ok and r.error is None
        raw = os.fsencode(r.path)
        data = tree.files[raw[len(tree.broot) + 1 :]]
        assert r.digests == {"md5": digest("md5", data), "xxh3": digest("xxh3", data)}
        st = os.stat(raw)
        assert (r.size, r.mtime_ns, r.dev, r.ino) == (
            st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino
        )


def test_scan_returns_errors_as_results(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"f")
    results = sorted(parhash.scan([str(tmp_path / "missing"), str(tmp_path / "f")], jobs=1))
    assert [r.ok for r in results] == [True, False]
    missing = results[1]
    assert missing.error == "No such file or directory"
    assert missing.errno == 2
    assert missing.digests == {}


def test_scan_accepts_a_single_path_string(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"f")
    (r,) = parhash.scan(str(tmp_path / "f"), algos=("md5",))
    assert r.path == str(tmp_path / "f")
    assert r.digests == {"md5": digest("md5", b"f")}


def test_scan_takes_listed_paths_literally(tmp_path: Path) -> None:
    (tmp_path / "*").write_bytes(b"star")
    (tmp_path / "x").write_bytes(b"x")
    (r,) = parhash.scan([], listed=[str(tmp_path / "*")], algos=("md5",))
    assert r.digests == {"md5": digest("md5", b"star")}


def test_scan_pool_and_inline_agree(many: Tree) -> None:
    inline = sorted(parhash.scan([str(many.root)], algos=("sha1",), jobs=1))
    pooled = sorted(parhash.scan([str(many.root)], algos=("sha1",), jobs=2, chunksize=5))
    assert inline == pooled
    assert len(pooled) == len(many.files)


@pytest.mark.parametrize("jobs", [1, 2])
def test_scan_streams_from_an_endless_stream_of_paths(jobs: int, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"f")

    def endless() -> Iterator[str]:
        while True:
            yield str(tmp_path / "f")

    results = parhash.scan(endless(), algos=("md5",), jobs=jobs, chunksize=4)
    first = list(itertools.islice(results, 200))
    workers = children(os.getpid())
    results.close()
    assert {r.digests["md5"] for r in first} == {digest("md5", b"f")}
    # Closing the iterator stops the pool.
    assert not [p for p in workers if alive(p)]


def test_import_parhash_loads_neither_click_nor_tqdm() -> None:
    code = "import parhash, sys; print(sorted({'click', 'tqdm', 'xxhash'} & set(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=ENV, check=True, text=True
    )
    assert proc.stdout == "[]\n"


def test_default_jobs_count_the_cpus_this_process_may_use() -> None:
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        "from parhash.executor import clamp_jobs; print(clamp_jobs(None))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=ENV, check=True, text=True
    )
    assert proc.stdout == "1\n"


def test_hash_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    r = parhash.hash_file(str(tmp_path / "fifo"))  # must not block
    assert r.error == "not a regular file"
    r = parhash.hash_file(str(tmp_path))
    assert r.error == "Is a directory"


def test_paths_may_be_path_objects(tmp_path: Path) -> None:
    # pathlib.Path arguments are walked and reported as str, by every command.
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"same\n")
    results = list(parhash.scan([tmp_path / "a", tmp_path], algos=["md5"], jobs=1))
    assert sorted(r.path for r in results) == sorted(
        [str(tmp_path / "a"), str(tmp_path / "a"), str(tmp_path / "b")]
    )
    assert all(isinstance(r.path, str) and r.error is None for r in results)
    groups = list(parhash.find_dupes([tmp_path / "a", tmp_path / "b"], jobs=1))
    assert [g.paths for g in groups] == [(str(tmp_path / "a"), str(tmp_path / "b"))]


def test_scan_in_this_process_leaves_no_directory_open(tmp_path: Path) -> None:
    # A small job is hashed in the caller's process, whose directories of
    # walked files must not stay open after it: the caller may live long.
    for d in ("a", "b/c"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "f").write_bytes(b"x")
    before = set(os.listdir("/proc/self/fd"))
    results = list(parhash.scan([str(tmp_path)], algos=("md5",), jobs=1))
    assert len(results) == 2 and all(r.ok for r in results)
    assert set(os.listdir("/proc/self/fd")) <= before


@pytest.mark.parametrize("block_size", [7, 64, 1 << 16])
@pytest.mark.parametrize("limit", [0, 1, 63, 64, 65, 1000, 5000])
def test_hash_file_with_a_limit_hashes_only_the_head(
    tmp_path: Path, block_size: int, limit: int
) -> None:
    data = os.urandom(1000)
    (tmp_path / "f").write_bytes(data)
    r = parhash.hash_file(str(tmp_path / "f"), ("md5", "xxh128"), block_size, limit=limit)
    assert r.ok and r.size == len(data)
    assert r.digests == {"md5": digest("md5", data[:limit]),
                         "xxh128": digest("xxh128", data[:limit])}
    # Without a limit, the whole file, whatever the block size.
    whole = parhash.hash_file(str(tmp_path / "f"), ("md5",), block_size)
    assert whole.digests == {"md5": digest("md5", data)}


def test_algos_as_one_string_is_one_name_or_list_not_letters(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"f")
    (r,) = parhash.scan([str(tmp_path / "f")], algos="md5")
    assert r.digests == {"md5": digest("md5", b"f")}
    (r,) = parhash.scan([str(tmp_path / "f")], algos="md5,sha1")
    assert list(r.digests) == ["md5", "sha1"]
    assert parhash.hash_file(str(tmp_path / "f"), "sha1").digests == {"sha1": digest("sha1", b"f")}
    with pytest.raises(parhash.UnknownAlgorithm):
        parhash.hash_file(str(tmp_path / "f"), "nope")


def test_dir_shows_the_public_names_only() -> None:
    assert dir(parhash) == sorted(parhash.__all__)
    for name in dir(parhash):
        assert getattr(parhash, name) is not None
