"""Digests of every algorithm against hashlib/xxhash, at the block boundaries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ALGOS, REFERENCE, Tree, digest, gnu_line, no_traceback, random_bytes, run

import parhash
from parhash.cli import cli
from parhash.hashing import hash_file

BLOCK = 64
# empty, 1 byte, one block - 1, exactly one block, one block + 1, two blocks,
# two blocks + 1.
SIZES = (0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2 * BLOCK + 1)
SEVERAL_MIB = 3 * (1 << 20) + 17


def test_every_algorithm_of_the_issue_is_offered() -> None:
    assert set(parhash.ALGORITHMS) == set(REFERENCE)


@pytest.fixture
def sized(tmp_path: Path) -> Tree:
    t = Tree(tmp_path / "sized")
    t.root.mkdir()
    for size in SIZES:
        t.add(b"size-%d" % size, random_bytes(size, size))
    return t


@pytest.mark.parametrize("algo", ALGOS)
def test_hash_file_matches_reference_at_block_boundaries(algo: str, sized: Tree) -> None:
    for rel, data in sized.files.items():
        r = hash_file(sized.path(rel).decode(), (algo,), block_size=BLOCK)
        assert r.error is None
        assert r.digests == {algo: digest(algo, data)}, rel
        assert r.size == len(data)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("block_size", [None, 64 << 10])
def test_hash_file_matches_reference_on_several_mib(
    algo: str, block_size: int | None, tmp_path: Path
) -> None:
    data = random_bytes(7, SEVERAL_MIB)
    path = tmp_path / "big"
    path.write_bytes(data)
    kwargs = {} if block_size is None else {"block_size": block_size}
    r = hash_file(str(path), (algo,), **kwargs)
    assert r.digests == {algo: digest(algo, data)}


def test_hash_file_computes_every_algorithm_from_one_read(sized: Tree) -> None:
    for rel, data in sized.files.items():
        r = hash_file(sized.path(rel).decode(), ALGOS, block_size=BLOCK)
        assert r.digests == {a: digest(a, data) for a in ALGOS}


@pytest.mark.parametrize("algo", ALGOS)
def test_scan_prints_reference_digest_for_every_algorithm(algo: str, sized: Tree) -> None:
    result = CliRunner().invoke(
        cli, ["scan", str(sized.root), "-a", algo, "--block-size", str(BLOCK), "-j", "1",
              "--untagged"]
    )
    assert result.exit_code == 0, result.output
    lines = set(result.stdout_bytes.splitlines(keepends=True))
    assert lines == sized.expected_gnu(algo, sized.broot + b"/")


def test_xxh3_alone_writes_what_xxhsum_h3_writes_and_xxhsum_c_verifies(sized: Tree) -> None:
    # A GNU line of 16 hex digits is XXH64 to xxhsum -c: xxh3's default is the tag.
    if shutil.which("xxhsum") is None:
        pytest.fail("xxhsum (package xxhash) is needed to compare with")
    files = sorted(p for p in sized.root.rglob("*") if p.is_file())
    ours = run(["scan", "-a", "xxh3", "--sort", "-j", "1", *files])
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(["xxhsum", "-H3", *files], capture_output=True, check=True)
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.stdout.splitlines())
    checked = subprocess.run(["xxhsum", "-c", "-"], input=ours.stdout, capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(b": OK\n") == len(files)


def test_pool_workers_compute_every_algorithm_at_block_boundaries(many: Tree) -> None:
    # Enough files for the real Pool, several sizes around the block, and one
    # file of several MiB read in small blocks.
    for size in SIZES:
        many.add(b"sizes/%d" % size, random_bytes(size, size))
    many.add(b"sizes/big", random_bytes(3, SEVERAL_MIB))
    proc = run(
        ["scan", many.root, "--json", "-a", ",".join(ALGOS), "-j", "2", "--chunksize", "8",
         "--block-size", "4K"]
    )
    no_traceback(proc.stderr)
    assert proc.returncode == 0, proc.stderr
    seen = {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        seen[record["path"]] = record
    assert len(seen) == len(many.files)
    for rel, data in many.files.items():
        record = seen[(many.broot + b"/" + rel).decode("utf-8", "surrogateescape")]
        assert record["size"] == len(data)
        for algo in ALGOS:
            assert record[algo] == digest(algo, data), (rel, algo)


@pytest.mark.parametrize("block_size", ["1", "63", "64K", "1M", "1MiB"])
def test_block_size_never_changes_a_digest(block_size: str, sized: Tree) -> None:
    result = CliRunner().invoke(
        cli, ["scan", str(sized.root), "-a", "sha256", "--block-size", block_size, "-j", "1"]
    )
    assert result.exit_code == 0, result.output
    assert set(result.stdout_bytes.splitlines(keepends=True)) == {
        gnu_line(digest("sha256", d), sized.broot + b"/" + rel) for rel, d in sized.files.items()
    }
