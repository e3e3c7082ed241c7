"""Standard input, FIFOs and devices named on the command line, as md5sum reads them.

Each case runs the real md5sum beside ``python -m parhash`` on the same
names and the same input, and compares what they print byte for byte (with
the program's name put right in messages).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import ENV, PARHASH, digest, no_traceback, tool


def both(
    args: Sequence[str], *, input: bytes | None = None, cwd: Path | None = None,
    command: str = "scan", tool_name: str = "md5sum", shell: bool = False,
    fifo: tuple[Path, bytes] | None = None,
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """(md5sum's run, parhash's run) of the same names, with ``input`` on standard input.

    ``shell``: the arguments are given to bash, for ``<(cmd)``. ``fifo``: a
    FIFO and what a writer writes to it once for each run.
    """
    tool(tool_name)
    reference = [tool_name]  # as a user types it: its messages start "md5sum:"
    ours = [*PARHASH, command, "-a", tool_name.removesuffix("sum")]
    if command == "check":
        reference.append("-c")
        ours = [*PARHASH, "check"]
    runs = []
    for argv in (reference, ours):
        if shell:
            script = " ".join([*(f"'{a}'" for a in argv), *args])
            full = ["bash", "-c", script]
        else:
            full = [*argv, *args]
        writer = _feed(*fifo) if fifo is not None else None
        runs.append(subprocess.run(full, input=input, capture_output=True, env=ENV, cwd=cwd,
                                   timeout=30, check=False))
        if writer is not None:
            writer.join(10)
    theirs, mine = runs
    no_traceback(mine.stderr)
    return theirs, mine


def same(theirs: subprocess.CompletedProcess[bytes], mine: subprocess.CompletedProcess[bytes],
         name: str = "md5sum") -> None:
    assert mine.stdout == theirs.stdout
    assert mine.stderr == theirs.stderr.replace(name.encode() + b":", b"parhash:")
    assert mine.returncode == theirs.returncode


def test_dash_is_standard_input_and_prints_as_dash() -> None:
    data = b"some data\n"
    theirs, mine = both(["-"], input=data)
    same(theirs, mine)
    assert mine.stdout == f"{digest('md5', data)}  -\n".encode()


def test_dash_tagged_and_json() -> None:
    theirs, mine = both(["--tag", "-"], input=b"abc")
    same(theirs, mine)
    proc = subprocess.run([*PARHASH, "scan", "--json", "-a", "sha256", "-"], input=b"abc",
                          capture_output=True, env=ENV, timeout=30, check=True)
    assert proc.stdout == (b'{"path": "-", "size": 3, "sha256": "%s"}\n'
                           % digest("sha256", b"abc").encode())


def test_dev_null_and_dev_stdin_are_hashed(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"file")
    theirs, mine = both(["/dev/null", "/dev/stdin", str(tmp_path / "f")], input=b"piped")
    same(theirs, mine)


def test_process_substitution_is_hashed() -> None:
    theirs, mine = both(["<(printf 'from a pipe')", "<(printf '')"], shell=True)
    same(theirs, mine)
    assert b"/dev/fd/" in mine.stdout


def test_closed_standard_input_is_an_error_for_dash() -> None:
    proc = subprocess.run(["bash", "-c", " ".join([*PARHASH, "scan", "-", "<&-"])],
                          capture_output=True, env=ENV, timeout=30, check=False)
    no_traceback(proc.stderr)
    assert (proc.returncode, proc.stdout) == (1, b"")
    # md5sum says the same, and then once more as it closes standard input.
    assert proc.stderr == b"parhash: -: Bad file descriptor\n"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield path


def _feed(path: Path, data: bytes) -> threading.Thread:
    """A thread that writes ``data`` to the FIFO ``path`` once a reader opens it."""

    def write() -> None:
        with open(path, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_named_fifo_waits_for_its_writer_and_is_hashed(fifo: Path) -> None:
    # Several blocks, so that the read loop goes round.
    data = os.urandom(300_000)
    theirs, mine = both([str(fifo)], fifo=(fifo, data))
    same(theirs, mine)
    assert mine.stdout == f"{digest('md5', data)}  {fifo}\n".encode()


def test_named_fifo_beside_a_tree_on_a_pool(fifo: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(300):
        (tree / f"{i:03}").write_bytes(b"x" * i)
    writer = _feed(fifo, b"fifo data")
    proc = subprocess.run([*PARHASH, "scan", "-a", "md5", "-j", "2", str(tree), str(fifo), "-"],
                          input=b"stdin data", capture_output=True, env=ENV, timeout=30,
                          check=False)
    writer.join(10)
    no_traceback(proc.stderr)
    assert (proc.returncode, proc.stderr) == (0, b"")
    lines = set(proc.stdout.splitlines())
    assert f"{digest('md5', b'fifo data')}  {fifo}".encode() in lines
    assert f"{digest('md5', b'stdin data')}  -".encode() in lines
    assert len(lines) == 302


def test_named_socket_gets_md5sums_error(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(tmp_path / "sock"))
    (tmp_path / "f").write_bytes(b"f")
    try:
        theirs, mine = both([str(tmp_path / "sock"), str(tmp_path / "f")])
    finally:
        sock.close()
    same(theirs, mine)
    assert mine.returncode == 1


def test_named_device_is_read_and_a_walked_one_skipped(tmp_path: Path) -> None:
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (tmp_path / "f").write_bytes(b"f")
    theirs, mine = both([str(tmp_path / "null")])
    same(theirs, mine)
    walked = subprocess.run([*PARHASH, "scan", "-a", "md5", str(tmp_path)], capture_output=True,
                            env=ENV, timeout=30, check=False)
    assert (walked.returncode, walked.stderr) == (0, b"")
    assert walked.stdout == f"{digest('md5', b'f')}  {tmp_path}/f\n".encode()


def test_dupes_leaves_named_special_files_alone(fifo: Path) -> None:
    # No writer: dupes must not open it.
    proc = subprocess.run([*PARHASH, "dupes", str(fifo)], capture_output=True, env=ENV,
                          timeout=30, check=False)
    no_traceback(proc.stderr)
    assert proc.returncode == 0
    assert f"parhash: {fifo}: not a regular file\n".encode() in proc.stderr


# --- check --------------------------------------------------------------------


def test_check_verifies_listed_dev_null_dev_stdin_and_dash(tmp_path: Path) -> None:
    data = b"piped to the check"
    manifest = tmp_path / "MD5SUMS"
    manifest.write_text(f"{digest('md5', b'')}  /dev/null\n"
                        f"{digest('md5', data)}  /dev/stdin\n"
                        f"{digest('md5', b'')}  -\n"  # stdin, read to its end already
                        f"{digest('md5', b'other')}  /dev/null\n")
    theirs, mine = both([str(manifest)], input=data, command="check")
    same(theirs, mine)
    assert mine.returncode == 1  # the last line fails


def test_check_dash_alone_reads_standard_input(tmp_path: Path) -> None:
    manifest = tmp_path / "MD5SUMS"
    manifest.write_text(f"{digest('md5', b'in')}  -\n")
    theirs, mine = both([str(manifest)], input=b"in", command="check")
    same(theirs, mine)
    assert mine.stdout == b"-: OK\n"


def test_check_many_lines_and_standard_input_on_a_pool(tmp_path: Path) -> None:
    lines = []
    for i in range(3000):
        (tmp_path / f"{i:04}").write_bytes(b"%d" % i)
        lines.append(f"{digest('md5', b'%d' % i)}  {i:04}\n")
    lines.insert(1500, f"{digest('md5', b'stdin')}  /dev/stdin\n")
    (tmp_path / "MD5SUMS").write_text("".join(lines))
    proc = subprocess.run([*PARHASH, "check", "-j", "2", "--chunksize", "64", "MD5SUMS"],
                          input=b"stdin", capture_output=True, env=ENV, cwd=tmp_path,
                          timeout=60, check=False)
    no_traceback(proc.stderr)
    assert (proc.returncode, proc.stderr) == (0, b"")
    out = proc.stdout.splitlines()
    assert len(out) == 3001
    assert out[1500] == b"/dev/stdin: OK"


def test_check_listed_fifo_is_read_as_md5sum_reads_it(fifo: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "MD5SUMS"
    manifest.write_text(f"{digest('md5', b'through the fifo')}  {fifo}\n")
    theirs, mine = both([str(manifest)], command="check", fifo=(fifo, b"through the fifo"))
    same(theirs, mine)
    assert mine.returncode == 0


def test_check_manifest_on_standard_input_naming_standard_input_is_malformed() -> None:
    # md5sum reads '-' there as malformed, as parhash does; for /dev/stdin
    # it hashes the rest of the manifest, which parhash has read ahead
    # (docs/check.md says so).
    for name in ("-", "/dev/stdin"):
        manifest = f"{digest('md5', b'')}  {name}\n".encode()
        proc = subprocess.run([*PARHASH, "check", "-w"], input=manifest, capture_output=True,
                              env=ENV, timeout=30, check=False)
        no_traceback(proc.stderr)
        assert proc.returncode == 1
        assert proc.stderr == (b"parhash: 'standard input': 1: improperly formatted checksum "
                               b"line\nparhash: 'standard input': no properly formatted "
                               b"checksum lines found\n")


def test_check_under_root_dash_is_the_file_called_dash(tmp_path: Path) -> None:
    (tmp_path / "-").write_bytes(b"a file")
    manifest = tmp_path / "MD5SUMS"
    manifest.write_text(f"{digest('md5', b'a file')}  -\n")
    proc = subprocess.run([*PARHASH, "check", "--relative-to-manifest", str(manifest)],
                          input=b"not this", capture_output=True, env=ENV, timeout=30,
                          check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"-: OK\n", b"")


# --- what a review found --------------------------------------------------------


def test_streams_read_beside_a_walk_get_their_own_buffer(tmp_path: Path) -> None:
    # The names' thread reads a stream while the main thread hashes the first
    # tasks: one shared buffer gave both wrong digests, with exit 0.
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(200):
        (tree / f"{i:03}").write_bytes(os.urandom(50_000))
    big = tmp_path / "big"
    big.write_bytes(os.urandom(20 << 20))
    for jobs in ("1", "2"):
        script = (f"exec {' '.join(PARHASH)} scan -a md5 -j {jobs} {tree} <(cat {big}) - "
                  f"< {big}")
        proc = subprocess.run(["bash", "-c", script], capture_output=True, env=ENV,
                              timeout=60, check=False)
        no_traceback(proc.stderr)
        assert (proc.returncode, proc.stderr) == (0, b"")
        lines = proc.stdout.decode().splitlines()
        assert len(lines) == 202
        for line in lines:
            hexdigest, name = line.split("  ", 1)
            path = big if name == "-" or name.startswith("/dev/fd/") else Path(name)
            assert hexdigest == digest("md5", path.read_bytes()), name


def test_check_fd_names_parhash_opened_itself_are_no_files(tmp_path: Path) -> None:
    # /dev/fd/N of a descriptor parhash opened (the pool's pipes, the
    # manifest): reading it would hang or take the pool's messages.
    lines = [f"{digest('md5', b'')}  {tmp_path}/f{i}\n" for i in range(3000)]
    for i in (range(3, 10)):
        (tmp_path / f"f{i}").touch()
    for n in range(3, 12):
        lines.insert(100 * n, f"{digest('md5', b'')}  /dev/fd/{n}\n")
        lines.insert(100 * n, f"{digest('md5', b'')}  /proc/self/fd/{n}\n")
    (tmp_path / "M").write_text("".join(lines))
    proc = subprocess.run([*PARHASH, "check", "-j", "2", "--chunksize", "50", str(tmp_path / "M")],
                          capture_output=True, env=ENV, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stdout.count(b"/dev/fd/") == 9
    for n in range(3, 12):
        assert f"/dev/fd/{n}: FAILED open or read\n".encode() in proc.stdout
        assert f"parhash: /dev/fd/{n}: No such file or directory\n".encode() in proc.stderr


def test_check_under_root_never_reads_a_workers_own_descriptors(tmp_path: Path) -> None:
    lines = "".join(f"{digest('md5', b'')}  proc/self/fd/{n}\n" for n in range(3, 12))
    (tmp_path / "M").write_text(lines)
    proc = subprocess.run([*PARHASH, "check", "--root", "/", str(tmp_path / "M")],
                          capture_output=True, env=ENV, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stdout.count(b": OK") == 0


def test_check_reads_streams_in_manifest_order(fifo: Path, tmp_path: Path) -> None:
    # '-' takes standard input whole; /dev/stdin after it finds it empty,
    # the FIFO between them notwithstanding: md5sum's order, whatever the ranges.
    manifest = tmp_path / "M"
    manifest.write_text(f"{digest('md5', b'hi')}  -\n"
                        f"{digest('md5', b'fifo')}  {fifo}\n"
                        f"{digest('md5', b'')}  /dev/stdin\n"
                        f"{digest('md5', b'hi')}  -\n")
    theirs, _ = both([str(manifest)], input=b"hi", command="check", fifo=(fifo, b"fifo"))
    assert theirs.returncode == 1  # the last line: standard input is empty by then
    for chunks in ("1", "2"):
        writer = _feed(fifo, b"fifo")
        mine = subprocess.run([*PARHASH, "check", "-j", "2", "--chunksize", chunks,
                               str(manifest)], input=b"hi", capture_output=True, env=ENV,
                              timeout=30, check=False)
        writer.join(10)
        same(theirs, mine)


def test_check_a_range_sent_again_reads_standard_input_once(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    manifest = tmp_path / "M"
    manifest.write_text(f"{digest('md5', b'a')} a.txt\n"
                        f"{digest('md5', b'hi')}  -\n"
                        f"{digest('md5', b'')} /dev/stdin\n")
    theirs = subprocess.run(["md5sum", "-c", "M"], input=b"hi", capture_output=True, env=ENV,
                            cwd=tmp_path, check=False)
    for chunks in ("1", "2", "1024"):
        mine = subprocess.run([*PARHASH, "check", "--chunksize", chunks, "M"], input=b"hi",
                              capture_output=True, env=ENV, cwd=tmp_path, timeout=30,
                              check=False)
        same(theirs, mine)


def test_check_each_line_naming_standard_input_reads_it_anew(tmp_path: Path) -> None:
    manifest = tmp_path / "M"
    manifest.write_text(f"{digest('md5', b'hi')}  -\n{digest('md5', b'')}  -\n")
    theirs, mine = both([str(manifest)], input=b"hi", command="check")
    same(theirs, mine)
    assert mine.returncode == 0


def test_check_standard_input_named_beside_a_manifest_on_it_is_malformed(
    tmp_path: Path,
) -> None:
    (tmp_path / "S").write_text(f"{digest('md5', b'')}  -\n")
    proc = subprocess.run([*PARHASH, "check", "-w", "S", "-"], cwd=tmp_path,
                          input=f"{digest('md5', b'')}  /dev/null\n".encode(),
                          capture_output=True, env=ENV, timeout=30, check=False)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stdout == b"/dev/null: OK\n"
    assert proc.stderr.startswith(b"parhash: S: 1: improperly formatted checksum line\n")


def test_a_list_on_standard_input_and_dash_is_a_usage_error(tmp_path: Path) -> None:
    for name in ("-", "/dev/stdin"):
        proc = subprocess.run([*PARHASH, "scan", "--files-from", "-", name], input=b"x\n",
                              capture_output=True, env=ENV, timeout=30, check=False)
        assert proc.returncode == 2
        assert proc.stderr == (b"parhash: standard input can't be both the list of paths and "
                               b"a file to hash\nTry 'parhash scan --help' for more "
                               b"information.\n")


def test_a_list_on_a_fifo_with_the_bar_on_does_not_hang(fifo: Path, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    writer = _feed(fifo, f"{tmp_path}/a\n".encode())
    proc = subprocess.run([*PARHASH, "scan", "--progress", "-a", "md5", "--files-from",
                           str(fifo)], capture_output=True, env=ENV, timeout=30, check=False)
    writer.join(10)
    assert proc.returncode == 0
    assert proc.stdout == f"{digest('md5', b'a')}  {tmp_path}/a\n".encode()
