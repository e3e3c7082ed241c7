"""``parhash audit MANIFEST [PATH]...`` and ``parhash diff OLD NEW``.

Real trees in ``tmp_path``, mutated in every way a tree gets mutated. What
each path should be called is reckoned here by brute force, apart from
parhash: the tree is walked with ``os.walk``, hashed with ``hashlib``, and
the rules of the issue applied with plain code (:func:`reckon`):

- ``unchanged`` / ``changed``: the listed path is there, same / other digest;
- ``new``: on disk, not listed (a copy of a file still there included);
- ``moved``: listed, gone, its digest at a new path; of several, the
  nearest by name: most trailing components in common, then most leading
  ones, then the first in byte order. The gone files pick in the byte order
  of their names, each from the new paths not taken yet;
- ``missing``: listed, gone, its digest at no new path left.

Manifests are written by the tests from hashlib digests (GNU, BSD ``--tag``)
or by ``parhash scan`` (``--json``, ``--csv``, ``-z``), never pasted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from conftest import (
    ENV,
    NO_DAC,
    PARHASH,
    bsd_line,
    escape,
    gnu_line,
    need_setpriv,
    no_traceback,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parhash.cli import cli

# Longer than the cache's racy-file margin for nanosecond times (100 ms):
# entries of files written this long before a run answer the next run.
SETTLE = 0.2
SUMMARY = re.compile(
    r"parhash: (\d+) unchanged, (\d+) changed, (\d+) missing, (\d+) new, (\d+) moved"
    r"(?:, (\d+) unreadable)?(?:; (\d+) from the cache)?\n\Z")
STATUS_NAMES = ("unchanged", "changed", "missing", "new", "moved", "unreadable")

Verdicts = dict[str, tuple[str, str | None]]  # path -> (status, the listed path it moved from)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the brute force ------------------------------------------------------------------


def snapshot(top: Path | str, *, follow: bool = False, skip: Sequence[str] = (),
             algo: str = "md5") -> dict[str, str]:
    """Every regular file under ``top`` (named as ``os.walk`` names it from the
    current directory) -> its digest. Symbolic links are left out unless
    ``follow``, as a walk of ``scan`` leaves them."""
    out: dict[str, str] = {}
    for d, _, names in os.walk(os.fsencode(top), followlinks=follow):
        for n in names:
            p = os.path.join(d, n)
            if (not follow and os.path.islink(p)) or not stat.S_ISREG(os.stat(p).st_mode):
                continue
            name = os.fsdecode(p)
            if name in skip:
                continue
            with open(p, "rb") as f:
                out[name] = hashlib.new(algo, f.read()).hexdigest()
    return out


def audited(listed: dict[str, str], top: str, *, follow: bool = False,
            skip: Sequence[str] = ()) -> dict[str, str]:
    """What an audit of ``top`` sees: the walk's files (:func:`snapshot`), and
    listed names the walk leaves alone but that are there, read through their
    links as check reads them, where the link stays inside ``top``."""
    now = snapshot(top, follow=follow, skip=skip)
    inside = os.path.realpath(top) + "/"
    for p in listed:
        if p not in now and os.path.isfile(p) and os.path.realpath(p).startswith(inside):
            with open(p, "rb") as f:
                now[p] = hashlib.md5(f.read()).hexdigest()
    return now


def nearness(old: str, new: str) -> tuple[int, int]:
    a, b = old.split("/"), new.split("/")
    tail = len(os.path.commonprefix([a[::-1], b[::-1]]))
    # A component shared at the end is not counted again at the start.
    head = min(len(os.path.commonprefix([a, b])), min(len(a), len(b)) - tail)
    return tail, head


def reckon(listed: dict[str, str], now: dict[str, str]) -> Verdicts:
    """Each path's status by the issue's rules (see the module's docstring)."""
    out: Verdicts = {}
    for p, d in listed.items():
        if p in now:
            out[p] = ("unchanged" if now[p] == d else "changed", None)
    fresh = [p for p in now if p not in listed]
    taken: set[str] = set()
    for p in sorted((p for p in listed if p not in now), key=os.fsencode):
        candidates = [q for q in fresh if now[q] == listed[p] and q not in taken]
        if not candidates:
            out[p] = ("missing", None)
            continue
        best = min(candidates,
                   key=lambda q: (*(-x for x in nearness(p, q)), os.fsencode(q)))
        taken.add(best)
        out[best] = ("moved", p)
    for q in fresh:
        if q not in taken:
            out[q] = ("new", None)
    return out


def counts(verdicts: Verdicts) -> dict[str, int]:
    c = dict.fromkeys(STATUS_NAMES, 0)
    for status, _ in verdicts.values():
        c[status] += 1
    return c


def exit_of(verdicts: Verdicts) -> int:
    c = counts(verdicts)
    if c["changed"] or c["missing"] or c["unreadable"]:
        return 1
    return 3 if c["new"] or c["moved"] else 0


def text_line(path: str, status: str, source: str | None) -> bytes:
    """The text line the issue asks for, escaped as md5sum escapes names."""
    names = [os.fsencode(n) for n in ([path] if source is None else [source, path])]
    escaped = [escape(n) for n in names]
    start = b"\\" if any(prefix for prefix, _ in escaped) else b""
    return start + status.ljust(10).encode() + b" " + b" -> ".join(e for _, e in escaped) + b"\n"


def expected_text(verdicts: Verdicts, verbose: bool = False) -> list[bytes]:
    return sorted(text_line(p, s, f) for p, (s, f) in verdicts.items()
                  if verbose or s != "unchanged")


def gnu_manifest(digests: dict[str, str]) -> bytes:
    return b"".join(gnu_line(d, os.fsencode(p)) for p, d in digests.items())


# --- running parhash ------------------------------------------------------------------


def invoke(*args: str | os.PathLike[str], input: bytes | None = None
           ) -> tuple[int, bytes, str]:
    """``parhash ARGS`` in this process: (exit status, stdout bytes, stderr text)."""
    try:
        result = CliRunner().invoke(cli, [os.fspath(a) for a in args], standalone_mode=False,
                                    catch_exceptions=False, input=input)
    except click.ClickException as e:  # what click's main would print, and its status
        return e.exit_code, b"", f"Error: {e.format_message()}\n"
    code = result.return_value if result.exception is None else result.exit_code
    return code, result.stdout_bytes, result.stderr


def verdicts_of(stdout: bytes) -> Verdicts:
    """``--json`` output as path -> (status, from), each path once."""
    out: Verdicts = {}
    for line in stdout.splitlines():
        r = json.loads(line)
        path = r["path"]
        assert path not in out, line
        out[path] = (r["status"], r.get("from"))
    return out


def summary_counts(stderr: str) -> dict[str, int]:
    found = SUMMARY.search(stderr)
    assert found is not None, stderr
    values = [int(v or 0) for v in found.groups()[:6]]
    return dict(zip(STATUS_NAMES, values, strict=True))


def audit_json(*args: str | os.PathLike[str]) -> tuple[int, Verdicts, str]:
    code, out, err = invoke("audit", "--json", *args)
    return code, verdicts_of(out), err


def write(path: Path | str | bytes, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def rewrite_keeping_size_and_mtime(path: Path | str, data: bytes) -> None:
    st_ = os.stat(path)
    assert st_.st_size == len(data)
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (st_.st_size, st_.st_mtime_ns)


class Runner:
    """``python -m parhash`` in ``cwd``, its hash cache kept inside ``cwd``."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in ENV.items() if k != "PARHASH_CACHE"}
        self.env.update(XDG_CACHE_HOME=str(cwd / "xdg-cache"), HOME=str(cwd / "home"))

    def __call__(self, *args: str | os.PathLike[str],
                 prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*prefix, *PARHASH, *args], cwd=self.cwd, env=self.env,
                              capture_output=True, timeout=60, check=False)


@pytest.fixture
def proc(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


def shown(p: subprocess.CompletedProcess[bytes]) -> str:
    return f"exit {p.returncode}\n--- stdout\n{p.stdout!r}\n--- stderr\n{p.stderr.decode()}"


# --- 1. a tree mutated in every way, against the brute force --------------------------


def build_original(t: Path) -> None:
    files = {
        "keep.txt": b"kept as it was\n",
        "edit.bin": b"0123456789abcdef",
        "gone.txt": b"deleted and nowhere else\n",
        "ren/old-name.txt": b"renamed in its directory\n",
        "orig.txt": b"copied, and still here\n",
        "nl-src.txt": b"renamed to a name with a newline\n",
        "empty-me.txt": b"soon empty\n",
        "sym.txt": b"replaced by a symbolic link\n",
        "sym2.txt": b"replaced by a link, its content moved\n",
        # Identical twins, both renamed: pairing by nearness, not byte order.
        "p/q/twin.dat": b"twin\n",
        "r/s/twin.dat": b"twin\n",
    }
    for name, data in files.items():
        write(t / name, data)
    for i in range(12):  # a directory of identical empty files, renamed whole
        write(t / "empties" / f"e{i:02d}", b"")


def mutate(t: Path) -> None:
    rewrite_keeping_size_and_mtime(t / "edit.bin", b"fedcba9876543210")
    (t / "gone.txt").unlink()
    write(t / "added.txt", b"a file that was not there\n")
    (t / "ren/old-name.txt").rename(t / "ren/new-name.txt")
    (t / "copies").mkdir()
    shutil.copy(t / "orig.txt", t / "copies/orig.txt")
    (t / "nl-src.txt").rename(t / "new\nline.txt")
    write(t / "empty-me.txt", b"")
    (t / "sym.txt").unlink()
    (t / "sym.txt").symlink_to("keep.txt")
    (t / "sym2.txt").rename(t / "sym2-real.txt")
    (t / "sym2.txt").symlink_to("keep.txt")
    (t / "z/q").mkdir(parents=True)
    (t / "p/q/twin.dat").rename(t / "z/q/twin.dat")
    (t / "a/s").mkdir(parents=True)
    (t / "r/s/twin.dat").rename(t / "a/s/twin.dat")
    (t / "empties").rename(t / "empties-renamed")


@pytest.fixture
def mutated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], Path]:
    """``t`` under the current directory, listed in ``t/MD5SUMS`` and then mutated.
    Returns the listing (name -> md5) and the manifest's path."""
    monkeypatch.chdir(tmp_path)
    build_original(Path("t"))
    listed = snapshot("t")
    write("t/MD5SUMS", gnu_manifest(listed))
    mutate(Path("t"))
    return listed, Path("t/MD5SUMS")


def test_every_mutation_gets_the_status_the_brute_force_reckons(
        mutated: tuple[dict[str, str], Path]) -> None:
    listed, manifest = mutated
    expected = reckon(listed, audited(listed, "t", skip=["t/MD5SUMS"]))
    # The scenarios are there, as the issue names them (the brute force is
    # checked too, not only trusted).
    assert expected["t/edit.bin"] == ("changed", None)
    assert expected["t/gone.txt"] == ("missing", None)
    assert expected["t/added.txt"] == ("new", None)
    assert expected["t/ren/new-name.txt"] == ("moved", "t/ren/old-name.txt")
    assert expected["t/copies/orig.txt"] == ("new", None)
    assert expected["t/orig.txt"] == ("unchanged", None)
    assert expected["t/new\nline.txt"] == ("moved", "t/nl-src.txt")
    assert expected["t/empty-me.txt"] == ("changed", None)
    # A listed name is read through its link, as check reads it.
    assert expected["t/sym.txt"] == ("changed", None)
    assert expected["t/sym2.txt"] == ("changed", None)
    assert expected["t/sym2-real.txt"] == ("new", None)
    assert expected["t/z/q/twin.dat"] == ("moved", "t/p/q/twin.dat")
    assert expected["t/a/s/twin.dat"] == ("moved", "t/r/s/twin.dat")
    for i in range(12):
        assert expected[f"t/empties-renamed/e{i:02d}"] == ("moved", f"t/empties/e{i:02d}")

    code, got, err = audit_json(manifest, "-j", "1")
    assert got == expected
    assert "t/MD5SUMS" not in got  # the manifest inside the tree is not new
    assert code == exit_of(expected) == 1
    assert summary_counts(err) == counts(expected)

    code, out, err = invoke("audit", manifest)
    assert code == 1
    assert sorted(out.splitlines(keepends=True)) == expected_text(expected)
    assert b"\\moved      t/nl-src.txt -> t/new\\nline.txt\n" in out
    assert b"unchanged" not in out
    code, out, _ = invoke("audit", "-v", manifest)
    assert sorted(out.splitlines(keepends=True)) == expected_text(expected, verbose=True)


def test_text_lines_come_in_byte_order_of_their_paths(
        mutated: tuple[dict[str, str], Path]) -> None:
    _, manifest = mutated
    code, out, _ = invoke("audit", "-v", manifest)
    names = [line.split(b" ", 1)[1].lstrip(b" ") for line in out.splitlines()]
    paths = [n.split(b" -> ")[-1] for n in names]
    assert code == 1 and paths == sorted(paths)


def test_a_listed_file_replaced_by_a_symlink_is_read_through_it_as_check_reads_it(
        mutated: tuple[dict[str, str], Path]) -> None:
    # The walk leaves links out unless -L, as scan does, so a link is never
    # new; but a listed name is looked up as check looks it up: sym.txt and
    # sym2.txt are read through their links, and changed (they point to
    # keep.txt). With -L the walk reads them too: the same answers.
    listed, manifest = mutated
    for follow in (False, True):
        flags = ["-L"] if follow else []
        code, got, _ = audit_json(manifest, *flags)
        expected = reckon(listed, audited(listed, "t", follow=follow, skip=["t/MD5SUMS"]))
        assert got == expected, follow
        assert got["t/sym.txt"] == ("changed", None)
        code, out, _ = invoke("scan", "--json", "-a", "md5", *flags, "t")
        scanned = {json.loads(line)["path"] for line in out.splitlines()} - {"t/MD5SUMS"}
        present = {p for p, (s, _) in got.items() if s != "missing"}
        assert present == scanned | {"t/sym.txt", "t/sym2.txt"}, follow


def test_a_listed_link_out_of_the_tree_is_not_read(tmp_path: Path, proc: Runner) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "secret").write_bytes(b"secret\n")
    (tmp_path / "t" / "a").write_bytes(b"a\n")
    write(tmp_path / "M", gnu_manifest({"t/a": md5(b"a\n"), "t/link": md5(b"secret\n")}))
    (tmp_path / "t" / "link").symlink_to(tmp_path / "secret")
    done = proc("audit", "--json", "M", "t")
    assert done.returncode == 1, shown(done)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"path": "t/link", "status": "unreadable", "algo": None, "expected": None,
            "actual": None, "error": "a symbolic link out of the tree audited"} in records


def test_two_identical_files_renamed_in_place_pair_by_their_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Byte order alone would pair t/a/x with t/a2... wrongly in one case of
    # the two: the leading components decide.
    monkeypatch.chdir(tmp_path)
    for d in ("b", "a"):
        write(f"t/{d}/twin", b"same\n")
    write("M", gnu_manifest(snapshot("t")))
    os.rename("t/b/twin", "t/b/renamed")
    os.rename("t/a/twin", "t/a/renamed")
    write("t/0-first-in-byte-order/other", b"same\n")  # same content, farther
    code, got, _ = audit_json("M", "t")
    assert got == {"t/a/renamed": ("moved", "t/a/twin"), "t/b/renamed": ("moved", "t/b/twin"),
                   "t/0-first-in-byte-order/other": ("new", None)}
    assert code == 3


def test_equally_near_candidates_go_in_byte_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/old/f", b"one\n")
    write("M", gnu_manifest(snapshot("t")))
    os.unlink("t/old/f")
    for d in ("y", "x", "w"):
        write(f"t/{d}/f", b"one\n")
    code, got, _ = audit_json("M", "t")
    assert got == {"t/w/f": ("moved", "t/old/f"), "t/x/f": ("new", None),
                   "t/y/f": ("new", None)}


def test_many_identical_empty_files_still_pair_with_the_nearest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A renamed package full of empty __init__.py-like files, and more
    # empty files of the same name added elsewhere, sorting first.
    monkeypatch.chdir(tmp_path)
    for i in range(300):
        write(f"t/pkg/m{i}/e", b"")
    write("M", gnu_manifest(snapshot("t")))
    os.rename("t/pkg", "t/renamed")
    for i in range(300):
        write(f"t/added/n{i}/e", b"")
    listed = dict(line.split("  ", 1)[::-1] for line in Path("M").read_text().splitlines())
    expected = reckon(listed, snapshot("t", skip=["t/M"]))
    assert expected["t/renamed/m299/e"] == ("moved", "t/pkg/m299/e")
    code, got, _ = audit_json("M", "t", "-j", "1")
    assert got == expected


# A property: random mutation sequences on small trees whose files share
# few contents, so that many gone files compete for the same new copies.
CONTENTS = (b"", b"x", b"y\n", b"zz")
NAMES = ("a", "b", "d/a", "d/c", "d/e/a", "f/a", "f/b")
op = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 99)),
    st.tuples(st.just("write"), st.integers(0, 99), st.sampled_from(CONTENTS)),
    st.tuples(st.just("add"), st.sampled_from(NAMES + ("g/a", "g/h/b", "c")),
              st.sampled_from(CONTENTS)),
    st.tuples(st.just("copy"), st.integers(0, 99), st.sampled_from(("g/a", "c", "f/h/a"))),
    st.tuples(st.just("rename"), st.integers(0, 99),
              st.sampled_from(("g/a", "c", "f/h/a", "d/e/z", "n", "q/b"))),
)


@contextlib.contextmanager
def inside(directory: str) -> Iterator[None]:
    """The current directory for a while (contextlib.chdir is 3.11's)."""
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def apply(root: str, ops: list[Any]) -> None:
    for o in ops:
        present = sorted(snapshot(root))
        if o[0] == "add":
            target = os.path.join(root, o[1])
            if not os.path.lexists(target) and not any(
                    p.startswith(target + "/") for p in present):
                with contextlib.suppress(OSError):  # a file where a directory would be
                    write(target, o[2])
            continue
        if not present:
            continue
        victim = present[o[1] % len(present)]
        if o[0] == "delete":
            os.unlink(victim)
        elif o[0] == "write":
            write(victim, o[2])
        else:
            target = os.path.join(root, o[2])
            if os.path.lexists(target) or any(p.startswith(target + "/") for p in present):
                continue
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if o[0] == "copy":
                    shutil.copy(victim, target)
                else:
                    os.rename(victim, target)


@settings(derandomize=True, max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(original=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(CONTENTS),
                                min_size=1),
       ops=st.lists(op, max_size=6))
def test_random_mutations_audit_and_diff_as_the_brute_force_reckons(
        original: dict[str, bytes], ops: list[Any]) -> None:
    # d/a and a directory d/a/... can't both exist: the first name wins.
    with tempfile.TemporaryDirectory() as top, inside(top):
        for name, data in original.items():
            with contextlib.suppress(OSError):
                write(os.path.join("t", name), data)
        listed = snapshot("t")
        write("before.md5", gnu_manifest(listed))
        apply("t", ops)
        now = snapshot("t")
        expected = reckon(listed, now)
        code, got, err = audit_json("before.md5", "t", "-j", "1")
        assert got == expected
        assert code == exit_of(expected)
        assert summary_counts(err) == counts(expected)
        # diff of the same two states, the new one as scan --json writes it.
        _, after, _ = invoke("scan", "--json", "-a", "md5", "-j", "1", "t")
        write("after.json", after)
        code, out, _ = invoke("diff", "--json", "before.md5", "after.json")
        if not now:  # an empty manifest can't be compared
            assert (code, out) == (2, b"")
            return
        assert verdicts_of(out) == expected
        assert code == exit_of(expected)


# --- 2. diff --------------------------------------------------------------------------


def test_diff_of_gnu_and_json_manifests_says_what_audit_says(
        mutated: tuple[dict[str, str], Path]) -> None:
    _, manifest = mutated
    _, from_audit, _ = audit_json(manifest)
    # -L: the listed links are read through by the audit, and by this scan.
    code, out, _ = invoke("scan", "--json", "-a", "md5", "-L", "t")
    assert code == 0
    write("after.json", b"".join(line + b"\n" for line in out.splitlines()
                                 if json.loads(line)["path"] != "t/MD5SUMS"))
    code, out, err = invoke("diff", "--json", manifest, "after.json")
    assert verdicts_of(out) == from_audit
    assert code == 1
    assert summary_counts(err) == counts(from_audit)
    code, text, _ = invoke("diff", manifest, "after.json")
    assert sorted(text.splitlines(keepends=True)) == expected_text(from_audit)


@pytest.mark.parametrize("fmt", ["--json", "--tag"])
def test_diff_finds_a_move_by_the_algorithm_in_common(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/a", b"renamed\n")
    write("t/b", b"kept\n")
    code, out, _ = invoke("scan", fmt, "-a", "sha256,md5", "t")
    write("old", out)
    os.rename("t/a", "t/a2")
    write("new.md5", gnu_manifest(snapshot("t")))
    code, got, _ = invoke("diff", "--json", "old", "new.md5")
    assert verdicts_of(got) == {"t/a2": ("moved", "t/a"), "t/b": ("unchanged", None)}
    assert code == 3


def test_diff_takes_dot_slash_names_and_plain_names_as_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    digests = {"a": md5(b"a"), "d/b": md5(b"b"), "d/e/c": md5(b"c")}
    write("plain", gnu_manifest(digests))
    write("dotted", gnu_manifest({"./" + k: v for k, v in digests.items()}))
    for old, new in (("plain", "dotted"), ("dotted", "plain")):
        code, out, err = invoke("diff", "--json", old, new)
        assert code == 0, err
        assert sorted(s for s, _ in verdicts_of(out).values()) == ["unchanged"] * 3
        assert err == "parhash: 3 unchanged, 0 changed, 0 missing, 0 new, 0 moved\n"
        code, out, _ = invoke("diff", old, new)
        assert (code, out) == (0, b"")


def test_diff_of_bsd_tag_and_csv_manifests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/keep", b"keep\n")
    write("t/edit", b"before\n")
    write("t/old name, with comma", b"moved\n")
    write("t/del", b"deleted\n")
    listed = snapshot("t", algo="sha256")
    write("old.tag", b"".join(bsd_line("sha256", d, os.fsencode(p)) for p, d in listed.items()))
    write("t/edit", b"after!\n")
    os.rename("t/old name, with comma", "t/new\nname, \"quoted\"")
    os.unlink("t/del")
    write("t/added", b"added\n")
    code, out, _ = invoke("scan", "--csv", "-a", "sha256", "t")
    write("new.csv", out)
    expected = reckon(listed, snapshot("t", algo="sha256"))
    assert expected["t/new\nname, \"quoted\""] == ("moved", "t/old name, with comma")
    code, out, _ = invoke("diff", "--json", "old.tag", "new.csv")
    assert verdicts_of(out) == expected
    assert code == 1
    # And the other way round: what was new is missing, and the move goes back.
    code, out, _ = invoke("diff", "--json", "new.csv", "old.tag")
    back = verdicts_of(out)
    assert back["t/old name, with comma"] == ("moved", "t/new\nname, \"quoted\"")
    assert back["t/added"] == ("missing", None) and back["t/del"] == ("new", None)


def test_diff_of_nul_terminated_manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/a\nb", b"1")
    write("t/c", b"2")
    _, old, _ = invoke("scan", "-z", "-a", "md5", "t")
    write("old", old)
    listed = snapshot("t")
    os.rename("t/c", "t/c2")
    _, new, _ = invoke("scan", "-z", "-a", "md5", "t")
    write("new", new)
    code, out, _ = invoke("diff", "-z", "--json", "old", "new")
    assert verdicts_of(out) == reckon(listed, snapshot("t")) == {
        "t/a\nb": ("unchanged", None), "t/c2": ("moved", "t/c")}
    assert code == 3


def test_diff_with_no_algorithm_in_common_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write("old.md5", gnu_line(md5(b"a"), b"a"))
    write("new.sha256", gnu_line(sha256(b"a"), b"a"))
    code, out, err = invoke("diff", "old.md5", "new.sha256")
    assert (code, out) == (2, b"")
    assert len(err.splitlines()) == 1 and err.startswith("parhash: ") and "md5" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("which", ["old", "new"])
@pytest.mark.parametrize("problem", ["missing", "a directory", "empty", "no checksum line"])
def test_diff_of_an_unusable_manifest_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str, problem: str) -> None:
    monkeypatch.chdir(tmp_path)
    write("good", gnu_line(md5(b"a"), b"a"))
    bad = Path("bad")
    if problem == "a directory":
        bad.mkdir()
    elif problem == "empty":
        write(bad, b"")
    elif problem == "no checksum line":
        write(bad, b"# nothing here\nnot a checksum line\n")
    args = ["bad", "good"] if which == "old" else ["good", "bad"]
    code, out, err = invoke("diff", *args)
    assert (code, out) == (2, b""), err
    assert len(err.splitlines()) == 1 and err.startswith("parhash: bad: "), err
    if problem == "missing":
        assert err == "parhash: bad: No such file or directory\n"


def test_diff_of_a_missing_manifest_in_a_real_process(proc: Runner) -> None:
    write(proc.cwd / "good", gnu_line(md5(b"a"), b"a"))
    p = proc("diff", "good", "nowhere")
    assert (p.returncode, p.stdout, p.stderr) == (
        2, b"", b"parhash: nowhere: No such file or directory\n"), shown(p)


def test_diff_reads_no_file_of_the_manifests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # None of the files named exists: diff goes by the manifests alone.
    monkeypatch.chdir(tmp_path)
    old = {"gone/a": md5(b"a"), "gone/b": md5(b"b"), "gone/c": md5(b"c"), "gone/d": md5(b"d")}
    new = {"gone/a": md5(b"a"), "gone/b": md5(b"B"), "elsewhere/c": md5(b"c"),
           "gone/e": md5(b"e")}
    write("old", gnu_manifest(old))
    write("new", gnu_manifest(new))
    code, out, err = invoke("diff", "--json", "old", "new")
    assert verdicts_of(out) == reckon(old, new) == {
        "gone/a": ("unchanged", None), "gone/b": ("changed", None),
        "elsewhere/c": ("moved", "gone/c"), "gone/d": ("missing", None),
        "gone/e": ("new", None)}
    assert code == 1
    assert "No such file" not in err and "unreadable" not in err


def test_diff_exit_statuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = {"a": md5(b"a"), "b": md5(b"b")}
    cases = {
        0: dict(base),
        1: {"a": md5(b"other"), "b": md5(b"b")},
        3: {**base, "c": md5(b"c")},
    }
    write("old", gnu_manifest(base))
    for want, new in cases.items():
        write("new", gnu_manifest(new))
        assert invoke("diff", "old", "new")[0] == want
    write("new", gnu_manifest({"a": md5(b"a"), "moved-b": md5(b"b")}))
    assert invoke("diff", "old", "new")[0] == 3
    write("new", gnu_manifest({"a": md5(b"a")}))
    assert invoke("diff", "old", "new")[0] == 1


# --- 3. audit's options ---------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``data/`` with three files listed in ``data/SUMS`` by their plain names (as
    a run in ``data`` names them); the current directory is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    files = {"a.txt": b"a\n", "sub/b.txt": b"b\n", "sub/c.log": b"c\n"}
    for n, d in files.items():
        write(tmp_path / "data" / n, d)
    write(tmp_path / "data" / "SUMS", gnu_manifest({n: md5(d) for n, d in files.items()}))
    return tmp_path / "data"


def test_root_is_where_names_are_looked_up_and_what_is_audited(small: Path) -> None:
    write(small / "new.txt", b"new\n")
    (small / "sub/b.txt").unlink()
    code, got, err = audit_json("--root", small, small / "SUMS")
    assert got == {"a.txt": ("unchanged", None), "sub/b.txt": ("missing", None),
                   "sub/c.log": ("unchanged", None), "new.txt": ("new", None)}
    assert code == 1
    assert summary_counts(err) == {**dict.fromkeys(STATUS_NAMES, 0), "unchanged": 2,
                                   "missing": 1, "new": 1}


def test_relative_to_manifest_run_from_another_directory(
        small: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "a.txt", b"a file that is not in the audited tree\n")
    monkeypatch.chdir(elsewhere)
    code, got, _ = audit_json("--relative-to-manifest", "../data/SUMS")
    assert got == {"a.txt": ("unchanged", None), "sub/b.txt": ("unchanged", None),
                   "sub/c.log": ("unchanged", None)}
    assert code == 0
    os.rename(small / "a.txt", small / "sub/a.txt")
    code, got, _ = audit_json("--relative-to-manifest", "../data/SUMS")
    assert got["sub/a.txt"] == ("moved", "a.txt") and code == 3
    # Without the option, the names are looked up here, where they are not.
    code, got, _ = audit_json("../data/SUMS", ".")
    assert code == 1 and got["sub/b.txt"] == ("missing", None)


def test_root_and_relative_to_manifest_exclude_each_other(small: Path) -> None:
    code, out, err = invoke("audit", "--root", small, "--relative-to-manifest",
                            small / "SUMS")
    assert code == 2 and out == b"" and "exclude each other" in err


def test_listed_files_outside_the_paths_are_not_audited(small: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.chdir(small)
    (small / "a.txt").unlink()  # outside sub/: not missing
    write(small / "elsewhere.txt", b"outside sub/: not new\n")
    write(small / "sub/new.txt", b"inside: new\n")
    code, got, _ = audit_json("SUMS", "sub")
    assert got == {"sub/b.txt": ("unchanged", None), "sub/c.log": ("unchanged", None),
                   "sub/new.txt": ("new", None)}
    assert code == 3
    code, got, _ = audit_json("SUMS", "sub/b.txt")  # a file as the PATH
    assert got == {"sub/b.txt": ("unchanged", None)} and code == 0


def test_include_and_exclude_leave_listed_files_out_of_the_audit(
        small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(small)
    (small / "sub/c.log").unlink()
    write(small / "sub/d.log", b"a new log\n")
    code, got, _ = audit_json("SUMS", "--exclude", "*.log")
    assert got == {"a.txt": ("unchanged", None), "sub/b.txt": ("unchanged", None)}
    assert code == 0
    code, got, _ = audit_json("SUMS", "--include", "*.log")
    assert got == {"sub/c.log": ("missing", None), "sub/d.log": ("new", None)}
    assert code == 1
    code, got, _ = audit_json("SUMS", "--exclude", "sub/")
    assert got == {"a.txt": ("unchanged", None)} and code == 0


def test_the_manifest_inside_the_audited_tree_is_not_new(small: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.chdir(small)
    code, got, _ = audit_json("SUMS")
    assert "SUMS" not in got and code == 0
    code, got, _ = audit_json("./SUMS", ".")  # another spelling of the same file
    assert "SUMS" not in got and "./SUMS" not in got and code == 0
    # A copy of the manifest is a file like any other.
    shutil.copy("SUMS", "SUMS.bak")
    code, got, _ = audit_json("SUMS")
    assert got["SUMS.bak"] == ("new", None) and code == 3


def test_new_files_are_named_as_the_manifest_names_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/a", b"a")
    write("dotted", gnu_line(md5(b"a"), b"./t/a"))
    write("t/b", b"b")
    code, got, _ = audit_json("dotted", "t")
    assert got == {"./t/a": ("unchanged", None), "./t/b": ("new", None)} and code == 3
    absolute = os.path.abspath("t/a")
    write("absolute", gnu_line(md5(b"a"), os.fsencode(absolute)))
    code, got, _ = audit_json("absolute", os.path.abspath("t"))
    assert got == {absolute: ("unchanged", None),
                   os.path.abspath("t/b"): ("new", None)} and code == 3


def test_verbose_lists_unchanged_files_and_json_lists_them_always(small: Path) -> None:
    args = ("--root", small, small / "SUMS")
    code, out, _ = invoke("audit", *args)
    assert (code, out) == (0, b"")
    code, out, _ = invoke("audit", "-v", *args)
    assert out == b"unchanged  a.txt\nunchanged  sub/b.txt\nunchanged  sub/c.log\n"
    code, out, _ = invoke("audit", "--json", *args)
    assert len(out.splitlines()) == 3


def test_json_objects_have_the_fields_of_their_status(small: Path) -> None:
    write(small / "a.txt", b"A\n")                       # changed
    (small / "sub/b.txt").rename(small / "sub/b2.txt")   # moved
    (small / "sub/c.log").unlink()                       # missing
    write(small / "new", b"new\n")                       # new
    write(small / "sub/again", b"b\n")                   # unchanged: listed again
    write(small / "SUMS", (small / "SUMS").read_bytes() + gnu_line(md5(b"b\n"), b"sub/again"))
    code, out, _ = invoke("audit", "--json", "--root", small, small / "SUMS")
    got = {r["path"]: r for r in map(json.loads, out.splitlines())}
    assert got == {
        "a.txt": {"path": "a.txt", "status": "changed", "algo": "md5",
                  "expected": md5(b"a\n"), "actual": md5(b"A\n")},
        "sub/b2.txt": {"path": "sub/b2.txt", "status": "moved", "from": "sub/b.txt",
                       "algo": "md5", "expected": md5(b"b\n"), "actual": md5(b"b\n")},
        "sub/c.log": {"path": "sub/c.log", "status": "missing", "algo": "md5",
                      "expected": md5(b"c\n"), "actual": None},
        "new": {"path": "new", "status": "new", "algo": "md5", "expected": None,
                "actual": md5(b"new\n")},
        "sub/again": {"path": "sub/again", "status": "unchanged", "algo": "md5",
                      "expected": md5(b"b\n"), "actual": md5(b"b\n")},
    }
    assert code == 1


def test_audit_exit_statuses_and_the_summary_switches(small: Path) -> None:
    args = ("--root", small, small / "SUMS")
    code, out, err = invoke("audit", *args)
    assert (code, out, err) == (0, b"", "parhash: 3 unchanged, 0 changed, 0 missing, 0 new, "
                                        "0 moved\n")
    write(small / "extra", b"extra\n")
    assert invoke("audit", *args)[0] == 3
    (small / "a.txt").rename(small / "a-moved.txt")
    assert invoke("audit", *args)[0] == 3
    write(small / "sub/b.txt", b"B\n")
    assert invoke("audit", *args)[0] == 1
    for quiet in ("--no-summary", "-q", "--quiet"):
        code, out, err = invoke("audit", quiet, *args)
        assert code == 1 and err == "" and b"changed    sub/b.txt\n" in out, quiet


@pytest.mark.parametrize("problem", ["missing", "empty", "no checksum line", "a directory"])
def test_audit_of_an_unusable_manifest_is_exit_2(small: Path, problem: str) -> None:
    bad = small.parent / "bad"
    if problem == "empty":
        write(bad, b"")
    elif problem == "no checksum line":
        write(bad, b"hello\n")
    elif problem == "a directory":
        bad.mkdir()
    code, out, err = invoke("audit", "--root", small, bad)
    assert (code, out) == (2, b""), err
    assert len(err.splitlines()) == 1 and err.startswith(f"parhash: {bad}: "), err
    assert invoke("audit", "--no-such-option", small / "SUMS")[0] == 2


@pytest.mark.parametrize("path", ["t", "t/d", "t/a"])
def test_listed_files_under_a_path_that_was_deleted_are_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/a", b"a\n")
    write("t/d/b", b"b\n")
    listed = snapshot("t")
    write("M", gnu_manifest(listed))
    if path == "t/a":
        os.unlink(path)
    else:
        shutil.rmtree(path)
    gone = [n for n in listed if n == path or n.startswith(path + "/")]
    # Without a PATH the same deletions are missing files, as they should be.
    _, whole, _ = audit_json("M")
    assert all(whole[n] == ("missing", None) for n in gone)
    code, got, _ = audit_json("M", path)
    assert {n: got.get(n) for n in gone} == {n: ("missing", None) for n in gone}
    assert code == 1


def test_manifest_on_standard_input(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(small)
    write("extra", b"extra\n")
    code, out, err = invoke("audit", "--json", "-", ".", input=Path("SUMS").read_bytes())
    got = verdicts_of(out)
    # SUMS is not the manifest of this run: it is a new file like extra.
    assert got == {"a.txt": ("unchanged", None), "sub/b.txt": ("unchanged", None),
                   "sub/c.log": ("unchanged", None), "extra": ("new", None),
                   "SUMS": ("new", None)}
    assert code == 3
    code, out, _ = invoke("diff", "--json", "-", "SUMS", input=Path("SUMS").read_bytes())
    assert code == 0 and len(verdicts_of(out)) == 3


def test_names_that_are_not_utf8_move_with_their_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(b"t/lat\xe9", b"latin-1\n")
    write("M", gnu_manifest(snapshot("t")))
    os.rename(b"t/lat\xe9", b"t/moved\xff")
    code, out, _ = invoke("audit", "M", "t")
    assert out == b"moved      t/lat\xe9 -> t/moved\xff\n" and code == 3


@pytest.mark.parametrize("command", ["audit", "diff"])
def test_json_of_names_that_are_not_utf8_is_valid_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    import base64

    monkeypatch.chdir(tmp_path)
    write(b"t/lat\xe9", b"latin-1\n")
    write("M", gnu_manifest(snapshot("t")))
    os.rename(b"t/lat\xe9", b"t/moved\xff")
    if command == "audit":
        code, out, _ = invoke("audit", "--json", "M", "t")
    else:
        write("N", gnu_manifest(snapshot("t")))
        code, out, _ = invoke("diff", "--json", "M", "N")
    assert code == 3
    (line,) = out.splitlines()
    record = json.loads(line)  # raises on bytes that are not UTF-8
    _, scanned, _ = invoke("scan", "--json", "-a", "md5", "t")
    assert record["path"] == json.loads(scanned)["path"] == os.fsdecode(b"t/moved\xff")
    assert base64.b64decode(record["path_b64"]) == b"t/moved\xff"
    assert base64.b64decode(record["from_b64"]) == b"t/lat\xe9"
    assert record["status"] == "moved"


@pytest.mark.parametrize("fmt", ["gnu", "tag", "json", "csv", "zero"])
def test_audit_reads_every_manifest_format_check_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/a", b"a\n")
    write("t/back\\slash", b"b\n")
    write("t/gone", b"c\n")
    flags = {"gnu": [], "tag": ["--tag"], "json": ["--json"], "csv": ["--csv"],
             "zero": ["-z"]}[fmt]
    code, out, _ = invoke("scan", "-a", "sha256", *flags, "t")
    assert code == 0
    write("M", out)
    listed = snapshot("t", algo="sha256")
    os.rename("t/gone", "t/here")
    write("t/a", b"A\n")
    expected = reckon(listed, snapshot("t", algo="sha256"))
    code, got, _ = audit_json("M", "t", *(["-z"] if fmt == "zero" else []))
    assert got == expected and code == 1


def test_upper_case_digests_and_crlf_lines_are_the_same_digests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write("t/a", b"a\n")
    write("t/b", b"b\n")
    write("M", b"".join(gnu_line(d.upper(), os.fsencode(p)).replace(b"\n", b"\r\n")
                        for p, d in snapshot("t").items()))
    code, got, _ = audit_json("M", "t")
    assert got == {"t/a": ("unchanged", None), "t/b": ("unchanged", None)} and code == 0
    write("L", gnu_manifest(snapshot("t")))
    assert invoke("diff", "M", "L")[:2] == (0, b"")


def test_xxhsum_lines_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # xxhsum's default lines (XXH64, 16 digits: -a says which of the 64-bit
    # ones, as for check) and its tagged XXH3 lines.
    import xxhash

    monkeypatch.chdir(tmp_path)
    write("t/a", b"a\n")
    write("t/b", b"b\n")
    data = {p: Path(p).read_bytes() for p in ("t/a", "t/b")}
    write("M64", b"".join(b"%s  %s\n" % (xxhash.xxh64(d).hexdigest().encode(), p.encode())
                          for p, d in data.items()))
    write("M3", b"".join(b"XXH3 (%s) = %s\n" % (p.encode(), xxhash.xxh3_64(d).hexdigest().encode())
                         for p, d in data.items()))
    os.rename("t/b", "t/c")
    for args in (["-a", "xxh64", "M64"], ["M3"]):
        code, got, _ = audit_json(*args, "t")
        assert got == {"t/a": ("unchanged", None), "t/c": ("moved", "t/b")}, args
        assert code == 3
    code, out, _ = invoke("audit", "--json", "-a", "xxh64", "M64", "t")
    assert [json.loads(line)["algo"] for line in out.splitlines()] == ["xxh64", "xxh64"]
    code, out, _ = invoke("diff", "--json", "M3", "M64")
    assert code == 2  # xxh3 and xxh64: nothing in common


# --- 4. unreadable --------------------------------------------------------------------


def test_listed_files_in_an_unreadable_directory_are_unreadable(proc: Runner) -> None:
    need_setpriv("unreadable files and directories")
    t = proc.cwd / "t"
    write(t / "ok", b"fine\n")
    write(t / "locked/x", b"x\n")
    write(t / "locked/deep/y", b"y\n")
    write(t / "secret", b"no reading\n")
    write(proc.cwd / "M", gnu_manifest(snapshot(t)).replace(os.fsencode(proc.cwd) + b"/", b""))
    (t / "locked").chmod(0)
    (t / "secret").chmod(0)
    try:
        p = proc("audit", "--json", "M", "t", prefix=NO_DAC)
        text = proc("audit", "M", "t", prefix=NO_DAC)
    finally:
        (t / "locked").chmod(0o755)
        (t / "secret").chmod(0o644)
    no_traceback(p.stderr)
    assert p.returncode == 1, shown(p)
    got = {r["path"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert got["t/ok"]["status"] == "unchanged"
    for name in ("t/locked/x", "t/locked/deep/y", "t/secret"):
        assert got[name]["status"] == "unreadable", got
        assert got[name]["error"] == "Permission denied", got[name]
    assert not any(r["status"] == "missing" for r in got.values()), got
    err = p.stderr.decode().splitlines()
    assert any(re.fullmatch(r"parhash: (\./)?t/locked: Permission denied", e) for e in err), err
    assert any(re.fullmatch(r"parhash: (\./)?t/secret: Permission denied", e) for e in err), err
    assert re.fullmatch(r"parhash: 1 unchanged, 0 changed, 0 missing, 0 new, 0 moved, "
                        r"\d+ unreadable", err[-1]), err
    assert text.returncode == 1
    assert re.search(rb"^unreadable t/locked/x\b", text.stdout, re.M), shown(text)


def test_a_copy_of_a_file_in_an_unreadable_directory_is_new_not_moved(proc: Runner) -> None:
    need_setpriv("unreadable files and directories")
    t = proc.cwd / "t"
    write(t / "locked/x", b"x\n")
    write(proc.cwd / "M", gnu_line(md5(b"x\n"), b"t/locked/x"))
    shutil.copy(t / "locked/x", t / "copy-of-x")
    (t / "locked").chmod(0)
    try:
        p = proc("audit", "--json", "M", "t", prefix=NO_DAC)
    finally:
        (t / "locked").chmod(0o755)
    no_traceback(p.stderr)
    got = {r["path"]: r["status"] for r in map(json.loads, p.stdout.splitlines())}
    assert got.get("t/locked/x") == "unreadable" and got.get("t/copy-of-x") == "new", shown(p)
    assert p.returncode == 1


# --- 5. the cache ---------------------------------------------------------------------


def cache_hits(p: subprocess.CompletedProcess[bytes]) -> int:
    found = SUMMARY.search(p.stderr.decode())
    assert found is not None and found.group(7) is not None, shown(p)
    return int(found.group(7))


@pytest.fixture
def cached_tree(proc: Runner) -> dict[str, str]:
    for i in range(6):
        write(proc.cwd / f"t/d{i % 2}/f{i}", b"file %d\n" % i)
    listed = {f"t/d{i % 2}/f{i}": md5(b"file %d\n" % i) for i in range(6)}
    write(proc.cwd / "M", gnu_manifest(listed))
    time.sleep(SETTLE)
    return listed


def test_cache_alone_reads_every_file(proc: Runner, cached_tree: dict[str, str]) -> None:
    for _ in range(2):
        p = proc("audit", "--cache-file", "c.sqlite", "M", "t")
        assert p.returncode == 0 and p.stdout == b"", shown(p)
        assert cache_hits(p) == 0
    p = proc("audit", "--cache", "M", "t")
    assert cache_hits(p) == 0


def test_trust_cache_answers_unchanged_files_unread(proc: Runner,
                                                    cached_tree: dict[str, str]) -> None:
    p = proc("audit", "--trust-cache", "--cache-file", "c.sqlite", "M", "t")
    assert p.returncode == 0 and cache_hits(p) == 0, shown(p)
    p = proc("audit", "--trust-cache", "--cache-file", "c.sqlite", "M", "t")
    assert p.returncode == 0 and cache_hits(p) == 6, shown(p)
    p = proc("audit", "--json", "--trust-cache", "--cache-file", "c.sqlite", "M", "t")
    assert verdicts_of(p.stdout) == {n: ("unchanged", None) for n in cached_tree}
    assert cache_hits(p) == 6
    # The hits are an audit's only: --cache alone still reads every file.
    p = proc("audit", "--cache-file", "c.sqlite", "M", "t")
    assert p.returncode == 0 and cache_hits(p) == 0, shown(p)


def test_trusted_cache_still_catches_a_rewrite_with_size_and_mtime_put_back(
        proc: Runner, cached_tree: dict[str, str]) -> None:
    args = ("audit", "--trust-cache", "--cache-file", "c.sqlite", "M", "t")
    assert proc(*args).returncode == 0
    time.sleep(0.01)  # the rewrite's ctime is later than the entry's
    rewrite_keeping_size_and_mtime(proc.cwd / "t/d0/f0", b"FILE 0\n")
    p = proc("audit", "--json", *args[1:])
    assert p.returncode == 1, shown(p)
    got = verdicts_of(p.stdout)
    assert got["t/d0/f0"] == ("changed", None)
    assert sum(s == "unchanged" for s, _ in got.values()) == 5
    assert cache_hits(p) == 5


def test_cache_file_inside_the_audited_tree_is_not_new(proc: Runner,
                                                       cached_tree: dict[str, str]) -> None:
    for _ in range(2):
        p = proc("audit", "--trust-cache", "--cache-file", "t/c.sqlite", "M", "t")
        assert p.returncode == 0 and p.stdout == b"", shown(p)


# --- 6. real processes ----------------------------------------------------------------


def test_python_dash_m_audit_with_two_workers(proc: Runner,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Enough files for the real Pool to run.
    monkeypatch.chdir(proc.cwd)
    rng = random.Random(7)
    for i in range(200):
        write(f"t/d{i % 5}/f{i:03d}", rng.randbytes(i * 7 % 400 + 1))
    listed = snapshot("t")
    write("MD5SUMS", gnu_manifest(listed))
    os.rename("t/d0/f000", "t/d4/f000")
    os.unlink("t/d1/f001")
    write("t/d2/f002", b"changed")
    write("t/d3/new\nline", b"new")
    expected = reckon(listed, snapshot("t"))
    p = proc("audit", "-j", "2", "MD5SUMS")
    no_traceback(p.stderr)
    assert p.returncode == 1, shown(p)
    # In the byte order of the paths (a move by its new path).
    assert p.stdout == (b"missing    t/d1/f001\n"
                        b"changed    t/d2/f002\n"
                        b"\\new        t/d3/new\\nline\n"
                        b"moved      t/d0/f000 -> t/d4/f000\n"), shown(p)
    assert sorted(p.stdout.splitlines(keepends=True)) == expected_text(expected)
    assert p.stderr == b"parhash: 197 unchanged, 1 changed, 1 missing, 1 new, 1 moved\n"
    p = proc("audit", "-j", "2", "--json", "MD5SUMS")
    assert verdicts_of(p.stdout) == expected and p.returncode == 1


def test_python_dash_m_diff_in_a_real_process(proc: Runner) -> None:
    old = {"a": md5(b"a"), "b": md5(b"b")}
    write(proc.cwd / "old", gnu_manifest(old))
    write(proc.cwd / "new", gnu_manifest({"a": md5(b"a"), "c": md5(b"b")}))
    p = proc("diff", "-v", "old", "new")
    assert (p.returncode, p.stdout, p.stderr) == (
        3, b"unchanged  a\nmoved      b -> c\n",
        b"parhash: 1 unchanged, 0 changed, 0 missing, 0 new, 1 moved\n"), shown(p)


def test_a_file_named_as_a_parhash_temporary_is_not_hidden_from_an_audit(
    tmp_path: Path, proc: Runner
) -> None:
    # Scans leave out ".NAME.XXXXXX.parhash-tmp", the -o file another run is
    # writing; anyone can give a file that name, and an audit still sees it.
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").write_bytes(b"a")
    manifest = tmp_path / "M"
    manifest.write_bytes(hashlib.md5(b"a").hexdigest().encode() + b"  t/a\n")
    (tree / ".hidden.abc123.parhash-tmp").write_bytes(b"payload")
    done = proc("audit", "M", "t")
    assert done.returncode == 3, shown(done)
    assert done.stdout == b"new        t/.hidden.abc123.parhash-tmp\n"


def test_a_manifest_on_standard_input_is_not_new_in_its_tree(proc: Runner) -> None:
    write(proc.cwd / "t" / "a", b"a\n")
    write(proc.cwd / "t" / "M", gnu_manifest({"t/a": md5(b"a\n")}))
    with open(proc.cwd / "t" / "M", "rb") as manifest:
        done = subprocess.run([*PARHASH, "audit", "-", "t"], cwd=proc.cwd, env=proc.env,
                              stdin=manifest, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, shown(done)
    assert done.stdout == b""


def test_a_root_that_is_no_directory_is_a_usage_error(proc: Runner) -> None:
    write(proc.cwd / "M", gnu_manifest({"a": md5(b"a\n")}))
    done = proc("audit", "--root", "nowhere", "M")
    assert done.returncode == 2, shown(done)
    assert b"'nowhere' is not a directory" in done.stderr
