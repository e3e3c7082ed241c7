"""``parhash scan --update MANIFEST``: a manifest brought up to date in place.

Each updated manifest is compared byte for byte with what the reference tool
(md5sum, md5sum --tag/-z/-b, xxhsum) or a fresh ``parhash scan --sort``
writes for the tree as it is now: an update must end where a new scan would.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    ENV,
    NO_DAC,
    PARHASH,
    digest,
    need_setpriv,
    no_traceback,
    run,
    run_tool,
    tool,
)


def make_tree(root: Path) -> Path:
    d = root / "d"
    (d / "sub").mkdir(parents=True)
    for i in range(1, 6):
        (d / f"f{i}").write_bytes(b"%d\n" % i * i)
    (d / "sub" / "b").write_bytes(b"b\n")
    (d / "sub" / "empty").write_bytes(b"")
    return d


def settle() -> None:
    """Let the files' times fall safely before the manifest's (the 100 ms margin)."""
    time.sleep(0.25)


def mutate(d: Path) -> None:
    (d / "f1").unlink()                      # removed
    (d / "f2").write_bytes(b"two\n")         # changed, another size
    st = os.stat(d / "f3")
    (d / "f3").write_bytes(b"3\n".upper().replace(b"3", b"8"))  # same size
    os.utime(d / "f3", ns=(st.st_atime_ns, st.st_mtime_ns))     # mtime put back: ctime tells
    (d / "f0").write_bytes(b"zero\n")        # added, sorts first
    (d / "sub" / "z").write_bytes(b"z\n")    # added, sorts last
    (d / "sub" / "b").rename(d / "sub" / "c")  # renamed: one removed, one added


def update(tmp_path: Path, manifest: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    done = run(["scan", "--update", manifest, "d", *args], cwd=tmp_path)
    no_traceback(done.stderr)
    return done


def files(d: Path) -> list[bytes]:
    """The tree's files as md5sum gets them from `find d -type f | sort`."""
    found = [os.fsencode(os.path.join(top, n)) for top, _, names in os.walk(d) for n in names]
    return sorted(os.path.relpath(p, d.parent.as_posix().encode()) for p in found)


@pytest.mark.parametrize("flags", [[], ["--tag"], ["-z"], ["-b"]],
                         ids=["gnu", "tag", "zero", "binary"])
def test_update_ends_where_md5sum_of_the_new_tree_starts(tmp_path: Path,
                                                         flags: list[str]) -> None:
    md5sum = tool("md5sum")
    d = make_tree(tmp_path)
    settle()
    old = run_tool([md5sum, *flags, *files(d)], cwd=tmp_path)
    assert old.returncode == 0
    (tmp_path / "SUMS").write_bytes(old.stdout)
    settle()
    mutate(d)
    done = update(tmp_path, "SUMS")
    assert done.returncode == 0, done.stderr
    expected = run_tool([md5sum, *flags, *files(d)], cwd=tmp_path).stdout
    assert (tmp_path / "SUMS").read_bytes() == expected
    assert done.stderr.decode().splitlines() == [
        "added: d/f0", "removed: d/f1", "updated: d/f2", "updated: d/f3",
        "removed: d/sub/b", "added: d/sub/c", "added: d/sub/z",
        "parhash: SUMS: 3 added, 2 updated, 2 removed, 3 kept; 5 files read"]


@pytest.mark.parametrize("fmt", ["--json", "--csv", "--tag"])
def test_update_of_parhash_formats_with_two_algorithms_equals_a_new_sorted_scan(
    tmp_path: Path, fmt: str
) -> None:
    d = make_tree(tmp_path)
    first = run(["scan", "d", fmt, "-a", "md5,sha1", "--sort", "-o", "M"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    settle()
    mutate(d)
    done = update(tmp_path, "M")
    assert done.returncode == 0, done.stderr
    fresh = run(["scan", "d", fmt, "-a", "md5,sha1", "--sort"], cwd=tmp_path)
    assert (tmp_path / "M").read_bytes() == fresh.stdout


def test_xxhsum_lines_keep_their_form(tmp_path: Path) -> None:
    xxhsum = tool("xxhsum")
    d = make_tree(tmp_path)
    for flags, algo in ((["-H1"], ["-a", "xxh64"]), (["-H3"], []), (["-H2", "--tag"], []),
                        (["-H2"], ["-a", "xxh128"])):
        old = run_tool([xxhsum, *flags, *files(d)], cwd=tmp_path)
        (tmp_path / "X").write_bytes(old.stdout)
        (d / "new").write_bytes(b"new\n")
        done = update(tmp_path, "X", *algo)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "X").read_bytes() == run_tool([xxhsum, *flags, *files(d)],
                                                         cwd=tmp_path).stdout
        (d / "new").unlink()
    # xxhsum -H2's lines have md5's length: guessed as md5, a changed file
    # would be rewritten with an md5 digest. No unchanged file confirms md5,
    # and the manifest is left as it was.
    old = run_tool([xxhsum, "-H2", *files(d)], cwd=tmp_path).stdout
    (tmp_path / "X").write_bytes(old)
    assert update(tmp_path, "X").stderr.endswith(b"0 files read\n")  # nothing to rewrite
    settle()
    (d / "f1").write_bytes(b"one\n")
    refused = update(tmp_path, "X")
    assert refused.returncode == 2
    assert refused.stderr.startswith(b"parhash: X: no listed file read has its listed md5 "
                                     b"digest (of ")
    assert refused.stderr.endswith(b"give it with -a\n")
    assert (tmp_path / "X").read_bytes() == old


def test_lines_left_alone_keep_their_bytes_and_an_unsorted_manifest_grows_at_its_end(
    tmp_path: Path
) -> None:
    d = make_tree(tmp_path)
    f2, f5 = digest("md5", b"2\n" * 2), digest("md5", b"5\n" * 5)
    # Upper-case hex, a comment, a blank line, CRLF, an order of its own.
    text = (b"# made by hand\r\n" + f5.upper().encode() + b"  d/f5\r\n\r\n"
            + f2.encode() + b"  ./d/f2\r\n")
    (tmp_path / "M").write_bytes(text)
    settle()
    (d / "sub" / "b").write_bytes(b"bb\n")
    done = run(["scan", "--update", "M", "d/f2", "d/f5", "d/sub/b"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "M").read_bytes() == text + (
        digest("md5", b"bb\n").encode() + b"  d/sub/b\r\n")


def test_a_sorted_manifest_stays_sorted_and_names_keep_their_style(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    assert run(["scan", ".", "--sort", "-a", "md5", "-o", "M"], cwd=d).returncode == 0
    lines = (d / "M").read_bytes().splitlines()
    assert all(line.split(b"  ")[1].startswith(b"./") for line in lines)
    settle()
    (d / "f35").write_bytes(b"x")
    (d / "nl\nname").write_bytes(b"y")
    done = run(["scan", "--update", "M"], cwd=d)
    assert done.returncode == 0, done.stderr
    assert (d / "M").read_bytes() == run(["scan", ".", "--sort", "-a", "md5", "--exclude", "M"],
                                         cwd=d).stdout
    assert b"  ./nl\\nname\n" in (d / "M").read_bytes()
    assert b"added: \\./nl\\nname" in done.stderr


def test_files_older_than_the_manifest_are_not_read_again(tmp_path: Path) -> None:
    make_tree(tmp_path)
    settle()
    assert run(["scan", "d", "-a", "md5", "-o", "M"], cwd=tmp_path).returncode == 0
    done = update(tmp_path, "M")
    assert done.stderr == b"parhash: M: 0 added, 0 updated, 0 removed, 7 kept; 0 files read\n"


def test_an_unreadable_changed_file_keeps_its_line_and_fails(tmp_path: Path) -> None:
    need_setpriv("an update that can't read a file or directory")
    d = make_tree(tmp_path)
    assert run(["scan", "d", "-a", "md5", "--sort", "-o", "M"], cwd=tmp_path).returncode == 0
    before = (tmp_path / "M").read_bytes()
    settle()
    (d / "f2").write_bytes(b"secret\n")
    (d / "f2").chmod(0)
    done = run(["scan", "--update", "M", "d"], cwd=tmp_path, prefix=NO_DAC)
    no_traceback(done.stderr)
    assert done.returncode == 1
    assert b"parhash: d/f2: Permission denied" in done.stderr
    assert (tmp_path / "M").read_bytes() == before


def test_with_the_cache_a_change_the_times_hide_is_found(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    cache = ["--cache-file", str(tmp_path / "c" / "cache.sqlite")]
    (tmp_path / "c").mkdir()
    assert run(["scan", "d", "-a", "md5", "--sort", "-o", "M", *cache],
               cwd=tmp_path).returncode == 0
    time.sleep(2.3)  # the cache confirms entries once their times are past its margin
    assert run(["scan", "d", "-a", "md5", *cache], cwd=tmp_path).returncode == 0
    (d / "f4").write_bytes(b"FOUR" * 2)
    # The manifest touched after the change (copied back from a backup, say):
    # by the times alone, f4 is older than it.
    later = time.time_ns() + 10_000_000_000
    os.utime(tmp_path / "M", ns=(later, later))
    blind = run(["scan", "--update", "M", "d"], cwd=tmp_path)
    assert b"0 updated" in blind.stderr
    os.utime(tmp_path / "M", ns=(later, later))
    seen = run(["scan", "--update", "M", "d", *cache], cwd=tmp_path)
    assert seen.returncode == 0, seen.stderr
    assert b"updated: d/f4" in seen.stderr and b"1 file read" in seen.stderr
    assert digest("md5", b"FOUR" * 2).encode() + b"  d/f4\n" in (tmp_path / "M").read_bytes()


def test_listed_files_outside_the_paths_are_kept(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    assert run(["scan", "d", "-a", "md5", "--sort", "-o", "M"], cwd=tmp_path).returncode == 0
    settle()
    (d / "f1").unlink()
    (d / "sub" / "new").write_bytes(b"n")
    done = run(["scan", "--update", "M", "d/sub", "--exclude", "empty"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "M").read_bytes()
    assert b"  d/f1\n" in text and b"  d/sub/empty\n" in text and b"  d/sub/new\n" in text


def test_a_missing_manifest_is_written_sorted_and_its_mtime_is_the_scan_start(
    tmp_path: Path
) -> None:
    make_tree(tmp_path)
    before = time.time_ns()
    done = update(tmp_path, "NEW", "-a", "sha256")
    after = time.time_ns()
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "NEW").read_bytes() == run(["scan", "d", "--sort"], cwd=tmp_path).stdout
    mtime = os.stat(tmp_path / "NEW").st_mtime_ns
    assert before <= mtime <= after
    # The manifest in the tree it describes is never a line of its own.
    inside = run(["scan", "--update", "d/M", "d", "-a", "md5"], cwd=tmp_path)
    assert inside.returncode == 0
    again = run(["scan", "--update", "d/M", "d"], cwd=tmp_path)
    assert b"d/M" not in (tmp_path / "d" / "M").read_bytes() and b"added: " not in again.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "X"], b"--update and -o/--output exclude each other"),
    (["--json"], b"--update keeps the manifest's format and order"),
    (["--sort"], b"--update keeps the manifest's format and order"),
    (["-a", "sha1"], b"M holds md5 digests, not sha1"),
])
def test_update_usage_errors(tmp_path: Path, args: list[str], message: bytes) -> None:
    make_tree(tmp_path)
    assert run(["scan", "d", "-a", "md5", "-o", "M"], cwd=tmp_path).returncode == 0
    before = (tmp_path / "M").read_bytes()
    done = update(tmp_path, "M", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert (tmp_path / "M").read_bytes() == before


def test_a_manifest_that_is_no_manifest_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "M").write_bytes(b"not a checksum line\n")
    done = update(tmp_path, "M")
    assert done.returncode == 2
    assert done.stderr == b"parhash: M: no properly formatted checksum lines found\n"
    assert (tmp_path / "M").read_bytes() == b"not a checksum line\n"


def test_an_update_killed_halfway_leaves_the_old_manifest_or_the_whole_new_one(
    tmp_path: Path
) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for i in range(3000):
        (d / f"{i:05}").write_bytes(b"%d" % i)
    assert run(["scan", "d", "-a", "md5", "--sort", "-o", "M"], cwd=tmp_path).returncode == 0
    old = (tmp_path / "M").read_bytes()
    # Before the changes below: each run reads the files they changed.
    stamp = (os.stat(tmp_path / "M").st_mtime_ns,) * 2
    settle()
    for i in range(0, 3000, 2):
        (d / f"{i:05}").write_bytes(b"changed %d" % i)
    new = run(["scan", "d", "-a", "md5", "--sort"], cwd=tmp_path).stdout
    outcomes = set()
    for delay in (0.05, 0.2, 0.4, 0.6, 0.9, 1.3):
        (tmp_path / "M").write_bytes(old)
        os.utime(tmp_path / "M", ns=stamp)
        proc = subprocess.Popen([*PARHASH, "scan", "--update", "M", "d", "-j", "2"],
                                cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = (tmp_path / "M").read_bytes()
        assert text in (old, new)
        outcomes.add(text == new)
    # Interrupted with Ctrl-C: the old manifest, and no temporary file beside it.
    (tmp_path / "M").write_bytes(old)
    os.utime(tmp_path / "M", ns=stamp)
    for p in tmp_path.glob(".M.*"):
        p.unlink()
    proc = subprocess.Popen([*PARHASH, "scan", "--update", "M", "d", "-j", "2"], cwd=tmp_path,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    no_traceback(err)
    if proc.returncode == 130:
        assert (tmp_path / "M").read_bytes() == old
    else:  # it had finished
        assert proc.returncode == 0 and (tmp_path / "M").read_bytes() == new
    assert not list(tmp_path.glob(".M.*"))
    assert False in outcomes  # a kill landed before the end


def test_an_update_that_changes_nothing_rewrites_nothing_but_the_mtime(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    settle()
    line = digest("md5", b"b\n").encode() + b"  d/sub/b\n"
    text = run(["scan", "d", "-a", "md5", "--sort"], cwd=tmp_path).stdout + line  # b twice
    (tmp_path / "M").write_bytes(text)
    old = os.stat(tmp_path / "M")
    settle()
    started = time.time_ns()
    done = update(tmp_path, "M")
    assert done.returncode == 0, done.stderr
    assert b"name listed more than once" not in done.stderr
    new = os.stat(tmp_path / "M")
    assert (tmp_path / "M").read_bytes() == text and new.st_ino == old.st_ino
    assert new.st_mtime_ns >= started
    (d / "f1").write_bytes(b"one\n")
    assert update(tmp_path, "M").returncode == 0
    assert (tmp_path / "M").read_bytes().count(b"  d/sub/b\n") == 2


def _gnu(tree: dict[str, bytes]) -> bytes:
    return b"".join(digest("md5", data).encode() + b"  " + name.encode() + b"\n"
                    for name, data in sorted(tree.items()))


def _old(path: Path, seconds: float = 3600) -> None:
    t = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def test_an_update_of_part_of_the_tree_keeps_the_old_mtime(tmp_path: Path) -> None:
    for name in ("data/a", "logs/x"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"1\n")
    (tmp_path / "M").write_bytes(_gnu({"data/a": b"1\n", "logs/x": b"1\n"}))
    for p in ("data/a", "logs/x", "M"):
        _old(tmp_path / p)
    before = os.stat(tmp_path / "M").st_mtime_ns
    (tmp_path / "logs/x").write_bytes(b"2\n")  # changed, out of the update's reach
    (tmp_path / "data/b").write_bytes(b"b\n")
    assert run(["scan", "--update", "M", "data"], cwd=tmp_path).returncode == 0
    assert os.stat(tmp_path / "M").st_mtime_ns == before
    done = run(["scan", "--update", "M"], cwd=tmp_path)
    assert b"updated: ./logs/x" in done.stderr or b"updated: logs/x" in done.stderr


def test_a_directory_renamed_over_a_listed_one_is_read_again(tmp_path: Path) -> None:
    for d, data in (("current", b"v1\n"), ("staging", b"v2\n")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x").write_bytes(data)
    (tmp_path / "current" / "y").write_bytes(b"y\n")
    settle()
    assert run(["scan", "current", "-a", "md5", "--tag", "--sort", "-o", "M"],
               cwd=tmp_path).returncode == 0
    settle()
    import shutil

    shutil.rmtree(tmp_path / "current")
    (tmp_path / "staging").rename(tmp_path / "current")
    done = run(["scan", "--update", "M", "current"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"updated: current/x" in done.stderr and b"removed: current/y" in done.stderr
    assert b"MD5 (current/x) = " + digest("md5", b"v2\n").encode() in (tmp_path / "M").read_bytes()


def test_listed_links_and_names_through_them_are_kept(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a").write_bytes(b"a\n")
    (tmp_path / "t" / "target").write_bytes(b"t\n")
    (tmp_path / "t" / "link").symlink_to("target")
    text = _gnu({"t/a": b"a\n", "t/link": b"t\n", "t/target": b"t\n"})
    (tmp_path / "M").write_bytes(text)
    _old(tmp_path / "M", 0.5)
    done = run(["scan", "--update", "M", "t"], cwd=tmp_path)
    assert done.returncode == 0 and b"removed:" not in done.stderr, done.stderr
    assert (tmp_path / "M").read_bytes() == text


def test_a_stray_nul_does_not_make_a_text_manifest_nul_separated(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    settle()
    text = (_gnu({"d/f1": b"1\n"}) + b"garbage\0line\n"
            + _gnu({"d/f2": b"2\n" * 2}))
    (tmp_path / "M").write_bytes(text)
    (d / "f9").write_bytes(b"9\n")
    done = run(["scan", "--update", "M", "d/f1", "d/f2", "d/f9"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "M").read_bytes() == text + _gnu({"d/f9": b"9\n"})


def test_an_unambiguous_algorithm_is_not_second_guessed(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a\n")
    (tmp_path / "M").write_bytes(hashlib.sha1(b"a\n").hexdigest().encode() + b"  a\n")
    _old(tmp_path / "a")
    _old(tmp_path / "M", 1800)
    (tmp_path / "a").write_bytes(b"changed\n")
    done = run(["scan", "--update", "M", "a"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "M").read_bytes() == (hashlib.sha1(b"changed\n").hexdigest().encode()
                                             + b"  a\n")


def test_a_line_too_long_to_keep_stops_the_update(tmp_path: Path) -> None:
    make_tree(tmp_path)
    text = _gnu({"d/f1": b"1\n"}) + b"#" + b"x" * 1_200_000 + b"\n"
    (tmp_path / "M").write_bytes(text)
    done = run(["scan", "--update", "M", "d"], cwd=tmp_path)
    assert done.returncode == 2
    assert b"longer than 1 MiB" in done.stderr
    assert (tmp_path / "M").read_bytes() == text


def test_a_tree_that_is_gone_whole_is_not_emptied_from_the_manifest(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    assert run(["scan", "d", "-a", "md5", "-o", "M"], cwd=tmp_path).returncode == 0
    before = (tmp_path / "M").read_bytes()
    import shutil

    shutil.rmtree(d)
    d.mkdir()  # an empty mount point
    done = run(["scan", "--update", "M", "d"], cwd=tmp_path)
    assert done.returncode == 2 and b"every listed file under d is gone" in done.stderr
    assert (tmp_path / "M").read_bytes() == before


def test_sizes_of_files_the_cache_answers_for_are_their_own(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    (tmp_path / "c").mkdir()
    cache = ["--cache-file", str(tmp_path / "c" / "cache.sqlite")]
    assert run(["scan", "d", "--json", "-a", "md5", "--sort", "-o", "M"],
               cwd=tmp_path).returncode == 0
    (d / "f2").write_bytes(b"22\n")
    later = time.time_ns() + 10_000_000_000
    time.sleep(2.3)
    assert run(["scan", "d", "-a", "md5", *cache], cwd=tmp_path).returncode == 0
    os.utime(tmp_path / "M", ns=(later, later))
    done = run(["scan", "--update", "M", "d", *cache], cwd=tmp_path)
    assert b"updated: d/f2" in done.stderr, done.stderr
    assert b'{"path": "d/f2", "size": 3, ' in (tmp_path / "M").read_bytes()


def test_a_directory_that_cant_be_read_fails_the_update(tmp_path: Path) -> None:
    need_setpriv("an update that can't read a file or directory")
    d = make_tree(tmp_path)
    assert run(["scan", "d", "-a", "md5", "--sort", "-o", "M"], cwd=tmp_path).returncode == 0
    before = (tmp_path / "M").read_bytes()
    (d / "sub").chmod(0)
    try:
        done = run(["scan", "--update", "M", "d"], cwd=tmp_path, prefix=NO_DAC)
    finally:
        (d / "sub").chmod(0o755)
    assert done.returncode == 1 and b"d/sub: Permission denied" in done.stderr
    assert (tmp_path / "M").read_bytes() == before


def test_tag_lines_of_two_algorithms_keep_their_places(tmp_path: Path) -> None:
    md5sum, sha256sum = tool("md5sum"), tool("sha256sum")
    d = make_tree(tmp_path)
    settle()
    names = ["d/f1", "d/f2"]
    text = (run_tool([md5sum, "--tag", *names], cwd=tmp_path).stdout
            + run_tool([sha256sum, "--tag", *names], cwd=tmp_path).stdout)
    (tmp_path / "M").write_bytes(text)
    settle()
    (d / "f2").write_bytes(b"two\n")
    done = run(["scan", "--update", "M", *names], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "M").read_bytes() == (
        run_tool([md5sum, "--tag", *names], cwd=tmp_path).stdout
        + run_tool([sha256sum, "--tag", *names], cwd=tmp_path).stdout)


def test_names_relative_to_the_manifest_from_anywhere(tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    make_tree(backup)
    assert run(["scan", ".", "-a", "md5", "--sort", "--exclude", "M", "-o", "M"],
               cwd=backup).returncode == 0
    settle()
    (backup / "d" / "new").write_bytes(b"n\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(["scan", "--update", "../backup/M", "--relative-to-manifest"], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert b"added: ./d/new\n" in done.stderr
    assert (backup / "M").read_bytes() == run(
        ["scan", ".", "-a", "md5", "--sort", "--exclude", "M"], cwd=backup).stdout


def test_a_manifest_that_is_another_users_link_is_not_written_through(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: not root, so another user's link can't be made")
    make_tree(tmp_path)
    victim = tmp_path / "victim"
    victim.write_bytes(_gnu({"d/f1": b"1\n"}))
    link = tmp_path / "M"
    link.symlink_to(victim)
    os.lchown(link, 65534, 65534)
    done = run(["scan", "--update", "M", "d"], cwd=tmp_path)
    assert done.returncode == 2 and b"a symbolic link another user owns" in done.stderr
    assert victim.read_bytes() == _gnu({"d/f1": b"1\n"})


def test_a_nul_separated_manifest_whose_first_name_holds_a_newline(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "a\nb").write_bytes(b"x")
    (d / "c").write_bytes(b"y\n")
    settle()
    assert run(["scan", ".", "-a", "md5", "-z", "--sort", "-o", "M"], cwd=d).returncode == 0
    (d / "e").write_bytes(b"z\n")
    done = run(["scan", "--update", "M"], cwd=d)
    assert done.returncode == 0, done.stderr
    assert (d / "M").read_bytes() == run(["scan", ".", "-a", "md5", "-z", "--sort",
                                          "--exclude", "M"], cwd=d).stdout


def test_a_comment_with_a_nul_leaves_a_text_manifest_text(tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    settle()
    text = b"# a comment with \0 in it\n" + _gnu({"d/f1": b"1\n"})
    (tmp_path / "M").write_bytes(text)
    (d / "f9").write_bytes(b"9\n")
    done = run(["scan", "--update", "M", "d/f1", "d/f9"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "M").read_bytes() == text + _gnu({"d/f9": b"9\n"})


def test_big_files_of_an_ambiguous_length_are_checked_before_lines_are_rewritten(
    tmp_path: Path
) -> None:
    for name in ("f1", "f2"):
        (tmp_path / name).write_bytes(os.urandom(5 << 20))
    assert run(["scan", "f1", "f2", "-a", "xxh128", "--sort", "-o", "M"],
               cwd=tmp_path).returncode == 0
    before = (tmp_path / "M").read_bytes()
    _old(tmp_path / "f2")
    (tmp_path / "f1").write_bytes(os.urandom(5 << 20))
    _old(tmp_path / "M", 1800)
    done = run(["scan", "--update", "M", "f1", "f2"], cwd=tmp_path)
    assert done.returncode == 2 and b"give it with -a" in done.stderr, done.stderr
    assert (tmp_path / "M").read_bytes() == before
    done = run(["scan", "--update", "M", "f1", "f2", "-a", "xxh128"], cwd=tmp_path)
    assert done.returncode == 0 and b"updated: f1" in done.stderr, done.stderr


def test_a_listed_link_does_not_hold_the_mtime_back(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"r\n")
    (tmp_path / "lin").symlink_to("real")
    (tmp_path / "M").write_bytes(_gnu({"real": b"r\n", "lin": b"r\n"}))
    _old(tmp_path / "real")
    _old(tmp_path / "M", 1800)
    (tmp_path / "new").write_bytes(b"n\n")
    started = time.time_ns()
    done = run(["scan", "--update", "M", "."], cwd=tmp_path)
    assert done.returncode == 0 and b"added: new" in done.stderr, done.stderr
    assert os.stat(tmp_path / "M").st_mtime_ns >= started


def test_two_algorithms_in_md5sum_lines_get_a_line_each(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(name.encode())
    text = (digest("md5", b"a").encode() + b"  a\n"
            + hashlib.sha256(b"b").hexdigest().encode() + b"  b\n")
    (tmp_path / "M").write_bytes(text)
    settle()
    (tmp_path / "c").write_bytes(b"c")
    done = run(["scan", "--update", "M", "a", "b", "c"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "M").read_bytes() == text + (
        digest("md5", b"c").encode() + b"  c\n" + hashlib.sha256(b"c").hexdigest().encode()
        + b"  c\n")


def test_a_fifo_or_another_users_dangling_link_is_no_manifest_to_write(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "F")
    done = run(["scan", "--update", "F", "."], cwd=tmp_path, timeout=20)
    assert done.returncode == 2 and b"F: not a regular file" in done.stderr
    if os.geteuid() == 0:
        (tmp_path / "L").symlink_to(tmp_path / "elsewhere" / "new")
        os.lchown(tmp_path / "L", 65534, 65534)
        (tmp_path / "elsewhere").mkdir()
        done = run(["scan", "--update", "L", "."], cwd=tmp_path, timeout=20)
        assert done.returncode == 2 and b"a symbolic link another user owns" in done.stderr
        assert not (tmp_path / "elsewhere" / "new").exists()


def test_a_listed_file_named_as_the_path_may_go(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert run(["scan", "d", "-a", "md5", "--sort", "-o", "M"], cwd=tmp_path).returncode == 0
    (tmp_path / "d" / "f1").unlink()
    done = run(["scan", "--update", "M", "d/f1"], cwd=tmp_path)
    assert done.returncode == 0 and b"removed: d/f1" in done.stderr, done.stderr
