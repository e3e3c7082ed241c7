"""parhash dirhash: one digest for a directory, checked against its references.

The ``dirhash`` protocol is compared with the ``dirhash`` package (the
Dirhash Standard's implementation) on the same trees; ``go-h1`` with a
reimplementation of Go's ``DirFiles`` and ``Hash1`` written here from
golang.org/x/mod/sumdb/dirhash/hash.go (plain hashlib, never parhash), and
Go's own hash_test.go cases are ported as they are.
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NO_DAC, no_traceback, run

import parhash
from parhash.cli import DIRHASH_PROTOCOLS, cli
from parhash.dirdigest import PROTOCOLS, DirhashError, go_name

dirhash_package = pytest.importorskip("dirhash")

# parhash's names of the algorithms, and hashlib's, which the package takes.
PACKAGE_NAMES = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256",
                 "sha384": "sha384", "sha512": "sha512", "sha3-256": "sha3_256",
                 "blake2b": "blake2b"}


def reference(path: Path | str, algo: str = "sha256", **options: object) -> str:
    """The ``dirhash`` package's digest of ``path``."""
    with warnings.catch_warnings():
        # scantree asks pathspec for its gitwildmatch patterns, deprecated
        # (not changed) in pathspec 1.0.
        warnings.simplefilter("ignore", DeprecationWarning)
        return str(dirhash_package.dirhash(str(path), PACKAGE_NAMES[algo], **options))


def go_dir_files(root: bytes, prefix: bytes = b"") -> Iterator[bytes]:
    """Go's DirFiles: every entry that is not a directory, by lstat (filepath.Walk
    never follows a link), as filepath.Join(prefix, rel)."""
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            yield from (posixpath.join(entry.name, f)
                        for f in go_dir_files(os.path.join(root, entry.name)))
        else:
            yield entry.name


def go_h1(root: Path, prefix: str = "") -> str:
    """Go's HashDir(root, prefix, Hash1): sorted ``%x  %s\\n`` lines, SHA-256, base64."""
    broot = os.fsencode(root)
    summary = hashlib.sha256()
    names = sorted((posixpath.join(prefix.encode(), rel) if prefix else rel, rel)
                   for rel in go_dir_files(broot))
    for name, rel in names:
        assert b"\n" not in name
        with open(os.path.join(broot, rel), "rb") as f:  # os.Open follows a link
            summary.update(b"%s  %s\n" % (hashlib.sha256(f.read()).hexdigest().encode(), name))
    return "h1:" + base64.b64encode(summary.digest()).decode()


def put(root: Path, files: dict[str, bytes | None]) -> Path:
    """Files with their bytes; a name ending in "/" with None is an empty directory."""
    for name, data in files.items():
        path = root / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


AWKWARD = {
    "top.txt": b"top",
    "empty": b"",
    ".hidden": b"hidden",
    "with space.txt": b"space",
    "caf\u00e9 \u65e5\u672c": b"unicode",
    "back\\slash": b"backslash",
    "a/b/c/deep.bin": bytes(range(256)) * 40,
    "a/b/.hidden-dir/inner": b"inner",
    "a/sibling": b"sibling",
    "a/empty-dir/": None,
    "only-empty/x/y/": None,
    "src/main.py": b"print(1)\n",
    "src/util.py": b"def f(): pass\n",
    "src/util.pyc": b"\x00compiled",
    "src/__pycache__/util.cpython-311.pyc": b"\x00cached",
    "build/out.o": b"\x7fELF",
    "build/nested/more.o": b"\x7fELF2",
    "docs/readme.txt": b"docs",
    "docs/skip-me.txt": b"skip",
}


@pytest.fixture
def awkward(tmp_path: Path) -> Path:
    root = put(tmp_path / "tree", AWKWARD)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside the tree")
    os.symlink("top.txt", root / "link-to-file")
    os.symlink(str(outside), root / "link-outside")
    os.symlink("a/b", root / "link-to-dir")  # the same files again, under another name
    return root


@pytest.fixture
def go_tree(tmp_path: Path) -> Path:
    """What a Go module tree can hold: files, and links to files (Go reads through them)."""
    root = put(tmp_path / "mod", {k: v for k, v in AWKWARD.items() if v is not None})
    os.symlink("top.txt", root / "link-to-file")
    return root


@pytest.mark.parametrize("algo", ["sha256", "md5", "sha1", "sha512", "sha3-256", "blake2b"])
@pytest.mark.parametrize("empty_dirs", [False, True])
def test_dirhash_matches_the_dirhash_package(awkward: Path, algo: str, empty_dirs: bool) -> None:
    got = parhash.dirhash(awkward, algo=algo, empty_dirs=empty_dirs, jobs=1)
    assert got == reference(awkward, algo, empty_dirs=empty_dirs)


def test_empty_dirs_change_the_dirhash_as_in_the_package(awkward: Path) -> None:
    assert parhash.dirhash(awkward, jobs=1) != parhash.dirhash(awkward, empty_dirs=True, jobs=1)


@pytest.mark.parametrize("properties", [("name",), ("data",), ("name", "data")])
def test_entry_properties_match_the_package(awkward: Path, properties: tuple[str, ...]) -> None:
    got = parhash.dirhash(awkward, properties=properties, jobs=1)
    assert got == reference(awkward, entry_properties=list(properties))


def test_names_only_reads_no_file(awkward: Path) -> None:
    # The standard: an unreadable file is an error only if "data" is used.
    # Root reads anything, so the proof is a FIFO, which a read would hang on,
    # named as a link's target: the dirhash protocol follows links to files.
    os.mkfifo(awkward.parent / "fifo")
    os.symlink(str(awkward.parent / "fifo"), awkward / "to-fifo")
    assert parhash.dirhash(awkward, properties="name", jobs=1) == reference(
        awkward, entry_properties=["name"])


def standard_dirhash(root: Path, algo: str, properties: set[str]) -> str:
    """The Dirhash Standard 0.1.0's text, for is_link ("true"/"false"), which the
    package gets wrong: written here from the standard, links followed, no
    empty directories."""

    def digest(directory: Path) -> str | None:
        entries = []
        for entry in os.scandir(directory):
            fields = []
            if entry.is_dir():
                sub = digest(Path(entry.path))
                if sub is None:
                    continue
                fields.append("dirhash:" + sub)
            elif entry.is_file():
                if "data" in properties:
                    fields.append("data:" + hashlib.new(algo, Path(entry.path).read_bytes())
                                  .hexdigest())
            else:
                continue
            if "name" in properties:
                fields.append("name:" + entry.name)
            if "is_link" in properties:
                fields.append("is_link:" + ("true" if entry.is_symlink() else "false"))
            entries.append("\0".join(sorted(fields)))
        if not entries:
            return None
        return hashlib.new(algo, "\0\0".join(sorted(entries)).encode()).hexdigest()

    found = digest(root)
    assert found is not None
    return found


def test_is_link_property_follows_the_standard_s_text(awkward: Path) -> None:
    with_links = parhash.dirhash(awkward, properties="name,data,is_link", jobs=1)
    assert with_links == standard_dirhash(awkward, "sha256", {"name", "data", "is_link"})
    assert with_links != parhash.dirhash(awkward, jobs=1)
    assert parhash.dirhash(awkward, jobs=1) == standard_dirhash(awkward, "sha256",
                                                                {"name", "data"})


@pytest.mark.parametrize(("include", "exclude", "match", "ignore"), [
    ((), ("*.pyc",), ("*",), ("*.pyc",)),
    ((), ("build/",), ("*",), ("build/",)),
    ((), ("build", "__pycache__/"), ("*",), ("build", "__pycache__/")),
    (("*.py",), (), ("*.py",), ()),
    (("src/**",), ("*.pyc",), ("src/**",), ("*.pyc",)),
    (("*.txt",), ("skip-*",), ("*.txt",), ("skip-*",)),
    (("a/**/*.bin", "docs/*"), (".*",), ("a/**/*.bin", "docs/*"), (".*",)),
])
def test_include_and_exclude_are_the_package_s_match_and_ignore(
    awkward: Path, include: tuple[str, ...], exclude: tuple[str, ...],
    match: tuple[str, ...], ignore: tuple[str, ...],
) -> None:
    got = parhash.dirhash(awkward, include=include, exclude=exclude, jobs=1)
    assert got == reference(awkward, match=list(match), ignore=list(ignore))


def test_with_empty_dirs_an_excluded_directory_is_as_if_absent(awkward: Path,
                                                               tmp_path: Path) -> None:
    # The package matches files only, and keeps an excluded directory's
    # skeleton as empty directories; parhash prunes it (see the README).
    got = parhash.dirhash(awkward, exclude=["build/"], empty_dirs=True, jobs=1)
    shutil.rmtree(awkward / "build")
    assert got == reference(awkward, empty_dirs=True)


def test_dirhash_with_two_jobs_is_the_same_digest(awkward: Path) -> None:
    assert parhash.dirhash(awkward, jobs=2, chunksize=2) == reference(awkward)


@pytest.mark.parametrize("prefix", ["", "golang.org/x/mod@v0.20.0", "example.com/m/v2@v2.0.1"])
def test_go_h1_matches_go_s_algorithm(go_tree: Path, prefix: str) -> None:
    got = parhash.dirhash(go_tree, protocol="go-h1", prefix=prefix, jobs=1)
    assert got == go_h1(go_tree, prefix)


def test_go_h1_sorts_names_by_their_bytes(tmp_path: Path) -> None:
    # "B" < "a" < "a/b" < "a.txt"? Bytes say "B" < "a.txt" < "a/b" ('.' < '/').
    root = put(tmp_path / "t", {"a.txt": b"1", "a/b": b"2", "B": b"3", "\u00e9": b"4", "z": b"5"})
    assert parhash.dirhash(root, protocol="go-h1", jobs=1) == go_h1(root)


@pytest.mark.parametrize(("prefix", "rel", "name"), [
    ("", "a/b", "a/b"),
    ("m@v1", "a", "m@v1/a"),
    ("m/", "a", "m/a"),
    ("./m", "a", "m/a"),
    ("a//b/./c", "x", "a/b/c/x"),
    ("a/..", "x", "x"),
    ("../up", "x", "../up/x"),
    ("/", "x", "/x"),
    ("/..", "x", "/x"),
])
def test_prefix_joins_as_go_s_filepath_join(prefix: str, rel: str, name: str) -> None:
    assert go_name(prefix, rel) == name


# --- Go's own tests (golang.org/x/mod/sumdb/dirhash/hash_test.go), ported -------


def h(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def htop(k: str, s: str) -> str:
    return k + ":" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()


def test_go_s_TestHashDir(tmp_path: Path) -> None:
    (tmp_path / "xyz").write_bytes(b"data for xyz")
    (tmp_path / "abc").write_bytes(b"data for abc")
    want = htop("h1", "%s  %s\n%s  %s\n" % (h("data for abc"), "prefix/abc",
                                            h("data for xyz"), "prefix/xyz"))
    assert parhash.dirhash(tmp_path, protocol="go-h1", prefix="prefix", jobs=1) == want


def test_go_s_TestHash1_without_a_prefix(tmp_path: Path) -> None:
    (tmp_path / "xyz").write_bytes(b"data for xyz")
    (tmp_path / "abc").write_bytes(b"data for abc")
    want = htop("h1", "%s  %s\n%s  %s\n" % (h("data for abc"), "abc", h("data for xyz"), "xyz"))
    assert parhash.dirhash(tmp_path, protocol="go-h1", jobs=1) == want


def test_go_s_TestHash1_newline_in_a_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "xyz").write_bytes(b"data for xyz")
    (tmp_path / "a\nbc").write_bytes(b"data for a\nbc")
    with pytest.raises(DirhashError) as e:
        parhash.dirhash(tmp_path, protocol="go-h1", jobs=1)
    assert e.value.errors == [(f"{tmp_path}/a\nbc", "file names with newlines are not supported")]


def test_go_h1_newline_in_a_directory_s_name_is_an_error_too(tmp_path: Path) -> None:
    put(tmp_path, {"ok": b"ok", "new\ndir/inner": b"x"})
    with pytest.raises(DirhashError) as e:
        parhash.dirhash(tmp_path, protocol="go-h1", jobs=1)
    assert e.value.errors == [(f"{tmp_path}/new\ndir/inner", "file names with newlines are not "
                               "supported")]
    # The dirhash protocol has no such limit: its names are in NUL-separated fields.
    assert parhash.dirhash(tmp_path, jobs=1) == reference(tmp_path)


def test_go_s_TestDirFiles_invalid_directory(tmp_path: Path) -> None:
    path = tmp_path / "not-a-directory.txt"
    path.write_bytes(b"This is a file.")
    with pytest.raises(NotADirectoryError):
        parhash.dirhash(path, protocol="go-h1")


def test_go_h1_of_an_empty_directory_is_sha256_of_nothing(tmp_path: Path) -> None:
    assert parhash.dirhash(tmp_path, protocol="go-h1", jobs=1) == htop("h1", "")


# --- what each protocol does with links and special files ----------------------


def test_go_h1_link_to_a_directory_is_an_error_as_go_s_read_of_it(go_tree: Path) -> None:
    os.symlink("a", go_tree / "link-to-dir")
    with pytest.raises(DirhashError) as e:
        parhash.dirhash(go_tree, protocol="go-h1", jobs=1)
    assert e.value.errors == [(f"{go_tree}/link-to-dir", "Is a directory")]


def test_go_h1_broken_link_and_fifo_are_errors_not_skipped_nor_hung(go_tree: Path) -> None:
    os.symlink("nowhere", go_tree / "broken")
    os.mkfifo(go_tree / "a" / "fifo")
    with pytest.raises(DirhashError) as e:
        parhash.dirhash(go_tree, protocol="go-h1", jobs=1)
    assert e.value.errors == [(f"{go_tree}/a/fifo", "not a regular file"),
                              (f"{go_tree}/broken", "No such file or directory")]


def test_dirhash_skips_broken_links_and_fifos_as_the_package_does(awkward: Path) -> None:
    os.symlink("nowhere", awkward / "broken")
    os.mkfifo(awkward / "a" / "fifo")
    assert parhash.dirhash(awkward, jobs=1) == reference(awkward)


def test_dirhash_link_loop_is_an_error_as_in_the_package(awkward: Path) -> None:
    os.symlink("..", awkward / "a" / "up")
    with pytest.raises(DirhashError) as e:
        parhash.dirhash(awkward, jobs=1)
    assert e.value.errors == [(f"{awkward}/a/up", "File system loop detected")]
    with pytest.raises(Exception, match="Symlink recursion"):  # SymlinkRecursionError
        reference(awkward)


def test_non_utf8_names_go_in_as_their_bytes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "ok").write_bytes(b"x")
    with open(os.path.join(os.fsencode(root), b"latin1-\xe9"), "wb") as f:
        f.write(b"y")
    got = parhash.dirhash(root, jobs=1)
    descriptors = sorted("\0".join(sorted([f"data:{h(data)}", f"name:{name}"]))
                         for name, data in (("ok", "x"), (os.fsdecode(b"latin1-\xe9"), "y")))
    text = "\0\0".join(descriptors).encode("utf-8", "surrogateescape")
    assert got == hashlib.sha256(text).hexdigest()
    assert b"latin1-\xe9" in text


# --- the library's errors ---------------------------------------------------------


def test_library_raises_for_a_missing_path_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parhash.dirhash(tmp_path / "missing")
    for bad in [dict(protocol="go-h1", algo="md5"), dict(protocol="nope"),
                dict(prefix="x"), dict(protocol="go-h1", empty_dirs=True),
                dict(algo="xxh3"), dict(properties="is_link"), dict(properties="size"),
                dict(algo="md5,sha1"), dict(jobs=0)]:
        with pytest.raises(ValueError):
            parhash.dirhash(tmp_path, **bad)  # type: ignore[arg-type]


def test_nothing_to_hash_is_an_error_unless_empty_dirs(tmp_path: Path) -> None:
    put(tmp_path, {"x/y/": None})
    with pytest.raises(DirhashError) as e:
        parhash.dirhash(tmp_path)
    assert e.value.errors == [(str(tmp_path), "nothing to hash")]
    assert parhash.dirhash(tmp_path, empty_dirs=True) == reference(tmp_path, empty_dirs=True)


def test_the_cli_s_protocols_are_the_library_s() -> None:
    assert DIRHASH_PROTOCOLS == PROTOCOLS


# --- the command ---------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["dirhash", *args], prog_name="parhash")
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.stdout, result.stderr


def test_command_prints_the_digest_and_exits_0(awkward: Path) -> None:
    assert invoke(str(awkward), "-j", "1") == (0, reference(awkward) + "\n", "")
    assert invoke(str(awkward), "-a", "md5", "--empty-dirs", "-j", "1") == (
        0, reference(awkward, "md5", empty_dirs=True) + "\n", "")
    assert invoke(str(awkward), "--exclude", "build/", "--include", "*.py", "-j", "1") == (
        0, reference(awkward, match=["*.py"], ignore=["build/"]) + "\n", "")


def test_command_go_h1_with_prefix(go_tree: Path) -> None:
    assert invoke("--protocol", "go-h1", "--prefix", "m@v1.0.0", str(go_tree), "-j", "1") == (
        0, go_h1(go_tree, "m@v1.0.0") + "\n", "")


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "go-h1", "-a", "md5"], "go-h1 is SHA-256 only"),
    (["--prefix", "x"], "a prefix is for the go-h1 protocol"),
    (["--protocol", "go-h1", "--empty-dirs"], "empty directories are for the dirhash protocol"),
    (["-a", "xxh3"], "the dirhash protocol takes md5"),
    (["-a", "nope"], "unknown algorithm 'nope'"),
    (["--properties", "is_link"], "the entry properties need name or data"),
    (["--protocol", "h2"], "Invalid value for '--protocol'"),
])
def test_command_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = invoke(str(tmp_path), *args)
    assert (code, out) == (2, "")
    assert message in err, err


def test_a_link_named_as_path_is_followed(awkward: Path, tmp_path: Path) -> None:
    os.symlink(awkward, tmp_path / "link")
    assert parhash.dirhash(tmp_path / "link", jobs=1) == reference(awkward)
    assert invoke(str(tmp_path / "link"), "-j", "1") == (0, reference(awkward) + "\n", "")


def test_python_dash_m_usage_error_in_coreutils_words(tmp_path: Path) -> None:
    proc = run(["dirhash", "--protocol", "go-h1", "-a", "sha512", str(tmp_path)])
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert proc.stderr == (b"parhash: go-h1 is SHA-256 only\n"
                           b"Try 'parhash dirhash --help' for more information.\n")


def test_command_path_missing_or_a_file_exits_2_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    assert invoke(str(tmp_path / "missing")) == (
        2, "", f"parhash: {tmp_path}/missing: No such file or directory\n")
    assert invoke(str(tmp_path / "file")) == (2, "", f"parhash: {tmp_path}/file: Not a directory\n")


def test_command_nothing_to_hash_exits_1(tmp_path: Path) -> None:
    assert invoke(str(tmp_path)) == (1, "", f"parhash: {tmp_path}: nothing to hash\n")


def test_command_link_loop_exits_1_without_a_digest(awkward: Path) -> None:
    os.symlink("../..", awkward / "a" / "b" / "loop")
    code, out, err = invoke(str(awkward), "-j", "1")
    # Reached twice: as a/b/loop, and through link-to-dir as link-to-dir/loop.
    assert (code, out) == (1, "")
    assert err == (f"parhash: {awkward}/a/b/loop: File system loop detected\n"
                   f"parhash: {awkward}/link-to-dir/loop: File system loop detected\n")


def test_command_warns_of_a_pattern_that_matched_nothing(awkward: Path) -> None:
    code, out, err = invoke(str(awkward), "--exclude", "*.nothing", "-j", "1")
    assert (code, out) == (0, reference(awkward) + "\n")
    assert err == "parhash: warning: --exclude '*.nothing' matched nothing\n"


# --- real processes ----------------------------------------------------------


def test_python_dash_m_two_jobs_give_the_one_job_digest(tmp_path: Path) -> None:
    files = {f"d{i % 5}/f{i:03d}": bytes([i % 256]) * (i * 37 % 900) for i in range(300)}
    root = put(tmp_path / "many", files)
    (root / "big").write_bytes(os.urandom(5 << 20))  # alone in a task of its own
    one = run(["dirhash", "many", "-j", "1"], cwd=tmp_path)
    two = run(["dirhash", "many", "-j", "2", "--chunksize", "7", "--block-size", "4K"],
              cwd=tmp_path)
    for proc in (one, two):
        no_traceback(proc.stderr)
        assert (proc.returncode, proc.stderr) == (0, b"")
    assert one.stdout == two.stdout == (reference(root) + "\n").encode()
    go = run(["dirhash", "many", "--protocol", "go-h1", "-j", "2"], cwd=tmp_path)
    assert go.stdout == (go_h1(root) + "\n").encode()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
@pytest.mark.parametrize("protocol", ["dirhash", "go-h1"])
def test_unreadable_file_prints_no_digest_and_exits_1(tmp_path: Path, protocol: str) -> None:
    root = put(tmp_path / "tree", {f"f{i}": b"%d" % i for i in range(40)})
    secret = root / "sub dir" / "secret"
    put(root, {"sub dir/secret": b"secret", "sub dir/fine": b"fine"})
    os.chmod(secret, 0)
    try:
        proc = run(["dirhash", "tree", "--protocol", protocol, "-j", "2"], cwd=tmp_path,
                   prefix=NO_DAC)
    finally:
        os.chmod(secret, 0o644)
    no_traceback(proc.stderr)
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert proc.stderr == b"parhash: 'tree/sub dir/secret': Permission denied\n"


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_unreadable_directory_prints_no_digest_and_exits_1(tmp_path: Path) -> None:
    root = put(tmp_path / "tree", {"a": b"a", "closed/x": b"x"})
    os.chmod(root / "closed", 0)
    try:
        proc = run(["dirhash", "tree"], cwd=tmp_path, prefix=NO_DAC)
    finally:
        os.chmod(root / "closed", 0o755)
    no_traceback(proc.stderr)
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert proc.stderr == b"parhash: tree/closed: Permission denied\n"


def test_python_dash_m_newline_name_under_go_h1(tmp_path: Path) -> None:
    put(tmp_path / "t", {"ok": b"ok", "new\nline": b"x"})
    proc = run(["dirhash", "--protocol", "go-h1", "t"], cwd=tmp_path)
    no_traceback(proc.stderr)
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert proc.stderr == (b"parhash: 't/new'$'\\n''line': file names with newlines are not "
                           b"supported\n")
