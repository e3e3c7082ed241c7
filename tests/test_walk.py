"""Walk policy: links, loops, FIFOs, hidden files, globs, path lists, names as given."""

from __future__ import annotations

import errno
import io
import os
import pickle
import queue
import threading
from collections.abc import Callable, Iterable
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NO_DAC, Tree, digest, gnu_line, no_traceback, records, run

import parhash.walk as walk_module
from parhash.cli import cli
from parhash.results import Result, WalkError
from parhash.select import Selector
from parhash.walk import (
    CHANGED_DURING_WALK,
    PAUSE,
    Descent,
    Directory,
    Pause,
    Walked,
    read_dir,
    read_path_list,
    walk_paths,
    walked,
    walked_reason,
)


def walk(paths: Iterable[str], **kwargs: object) -> tuple[list[str], list[WalkError]]:
    """Run a walk to the end; entries and errors apart (walkdir's run_recursive)."""
    entries: list[str] = []
    errors: list[WalkError] = []
    for item in walk_paths(paths, **kwargs):  # type: ignore[arg-type]
        if isinstance(item, WalkError):
            errors.append(item)
        else:
            entries.append(item)
    return entries, errors


def rels(tree: Tree, entries: Iterable[str], prefix: str | None = None) -> set[bytes]:
    start = os.fsencode(prefix if prefix is not None else str(tree.root) + "/")
    out = set()
    for e in entries:
        raw = os.fsencode(e)
        assert raw.startswith(start), raw
        out.add(raw[len(start) :])
    return out


def scan(*args: str | os.PathLike[str]) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, ["scan", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


# -- links, loops, special files ------------------------------------------------


def test_walk_yields_regular_files_only_hidden_included(tree: Tree) -> None:
    entries, errors = walk([str(tree.root)])
    assert errors == []
    assert rels(tree, entries) == set(tree.files)
    assert b".hidden" in rels(tree, entries)
    assert b"sub/.hidden-dir/inner" in rels(tree, entries)
    assert len(entries) == len(set(entries))


def test_walk_without_follow_skips_every_symlink_and_the_fifo(tree: Tree) -> None:
    entries, _ = walk([str(tree.root)])
    assert not rels(tree, entries) & set(tree.specials)
    assert not any(os.fsencode(e).startswith(tree.path(b"link-to-dir")) for e in entries)


def test_walk_with_follow_enters_links_and_reports_the_loop(tree: Tree) -> None:
    entries, errors = walk([str(tree.root)], follow=True)
    found = rels(tree, entries)
    assert b"link-to-file" in found
    # The directory behind link-to-dir is walked once, under one of its names.
    assert {b"sub/nested.bin", b"link-to-dir/nested.bin"} & found
    assert not {b"sub/nested.bin", b"link-to-dir/nested.bin"} <= found
    assert len(entries) == len(set(entries))
    by_path = {os.fsencode(e.path)[len(tree.broot) + 1 :]: e for e in errors}
    # sub/ is entered by whichever of its names the walk meets first.
    loop_name = (set(by_path) & {b"sub/deeper/loop", b"link-to-dir/deeper/loop"}).pop()
    loop = by_path[loop_name]
    assert loop.errno == errno.ELOOP
    assert loop.loop_ancestor is not None
    assert os.path.samefile(loop.loop_ancestor, tree.root)
    assert by_path[b"self-loop"].errno == errno.ELOOP
    # A broken link is no file and no error.
    assert set(by_path) == {loop_name, b"self-loop"}
    assert b"broken-link" not in found


def test_walk_with_follow_never_walks_a_directory_twice(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"f")
    (tmp_path / "a" / "b" / "up").symlink_to("..")
    (tmp_path / "a" / "b" / "top").symlink_to("../..")
    (tmp_path / "a" / "again").symlink_to("b")
    entries, errors = walk([str(tmp_path)], follow=True)
    assert len(entries) == 1
    assert sorted(os.path.basename(e.path) for e in errors) == ["top", "up"]


def test_symlinks_named_on_the_command_line_are_followed(tree: Tree) -> None:
    entries, errors = walk([str(tree.root / "link-to-file"), str(tree.root / "link-to-dir")])
    assert errors == []
    assert entries[0] == str(tree.root / "link-to-file")
    assert rels(tree, entries[1:], str(tree.root / "link-to-dir") + "/") == {
        rel[len(b"sub/") :]
        for rel in tree.files
        if rel.startswith(b"sub/")
    }


def test_broken_link_named_on_the_command_line_is_an_error(tree: Tree) -> None:
    code, out, err = scan(tree.root / "broken-link", tree.root / "plain.txt")
    assert code == 1
    assert out.endswith(b"/plain.txt\n")
    assert err == f"parhash: {tree.root}/broken-link: No such file or directory\n"


def test_link_loop_under_follow_is_an_error_and_the_rest_is_hashed(tree: Tree) -> None:
    proc = run(["scan", "-L", "-a", "md5", tree.root], timeout=30)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert sorted(proc.stderr.splitlines()) == [
        f"parhash: {tree.root}/{name}: {reason}".encode()
        for name, reason in [
            ("link-to-dir/deeper/loop", "File system loop detected"),
            ("self-loop", "Too many levels of symbolic links"),
        ]
    ]
    assert b"link-to-file\n" in proc.stdout
    assert len(records(proc.stdout)) == len(set(records(proc.stdout)))


def test_link_loop_without_follow_is_silently_skipped(tree: Tree) -> None:
    code, out, err = scan(tree.root, "-a", "md5")
    assert (code, err) == (0, "")
    assert set(records(out)) == tree.expected_gnu("md5", tree.broot + b"/")


def test_fifo_met_during_the_walk_is_skipped_without_being_opened(tree: Tree) -> None:
    # Opening a FIFO with no writer blocks: the timeout is the failure mode.
    proc = run(["scan", tree.root, "-a", "md5", "-j", "1"], timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert tree.path(b"fifo") not in proc.stdout
    assert proc.stderr == b""


def test_read_dir_odd_reports_what_it_would_leave_out_silently(tree: Tree) -> None:
    # For dirhash --protocol go-h1, which must account for every name.
    top = Directory(str(tree.root) + "/", "", 0)
    quiet = [i for i in read_dir(top, follow=True) if isinstance(i, WalkError)]
    assert [e.path for e in quiet] == [str(tree.root) + "/self-loop"]
    odd = {e.path: e.error for e in read_dir(top, follow=True, odd=True)
           if isinstance(e, WalkError)}
    assert odd == {str(tree.root) + "/broken-link": "No such file or directory",
                   str(tree.root) + "/fifo": "not a regular file",
                   str(tree.root) + "/self-loop": os.strerror(errno.ELOOP)}
    # Without follow, links are not looked at: each is one more name not hashed.
    odd = {e.path: e.error for e in read_dir(top, odd=True) if isinstance(e, WalkError)}
    assert odd == {str(tree.root) + "/" + name: "not a regular file" for name in
                   ("fifo", "broken-link", "link-to-dir", "link-to-file", "self-loop")}
    # What an --exclude removes is never reported.
    select = Selector(exclude=["fifo", "broken-link"])
    odd = {e.path for e in read_dir(top, follow=True, odd=True, select=select)
           if isinstance(e, WalkError)}
    assert odd == {str(tree.root) + "/self-loop"}


def test_unreadable_directory_during_the_walk_is_reported_and_walk_goes_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "secret").write_bytes(b"s")
    (tmp_path / "open").write_bytes(b"o")
    (tmp_path / "closed").chmod(0)
    try:
        proc = run(
            ["scan", tmp_path, "-a", "md5"],
            prefix=NO_DAC,
        )
    finally:
        (tmp_path / "closed").chmod(0o755)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stderr == f"parhash: {tmp_path}/closed: Permission denied\n".encode()
    assert records(proc.stdout) == [gnu_line(digest("md5", b"o"), os.fsencode(tmp_path / "open"))]


# -- paths as given -------------------------------------------------------------


@pytest.mark.parametrize(
    "arg, shown",
    [
        ("./src", "./src/a.py"),
        ("src", "src/a.py"),
        ("src/", "src/a.py"),
        ("./src/../src", "./src/../src/a.py"),
        ("src/a.py", "src/a.py"),
        ("./src/a.py", "./src/a.py"),
    ],
)
def test_paths_are_printed_as_the_walk_reaches_them_from_the_argument(
    arg: str, shown: str, tmp_path: Path, chdir
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_bytes(b"print()\n")
    chdir(tmp_path)
    code, out, _ = scan(arg, "-a", "md5")
    assert code == 0
    assert out == gnu_line(digest("md5", b"print()\n"), shown.encode())


def test_no_path_means_the_current_directory(tmp_path: Path, chdir) -> None:
    (tmp_path / "a").write_bytes(b"a")
    chdir(tmp_path)
    code, out, _ = scan("-a", "md5")
    assert code == 0
    assert out == gnu_line(digest("md5", b"a"), b"./a")


def test_absolute_paths_stay_absolute(tree: Tree) -> None:
    code, out, _ = scan(tree.root / "sub" / "deeper", "-a", "md5")
    assert code == 0
    assert out == gnu_line(
        digest("md5", tree.files[b"sub/deeper/block"]), tree.path(b"sub/deeper/block")
    )


def test_walk_is_lazy_and_streams(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"f")

    def endless() -> Iterable[str]:
        while True:
            yield str(tmp_path / "f")

    it = walk_paths(endless())
    assert [next(it) for _ in range(3)] == [str(tmp_path / "f")] * 3


# -- include / exclude ------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for rel in [
        "a.py", "b.txt", "src/c.py", "src/d.pyc", "src/deep/e.py", "src/.hid/f.py",
        "build/out.py", "src/build/g.py", "node_modules/m.js", ".git/config", "docs/build",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    return root


def scanned(root: Path, *args: str) -> set[str]:
    code, out, _ = scan(root, "-a", "md5", "-j", "1", *args)
    assert code == 0
    prefix = len(gnu_line("0" * 32, str(root).encode() + b"/")) - 1
    return {line[prefix:-1].decode() for line in records(out)}


def test_include_keeps_matching_files_at_any_depth(project: Path) -> None:
    assert scanned(project, "--include", "*.py") == {
        "a.py", "src/c.py", "src/deep/e.py", "src/.hid/f.py", "build/out.py", "src/build/g.py"
    }


def test_include_with_a_slash_is_anchored_at_the_argument(project: Path) -> None:
    assert scanned(project, "--include", "src/*.py") == {"src/c.py"}
    assert scanned(project, "--include", "src/**/*.py") == {
        "src/c.py", "src/deep/e.py", "src/.hid/f.py", "src/build/g.py"
    }


def test_exclude_prunes_directories_by_name_at_any_depth(project: Path) -> None:
    assert scanned(project, "--exclude", "build", "--exclude", ".git") == {
        "a.py", "b.txt", "src/c.py", "src/d.pyc", "src/deep/e.py", "src/.hid/f.py",
        "node_modules/m.js",
    }


def test_exclude_with_trailing_slash_matches_directories_only(project: Path) -> None:
    # docs/build is a file: "build/" leaves it alone.
    assert "docs/build" in scanned(project, "--exclude", "build/")
    assert "build/out.py" not in scanned(project, "--exclude", "build/")


def test_anchored_exclude_prunes_only_at_the_top(project: Path) -> None:
    got = scanned(project, "--exclude", "/build")
    assert "build/out.py" not in got
    assert "src/build/g.py" in got


def test_include_and_exclude_combine(project: Path) -> None:
    assert scanned(project, "--include", "*.py", "--exclude", "src/**/build", "--exclude",
                   "build/") == {"a.py", "src/c.py", "src/deep/e.py", "src/.hid/f.py"}


def test_excluded_directory_is_never_read(project: Path) -> None:
    # A link loop inside would be reported if the walk entered the directory.
    (project / "build" / "loop").symlink_to("..")
    code, _, err = scan(project, "-L", "--exclude", "build")
    assert (code, err) == (0, "")


def test_exclude_prunes_before_reading_the_directory(project: Path) -> None:
    asked: list[str] = []

    class Recording(Selector):
        def enter_dir(self, relpath: str) -> bool:
            asked.append(relpath)
            return super().enter_dir(relpath)

    entries, _ = walk([str(project)], select=Recording((), ("src",)))
    assert "src" in asked
    assert not [a for a in asked if a.startswith("src/")]
    assert not [e for e in entries if "/src/" in e]


def test_include_and_exclude_never_filter_a_file_named_directly(project: Path) -> None:
    assert scanned(project / "b.txt", "--include", "*.py", "--exclude", "b.txt") == {""}


# -- globs ---------------------------------------------------------------------


def test_quoted_glob_with_double_star_is_expanded_by_parhash(project: Path, chdir) -> None:
    chdir(project)
    code, out, _ = scan("src/**/*.py", "-a", "md5")
    assert code == 0
    # gitignore and shells: ** spans zero or more directories; wildcards skip
    # names that start with a dot.
    assert {line.split(b"  ", 1)[1] for line in out.splitlines()} == {
        b"src/c.py", b"src/deep/e.py", b"src/build/g.py"
    }


def test_glob_at_the_top_and_with_a_leading_dot_slash(project: Path, chdir) -> None:
    chdir(project)
    code, out, _ = scan("*.py", "./src/*.py", "-a", "md5")
    assert code == 0
    assert [line.split(b"  ", 1)[1] for line in out.splitlines()] == [b"a.py", b"./src/c.py"]


def test_glob_matching_nothing_is_an_error(project: Path, chdir) -> None:
    chdir(project)
    code, out, err = scan("*.rs", "a.py", "-a", "md5")
    assert code == 1
    assert out.endswith(b"  a.py\n")
    assert err == "parhash: '*.rs': No such file or directory\n"


def test_existing_name_with_wildcards_is_taken_literally(tmp_path: Path, chdir) -> None:
    (tmp_path / "a*b").write_bytes(b"star")
    (tmp_path / "axb").write_bytes(b"x")
    chdir(tmp_path)
    code, out, _ = scan("a*b", "-a", "md5")
    assert code == 0
    assert out == gnu_line(digest("md5", b"star"), b"a*b")


def test_symlink_loop_under_double_star_cannot_explode(tmp_path: Path, chdir) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "x.txt").write_bytes(b"x")
    (tmp_path / "d" / "e" / "loop").symlink_to("..")
    (tmp_path / "d" / "self").symlink_to(".")
    chdir(tmp_path)
    code, out, err = scan("d/**/*.txt", "-a", "md5")
    assert (code, err) == (0, "")
    assert out == gnu_line(digest("md5", b"x"), b"d/e/x.txt")
    proc = run(["scan", "-L", "d/**/*.txt", "-a", "md5"], cwd=tmp_path, timeout=30)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert len(records(proc.stdout)) == 1
    assert proc.stdout.endswith(b"/x.txt\n")
    assert b"File system loop detected" in proc.stderr


# -- path lists ------------------------------------------------------------------


def test_files_from_reads_one_path_per_line_never_as_glob(tree: Tree, tmp_path: Path) -> None:
    (tree.root / "*").write_bytes(b"a star")
    listing = tmp_path / "list"
    listing.write_bytes(b"%s\n\n%s\n" % (tree.path(b"plain.txt"), tree.path(b"*")))
    code, out, _ = scan("--files-from", listing, "-a", "md5")
    assert code == 0
    assert set(records(out)) == {
        gnu_line(digest("md5", tree.files[b"plain.txt"]), tree.path(b"plain.txt")),
        gnu_line(digest("md5", b"a star"), tree.path(b"*")),
    }


def test_files0_from_stdin_takes_every_name_literally(tree: Tree) -> None:
    names = [tree.path(rel) for rel in tree.files]
    proc = run(["scan", "--files0-from", "-", "-a", "md5"], input=b"\0".join(names) + b"\0")
    assert proc.returncode == 0, proc.stderr
    assert set(records(proc.stdout)) == tree.expected_gnu("md5", tree.broot + b"/")


def test_files_from_stdin_and_arguments_together(tree: Tree) -> None:
    proc = run(
        ["scan", tree.root / "empty", "--files-from", "-", "-a", "md5"],
        input=tree.path(b"plain.txt") + b"\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert set(records(proc.stdout)) == {
        gnu_line(digest("md5", b""), tree.path(b"empty")),
        gnu_line(digest("md5", tree.files[b"plain.txt"]), tree.path(b"plain.txt")),
    }


def test_files_from_a_directory_name_walks_it(tree: Tree) -> None:
    proc = run(["scan", "--files-from", "-", "-a", "md5"], input=tree.path(b"sub") + b"\n")
    assert proc.returncode == 0, proc.stderr
    assert len(records(proc.stdout)) == sum(1 for r in tree.files if r.startswith(b"sub/"))


def test_files_from_a_missing_list_is_an_error(tmp_path: Path) -> None:
    code, out, err = scan("--files-from", tmp_path / "nope")
    assert (code, out) == (1, b"")
    assert err == f"parhash: cannot open '{tmp_path}/nope' for reading: No such file or directory\n"


def test_read_path_list_splits_on_the_separator_and_keeps_any_byte() -> None:
    data = b"a\nb c\n\xff\n\nlast"
    assert list(read_path_list(io.BytesIO(data))) == ["a", "b c", "\udcff", "last"]
    assert list(read_path_list(io.BytesIO(b"x\ny\0z\0"), b"\0")) == ["x\ny", "z"]


def test_read_path_list_yields_each_name_as_soon_as_it_arrives() -> None:
    read_end, write_end = os.pipe()
    names: queue.Queue[str | Pause | None] = queue.Queue()

    def consume() -> None:
        with open(read_end, "rb") as reader:
            for name in read_path_list(reader, b"\0", pauses=True):
                names.put(name)
        names.put(None)

    def next_name() -> str | None:
        # Returns the next name; PAUSE only says that the list will wait.
        while True:
            name = names.get(timeout=5)
            if not isinstance(name, Pause):
                return name
            paused.append(name)

    paused: list[Pause] = []
    threading.Thread(target=consume, daemon=True).start()
    with open(write_end, "wb", buffering=0) as writer:
        writer.write(b"first\0sec")
        try:
            # A read that waits for 64 KiB or the end of the list blocks here.
            assert next_name() == "first"
        except queue.Empty:
            pytest.fail("a name was held back until more of the list arrived")
        # Before it waits for the rest of "second", the reader says so.
        assert names.get(timeout=5) is PAUSE
        writer.write(b"ond\0")
        assert next_name() == "second"
    assert next_name() is None


def test_a_list_in_a_regular_file_never_pauses(tmp_path: Path) -> None:
    listing = tmp_path / "list"
    listing.write_bytes(b"a\nb\n")
    with open(listing, "rb") as stream:
        assert list(read_path_list(stream, pauses=True)) == ["a", "b"]


# --- one directory at a time ----------------------------------------------------------


def test_reading_a_directory_and_those_it_names_finds_what_walk_paths_finds(tree: Tree) -> None:
    top = str(tree.root)
    st = os.stat(top)
    found: list[str] = []
    stack = [Directory(top + "/", "", 0, identity=(st.st_dev, st.st_ino))]
    while stack:
        for item in read_dir(stack.pop()):
            if isinstance(item, Directory):
                stack.append(item)
            elif isinstance(item, str):
                found.append(item)
    assert sorted(found) == sorted(p for p in walk_paths([top]) if isinstance(p, str))


@pytest.mark.parametrize(
    ("path", "shown"), [("", "."), ("/", "/"), ("a/", "a"), ("/srv/data/", "/srv/data")]
)
def test_a_directory_is_named_without_its_slash(path: str, shown: str) -> None:
    assert Directory(path, "", 0).shown == shown


def test_read_dir_closes_its_directory_once_the_listing_ends_or_is_dropped(tree: Tree) -> None:
    top = Directory(str(tree.root) + "/", "", 0)
    before = len(os.listdir("/proc/self/fd"))
    assert list(read_dir(top))
    unfinished = read_dir(top)
    next(unfinished)
    unfinished.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_read_dir_reports_a_directory_it_cannot_open(tmp_path: Path) -> None:
    missing = Directory(str(tmp_path / "gone") + "/", "gone", 1)
    (error,) = read_dir(missing)
    assert isinstance(error, WalkError)
    assert (error.path, error.errno, error.depth) == (str(tmp_path / "gone"), errno.ENOENT, 1)


# --- what the walk listed is what is read -----------------------------------------


def test_walked_files_carry_the_part_of_their_path_named_by_the_caller(tree: Tree) -> None:
    top = str(tree.root)
    entries, _ = walk([top])
    assert entries and all(type(e) is Walked and e.top == len(top) + 1 for e in entries)
    # A glob's named part is its literal directory.
    globbed, _ = walk([top + "/sub/*"])
    assert globbed and all(type(e) is Walked and e.top == len(top + "/sub/") for e in globbed)
    # With follow, a link is followed as named: a file behind one is a plain
    # path, and what is below a directory behind one is walked from it.
    followed, _ = walk([top], follow=True)
    by_name = {os.fsencode(e)[len(tree.broot) + 1 :]: e for e in followed}
    assert type(by_name[b"link-to-file"]) is str
    below = [e for rel, e in by_name.items() if rel.startswith(b"link-to-dir/")]
    assert all(isinstance(e, Walked) and e.top == len(top + "/link-to-dir/") for e in below)
    # A file named by the caller is opened as named.
    named, _ = walk([top + "/plain.txt"])
    assert [type(e) for e in named] == [str]


@pytest.mark.parametrize("dumps", [pickle.dumps, ForkingPickler.dumps], ids=["pickle", "pool"])
def test_a_walked_path_crosses_to_a_worker_whole(dumps: Callable[[object], bytes]) -> None:
    back = pickle.loads(dumps([walked("./src/a.py", 2)]))[0]
    assert (type(back), back, back.top) == (Walked, "./src/a.py", 2)
    assert type(str(back)) is str


def names_in(directory: Path, names: Iterable[bytes]) -> None:
    for name in names:
        path = os.path.join(os.fsencode(directory), name)
        if name.startswith(b"d"):
            os.mkdir(path)
        else:
            with open(path, "wb"):
                pass


AWKWARD_ORDER = [
    b"B", b"a", b"a0", b"a\xff", b"d-dir", b"\x80x", b"\xc3\xa9", b"\xe6\x97\xa5", b"\xff", b"~",
    *(b"f%03d" % i for i in range(30)),
]


@pytest.mark.parametrize("run", [1 << 16, 7], ids=["one run", "runs of 7"])
def test_read_dir_gives_names_in_byte_order_in_one_run_or_merged_runs(
    run: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Byte order, not the order of the decoded names: b"\x80x" (not UTF-8)
    # decodes to "\udc80x", which would sort after "é".
    monkeypatch.setattr(walk_module, "RUN", run)
    monkeypatch.setattr(walk_module, "_BLOCK", 3)
    names_in(tmp_path, AWKWARD_ORDER)
    items = list(read_dir(Directory(str(tmp_path) + "/", "", 0)))
    got = [os.fsencode(i.path if isinstance(i, Directory) else i).rstrip(b"/") for i in items]
    assert got == [os.path.join(os.fsencode(tmp_path), n) for n in sorted(AWKWARD_ORDER)]


def test_a_walk_holds_a_bounded_number_of_descriptors_however_deep(tmp_path: Path) -> None:
    depth = 3 * Descent.MAX_HELD
    path = tmp_path
    for _ in range(depth):
        path = path / "d"
        (path / "side").mkdir(parents=True)
    (path / "f").write_bytes(b"deep")
    open_fds = len(os.listdir("/proc/self/fd"))
    seen = []
    for item in walk_paths([str(tmp_path)]):
        seen.append(len(os.listdir("/proc/self/fd")) - open_fds)
        assert isinstance(item, str)
    assert max(seen) <= Descent.MAX_HELD + 1
    # And a reader finds the file through as many.
    descent = Descent()
    try:
        fd = descent.open(walked(str(path / "f"), len(str(tmp_path)) + 1), os.O_RDONLY)
        os.close(fd)
        assert len(os.listdir("/proc/self/fd")) - open_fds <= Descent.MAX_HELD
    finally:
        descent.close()
    assert len(os.listdir("/proc/self/fd")) == open_fds


def test_a_descent_does_not_follow_a_directory_swapped_for_a_link(tmp_path: Path) -> None:
    (tmp_path / "top" / "a" / "b").mkdir(parents=True)
    (tmp_path / "top" / "a" / "b" / "f").write_bytes(b"inside")
    (tmp_path / "elsewhere" / "b").mkdir(parents=True)
    (tmp_path / "elsewhere" / "b" / "f").write_bytes(b"outside")
    named = len(str(tmp_path / "top")) + 1
    path = walked(str(tmp_path / "top" / "a" / "b" / "f"), named)
    descent, fresh = Descent(), Descent()
    try:
        with os.fdopen(descent.open(path, os.O_RDONLY), "rb") as f:
            assert f.read() == b"inside"
        os.rename(tmp_path / "top" / "a", tmp_path / "a.was")
        (tmp_path / "top" / "a").symlink_to(tmp_path / "elsewhere")
        # A directory already open stays the one that was opened...
        with os.fdopen(descent.open(path, os.O_RDONLY), "rb") as f:
            assert f.read() == b"inside"
        # ...and one opened now is not reached through the link.
        with pytest.raises(OSError) as raised:
            fresh.open(path, os.O_RDONLY)
        assert walked_reason(raised.value) == CHANGED_DURING_WALK
        # The named part is followed as named.
        file = str(tmp_path / "top" / "a" / "b" / "f")
        via_link = walked(file, len(str(tmp_path / "top" / "a")) + 1)
        with os.fdopen(fresh.open(via_link, os.O_RDONLY), "rb") as f:
            assert f.read() == b"outside"
    finally:
        descent.close()
        fresh.close()


def test_read_dir_reports_what_was_swapped_for_a_link_after_its_listing(tmp_path: Path) -> None:
    listed = tmp_path / "listed"
    (tmp_path / "elsewhere").mkdir()
    outside = tmp_path / "elsewhere" / "secret"
    outside.write_bytes(b"secret")
    top = Directory(str(listed) + "/", "", 0)
    (listed / "m-dir").mkdir(parents=True)
    (listed / "a-file").write_bytes(b"a")
    (listed / "z-file").write_bytes(b"z")
    listing = read_dir(top)
    first = next(listing)  # the directory has been listed whole
    assert first == str(listed / "a-file")
    swap_for_link(listed / "m-dir", tmp_path / "elsewhere")
    swap_for_link(listed / "z-file", outside)
    rest = list(listing)
    # A walked file is refused when it is read: it comes as the walk saw it.
    assert rest == [
        WalkError(str(listed / "m-dir"), CHANGED_DURING_WALK, None, 1),
        walked(str(listed / "z-file"), len(str(listed)) + 1),
    ]


def swap_for_link(entry: Path, target: Path) -> None:
    link = entry.with_name(entry.name + ".link")
    link.symlink_to(target)
    if entry.is_dir():
        os.rename(entry, entry.with_name(entry.name + ".was"))
    os.replace(link, entry)


def test_read_dir_refuses_a_directory_that_is_not_the_one_listed(tmp_path: Path) -> None:
    st = os.stat(tmp_path)
    other = Directory(str(tmp_path) + "/", "", 0, identity=(st.st_dev, st.st_ino + 1))
    assert list(read_dir(other)) == [WalkError(str(tmp_path), CHANGED_DURING_WALK, None, 0)]


def _run_items(items: list[object], jobs: int) -> list[Result]:
    """Results of scan's task items, each item a task, run in this process or a pool."""
    from parhash.executor import InlineExecutor
    from parhash.pool import PoolExecutor
    from parhash.tasks import RESULTS, RunTask, ScanJob

    run = RunTask(ScanJob(("md5",), fmt=RESULTS))
    executor = InlineExecutor() if jobs == 1 else PoolExecutor(jobs)
    try:
        answers = [a for batch in executor.map_unordered(run, [[i] for i in items])
                   for a in batch]
    finally:
        executor.close()
    return [r for a in answers for r in a.records]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_reader_refuses_a_walked_file_or_directory_swapped_for_a_link(
    jobs: int, tmp_path: Path
) -> None:
    # A task reads the files its directory listed relative to the directory
    # it opened, never by a path that a link swapped in since could redirect.
    from parhash.tasks import Part

    top = tmp_path / "top"
    for d in ("a", "b"):
        (top / d).mkdir(parents=True)
        for i in range(40):
            (top / d / f"f{i:02d}").write_bytes(b"%s%d" % (d.encode(), i))
    (tmp_path / "elsewhere").mkdir()
    for i in range(40):
        (tmp_path / "elsewhere" / f"f{i:02d}").write_bytes(b"outside")
    st = os.stat(top)
    a, b = read_dir(Directory(str(top) + "/", "", 0, identity=(st.st_dev, st.st_ino)))
    assert isinstance(a, Directory) and isinstance(b, Directory)
    names = "\0".join(f"f{i:02d}" for i in range(40))
    os.rename(top / "b", tmp_path / "b.was")
    (top / "b").symlink_to(tmp_path / "elsewhere")
    os.remove(top / "a" / "f07")
    (top / "a" / "f07").symlink_to(tmp_path / "elsewhere" / "f07")
    results = _run_items([Part(a, names), Part(b, names)], jobs)
    failed = {r.path: r.error for r in results if r.error is not None}
    assert failed == {str(top / "a" / "f07"): CHANGED_DURING_WALK,
                      str(top / "b"): CHANGED_DURING_WALK}
    assert all(type(r.path) is str for r in results)
    assert len([r for r in results if r.ok]) == 39
    assert all(r.digests["md5"] != digest("md5", b"outside") for r in results if r.ok)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_reader_refuses_the_walked_argument_itself_swapped_for_a_link(
    jobs: int, tmp_path: Path
) -> None:
    # The argument is followed as named, but only as the walk saw it: once
    # listed, a link swapped in for it must not lead the reader elsewhere.
    from parhash.tasks import Part

    top = tmp_path / "top"
    top.mkdir()
    (tmp_path / "elsewhere").mkdir()
    for i in range(80):
        (top / f"f{i:02d}").write_bytes(b"inside %d" % i)
        (tmp_path / "elsewhere" / f"f{i:02d}").write_bytes(b"outside")
    st = os.stat(top)
    listed = Directory(str(top) + "/", "", 0, identity=(st.st_dev, st.st_ino))
    names = "\0".join(f"f{i:02d}" for i in range(80))
    os.rename(top, tmp_path / "top.was")
    top.symlink_to(tmp_path / "elsewhere")
    results = _run_items([listed, Part(listed, names)], jobs)
    assert [(r.path, r.error) for r in results] == [(str(top), CHANGED_DURING_WALK)] * 2
