"""Tasks: huge directories cut into parts, large files alone, manifests cut into ranges.

scan's workers take directories (or parts of one) and return formatted bytes;
check's workers take ranges of manifest lines, large files become holes
answered by tasks of their own, and the answers are put back in manifest
order. These tests drive those mechanisms through the real CLI and the
library, on real files; expected digests come from hashlib and expected
output from the real md5sum.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ENV, PARHASH, gnu_line, no_traceback, random_bytes, records, run, tool

import parhash
from parhash.executor import INLINE_MAX_FILES
from parhash.tasks import ALONE_BYTES, ScanJob, scan_tasks
from parhash.verify import Lines, read_ranges

MiB = 1 << 20


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_of(path: Path | bytes) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return h.hexdigest()


def md5sum(*args: str | bytes, cwd: Path,
           input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real md5sum, called by its bare name so that its messages start with "md5sum:"."""
    return subprocess.run(["md5sum", *args], executable=tool("md5sum"), cwd=cwd, input=input,
                          capture_output=True, env=ENV, timeout=60, check=False)


def check(*args: str, cwd: Path, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    done = run(["check", *args], cwd=cwd, input=input)
    no_traceback(done.stderr)
    return done


def assert_same_as_md5sum(ours: subprocess.CompletedProcess[bytes],
                          theirs: subprocess.CompletedProcess[bytes]) -> None:
    assert ours.stdout == theirs.stdout
    assert ours.stderr.replace(b"parhash:", b"md5sum:") == theirs.stderr
    assert ours.returncode == theirs.returncode


def sparse(path: Path, size: int, mark: bytes, at: int) -> None:
    """A sparse file of ``size`` bytes, ``mark`` written at ``at`` so that each digest differs."""
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(at)
        f.write(mark)


def overwrite_last_byte(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))


def ranges(manifest: Path, lines: int) -> list[Lines]:
    return [r for r in read_ranges([str(manifest)], lines=lines) if type(r) is Lines]


# --- scan: a directory far larger than a task -----------------------------------

HUGE_FILES = 3000


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[bytes, bytes]]:
    """``huge/``: 3,000 small files, and a subdirectory among them; relative path -> bytes."""
    top = tmp_path_factory.mktemp("huge")
    root = top / "huge"
    (root / "sub").mkdir(parents=True)
    files: dict[bytes, bytes] = {}
    for i in range(HUGE_FILES):
        rel = b"huge/f%05d" % i
        files[rel] = random_bytes(i, i % 97)
    for i in range(40):
        files[b"huge/sub/g%02d" % i] = random_bytes(10_000 + i, 200 + i)
    for rel, data in files.items():
        (top / os.fsdecode(rel)).write_bytes(data)
    return top, files


def test_directory_with_far_more_files_than_chunksize_lists_each_file_once(
    huge: tuple[Path, dict[bytes, bytes]],
) -> None:
    top, files = huge
    done = run(["scan", "huge", "-a", "md5", "-j", "2", "--chunksize", "16"], cwd=top)
    assert done.returncode == 0
    assert done.stderr == b""
    lines = records(done.stdout)
    assert len(lines) == len(set(lines)) == len(files)
    assert set(lines) == {gnu_line(md5(data), rel) for rel, data in files.items()}
    reference = md5sum(*sorted(files), cwd=top)
    assert reference.returncode == 0
    assert set(lines) == set(records(reference.stdout))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sorted_scan_of_a_directory_cut_into_parts_is_byte_identical_to_md5sum(
    huge: tuple[Path, dict[bytes, bytes]], jobs: str,
) -> None:
    top, files = huge
    done = run(["scan", "huge", "-a", "md5", "-j", jobs, "--chunksize", "16", "--sort"], cwd=top)
    assert done.returncode == 0
    assert done.stderr == b""
    # md5sum prints in the order of its arguments: path order, byte by byte.
    reference = md5sum(*sorted(files), cwd=top)
    assert done.stdout == reference.stdout


@pytest.mark.parametrize("jobs", [1, 2])
def test_tasks_of_a_huge_directory_hold_at_most_twice_chunksize_files(
    huge: tuple[Path, dict[bytes, bytes]], jobs: int,
) -> None:
    top, files = huge
    job = ScanJob(("md5",), files=16)
    results = list(scan_tasks([str(top / "huge")], job, jobs=jobs))
    counts = [r.files for r in results]
    assert sum(counts) == len(files)
    assert all(r.errors == 0 and r.err == b"" for r in results)
    out = b"".join(r.out for r in results)
    assert sorted(records(out)) == sorted(
        gnu_line(md5(data), os.fsencode(top) + b"/" + rel) for rel, data in files.items()
    )
    # Only the start done in this process before a pool (-j 2) may hold more.
    big = [n for n in counts if n > 2 * 16]
    assert sum(big) <= (0 if jobs == 1 else 2 * INLINE_MAX_FILES)
    assert len(results) >= (len(files) - sum(big)) // (2 * 16)


# --- scan: large files go alone --------------------------------------------------

@pytest.fixture
def large(tmp_path: Path) -> tuple[Path, list[str]]:
    """``d/``: six sparse 5 MiB files, files either side of ALONE_BYTES, and small files."""
    d = tmp_path / "d"
    d.mkdir()
    for i in range(6):
        sparse(d / f"big{i}", 5 * MiB, b"%d" % i, 1000 * i + 7)
    sparse(d / "edge-alone", ALONE_BYTES, b"a", ALONE_BYTES - 1)
    sparse(d / "edge-below", ALONE_BYTES - 1, b"b", 0)
    for i in range(30):
        (d / f"s{i:02d}").write_bytes(random_bytes(i, i * 5))
    return tmp_path, sorted(f"d/{p.name}" for p in d.iterdir())


def _expected(top: Path, names: list[str]) -> set[bytes]:
    return {gnu_line(md5_of(top / n), n.encode()) for n in names}


@pytest.mark.parametrize("chunksize", [[], ["--chunksize", "4"]])
def test_large_files_in_one_directory_are_each_listed_once_with_two_workers(
    large: tuple[Path, list[str]], chunksize: list[str],
) -> None:
    top, names = large
    _assert_each_once(run(["scan", "d", "-a", "md5", "-j", "2", *chunksize], cwd=top), top,
                      names)


@pytest.mark.parametrize("chunksize", [[], ["--chunksize", "3"]])
def test_large_files_named_as_arguments_are_each_listed_once_with_two_workers(
    large: tuple[Path, list[str]], chunksize: list[str],
) -> None:
    top, names = large
    # Large and small interleaved, so that tasks of arguments hold both.
    _assert_each_once(run(["scan", "-a", "md5", "-j", "2", *chunksize, *names], cwd=top), top,
                      names)


def _assert_each_once(done: subprocess.CompletedProcess[bytes], top: Path,
                      names: list[str]) -> None:
    """Every file listed once, with the digest md5sum gives it."""
    assert done.returncode == 0
    assert done.stderr == b""
    lines = records(done.stdout)
    assert len(lines) == len(set(lines)) == len(names)
    assert set(lines) == _expected(top, names)
    assert set(lines) == set(records(md5sum(*names, cwd=top).stdout))


# --- check: the GNU form decided across ranges ----------------------------------

def _small_files(top: Path, n: int, prefix: str = "f") -> list[str]:
    names = []
    for i in range(n):
        name = f"{prefix}{i:03d}"
        (top / name).write_bytes(random_bytes(500 + i, i * 3))
        names.append(name)
    return names


@pytest.mark.parametrize("first, later", [("  ", " "), (" ", "  "), (" *", " "), (" ", " *")])
def test_check_gnu_form_switching_across_a_range_boundary_answers_as_md5sum(
    tmp_path: Path, first: str, later: str,
) -> None:
    # More files than are checked in this process, so that the pool answers too.
    names = _small_files(tmp_path, 100)
    switch = 40
    manifest = tmp_path / "MD5SUMS"
    manifest.write_bytes(b"".join(
        f"{md5((tmp_path / n).read_bytes())}{first if i < switch else later}{n}\n".encode()
        for i, n in enumerate(names)
    ))
    # Ranges that hold only later lines decide the later form on their own.
    assert any(r.first > switch + 1 for r in ranges(manifest, 2))
    theirs = md5sum("-c", "-w", "MD5SUMS", cwd=tmp_path)
    # The later lines are malformed, or their names start with a blank and are missing.
    assert theirs.stdout.count(b": OK\n") == switch
    small = check("-a", "md5", "-w", "-j", "2", "--chunksize", "2", "MD5SUMS", cwd=tmp_path)
    assert_same_as_md5sum(small, theirs)
    default = check("-a", "md5", "-w", "-j", "2", "MD5SUMS", cwd=tmp_path)
    assert (default.stdout, default.stderr, default.returncode) == (
        small.stdout, small.stderr, small.returncode)


def test_check_range_resent_for_the_gnu_form_with_large_files_answers_as_md5sum(
    tmp_path: Path,
) -> None:
    # Lines 1-72: "DIGEST  NAME", more files than are checked in this process.
    # Line 73 starts a range: "DIGEST NAME" (one blank) names a large file,
    # which becomes a hole; the range decides the one-blank form, is re-sent
    # with the two-blank form, and line 73 becomes malformed.
    names = _small_files(tmp_path, 72, "s")
    lines = [f"{md5((tmp_path / n).read_bytes())}  {n}\n" for n in names]
    # Every line 39 bytes long, so that the ranges are regular.
    for k, (blanks, name) in enumerate([(" ", "xb000"), ("  ", "b001"), ("  ", "b002")]):
        sparse(tmp_path / name, 5 * MiB, b"%d" % k, 100 * k)
        lines.append(f"{md5_of(tmp_path / name)}{blanks}{name}\n")
    overwrite_last_byte(tmp_path / "b001")
    manifest = tmp_path / "MD5SUMS"
    manifest.write_bytes("".join(lines).encode())
    assert 73 in [r.first for r in ranges(manifest, 3)]
    theirs = md5sum("-c", "MD5SUMS", cwd=tmp_path)
    assert theirs.stdout.endswith(b"b001: FAILED\nb002: OK\n")
    ours = run(["check", "-j", "2", "--chunksize", "3", "MD5SUMS"], cwd=tmp_path)
    assert ours.stdout == theirs.stdout
    no_traceback(ours.stderr)
    assert_same_as_md5sum(ours, theirs)


# --- check: CSV manifests are cut outside quotes --------------------------------

AWKWARD_CSV = [b"plain", b"com,ma", b'quo"te', b"new\nline", b'"\n,"\n""', b'a,\n"b"\n,c',
               b"\n", b",", b'""', b"trail\n", b"cr\r\nlf", b"sp ace"]


@pytest.fixture
def csv_manifest(tmp_path: Path) -> tuple[Path, list[tuple[bytes, str]]]:
    """``M.csv`` by ``parhash scan --csv -a md5`` over awkward names: (name, md5) in its order."""
    d = tmp_path / "d"
    d.mkdir()
    names = list(AWKWARD_CSV)
    tails = [b"", b",", b'"', b"\n", b'\n"', b'",', b'""\n\n']
    names += [b"n%03d%s" % (i, tails[i % len(tails)]) for i in range(120)]
    for i, name in enumerate(names):
        (d / os.fsdecode(name)).write_bytes(random_bytes(i, i * 7 % 900))
    done = run(["scan", "--csv", "-a", "md5", "d"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "M.csv").write_bytes(done.stdout)
    # Read back with Python's own CSV reader: every name, its right digest.
    text = done.stdout.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["path", "size", "md5", "error"]
    order = [(os.fsencode(r[0]), r[2]) for r in rows[1:]]
    assert sorted(n for n, _ in order) == sorted(b"d/" + n for n in names)
    for name, hexdigest in order:
        assert hexdigest == md5((tmp_path / os.fsdecode(name)).read_bytes())
    return tmp_path, order


@pytest.mark.parametrize("options", [["--chunksize", "1"], [], ["--chunksize", "4", "-j", "2"]])
def test_check_csv_manifest_with_newlines_commas_and_quotes_in_names(
    csv_manifest: tuple[Path, list[tuple[bytes, str]]], options: list[str],
) -> None:
    top, order = csv_manifest
    ours = check(*options, "M.csv", cwd=top)
    assert (ours.returncode, ours.stderr) == (0, b"")
    # md5sum on the same files in the same order prints what check must.
    (top / "MD5SUMS").write_bytes(b"".join(gnu_line(h, n) for n, h in order))
    theirs = md5sum("-c", "MD5SUMS", cwd=top)
    assert theirs.returncode == 0
    assert ours.stdout == theirs.stdout


@pytest.mark.parametrize("lines", [1, 4, 16])
def test_read_ranges_cuts_a_csv_manifest_only_at_line_ends_outside_quotes(
    csv_manifest: tuple[Path, list[tuple[bytes, str]]], lines: int,
) -> None:
    top, order = csv_manifest
    data = (top / "M.csv").read_bytes()
    got = ranges(top / "M.csv", lines)
    assert b"".join(r.data for r in got) == data[data.index(b"\n") + 1:]
    number = 2
    for r in got:
        assert r.data.count(b'"') % 2 == 0, r
        assert r.data.endswith(b"\n"), r
        assert r.first == number
        number += r.data.count(b"\n")
    records_in = [len(list(csv.reader(io.StringIO(r.data.decode("utf-8", "surrogateescape"),
                                                  newline="")))) for r in got]
    assert sum(records_in) == len(order)
    if lines > 1:
        assert len(got) > 1


# A range is meant to hold about ``--chunksize`` lines (verify.RANGE_LINES).


def test_read_ranges_of_sha256_lines_hold_about_chunksize_lines(tmp_path: Path) -> None:
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_bytes(b"".join(
        b"%s  file%03d\n" % (hashlib.sha256(b"%d" % i).hexdigest().encode(), i)
        for i in range(300)))
    got = ranges(manifest, 1)
    assert max(r.data.count(b"\n") for r in got) <= 2


def test_read_ranges_of_csv_names_with_line_ends_hold_about_chunksize_records(
    csv_manifest: tuple[Path, list[tuple[bytes, str]]],
) -> None:
    top, _ = csv_manifest
    got = ranges(top / "M.csv", 1)
    assert max(len(list(csv.reader(io.StringIO(r.data.decode("utf-8", "surrogateescape"),
                                               newline="")))) for r in got) <= 2


def test_read_ranges_cover_every_line_once_with_the_right_numbers(tmp_path: Path) -> None:
    lines = [b"%s  %s\n" % (md5(b"%d" % i).encode(), b"x" * (i * 37 % 300)) for i in range(2000)]
    manifest = tmp_path / "M"
    manifest.write_bytes(b"".join(lines))
    for size in (1, 3, 16, 1024):
        got = ranges(manifest, size)
        assert b"".join(r.data for r in got) == manifest.read_bytes()
        starts = [r.first for r in got]
        assert starts[0] == 1
        assert all(r.data.endswith(b"\n") for r in got)
        assert starts[1:] == [r.first + r.data.count(b"\n") for r in got[:-1]]


# --- check: large files answered apart, in their place ---------------------------

@pytest.fixture
def interleaved(tmp_path: Path) -> tuple[Path, list[str]]:
    """``MD5SUMS`` of small files with a 5 MiB file every eighth line, past what
    this process checks before the pool starts (64 files, 32 MiB)."""
    names = []
    for i in range(96):
        if i % 8 == 3:
            name = f"big{i:02d}"
            sparse(tmp_path / name, 5 * MiB, b"%d" % i, 4096 * i)
        else:
            name = f"small{i:02d}"
            (tmp_path / name).write_bytes(random_bytes(i, i * 11))
        names.append(name)
    (tmp_path / "MD5SUMS").write_bytes(
        b"".join(gnu_line(md5_of(tmp_path / n), n.encode()) for n in names))
    return tmp_path, names


@pytest.mark.parametrize("chunksize", [["--chunksize", "3"], []])
def test_check_large_files_interleaved_are_answered_in_manifest_order(
    interleaved: tuple[Path, list[str]], chunksize: list[str],
) -> None:
    top, names = interleaved
    ours = check("-j", "2", *chunksize, "MD5SUMS", cwd=top)
    assert ours.returncode == 0
    assert ours.stdout == b"".join(f"{n}: OK\n".encode() for n in names)
    assert_same_as_md5sum(ours, md5sum("-c", "MD5SUMS", cwd=top))


@pytest.mark.parametrize("chunksize", [["--chunksize", "3"], []])
def test_check_corrupted_large_file_fails_in_its_place(
    interleaved: tuple[Path, list[str]], chunksize: list[str],
) -> None:
    top, names = interleaved
    bad = [n for n in names if n.startswith("big")][-2]
    overwrite_last_byte(top / bad)
    ours = check("-j", "2", *chunksize, "MD5SUMS", cwd=top)
    assert ours.returncode == 1
    assert ours.stdout == b"".join(
        f"{n}: {'FAILED' if n == bad else 'OK'}\n".encode() for n in names)
    assert_same_as_md5sum(ours, md5sum("-c", "MD5SUMS", cwd=top))


# --- check: a manifest from a pipe ------------------------------------------------

def _read_lines(fd: int, want: int, timeout: float) -> bytes:
    """Read from a pipe until ``want`` lines have come, or ``timeout`` passes."""
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\n") < want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data


def test_manifest_piped_whole_gets_every_verdict_in_order(tmp_path: Path) -> None:
    names = _small_files(tmp_path, 200)
    manifest = b"".join(gnu_line(md5((tmp_path / n).read_bytes()), n.encode()) for n in names)
    manifest = manifest.replace(b"f100\n", b"f100\njunk line\n")
    (tmp_path / "f007").write_bytes(b"changed")
    ours = check("-a", "md5", "-w", "-j", "2", "--chunksize", "3", cwd=tmp_path, input=manifest)
    theirs = md5sum("-c", "-w", "-", cwd=tmp_path, input=manifest)
    assert ours.stdout == b"".join(
        f"{n}: {'FAILED' if n == 'f007' else 'OK'}\n".encode() for n in names)
    assert b"'standard input': 102: improperly formatted" in ours.stderr
    assert_same_as_md5sum(ours, theirs)


def test_manifest_from_a_pipe_in_pieces_gets_each_verdict_while_the_producer_runs(
    tmp_path: Path,
) -> None:
    names = _small_files(tmp_path, 200)
    lines = [gnu_line(md5((tmp_path / n).read_bytes()), n.encode()) for n in names]
    lines.insert(150, b"junk line\n")  # line 151: its number must survive the pauses
    manifest = b"".join(lines)
    # Each piece ends in the middle of a line: its verdict waits for the next piece.
    cuts = [sum(map(len, lines[:k])) + 20 for k in (70, 160)]
    pieces = [manifest[: cuts[0]], manifest[cuts[0]: cuts[1]], manifest[cuts[1]:]]
    expect = [70, 89]  # verdicts due once each piece is in: its complete lines, but junk
    proc = subprocess.Popen([*PARHASH, "check", "-a", "md5", "-w", "-j", "2", "--chunksize", "3",
                             "-"], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = b""
    try:
        for piece, want in zip(pieces[:-1], expect, strict=True):
            proc.stdin.write(piece)
            proc.stdin.flush()
            got = _read_lines(proc.stdout.fileno(), want, timeout=20)
            assert got.count(b"\n") == want  # while stdin stays open
            out += got
        proc.stdin.write(pieces[-1])
        proc.stdin.close()
        out += proc.stdout.read()
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    theirs = md5sum("-c", "-w", "-", cwd=tmp_path, input=manifest)
    assert out == theirs.stdout == b"".join(f"{n}: OK\n".encode() for n in names)
    assert err.replace(b"parhash:", b"md5sum:") == theirs.stderr
    assert b"'standard input': 151: improperly formatted MD5 checksum line\n" in err


# --- check: an overlong line -----------------------------------------------------

WARNING = re.compile(rb": (\d+): improperly formatted MD5 checksum line\n")


@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize("chunksize", [["--chunksize", "1"], []])
def test_lines_after_an_overlong_line_are_checked_with_their_line_numbers(
    tmp_path: Path, source: str, chunksize: list[str],
) -> None:
    names = _small_files(tmp_path, 30)
    lines = [gnu_line(md5((tmp_path / n).read_bytes()), n.encode()) for n in names]
    # No line end for 1.5 MiB, then more lines, a malformed one among them.
    lines.insert(10, b"x" * (3 * MiB // 2) + b"\n")
    lines.insert(21, b"junk\n")
    manifest = tmp_path / "MD5SUMS"
    manifest.write_bytes(b"".join(lines))
    if source == "file":
        ours = check("-a", "md5", "-w", "-j", "2", *chunksize, "MD5SUMS", cwd=tmp_path)
    else:
        ours = check("-a", "md5", "-w", "-j", "2", *chunksize, cwd=tmp_path,
                     input=manifest.read_bytes())
    theirs = md5sum("-c", "-w", "MD5SUMS", cwd=tmp_path)
    assert [int(n) for n in WARNING.findall(theirs.stderr)] == [11, 22]
    assert WARNING.findall(ours.stderr) == WARNING.findall(theirs.stderr)
    assert ours.stdout == theirs.stdout == b"".join(f"{n}: OK\n".encode() for n in names)
    assert ours.returncode == theirs.returncode == 0


def test_csv_record_with_a_quote_never_closed_past_1_mib_leaves_later_rows_checked(
    csv_manifest: tuple[Path, list[tuple[bytes, str]]],
) -> None:
    top, order = csv_manifest
    data = (top / "M.csv").read_bytes()
    text = data.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows[:41])  # the header and 40 rows
    before = out.getvalue().count("\n")
    out.write('"d/never closed,' + "y" * (3 * MiB // 2) + "\n")
    writer.writerows(rows[41:])
    (top / "B.csv").write_text(out.getvalue(), encoding="utf-8", errors="surrogateescape")
    ours = check("-w", "-j", "2", "B.csv", cwd=top)
    assert ours.returncode == 0
    assert ours.stderr == (b"parhash: B.csv: %d: improperly formatted checksum line\n"
                           b"parhash: WARNING: 1 line is improperly formatted\n" % (before + 1))
    (top / "MD5SUMS").write_bytes(b"".join(gnu_line(h, n) for n, h in order))
    assert ours.stdout == md5sum("-c", "MD5SUMS", cwd=top).stdout


# --- the library ------------------------------------------------------------------

@pytest.mark.parametrize("jobs", [1, 2])
def test_library_scan_of_a_tree_gives_one_result_per_file(tmp_path: Path, jobs: int) -> None:
    expected: dict[str, tuple[str, str, int]] = {}
    for i in range(150):
        path = tmp_path / f"d{i % 3}" / f"e{i % 5}" / f"f{i:03d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(i, i * 17 % 4000))
    sparse(tmp_path / "d0" / "big", 5 * MiB, b"big", 123)
    (tmp_path / "d1" / "empty").write_bytes(b"")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            expected[str(path)] = (md5(data), hashlib.sha256(data).hexdigest(), len(data))
    results = list(parhash.scan([str(tmp_path)], algos=["md5", "sha256"], jobs=jobs,
                                chunksize=8))
    assert all(r.error is None for r in results), [r for r in results if r.error]
    assert len(results) == len({r.path for r in results}) == len(expected)
    assert {r.path: (r.digests["md5"], r.digests["sha256"], r.size) for r in results} == expected


def test_the_rest_of_a_directory_too_large_for_a_task_goes_out_in_parts_side_by_side(
    tmp_path: Path,
) -> None:
    from parhash.tasks import Part, run_task
    from parhash.walk import Directory

    data = {f"f{i:03d}": random_bytes(i, 64 << 10) for i in range(100)}
    for name, body in data.items():
        (tmp_path / name).write_bytes(body)
    st = os.stat(tmp_path)
    top = Directory(f"{tmp_path}/", "", 0, identity=(st.st_dev, st.st_ino))
    job = ScanJob(("md5",), nbytes=1 << 20)
    (first,) = run_task(job, [top])
    # A task reads a directory up to twice its bytes, then shares out the rest
    # in parts that each fill a task, for the workers to take side by side.
    assert first.files == 32
    assert [type(p) for p in first.tasks] == [Part] * 5
    assert [len(p.names.split("\0")) for p in first.tasks] == [16, 16, 16, 16, 4]
    out = [first.out]
    for part in first.tasks:
        (result,) = run_task(job, [part])
        assert result.tasks == []
        out.append(result.out)
    lines = b"".join(out).decode().splitlines()
    assert sorted(lines) == sorted(
        f"{hashlib.md5(body).hexdigest()}  {tmp_path}/{name}" for name, body in data.items()
    )
