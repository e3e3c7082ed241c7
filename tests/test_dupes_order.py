"""parhash dupes --order and --prefer: which file of a group comes first.

Trees are real files in temporary directories, their mtimes set with
os.utime; runs are real processes. jdupes, where installed as ``make peers``
installs it, has the last word on what ``-o name``, ``-o time`` and ``-O``
put first: without it these tests fail rather than skip.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import parhash
from parhash.cli import DUPE_ORDERS, cli
from parhash.dupes import ORDERS
from parhash.dupes.candidates import FileInfo, Group, pack
from parhash.dupes.order import FileOrder
from parhash.dupes.stages import group_by_inode
from parhash.dupes.walk import StatTask, walk_job
from parhash.results import DupeError, DupeGroup
from parhash.tasks import run_task

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, data: bytes, mtime: int | None = None) -> Path:
    """``path`` holding ``data``, modified at ``mtime`` seconds since the epoch if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``python -m parhash dupes ARGS``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "parhash", "dupes", *args], cwd=cwd,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)


def text_groups(stdout: bytes) -> list[list[str]]:
    """The groups of a text run (parhash's or jdupes'), each its paths in the printed order.

    jdupes ends its last group with one newline where parhash ends each with two.
    """
    blocks = stdout.decode().split("\n\n")
    return [block.strip("\n").split("\n") for block in blocks if block.strip("\n")]


def json_records(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def groups_of(items: Any) -> list[DupeGroup]:
    return [g for g in items if isinstance(g, DupeGroup)]


# --- each --order --------------------------------------------------------------------

# path -> mtime: one group, with a tie on mtime (a/mango, c/Mango), a tie on
# the base name (b/apple, d/apple), and an upper-case name, which sorts
# before every lower-case one in bytes.
ONE_GROUP = {"b/apple": 300, "a/zebra": 100, "c/Mango": 200, "a/mango": 200, "d/apple": 400}

EXPECTED = {
    "path": ["a/mango", "a/zebra", "b/apple", "c/Mango", "d/apple"],
    "name": ["c/Mango", "b/apple", "d/apple", "a/mango", "a/zebra"],
    "mtime": ["a/zebra", "a/mango", "c/Mango", "b/apple", "d/apple"],
    "-mtime": ["d/apple", "b/apple", "a/mango", "c/Mango", "a/zebra"],
}


@pytest.fixture()
def one_group(tmp_path: Path) -> Path:
    for name, mtime in ONE_GROUP.items():
        write(tmp_path / name, b"same fruit\n", mtime)
    return tmp_path


@pytest.mark.parametrize("order", list(EXPECTED))
def test_each_order_puts_the_files_of_a_group_in_its_order(one_group: Path, order: str) -> None:
    r = run("--order", order, ".", cwd=one_group)
    assert r.returncode == 0, r.stderr
    assert text_groups(r.stdout) == [["./" + p for p in EXPECTED[order]]]


def test_path_is_the_default_order(one_group: Path) -> None:
    assert run("-q", cwd=one_group).stdout == run("-q", "--order", "path", cwd=one_group).stdout
    result = CliRunner().invoke(cli, ["dupes", "--help"])
    assert "same way. [default: path]" in " ".join(result.output.split())


def test_order_takes_a_value_that_starts_with_a_dash(one_group: Path) -> None:
    spaced = run("-q", "--order", "-mtime", cwd=one_group)
    joined = run("-q", "--order=-mtime", cwd=one_group)
    assert spaced.returncode == joined.returncode == 0, spaced.stderr
    assert spaced.stdout == joined.stdout
    assert text_groups(spaced.stdout) == [["./" + p for p in EXPECTED["-mtime"]]]


def test_path_and_name_orders_compare_bytes_not_code_points(tmp_path: Path) -> None:
    # U+E000 is b"\xee\x80\x80"; the byte 0xff, not UTF-8, decodes to
    # U+DCFF: as strings U+DCFF comes first, as bytes (os.fsencode) 0xee.
    private, raw = "\ue000", os.fsdecode(b"\xff")
    write(tmp_path / "d" / raw, b"x", 100)
    write(tmp_path / "c" / private, b"x", 200)
    write(tmp_path / "e" / "z", b"x", 300)
    root = str(tmp_path)

    def first_to_last(order: Any) -> list[str]:
        (group,) = groups_of(parhash.find_dupes([root], jobs=1, order=order))
        return [os.path.relpath(p, root) for p in group.paths]

    assert first_to_last("path") == ["c/" + private, "d/" + raw, "e/z"]
    assert first_to_last("name") == ["e/z", "c/" + private, "d/" + raw]
    r = run("-q", "--order", "name", ".", cwd=tmp_path)
    assert r.stdout == b"./e/z\n./c/\xee\x80\x80\n./d/\xff\n\n"


def test_groups_stay_most_wasted_first_whatever_the_order(tmp_path: Path) -> None:
    write(tmp_path / "big/old", b"B" * 1000, 100)
    write(tmp_path / "big/new", b"B" * 1000, 200)
    for i, name in enumerate(["s/a", "s/b", "s/c"]):
        write(tmp_path / name, b"small", 300 - i)
    for order in ORDERS:
        r = run("-q", "--order", order, ".", cwd=tmp_path)
        assert [sorted(g) for g in text_groups(r.stdout)] == [
            ["./big/new", "./big/old"], ["./s/a", "./s/b", "./s/c"]
        ], order
    assert text_groups(run("-q", "--order", "-mtime", cwd=tmp_path).stdout) == [
        ["./big/new", "./big/old"], ["./s/a", "./s/b", "./s/c"]
    ]
    assert text_groups(run("-q", "--order", "mtime", cwd=tmp_path).stdout) == [
        ["./big/old", "./big/new"], ["./s/c", "./s/b", "./s/a"]
    ]


def test_the_readme_recipe_lists_every_copy_but_the_oldest(tmp_path: Path) -> None:
    recipe = "parhash dupes --json --order mtime . | jq -r '.paths[1:][]'"
    assert recipe in (ROOT / "README.md").read_text()
    write(tmp_path / "z/first", b"photo", 100)
    write(tmp_path / "a/second", b"photo", 200)
    write(tmp_path / "m/third", b"photo", 300)
    r = run("--json", "--order", "mtime", ".", cwd=tmp_path)
    assert [p for record in json_records(r.stdout) for p in record["paths"][1:]] == [
        "./a/second", "./m/third"
    ]


# --- --prefer -------------------------------------------------------------------------


@pytest.fixture()
def ranked(tmp_path: Path) -> Path:
    write(tmp_path / "keep/x", b"copy", 500)
    write(tmp_path / "backup/x", b"copy", 100)
    write(tmp_path / "backup/old/x", b"copy", 400)
    write(tmp_path / "misc/x", b"copy", 300)
    write(tmp_path / "keepsake/x", b"copy", 200)  # "keep" is no directory of it
    return tmp_path


@pytest.mark.parametrize(("order", "last"), [
    ("path", ["./keepsake/x", "./misc/x"]),
    ("mtime", ["./keepsake/x", "./misc/x"]),
    ("-mtime", ["./misc/x", "./keepsake/x"]),
])
def test_prefer_ranks_files_by_the_first_path_holding_them_then_order_decides(
    ranked: Path, order: str, last: list[str]
) -> None:
    r = run("-q", "--prefer", "backup/old", "--prefer", "keep", "--prefer", "backup",
            "--order", order, ".", cwd=ranked)
    assert r.returncode == 0, r.stderr
    assert text_groups(r.stdout) == [["./backup/old/x", "./keep/x", "./backup/x", *last]]


def test_within_one_preferred_path_the_order_decides(ranked: Path) -> None:
    r = run("-q", "--prefer", "backup", "--order", "-mtime", ".", cwd=ranked)
    assert text_groups(r.stdout) == [
        ["./backup/old/x", "./backup/x", "./keep/x", "./misc/x", "./keepsake/x"]
    ]
    r = run("-q", "--prefer", "backup", "--order", "mtime", ".", cwd=ranked)
    assert text_groups(r.stdout)[0][:2] == ["./backup/x", "./backup/old/x"]


@pytest.fixture()
def prefixes(tmp_path: Path) -> Path:
    # In byte order: 0/3, a/2, ab/1. Were "a" a prefix of text, ab/1 would rank with a/2.
    write(tmp_path / "ab/1", b"same")
    write(tmp_path / "a/2", b"same")
    write(tmp_path / "0/3", b"same")
    return tmp_path


@pytest.mark.parametrize("prefer", ["a", "a/", "./a", "./a/", "a//", ".//a/."])
@pytest.mark.parametrize("args", [["."], ["0", "a", "ab"], ["./0/", "a//", "./ab"]],
                         ids=["dot", "plain", "spelled"])
def test_prefer_holds_whole_names_however_either_path_is_spelled(
    prefixes: Path, prefer: str, args: list[str]
) -> None:
    r = run("-q", "--prefer", prefer, *args, cwd=prefixes)
    assert r.returncode == 0, r.stderr
    (group,) = text_groups(r.stdout)
    assert [os.path.normpath(p) for p in group] == ["a/2", "0/3", "ab/1"]


def test_prefer_a_does_not_hold_ab(prefixes: Path) -> None:
    r = run("-q", "--prefer", "a", "--prefer", "ab", "--order", "path", ".", cwd=prefixes)
    assert text_groups(r.stdout) == [["./a/2", "./ab/1", "./0/3"]]
    r = run("-q", "--prefer", "ab", ".", cwd=prefixes)
    assert text_groups(r.stdout) == [["./ab/1", "./0/3", "./a/2"]]
    # A file is a path too, and holds only itself.
    r = run("-q", "--prefer", "a/2/", "--prefer", "ab/", ".", cwd=prefixes)
    assert text_groups(r.stdout) == [["./a/2", "./ab/1", "./0/3"]]


def test_prefer_compares_absolute_paths_as_they_are_printed(prefixes: Path) -> None:
    root = str(prefixes)
    r = run("-q", "--prefer", root + "//ab/", root, cwd=prefixes)
    assert text_groups(r.stdout) == [[root + "/ab/1", root + "/0/3", root + "/a/2"]]
    # A relative preference holds no absolute path: the text decides, not the file system.
    r = run("-q", "--prefer", "ab", root, cwd=prefixes)
    assert text_groups(r.stdout) == [[root + "/0/3", root + "/a/2", root + "/ab/1"]]


def test_rank_of_dot_root_and_dot_dot() -> None:
    order = FileOrder("path", [".", "/"])
    assert [order.rank(p) for p in ("x", "./x", "a/b", "/x", "../x", "..", "/")] == [
        0, 0, 0, 1, 2, 2, 1
    ]
    order = FileOrder("path", ["../up", "a/b"])
    assert [order.rank(p) for p in ("../up/x", "../upper/x", "a/b", "./a//b/c", "a/bc")] == [
        0, 2, 1, 1, 2
    ]


# --- hard links -------------------------------------------------------------------------


@pytest.fixture()
def linked(tmp_path: Path) -> Path:
    write(tmp_path / "b/orig", b"linked", 100)
    (tmp_path / "a").mkdir()
    os.link(tmp_path / "b/orig", tmp_path / "a/zlink")  # first by path, last by name
    write(tmp_path / "c/copy", b"linked", 50)
    return tmp_path


# (options, paths, hardlinks): the file with two names is named by the first
# of them in the order, and lists them in that order.
LINKED_CASES = [
    ([], ["./a/zlink", "./c/copy"], [["./a/zlink", "./b/orig"]]),
    (["--order", "name"], ["./c/copy", "./b/orig"], [["./b/orig", "./a/zlink"]]),
    (["--order", "mtime"], ["./c/copy", "./a/zlink"], [["./a/zlink", "./b/orig"]]),
    (["--order", "-mtime"], ["./a/zlink", "./c/copy"], [["./a/zlink", "./b/orig"]]),
    (["--prefer", "b"], ["./b/orig", "./c/copy"], [["./b/orig", "./a/zlink"]]),
    (["--prefer", "c", "--prefer", "a", "--order", "name"], ["./c/copy", "./a/zlink"],
     [["./a/zlink", "./b/orig"]]),
]


@pytest.mark.parametrize(("options", "paths", "links"), LINKED_CASES,
                         ids=[" ".join(c[0]) or "default" for c in LINKED_CASES])
def test_hard_links_follow_the_order_in_text_json_and_csv(
    linked: Path, options: list[str], paths: list[str], links: list[list[str]]
) -> None:
    text = run("-q", *options, ".", cwd=linked)
    assert text_groups(text.stdout) == [paths]  # the other names dropped, the same one kept
    (record,) = json_records(run("-q", "--json", *options, ".", cwd=linked).stdout)
    assert (record["paths"], record["hardlinks"]) == (paths, links)
    rows = list(csv.reader(io.StringIO(run("-q", "--csv", *options, ".", cwd=linked)
                                       .stdout.decode())))
    first, other = links[0]
    expected = []
    for path in paths:
        expected.append([path, ""])
        if path == first:
            expected.append([other, first])
    assert [row[4:] for row in rows[1:]] == expected


def _stat(paths: list[Path]) -> list[FileInfo]:
    """Stage 1's look at each of ``paths``, as a task of named paths."""
    (result,) = run_task(walk_job("xxh128"), [str(p) for p in paths], StatTask)
    assert not [r for r in result.records if isinstance(r, DupeError)]
    return list(result.records)


@pytest.mark.parametrize("packed", [False, True], ids=["list", "packed"])
@pytest.mark.parametrize("keep_links", [True, False])
def test_stage_two_names_a_file_by_the_first_of_its_names_in_the_order(
    tmp_path: Path, packed: bool, keep_links: bool
) -> None:
    names = [tmp_path / n for n in ("a/zed", "m/two", "z/abc")]
    write(names[0], b"12345", 100)
    for name in names[1:]:
        name.parent.mkdir()
        os.link(names[0], name)
    write(tmp_path / "b/copy", b"12345", 200)
    infos = _stat([*names, tmp_path / "b/copy"])
    files: Any = pack(infos) if packed else infos

    def named(order: FileOrder) -> tuple[str, tuple[str, ...]]:
        (group,) = group_by_inode([Group(5, files)], keep_links=keep_links, order=order)
        (linked_file,) = [f for f in group.files if f[4] == infos[0][4]]
        return os.path.relpath(linked_file[0], tmp_path), tuple(
            os.path.relpath(p, tmp_path) for p in linked_file[5])

    others = (lambda *n: n) if keep_links else (lambda *n: ())
    assert named(FileOrder()) == ("a/zed", others("m/two", "z/abc"))
    assert named(FileOrder("name")) == ("z/abc", others("m/two", "a/zed"))
    assert named(FileOrder("-mtime", [tmp_path / "m"])) == ("m/two", others("a/zed", "z/abc"))
    # "z" is relative, the paths absolute: it holds none of them.
    assert named(FileOrder("path", ["z", str(tmp_path / "m")])) == (
        "m/two", others("a/zed", "z/abc"))


# --- the library ---------------------------------------------------------------------------


def test_find_dupes_takes_order_and_prefer_as_keywords(ranked: Path) -> None:
    root = str(ranked)

    def first_to_last(**options: Any) -> list[str]:
        (group,) = groups_of(parhash.find_dupes([root], jobs=1, **options))
        return [os.path.relpath(p, root) for p in group.paths]

    assert first_to_last() == sorted(first_to_last(), key=os.fsencode)
    assert first_to_last(order="mtime") == [
        "backup/x", "keepsake/x", "misc/x", "backup/old/x", "keep/x"]
    assert first_to_last(order="-mtime", prefer=[root + "/misc", ranked / "backup"]) == [
        "misc/x", "backup/old/x", "backup/x", "keep/x", "keepsake/x"]
    # One string, or one path, is one preferred path, not a list of letters.
    assert first_to_last(prefer=root + "/keep")[0] == "keep/x"
    assert first_to_last(prefer=ranked / "keep")[0] == "keep/x"


def test_find_dupes_refuses_a_bad_order_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="order must be one of"):
        parhash.find_dupes([str(tmp_path / "missing")], order="size")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        parhash.find_dupes([str(tmp_path / "missing")], prefer=[""])
    with pytest.raises(TypeError):  # keyword-only, as every option
        parhash.find_dupes([str(tmp_path)], "mtime")  # type: ignore[misc]


def test_the_command_offers_the_library_s_orders() -> None:
    assert DUPE_ORDERS == ORDERS


def test_a_pool_orders_as_one_process_does(tmp_path: Path) -> None:
    rng = random.Random(5)
    for i in range(120):
        data = b"%d" % rng.randrange(12)
        write(tmp_path / f"d{i % 5}" / f"f{rng.randrange(10**6)}", data, rng.randrange(10**6))
    for options in (["--order", "name"], ["--order", "-mtime", "--prefer", "d3"]):
        one = run("--json", "-j", "1", *options, ".", cwd=tmp_path)
        two = run("--json", "-j", "2", "--chunksize", "4", *options, ".", cwd=tmp_path)
        assert one.returncode == two.returncode == 0, two.stderr
        assert one.stdout == two.stdout and one.stdout


# --- usage errors ---------------------------------------------------------------------------


def test_an_unknown_order_is_a_usage_error(tmp_path: Path) -> None:
    r = run("--order", "size", ".", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, b"")
    assert r.stderr == (
        b"parhash: invalid value for '--order': 'size' is not one of 'path', 'name', "
        b"'mtime', '-mtime'\nTry 'parhash dupes --help' for more information.\n"
    )


@pytest.mark.parametrize("args", [["--order"], ["--order", "time"], ["--prefer", ""],
                                  ["--order", "MTIME"]])
def test_bad_order_options_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["dupes", *args])
    assert result.exit_code == 2, result.output


def test_an_empty_preferred_path_is_a_usage_error(tmp_path: Path) -> None:
    r = run("--prefer", "", ".", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, b"parhash: invalid value for '--prefer': a path "
                                           b"must not be empty\nTry 'parhash dupes --help' "
                                           b"for more information.\n")


# --- jdupes -----------------------------------------------------------------------------------


@pytest.fixture()
def jdupes() -> str:
    found = shutil.which("jdupes")
    if found is None:
        pytest.fail("jdupes is not installed: `make peers` installs it; these tests compare "
                    "with it and must not pass without it")
    return found


def peer_tree(root: Path, seed: int) -> None:
    """Groups of copies spread over directories, every mtime distinct (jdupes breaks a
    tie on mtime in no fixed order), names of lower-case letters only (jdupes -o name
    compares digits as numbers, and may fold case), no hard links, no empty file."""
    rng = random.Random(seed)
    dirs = ["one", "two", "three/deep", "one/sub"]
    times = rng.sample(range(10**6, 10**7), 200)
    used: set[str] = set()
    for g in range(8):
        data = b"group %d " % g * (1 + g * 300)
        for _ in range(rng.randint(2, 5)):
            while True:
                name = f"{rng.choice(dirs)}/{''.join(rng.choices('abcdefgh', k=3))}"
                if name not in used:
                    break
            used.add(name)
            write(root / name, data, times.pop())
    write(root / "one/alone", b"unique", times.pop())


def jdupes_groups(jdupes: str, args: list[str], cwd: Path) -> dict[frozenset[str], list[str]]:
    # jdupes waits on a standard input that is an open pipe: give it none.
    out = subprocess.run([jdupes, "-q", *args], cwd=cwd, capture_output=True,
                         stdin=subprocess.DEVNULL, check=True, timeout=60).stdout
    return {frozenset(g): g for g in text_groups(out)}


def parhash_groups(args: list[str], cwd: Path) -> dict[frozenset[str], list[str]]:
    r = run("-q", *args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return {frozenset(g): g for g in text_groups(r.stdout)}


@pytest.mark.parametrize(("ours", "theirs"), [
    (["--order", "mtime"], ["-o", "time"]),
    (["--order", "-mtime"], ["-o", "time", "-i"]),
    (["--order", "path"], ["-o", "name"]),
])
def test_same_groups_in_the_same_order_as_jdupes(
    jdupes: str, tmp_path: Path, ours: list[str], theirs: list[str]
) -> None:
    peer_tree(tmp_path, seed=7)
    mine = parhash_groups([*ours, "."], tmp_path)
    assert len(mine) == 8
    assert mine == jdupes_groups(jdupes, ["-r", *theirs, "."], tmp_path)


def test_prefer_puts_first_what_jdupes_param_order_puts_first(
    jdupes: str, tmp_path: Path
) -> None:
    peer_tree(tmp_path, seed=11)
    args = ["two", "three", "one"]
    for ours, theirs in ((["--order", "mtime"], ["-o", "time"]), ([], ["-o", "name"])):
        mine = parhash_groups(["--prefer", "two", "--prefer", "three", *ours, *args], tmp_path)
        assert mine == jdupes_groups(jdupes, ["-r", "-O", *theirs, *args], tmp_path)
        # Not the order without the preference: the test would prove nothing.
        assert mine != parhash_groups([*ours, *args], tmp_path)
