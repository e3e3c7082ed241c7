"""``parhash scan --update MANIFEST``: a manifest brought up to date in place.

Each updated manifest is compared byte for byte with what the reference tool
(md5sum, md5sum --tag/-z/-b, xxhsum) or a fresh ``parhash scan --sort``
writes for the tree as it is now: an update must end where a new scan would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ENV, NO_DAC, PARHASH, digest, no_traceback, run, run_tool, tool


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
    # xxhsum -H2's lines have md5's length: guessed as md5, no file confirms
    # them, and the manifest is left as it was rather than rewritten whole.
    old = run_tool([xxhsum, "-H2", *files(d)], cwd=tmp_path).stdout
    (tmp_path / "X").write_bytes(old)
    refused = update(tmp_path, "X")
    assert refused.returncode == 2
    assert refused.stderr == (b"parhash: X: no file has its listed md5 digest: the lines' "
                              b"algorithm may be another of that length; give it with -a\n")
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
    if not _setpriv():
        pytest.skip("SKIPPED LOUDLY: setpriv (util-linux) is not installed")
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


def _setpriv() -> bool:
    import shutil

    return shutil.which("setpriv") is not None
