"""parhash dupes: the stages, the output formats, exit statuses, and peers.

Trees are real files in temporary directories; runs are real processes. The
property test checks the groups against a brute-force grouping by contents.
"""

from __future__ import annotations

import base64
import collections
import csv
import io
import json
import os
import pickle
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import parhash
from parhash.algorithms import hexdigest_function
from parhash.cli import cli
from parhash.dupes import Stage, stages
from parhash.dupes.candidates import CHANGED, FileInfo, Group, pack
from parhash.dupes.stages import (
    Hashing,
    _repeated,
    cut_parts,
    group_by_contents,
    group_by_head,
    group_by_inode,
    group_by_size,
)
from parhash.dupes.walk import SizeLimits, StatTask, walk_job
from parhash.executor import INLINE_MAX_FILES
from parhash.pool import WORKER_DIED
from parhash.results import DupeError, DupeGroup
from parhash.tasks import TASK_FILES, WALKER_DIED, Part, TaskResult, lost_item, run_task
from parhash.walk import CHANGED_DURING_WALK, PSEUDO_FS, Directory, walk_paths

# Files a walk task stats before it hands the rest of its work back.
WALK_BUDGET = TASK_FILES


def walk_task(items: list[Any], limits: SizeLimits | None = None, **job: Any) -> TaskResult:
    """One task of stage 1, done in this process: its files' rows and its errors."""
    (result,) = run_task(walk_job("xxh128", limits, **job), items, StatTask)
    return result


def stat_files(paths: list[Any]) -> list[FileInfo | DupeError]:
    """Stage 1's look at each of ``paths``, as a task of named paths."""
    return walk_task(paths).records

SETPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]

# A group as a set of files, each file the set of its names.
Shape = frozenset[frozenset[frozenset[str]]]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run(*args: str, cwd: Path, unprivileged: bool = False) -> subprocess.CompletedProcess[bytes]:
    """``python -m parhash dupes ARGS``; unprivileged keeps root's uid but not its bypass."""
    command = [sys.executable, "-m", "parhash", "dupes", *args]
    if unprivileged:
        command = SETPRIV + command
    return subprocess.run(command, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60)


def json_groups(stdout: bytes) -> list[DupeGroup]:
    """The groups of a ``--json`` run, as the library would give them."""
    groups = []
    for line in stdout.splitlines():
        record = json.loads(line)
        groups.append(DupeGroup(record["size"], record["algo"], record["digest"],
                                tuple(record["paths"]), tuple(map(tuple, record["hardlinks"]))))
    return groups


def groups_of(items: object) -> list[DupeGroup]:
    return [g for g in items if isinstance(g, DupeGroup)]  # type: ignore[attr-defined]


def shape(groups: list[DupeGroup]) -> Shape:
    out = set()
    for g in groups:
        links = {names[0]: names for names in g.hardlinks}
        out.add(frozenset(frozenset(links.get(p, (p,))) for p in g.paths))
    return frozenset(out)


def brute_force(root: Path, *, follow: bool, include_empty: bool) -> Shape:
    """Every regular file under ``root`` read whole, grouped by contents, then by inode."""
    names: dict[tuple[int, int], set[str]] = defaultdict(set)
    contents: dict[tuple[int, int], bytes] = {}
    for dirpath, _dirs, files in os.walk(root, followlinks=follow):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not follow:
                continue
            try:
                st_ = os.stat(path)
            except FileNotFoundError:
                continue  # a broken link
            if not os.path.isfile(path):
                continue
            key = (st_.st_dev, st_.st_ino)
            names[key].add(path)
            contents[key] = Path(path).read_bytes()
    by_content: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for key, data in contents.items():
        if data or include_empty:
            by_content[data].append(key)
    return frozenset(
        frozenset(frozenset(names[k]) for k in keys)
        for keys in by_content.values()
        if len(keys) > 1
    )


# --- the property: groups equal a brute-force grouping by contents -----------

KINDS = ["new", "new", "copy", "same_size", "same_head", "hardlink", "symlink", "empty"]

operation = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 1000),  # which earlier file, and which directory
    st.lists(st.sampled_from(b"ab"), min_size=1, max_size=12).map(bytes),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(operation, min_size=1, max_size=18),
    head_size=st.sampled_from([1, 3, 64 << 10]),
    include_empty=st.booleans(),
    follow=st.booleans(),
)
def test_groups_equal_brute_force_grouping(
    ops: list[tuple[str, int, bytes]], head_size: int, include_empty: bool, follow: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files: list[Path] = []
        for i, (kind, pick, data) in enumerate(ops):
            path = root / f"d{pick % 3}" / f"f{i}"
            path.parent.mkdir(exist_ok=True)
            source = files[pick % len(files)] if files else None
            if kind == "new" or source is None:
                write(path, data)
            elif kind == "copy":
                shutil.copyfile(source, path)
            elif kind in ("same_size", "same_head"):
                old = bytearray(source.read_bytes() or b"a")
                at = -1 if kind == "same_head" else 0  # differ in the tail, or at the start
                old[at] ^= 1
                write(path, bytes(old))
            elif kind == "hardlink":
                os.link(source, path)
            elif kind == "symlink":
                os.symlink(source, path)
            else:
                write(path, b"")
            files.append(path)
        found = list(
            parhash.find_dupes(
                [str(root)], jobs=1, head_size=head_size, include_empty=include_empty,
                follow=follow,
            )
        )
        assert not [e for e in found if isinstance(e, DupeError)]
        expected = brute_force(root, follow=follow, include_empty=include_empty)
        assert shape(groups_of(found)) == expected


# --- the stages skip work -----------------------------------------------------


def test_unique_size_file_is_never_opened(tmp_path: Path) -> None:
    write(tmp_path / "a/one", b"same bytes")
    write(tmp_path / "b/two", b"same bytes")
    secret = write(tmp_path / "secret", b"a size no other file has")
    secret.chmod(0)
    r = run(".", "--json", cwd=tmp_path, unprivileged=True)
    assert r.returncode == 0, r.stderr
    assert b"secret" not in r.stderr and b"Permission denied" not in r.stderr
    (group,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert group["paths"] == ["./a/one", "./b/two"]


def test_unreadable_file_whose_size_matches_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "a", b"0123456789")
    write(tmp_path / "b", b"0123456789")
    write(tmp_path / "c", b"abcdefghij").chmod(0)
    r = run(".", cwd=tmp_path, unprivileged=True)
    assert r.returncode == 2
    assert b"parhash: ./c: Permission denied\n" in r.stderr
    assert r.stdout == b"./a\n./b\n\n"  # the rest is still reported


def test_unreadable_directory_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "a", b"x")
    write(tmp_path / "locked/b", b"x")
    (tmp_path / "locked").chmod(0)
    try:
        r = run(".", cwd=tmp_path, unprivileged=True)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert r.returncode == 2
    assert b"parhash: ./locked: Permission denied\n" in r.stderr


def _record(files: dict[str, bytes], root: Path, head_size: int) -> list[tuple[Stage, int]]:
    for name, data in files.items():
        write(root / name, data)
    calls: list[tuple[Stage, int]] = []
    list(
        parhash.find_dupes(
            [str(root)], jobs=1, head_size=head_size,
            progress=lambda stage, done, total: calls.append((stage, total)),
        )
    )
    return [c for c in calls if c[0] in (Stage.HEAD, Stage.CONTENTS)]


def test_files_read_whole_by_the_head_stage_are_not_read_again(tmp_path: Path) -> None:
    calls = _record({"a": b"x" * 100, "b": b"x" * 100, "c": b"y" * 100}, tmp_path, 100)
    assert {stage for stage, _ in calls} == {Stage.HEAD}


def test_files_whose_heads_differ_are_not_read_whole(tmp_path: Path) -> None:
    calls = _record({"a": b"a" + b"x" * 99, "b": b"b" + b"x" * 99}, tmp_path, 10)
    assert {stage for stage, _ in calls} == {Stage.HEAD}


def test_only_files_sharing_a_head_are_read_whole(tmp_path: Path) -> None:
    files = {"a": b"x" * 99 + b"1", "b": b"x" * 99 + b"1", "c": b"y" * 100, "d": b"z" * 100}
    calls = _record(files, tmp_path, 10)
    assert (Stage.HEAD, 4) in calls
    assert {total for stage, total in calls if stage is Stage.CONTENTS} == {2}


def test_hard_links_are_one_file_and_never_hashed_alone(tmp_path: Path) -> None:
    write(tmp_path / "a", b"only one file")
    os.link(tmp_path / "a", tmp_path / "b")
    calls = _record({}, tmp_path, 64)
    assert calls == []  # one inode: nothing to compare
    write(tmp_path / "c", b"only one file")
    (group,) = groups_of(parhash.find_dupes([str(tmp_path)], jobs=1))
    root = str(tmp_path)
    assert group.paths == (f"{root}/a", f"{root}/c")
    assert group.hardlinks == ((f"{root}/a", f"{root}/b"),)
    assert group.redundant == 1 and group.wasted == len(b"only one file")


def test_file_changed_after_its_stat_drops_out_with_an_error(tmp_path: Path) -> None:
    for name in "abc":
        write(tmp_path / name, b"same size!")
    groups = group_by_inode(group_by_size(
        f for f in stat_files([str(tmp_path / n) for n in "abc"]) if not isinstance(f, DupeError)
    ))
    write(tmp_path / "c", b"same size!")  # same bytes, new mtime: still not the file we saw
    os.utime(tmp_path / "c", ns=(1, 1))
    hashing = Hashing(algo="xxh128", head_size=4, jobs=1, chunksize=8, block_size=4096)
    groups = group_by_contents(group_by_head(groups, hashing), hashing)
    assert hashing.take_errors() == [DupeError(str(tmp_path / "c"), CHANGED)]
    assert [sorted(f[0] for f in g.files) for g in groups] == [
        [str(tmp_path / "a"), str(tmp_path / "b")]
    ]


def test_files_replaced_or_grown_before_their_heads_are_read(tmp_path: Path) -> None:
    names = "abcdef"
    for name in names:
        write(tmp_path / name, b"same size!")
    groups = group_by_inode(group_by_size(
        f for f in stat_files([str(tmp_path / n) for n in names])
        if not isinstance(f, DupeError)
    ))
    os.remove(tmp_path / "c")
    os.mkfifo(tmp_path / "c")  # opening it must neither block nor count as a file
    with open(tmp_path / "d", "ab") as grown:  # same head, more bytes
        grown.write(b"more")
    os.remove(tmp_path / "e")  # gone: no one's duplicate, and no harm
    hashing = Hashing(algo="xxh128", head_size=64, jobs=1, chunksize=2, block_size=4096)
    try:
        groups = group_by_contents(group_by_head(groups, hashing), hashing)
    finally:
        hashing.close()
    errors = hashing.take_errors()
    assert [(e.path, e.error, e.could_hide_duplicate) for e in errors] == [
        (str(tmp_path / "c"), "not a regular file", True),
        (str(tmp_path / "d"), CHANGED, True),
        (str(tmp_path / "e"), "No such file or directory", False),
    ]
    assert [sorted(f[0] for f in g.files) for g in groups] == [
        [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "f")]
    ]


# --- output formats ------------------------------------------------------------


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    write(tmp_path / "big/1", b"B" * 3000)
    write(tmp_path / "big/2", b"B" * 3000)
    write(tmp_path / "small/x", b"tiny")
    write(tmp_path / "small/y", b"tiny")
    write(tmp_path / "small/z", b"tiny")
    os.link(tmp_path / "small/x", tmp_path / "small/x-link")
    write(tmp_path / "decoy", b"tinx")  # same size as "tiny", other contents
    write(tmp_path / "e1", b"")
    write(tmp_path / "e2", b"")
    return tmp_path


def test_text_output_is_jdupes_style_most_wasted_first(tree: Path) -> None:
    r = run(cwd=tree)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"./big/1\n./big/2\n\n./small/x\n./small/y\n./small/z\n\n"
    assert r.stderr == (
        b"parhash: 2 groups of duplicates, 3 redundant files, "
        b"2.9 KiB (3008 bytes) reclaimable\n"
    )


def test_zero_ends_paths_and_groups_with_nul(tree: Path) -> None:
    r = run("-z", "-q", "big", cwd=tree)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"big/1\0big/2\0\0", b"")


def test_json_output(tree: Path) -> None:
    r = run("--json", "--include-empty", "-a", "sha256", cwd=tree)
    records = [json.loads(line) for line in r.stdout.splitlines()]
    import hashlib

    assert records == [
        {"size": 3000, "algo": "sha256", "digest": hashlib.sha256(b"B" * 3000).hexdigest(),
         "paths": ["./big/1", "./big/2"], "hardlinks": []},
        {"size": 4, "algo": "sha256", "digest": hashlib.sha256(b"tiny").hexdigest(),
         "paths": ["./small/x", "./small/y", "./small/z"],
         "hardlinks": [["./small/x", "./small/x-link"]]},
        {"size": 0, "algo": "sha256", "digest": hashlib.sha256(b"").hexdigest(),
         "paths": ["./e1", "./e2"], "hardlinks": []},
    ]


def test_csv_output(tree: Path) -> None:
    import xxhash

    r = run("--csv", "small", cwd=tree)
    rows = list(csv.reader(io.StringIO(r.stdout.decode())))
    digest = xxhash.xxh3_128(b"tiny").hexdigest()
    assert rows == [
        ["group", "size", "algo", "digest", "path", "same_file_as"],
        ["1", "4", "xxh128", digest, "small/x", ""],
        ["1", "4", "xxh128", digest, "small/x-link", "small/x"],
        ["1", "4", "xxh128", digest, "small/y", ""],
        ["1", "4", "xxh128", digest, "small/z", ""],
    ]


def test_size_limits_and_filters(tree: Path) -> None:
    r = run("--max-size", "1K", "-q", cwd=tree)
    assert r.stdout == b"./small/x\n./small/y\n./small/z\n\n"
    r = run("--min-size", "1K", "-q", cwd=tree)
    assert r.stdout == b"./big/1\n./big/2\n\n"
    r = run("--exclude", "small/", "--exclude", "2", "-q", "--exit-code", cwd=tree)
    assert (r.returncode, r.stdout) == (0, b"")
    r = run("--include", "*/[12]", "-q", cwd=tree)
    assert r.stdout == b"./big/1\n./big/2\n\n"


# --- exit statuses ---------------------------------------------------------------


def test_exit_code_flag(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert run("--exit-code", cwd=tree).returncode == 1
    assert run(cwd=tree).returncode == 0
    clean = tmp_path_factory.mktemp("clean")
    write(clean / "a", b"1")
    write(clean / "b", b"2")
    r = run("--exit-code", cwd=clean)
    assert (r.returncode, r.stdout) == (0, b"")
    assert b"0 groups of duplicates" in r.stderr


@pytest.mark.parametrize(
    "args",
    [["--algo", "nope"], ["--algo", "md5,sha1"], ["--min-size", "2K", "--max-size", "1K"],
     ["--head-size", "0"], ["-j", "0"], ["--no-such-option"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["dupes", *args])
    assert result.exit_code == 2, result.output


def test_missing_argument_exits_2_but_link_loop_does_not(tmp_path: Path) -> None:
    write(tmp_path / "d/a", b"dup")
    write(tmp_path / "d/b", b"dup")
    r = run("d", "missing", cwd=tmp_path)
    assert r.returncode == 2
    assert b"parhash: missing: No such file or directory\n" in r.stderr
    assert r.stdout == b"d/a\nd/b\n\n"
    os.symlink("..", tmp_path / "d/up")
    r = run("-L", "--exit-code", "d", cwd=tmp_path)
    assert r.returncode == 1
    assert b"File system loop detected" in r.stderr
    assert r.stdout == b"d/a\nd/b\n\n"


def test_library_rejects_bad_arguments_before_work() -> None:
    with pytest.raises(parhash.UnknownAlgorithm):
        parhash.find_dupes(["."], algo="nope")
    with pytest.raises(ValueError):
        parhash.find_dupes(["."], min_size=10, max_size=5)


def test_every_command_has_help_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["dupes", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "Exit status" in result.output


# --- the real pool, and the peers ------------------------------------------------


def random_tree(root: Path, n: int, seed: int) -> None:
    """``n`` files: shared sizes, copies across directories, decoys, hard links, empties."""
    rng = random.Random(seed)
    made: list[Path] = []
    for i in range(n):
        path = root / f"d{i % 7}" / f"s{i % 3}" / f"f{i}"
        roll = rng.random()
        if made and roll < 0.15:
            write(path, rng.choice(made).read_bytes())
        elif made and roll < 0.2:
            data = bytearray(rng.choice(made).read_bytes() or b"x")
            data[-1] ^= 0xFF  # same size and head, another tail
            write(path, bytes(data))
        elif made and roll < 0.23:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(rng.choice(made), path)
        elif roll < 0.25:
            write(path, b"")
        else:
            write(path, rng.randbytes(rng.choice([1, 7, 100, 4096, 70000, 70001])))
        made.append(path)


def test_pool_of_two_finds_what_one_process_finds(tmp_path: Path) -> None:
    random_tree(tmp_path, 300, seed=1)
    root = str(tmp_path)
    one = run("--json", "-j", "1", "--head-size", "4K", root, cwd=tmp_path)
    two = run("--json", "-j", "2", "--head-size", "4K", "--chunksize", "16", root, cwd=tmp_path)
    assert one.returncode == two.returncode == 0
    assert one.stdout == two.stdout
    groups = json_groups(two.stdout)
    assert groups, "the tree should hold duplicates"
    assert shape(groups) == brute_force(tmp_path, follow=False, include_empty=False)


def _inodes(paths: list[str], cwd: Path) -> frozenset[tuple[int, int]]:
    return frozenset((s.st_dev, s.st_ino) for s in (os.stat(cwd / p) for p in paths))


def _parhash_groups(cwd: Path) -> set[frozenset[tuple[int, int]]]:
    r = run("--json", "-j", "2", ".", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return {_inodes(json.loads(line)["paths"], cwd) for line in r.stdout.splitlines()}


@pytest.mark.skipif(shutil.which("jdupes") is None, reason="jdupes is not installed")
def test_same_groups_as_jdupes(tmp_path: Path) -> None:
    random_tree(tmp_path, 400, seed=2)
    # jdupes waits on a standard input that is an open pipe: give it none.
    out = subprocess.run(["jdupes", "-r", "-q", "."], cwd=tmp_path, capture_output=True,
                         stdin=subprocess.DEVNULL, check=True, timeout=60).stdout.decode()
    theirs = {_inodes(block.split("\n"), tmp_path) for block in out.strip().split("\n\n") if block}
    assert theirs and _parhash_groups(tmp_path) == theirs


@pytest.mark.skipif(shutil.which("rdfind") is None, reason="rdfind is not installed")
def test_same_groups_as_rdfind(tmp_path: Path) -> None:
    random_tree(tree := tmp_path / "t", 400, seed=3)
    results = tmp_path / "results.txt"
    subprocess.run(["rdfind", "-dryrun", "true", "-outputname", str(results), "."], cwd=tree,
                   capture_output=True, stdin=subprocess.DEVNULL, check=True, timeout=60)
    by_id: dict[int, list[str]] = defaultdict(list)
    for line in results.read_text().splitlines():
        if line.startswith("#"):
            continue
        fields = line.split(" ", 7)
        by_id[abs(int(fields[1]))].append(fields[7])
    theirs = {_inodes(paths, tree) for paths in by_id.values()}
    assert theirs and _parhash_groups(tree) == theirs


def test_json_gives_base64_names_when_a_name_is_not_utf8(tmp_path: Path) -> None:
    odd = os.fsdecode(b"copy-\xff")
    write(tmp_path / "plain", b"same contents\n")
    write(tmp_path / odd, b"same contents\n")
    proc = run("--json", "-j", "1", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (record,) = [json.loads(line) for line in proc.stdout.splitlines()]
    names = sorted(os.fsencode(p) for p in record["paths"])
    assert names == [b"./copy-\xff", b"./plain"]
    decoded = [base64.b64decode(b) for b in record["paths_b64"]]
    assert decoded == [os.fsencode(p) for p in record["paths"]]


# --- the walk in the pool, and groups cut into runs ---------------------------------


def big_tree(root: Path, n: int, seed: int) -> list[Path]:
    """``n`` small files over 60 directories two and three levels deep.

    Copies, same-size decoys (another last byte) and hard links, in sizes few
    enough that most files share one; one name in ten ends in ``.txt``, the
    rest in ``.dat``. Returns every name made.
    """
    rng = random.Random(seed)
    dirs = [root / f"a{i}" / f"b{j}" for i in range(5) for j in range(4)]
    dirs += [d / f"c{k}" for d in list(dirs) for k in range(2)]
    for d in dirs:
        d.mkdir(parents=True)
    made: list[tuple[Path, bytes]] = []
    for i in range(n):
        path = dirs[i % len(dirs)] / f"f{i}{'.txt' if i % 10 == 0 else '.dat'}"
        roll = rng.random()
        if made and roll < 0.2:
            data = rng.choice(made)[1]
            path.write_bytes(data)
        elif made and roll < 0.3:
            decoy = bytearray(rng.choice(made)[1])
            decoy[-1] ^= 0xFF  # same size and head, another tail
            data = bytes(decoy)
            path.write_bytes(data)
        elif made and roll < 0.35:
            source, data = rng.choice(made)
            os.link(source, path)
        else:
            data = rng.randbytes(rng.choice([10, 100, 300]))
            path.write_bytes(data)
        made.append((path, data))
    return [path for path, _ in made]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A tree of more than two walk budgets, read only by the tests that share it.

    The first task (in the parent) reads one budget; the rest is more than a
    worker's task can read, so a worker too hands directories back.
    """
    root = tmp_path_factory.mktemp("big")
    return root, big_tree(root, 2 * WALK_BUDGET + 1500, seed=4)


def keep_only(expected: Shape, keep: Callable[[str], bool]) -> Shape:
    """A brute-force grouping of the names ``keep`` selects, as if the rest were not there."""
    out = set()
    for group in expected:
        files = {frozenset(n for n in names if keep(n)) for names in group} - {frozenset()}
        if len(files) > 1:
            out.add(frozenset(files))
    return frozenset(out)


def test_tree_larger_than_a_walk_budget_walked_by_the_pool_finds_what_one_process_finds(
    big: tuple[Path, list[Path]],
) -> None:
    tree, names = big
    root = str(tree)
    # A head of 64 bytes sends the files of 100 and 300 bytes on to the contents stage.
    one = run("--json", "-j", "1", "--head-size", "64", root, cwd=tree)
    two = run("--json", "-j", "2", "--head-size", "64", "--chunksize", "32", root, cwd=tree)
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout
    groups = json_groups(two.stdout)
    assert len(groups) > 100
    assert shape(groups) == brute_force(tree, follow=False, include_empty=False)
    # Each directory read once: a directory read twice hides in the report
    # (its names are one file each), not in the count of files stat-ed.
    walked: list[int] = []
    list(parhash.find_dupes([root], jobs=2, progress=lambda stage, done, total: (
        walked.append(done) if stage is Stage.SIZE else None)))
    assert walked[-1] == len(names)


def test_tree_larger_than_a_walk_budget_with_include_and_exclude_in_the_pool(
    big: tuple[Path, list[Path]],
) -> None:
    tree, names = big
    root = str(tree)

    def keep(path: str) -> bool:
        return "/b1/" not in path and path.endswith(".dat")

    assert sum(keep(str(p)) for p in names) > WALK_BUDGET  # still more than one task
    args = ("--json", "--exclude", "b1", "--include", "*.dat", "--head-size", "64", root)
    one = run("-j", "1", *args, cwd=tree)
    two = run("-j", "2", "--chunksize", "32", *args, cwd=tree)
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout
    groups = json_groups(two.stdout)
    assert groups
    expected = brute_force(tree, follow=False, include_empty=False)
    assert shape(groups) == keep_only(expected, keep) != expected


def test_unreadable_directories_deep_in_a_tree_walked_by_the_pool_exit_2_in_path_order(
    tmp_path: Path,
) -> None:
    names = big_tree(tmp_path, WALK_BUDGET + 500, seed=5)
    expected = brute_force(tmp_path, follow=False, include_empty=False)
    # Read late, by a worker. The walk meets c1/locked before c1-locked,
    # but "-" sorts before "/": the report's order is not the walk's.
    locked = [tmp_path / "a4/b3/c1/locked", tmp_path / "a4/b3/c1-locked"]
    for d in locked:
        d.mkdir()
        shutil.copyfile(names[0], d / "copy")  # would join a group, if it were read
        d.chmod(0)
    try:
        r = run("--json", "-j", "2", str(tmp_path), "missing", cwd=tmp_path, unprivileged=True)
        one = run("--json", "-j", "1", str(tmp_path), "missing", cwd=tmp_path,
                  unprivileged=True)
    finally:
        for d in locked:
            d.chmod(0o755)
    assert r.returncode == one.returncode == 2, r.stderr
    # The same lines in the same order, whichever process met the errors.
    assert r.stderr == one.stderr
    errors = r.stderr.splitlines()[:-1]  # the summary ends stderr
    in_byte_order = sorted(os.fsencode(d) for d in locked)
    assert errors == [b"parhash: %s: Permission denied" % p for p in in_byte_order] + [
        b"parhash: missing: No such file or directory"
    ]
    assert in_byte_order != [os.fsencode(d) for d in locked]
    groups = json_groups(r.stdout)
    assert groups and shape(groups) == expected  # the rest of the tree, all of it


@pytest.mark.parametrize("head", [[], ["--head-size", "16"]], ids=["head-stage", "both-stages"])
def test_group_cut_into_runs_over_workers_is_merged_into_one(
    tmp_path: Path, head: list[str]
) -> None:
    import xxhash

    same = bytes(range(200))
    for i in range(20):
        # Interleaved, so that runs of three hold lone copies and lone decoys.
        data = same if i % 2 == 0 else same[:-1] + bytes([same[-1] ^ (i + 1)])
        write(tmp_path / "g" / f"r{i:02}", data)
    # Enough other candidates (same size, every head different) for a pool.
    for i in range(INLINE_MAX_FILES):
        write(tmp_path / "other" / f"o{i:02}", i.to_bytes(2, "big") * 50)
    r = run("--json", "-j", "2", "--chunksize", "3", *head, ".", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (group,) = json_groups(r.stdout)
    assert group.paths == tuple(f"./g/r{i:02}" for i in range(0, 20, 2))
    assert (group.size, group.digest) == (len(same), xxhash.xxh3_128(same).hexdigest())


@settings(max_examples=300, deadline=None)
@given(
    groups=st.lists(
        st.tuples(st.sampled_from([0, 1, 40, 99, 100, 1000, 5000]), st.integers(1, 12)),
        min_size=1, max_size=8,
    ),
    chunksize=st.integers(1, 10),
    batch_bytes=st.sampled_from([1, 100, 1000]),
    head=st.sampled_from([None, 64]),
)
@example(groups=[(40, 2), (1000, 3), (40, 2)], chunksize=8, batch_bytes=1000, head=None)
def test_cut_parts_sends_every_file_once_within_the_limits(
    groups: list[tuple[int, int]], chunksize: int, batch_bytes: int, head: int | None
) -> None:
    def cost(size: int) -> int:
        return size if head is None else min(size, head)

    made = [
        Group(size, [(f"g{n}/f{i}", size, n, 1, 100 * n + i, (), None) for i in range(count)])
        for n, (size, count) in enumerate(groups)
    ]
    sent: list[tuple[int, int]] = []
    for batch in cut_parts(made, cost, chunksize, batch_bytes):
        costs = [cost(made[n].size) for n, _, _, files in batch for _ in files]
        assert 0 < len(costs) <= chunksize
        assert sum(costs[:-1]) < batch_bytes  # closed by the file that reached the limit
        if max(costs) >= batch_bytes:
            assert len(costs) == 1  # a dear file travels alone
        for n, start, whole, files in batch:
            group = made[n].files
            assert files and files == group[start:start + len(files)]
            assert whole == (len(files) == len(group))
            sent.extend((n, start + i) for i in range(len(files)))
    assert sorted(sent) == [(n, i) for n, g in enumerate(made) for i in range(len(g.files))]


# --- what the walk listed is what is compared ----------------------------------


def _swap_for_link(entry: Path, target: Path) -> None:
    link = entry.with_name(entry.name + ".link")
    link.symlink_to(target)
    if entry.is_dir():
        os.rename(entry, entry.with_name(entry.name + ".was"))
    os.replace(link, entry)


def test_a_walked_file_swapped_for_a_link_before_its_stat_is_a_change_not_a_candidate(
    tmp_path: Path,
) -> None:
    secret = write(tmp_path / "elsewhere" / "secret", b"same as inside")
    write(tmp_path / "tree" / "inside", b"same as inside")
    write(tmp_path / "tree" / "sub" / "swapped", b"other contents")
    items = list(walk_paths([str(tmp_path / "tree")]))  # the walk of a process with -j 1
    _swap_for_link(tmp_path / "tree" / "sub" / "swapped", secret)
    found = list(stat_files(items))
    assert [f[0] for f in found if not isinstance(f, DupeError)] == [str(tmp_path / "tree/inside")]
    assert [f for f in found if isinstance(f, DupeError)] == [
        DupeError(str(tmp_path / "tree/sub/swapped"), CHANGED_DURING_WALK)
    ]
    # A directory swapped on the way to a walked file is one too.
    _swap_for_link(tmp_path / "tree" / "sub", secret.parent)
    (error,) = (f for f in stat_files(items) if isinstance(f, DupeError))
    assert (error.error, error.could_hide_duplicate) == (CHANGED_DURING_WALK, True)


def test_a_directory_not_the_one_listed_is_a_change_that_could_hide_a_duplicate(
    tmp_path: Path,
) -> None:
    write(tmp_path / "f", b"f")
    st = os.stat(tmp_path)
    wrong = Directory(str(tmp_path) + "/", "", 0, identity=(st.st_dev, st.st_ino + 1))
    assert walk_task([wrong]).records == [DupeError(str(tmp_path), CHANGED_DURING_WALK)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc here")
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_pseudo_file_system_is_skipped_with_a_notice_that_hides_nothing(jobs: int) -> None:
    found = list(parhash.find_dupes(["/proc/self/", "/proc/version"], jobs=jobs,
                                    include_empty=True))
    assert found == [
        DupeError("/proc/self", PSEUDO_FS, None, could_hide_duplicate=False, skipped=True),
        DupeError("/proc/version", PSEUDO_FS, None, could_hide_duplicate=False, skipped=True),
    ]


def test_a_dead_worker_s_directory_is_named_with_the_pool_s_reason_if_it_gives_one() -> None:
    # The pool may say why it gave up on a directory (it stalled); a death
    # while listing it again is said as a directory's, not a file's.
    job = walk_job("xxh128")
    lost = Directory("/srv/data/", "", 0)
    listed_again = lost_item(job, Part(lost, split=True), WORKER_DIED, StatTask)
    assert listed_again.records == [DupeError("/srv/data", WALKER_DIED)]
    stalled = lost_item(job, lost, "no progress for 5 s, abandoned", StatTask)
    assert stalled.records == [DupeError("/srv/data", "no progress for 5 s, abandoned")]
    # Died on once more: listed again, each file then in a task of its own.
    assert lost_item(job, lost, WORKER_DIED, StatTask).alone == [Part(lost, split=True)]


# --- many files of one size, kept packed -------------------------------------------

# Names a packed group must give back as they were: nested and top-level,
# a NUL-free byte of every kind that is legal in a name.
AWKWARD = ["plain", "new\nline", "back\\slash", "cr\r", os.fsdecode(b"not-utf8-\xff\xfe"),
           "sp ace", "caf\u00e9", "-dash", "."[:0] + "dot.", "z" * 200]


def _infos(paths: list[str]) -> list[FileInfo]:
    signed = 1 << 63
    numbers = [(0, 0, 0, 0), (5, -1, 64, 1), (signed - 1, -signed, signed - 1, 2 * signed - 1),
               (7, signed, 3, 9),  # an mtime past 2262 in nanoseconds
               (7, 9, -signed - 1, 9), (7, 9, 3, 2 * signed), (7, 9, 3, -1)]
    return [(p, *numbers[i % len(numbers)], ("other", "name") if i % 5 == 3 else (), None)
            for i, p in enumerate(paths)]


@pytest.mark.parametrize("top", ["", "/t/", "./a b/", "rel/deep/er/"])
def test_packed_files_give_back_the_files_they_were_made_of(top: str) -> None:
    one_dir = _infos([top + name for name in AWKWARD])
    mixed = _infos([top + name for name in AWKWARD[:3]] + ["x", "/y/z", "/y/z/w", "/y//v"]
                   + [f"{top}{name}/f" for name in AWKWARD[3:6]])
    for files in (one_dir, mixed, one_dir[:1]):
        packed_ = pack(files)
        assert len(packed_) == len(files)
        assert list(packed_) == files
        assert [packed_[i] for i in range(len(files))] == files
        assert packed_[-1] == files[-1]
        assert list(packed_[1:4]) == files[1:4]
        last = len(files) - 1
        assert list(packed_.take([last, 0, 0, last // 2])) == [
            files[-1], files[0], files[0], files[last // 2]]
        assert list(pickle.loads(pickle.dumps(packed_))) == files
        by_path = packed_.sort_key()
        assert sorted(range(len(files)), key=by_path) == sorted(
            range(len(files)), key=lambda i: os.fsencode(files[i][0]))
        grown = pack(mixed)
        grown.extend(packed_)
        grown.extend(pickle.loads(pickle.dumps(packed_)), [len(files) - 1, 0])
        grown.extend_tuples(files[::-1])
        assert list(grown) == mixed + files + [files[-1], files[0]] + files[::-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 40), st.integers(0, (1 << 64) - 1)), max_size=300))
def test_repeated_numbers_are_found_whatever_their_low_bits(numbers: list[int]) -> None:
    counts = collections.Counter(numbers)
    assert _repeated(array("Q", numbers)) == {n for n, c in counts.items() if c > 1}


def _one_size_tree(root: Path) -> None:
    """Several hundred files of few sizes: copies, decoys, empties, hard links, odd names."""
    rng = random.Random(7)
    made: list[Path] = []
    for i in range(600):
        name = AWKWARD[i % len(AWKWARD)] + str(i)
        path = root / f"d{i % 3}" / ("deep/" if i % 4 == 0 else "") / name
        roll = rng.random()
        if made and roll < 0.1:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(rng.choice(made), path)
        elif roll < 0.3:
            write(path, b"")
        else:  # one byte, or 70 KiB: past the head, sharing it or not
            size = rng.choice([1, 70 << 10])
            head = b"h" * (size - 1)
            write(path, head + rng.choice([b"a", b"b"]))
        made.append(path)
    # A file whose mtime in nanoseconds passes 64 bits, where the file system allows.
    os.utime(made[1], ns=(0, 11_000_000_000 * 10**9))


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("hardlinks", [True, False])
def test_groups_kept_packed_find_what_lists_of_files_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, hardlinks: bool
) -> None:
    _one_size_tree(tmp_path)
    (tmp_path / "d0" / "gone").mkdir()
    (tmp_path / "d0" / "gone").chmod(0)  # an error among the packed files

    def search(chunksize: int) -> list[DupeGroup | DupeError]:
        return list(parhash.find_dupes(
            [str(tmp_path), str(tmp_path / "d1" / AWKWARD[1]) + "1"], jobs=jobs,
            chunksize=chunksize, head_size=64, include_empty=True, hardlinks=hardlinks,
        ))

    try:
        as_lists = search(16)
        # Every group packed, every walk task's files in runs; parts of runs
        # past PACK_AT go to the workers packed, the others as lists.
        monkeypatch.setattr(stages, "PACK_AT", 2)
        for chunksize in (1, 3, 16):
            assert search(chunksize) == as_lists
    finally:
        (tmp_path / "d0" / "gone").chmod(0o755)
    groups = groups_of(as_lists)
    assert len(groups) >= 3 and any(g.size == 0 for g in groups)
    expected = brute_force(tmp_path, follow=False, include_empty=True)
    if hardlinks:
        assert any(g.hardlinks for g in groups)
        assert shape(groups) == expected
    else:
        assert not any(g.hardlinks for g in groups)
        assert {frozenset(g.paths) for g in groups} == {
            frozenset(min(names, key=os.fsencode) for names in group) for group in expected
        }


def test_a_directory_larger_than_a_task_is_handed_back_in_parts(tmp_path: Path) -> None:
    for i in range(10):
        write(tmp_path / f"f{i}", b"x" * i)
    st_ = os.stat(tmp_path)
    top = Directory(str(tmp_path) + "/", "", 0, identity=(st_.st_dev, st_.st_ino))
    limits = SizeLimits(include_empty=True)
    first = walk_task([top], limits)
    assert first.tasks == []  # a task's room is TASK_FILES
    task = run_task(walk_job("xxh128", limits)._replace(files=2), [top], StatTask)[0]
    # Twice the task's files from the directory it lists, the rest in parts.
    assert len(task.records) == 4 and all(type(p) is Part for p in task.tasks)
    rest = [run_task(walk_job("xxh128", limits)._replace(files=2), [p], StatTask)[0]
            for p in task.tasks]
    assert all(not r.tasks for r in rest)
    rows = task.records + [f for r in rest for f in r.records]
    assert sorted((f[0], f[1]) for f in rows) == [(str(tmp_path / f"f{i}"), i) for i in range(10)]
    assert rows == first.records
    # Each small file was read and hashed by the walk: the head stage need not.
    assert all(f[6] == hexdigest_function("xxh128")(b"x" * f[1]) for f in rows)


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    chunksize=st.integers(1, 10),
    pack_at=st.integers(1, 6),
)
def test_cut_parts_sends_packed_groups_as_lists_unless_a_run_is_longer_than_pack_at(
    sizes: list[int], chunksize: int, pack_at: int
) -> None:
    made = [Group(1, pack([(f"g{n}/f{i}", 1, n, 1, i, (), None) for i in range(count)]))
            for n, count in enumerate(sizes)]
    sent: list[tuple[int, int]] = []
    saved, stages.PACK_AT = stages.PACK_AT, pack_at
    try:
        for batch in cut_parts(made, lambda size: size, chunksize, 1 << 20):
            for n, start, whole, files in batch:
                assert isinstance(files, list) == (len(files) <= pack_at)
                assert list(files) == list(made[n].files)[start:start + len(files)]
                assert whole == (len(files) == len(made[n].files))
                sent.extend((n, start + i) for i in range(len(files)))
    finally:
        stages.PACK_AT = saved
    assert sorted(sent) == [(n, i) for n, count in enumerate(sizes) for i in range(count)]


# --- small files hashed by the walk ----------------------------------------------------


def test_size_groups_put_files_the_walk_did_not_hash_with_those_of_their_size() -> None:
    digest = hexdigest_function("xxh128")
    hashed = [(f"h{i}", 4, 0, 1, i, (), digest(b"same")) for i in range(2)]
    other = [(f"o{i}", 4, 0, 1, 10 + i, (), digest(b"else")) for i in range(1)]
    # Read by the walk, it changed: no digest. It may still be a copy.
    changed = [("c", 4, 0, 1, 20, (), None)]
    groups = group_by_size(hashed + other)
    assert [(g.size, g.digest, len(g.files)) for g in groups] == [(4, digest(b"same"), 2)]
    groups = group_by_size(hashed + other + changed)
    assert [(g.size, g.digest, sorted(f[0] for f in g.files)) for g in groups] == [
        (4, None, ["c", "h0", "h1", "o0"])
    ]


@pytest.mark.parametrize("jobs", [1, 2])
def test_small_files_hashed_by_the_walk_give_what_the_head_stage_gives(
    big: tuple[Path, list[Path]], jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree, _ = big
    hashed = list(parhash.find_dupes([str(tree)], jobs=jobs, include_empty=True))
    # With a head of 64 bytes, the walk hashes files of 64 bytes or less only.
    short = list(parhash.find_dupes([str(tree)], jobs=jobs, include_empty=True, head_size=64))
    from parhash.dupes import walk

    monkeypatch.setattr(walk, "PEEK_BYTES", 0)
    assert list(parhash.find_dupes([str(tree)], jobs=jobs, include_empty=True)) == hashed
    assert list(parhash.find_dupes([str(tree)], jobs=jobs, include_empty=True,
                                   head_size=64)) == short == hashed
    assert shape([g for g in hashed if isinstance(g, DupeGroup)]) == brute_force(
        tree, follow=False, include_empty=True)


def test_a_file_the_walk_did_not_hash_meets_a_full_packed_group_of_its_copies(
    tmp_path: Path,
) -> None:
    # 1,024 copies fill a packed group exactly; a copy named on the command
    # line is stat-ed, not hashed, and must still join them.
    for i in range(1024):
        write(tmp_path / "d" / f"f{i}", b"hello\n")
    write(tmp_path / "named", b"hello\n")
    write(tmp_path / "secret", b"hello\n").chmod(0)
    r = run("--json", "d", "named", "secret", cwd=tmp_path, unprivileged=True)
    (group,) = json_groups(r.stdout)
    assert len(group.paths) == 1025 and "named" in group.paths
    # The copy that cannot be read is still looked at: an error, exit 2.
    assert b"parhash: secret: Permission denied\n" in r.stderr
    assert r.returncode == 2


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="no /proc here")
def test_a_head_read_short_of_its_size_neither_spoils_the_next_read_nor_counts(
    tmp_path: Path,
) -> None:
    from parhash.dupes.stages import split_parts
    from parhash.hashing import Job

    a = write(tmp_path / "a", b"same" * 100)
    b = write(tmp_path / "b", b"same" * 100)

    def info(path: str) -> FileInfo:
        st_ = os.stat(path)
        return (path, st_.st_size, st_.st_mtime_ns, st_.st_dev, st_.st_ino, (), None)

    # A head larger than the block: the careful reader of /proc/self/status
    # (size 0, yet it reads) takes a buffer of its own size.
    job = Job(("sha256",), 16 << 10, 64 << 10)
    (split,) = split_parts(job, [(0, 0, True, [info("/proc/self/status"), info(str(a)),
                                                  info(str(b))])])
    assert [at for _, at in split.buckets] == [[1, 2]]


def _short_sysfs_file() -> str | None:
    """A /sys attribute whose size says more than it holds (4096 against a few bytes)."""
    for root, _dirs, names in os.walk("/sys/kernel"):
        for name in names:
            path = os.path.join(root, name)
            try:
                st_ = os.stat(path)
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if stat.S_ISREG(st_.st_mode) and 0 < len(data) < st_.st_size:
                return path
    return None


def test_a_head_that_ends_before_its_size_is_a_change_not_a_digest() -> None:
    short = _short_sysfs_file()
    if short is None:
        pytest.skip("no /sys attribute here reads shorter than its size")
    r = parhash.hash_file(short, ("md5",), limit=64 << 10)
    assert r.error == "changed while hashing", r


@pytest.mark.skipif(not os.path.exists("/proc/version"), reason="no /proc here")
def test_a_link_followed_into_a_pseudo_file_system_is_a_notice(tmp_path: Path) -> None:
    write(tmp_path / "a", b"twice")
    write(tmp_path / "b", b"twice")
    os.symlink("/proc/version", tmp_path / "link")
    found = list(parhash.find_dupes([str(tmp_path)], follow=True, include_empty=True))
    assert DupeError(str(tmp_path / "link"), PSEUDO_FS, None, could_hide_duplicate=False,
                     skipped=True) in found
    assert [sorted(g.paths) for g in groups_of(found)] == [[str(tmp_path / "a"),
                                                            str(tmp_path / "b")]]


def test_the_walk_reads_no_file_out_of_the_size_limits(tmp_path: Path) -> None:
    from parhash.dupes.walk import _peeker

    write(tmp_path / "small", b"1234567")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        within = _peeker("xxh128", 100, SizeLimits())("small", fd)
        assert within[1] == hexdigest_function("xxh128")(b"1234567")
        for limits in (SizeLimits(min_size=8), SizeLimits(max_size=6)):
            st_, digest = _peeker("xxh128", 100, limits)("small", fd)
            assert (st_.st_size, digest) == (7, None)
    finally:
        os.close(fd)
