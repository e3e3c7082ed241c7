"""Every output format on the awkward tree: GNU, --tag, --json, --csv, -z, --sort, -o."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import (
    BSD_TAGS,
    ENV,
    PARHASH,
    Tree,
    bsd_line,
    digest,
    gnu_line,
    no_traceback,
    records,
    run,
)

from parhash import report
from parhash.cli import cli


def scan(*args: str | os.PathLike[str], input: bytes | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, ["scan", *map(str, args)], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def name_of(tree: Tree, rel: bytes) -> bytes:
    return tree.broot + b"/" + rel


def test_gnu_lines_escape_backslash_newline_and_cr_as_coreutils(tree: Tree) -> None:
    code, out, err = scan(tree.root, "-a", "md5")
    assert (code, err) == (0, "")
    assert len(records(out)) == len(tree.files)
    assert set(records(out)) == tree.expected_gnu("md5", tree.broot + b"/")
    # Spot checks of the rule itself, on the bytes.
    assert b"\\" + digest("md5", tree.files[b"new\nline"]).encode() + b"  " in out
    assert b"/new\\nline\n" in out
    assert b"/carriage\\rreturn\n" in out
    assert b"/back\\\\slash\n" in out
    assert b"/tab\there\n" in out  # a tab is not escaped
    assert b"/latin1-\xe9\xff\n" in out  # the name's own bytes


def test_default_algorithm_is_sha256(tree: Tree) -> None:
    code, out, _ = scan(tree.root)
    assert code == 0
    assert set(records(out)) == tree.expected_gnu("sha256", tree.broot + b"/")


@pytest.mark.parametrize("algo", list(BSD_TAGS))
def test_tag_lines_carry_the_coreutils_and_xxhsum_tag(algo: str, tree: Tree) -> None:
    code, out, _ = scan(tree.root, "-a", algo, "--tag")
    assert code == 0
    assert set(records(out)) == {
        bsd_line(algo, digest(algo, data), name_of(tree, rel)) for rel, data in tree.files.items()
    }


def test_tag_lines_with_several_algorithms_give_one_line_per_algorithm(tree: Tree) -> None:
    algos = ["md5", "sha256", "xxh3"]
    code, out, _ = scan(tree.root, "-a", "md5,sha256", "-a", "xxh3", "--tag")
    assert code == 0
    assert set(records(out)) == {
        bsd_line(a, digest(a, data), name_of(tree, rel))
        for rel, data in tree.files.items()
        for a in algos
    }


def test_json_lines_hold_path_size_and_every_digest(tree: Tree) -> None:
    code, out, _ = scan(tree.root, "--json", "-a", "sha256,md5")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == len(tree.files)
    by_path = {os.fsencode(o["path"]): o for o in objects}
    for rel, data in tree.files.items():
        o = by_path[name_of(tree, rel)]
        assert o["size"] == len(data)
        assert o["sha256"] == digest("sha256", data)
        assert o["md5"] == digest("md5", data)


def test_json_round_trips_a_name_that_is_not_utf8(tree: Tree) -> None:
    code, out, _ = scan(tree.root / "latin1-*", "--json")  # a glob, so the argv is ASCII
    assert code == 0
    (line,) = out.splitlines()
    assert line.isascii()  # valid JSON for any reader
    o = json.loads(line)
    raw = name_of(tree, b"latin1-\xe9\xff")
    # Python readers: surrogate escapes give back the bytes.
    assert os.fsencode(o["path"]) == raw
    # Any reader: the bytes in base64.
    assert base64.b64decode(o["path_b64"]) == raw
    with open(os.fsencode(o["path"]), "rb") as f:
        assert o["sha256"] == digest("sha256", f.read())


def test_json_path_b64_only_for_names_that_are_not_utf8(tree: Tree) -> None:
    code, out, _ = scan(tree.root, "--json")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    with_b64 = [o["path"] for o in objects if "path_b64" in o]
    assert [os.fsencode(p) for p in with_b64] == [name_of(tree, b"latin1-\xe9\xff")]


def test_json_reports_errors_as_objects(tree: Tree) -> None:
    code, out, err = scan(tree.root / "plain.txt", tree.root / "missing", "--json")
    assert code == 1
    objects = [json.loads(line) for line in out.splitlines()]
    assert {"path": str(tree.root / "missing"), "error": "No such file or directory"} in objects
    assert f"parhash: {tree.root / 'missing'}: No such file or directory" in err


def test_csv_has_a_header_then_one_row_per_file(tree: Tree) -> None:
    code, out, _ = scan(tree.root, "--csv", "-a", "md5,xxh64")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.decode("utf-8", "surrogateescape"), newline="")))
    assert rows[0] == ["path", "size", "md5", "xxh64", "error"]
    body = {os.fsencode(r[0]): r[1:] for r in rows[1:]}
    assert len(rows) - 1 == len(body) == len(tree.files)
    for rel, data in tree.files.items():
        assert body[name_of(tree, rel)] == [
            str(len(data)), digest("md5", data), digest("xxh64", data), ""
        ]


def test_csv_rows_for_errors_leave_digests_empty(tmp_path: Path) -> None:
    code, out, _ = scan(tmp_path / "gone", "--csv")
    assert code == 1
    assert out == b"path,size,sha256,error\n" + str(tmp_path / "gone").encode() + (
        b",,,No such file or directory\n"
    )


@pytest.mark.parametrize("tag", [False, True])
def test_zero_ends_records_with_nul_and_escapes_nothing(tag: bool, tree: Tree) -> None:
    code, out, _ = scan(tree.root, "-a", "md5", "-z", *(["--tag"] if tag else []))
    assert code == 0
    expected = set()
    for rel, data in tree.files.items():
        hexdigest, name = digest("md5", data).encode(), name_of(tree, rel)
        if tag:
            expected.add(b"MD5 (" + name + b") = " + hexdigest + b"\0")
        else:
            expected.add(hexdigest + b"  " + name + b"\0")
    assert set(records(out, b"\0")) == expected


def test_zero_with_json_and_csv_ends_records_with_nul(tree: Tree) -> None:
    code, out, _ = scan(tree.root, "--json", "-z")
    assert code == 0
    objects = [json.loads(r[:-1]) for r in records(out, b"\0")]
    assert {os.fsencode(o["path"]) for o in objects} == {name_of(tree, r) for r in tree.files}
    code, out, _ = scan(tree.root, "--csv", "-z")
    assert code == 0
    assert len(records(out, b"\0")) == len(tree.files) + 1
    assert b"\r\n" not in out


def test_sort_writes_in_byte_order_of_the_path(many: Tree) -> None:
    proc = run(["scan", many.root, "--sort", "-a", "md5", "-j", "2", "--chunksize", "4"])
    assert proc.returncode == 0, proc.stderr
    expected = [
        gnu_line(digest("md5", many.files[rel]), many.broot + b"/" + rel)
        for rel in sorted(many.files)
    ]
    assert records(proc.stdout) == expected


@pytest.mark.parametrize("fmt", [[], ["-z"]])
def test_several_algorithms_are_refused_for_gnu_lines(fmt: list[str], tree: Tree) -> None:
    code, out, err = scan(tree.root, "-a", "md5,sha1", *fmt)
    assert code == 2
    assert out == b""
    assert "use --tag, --json or --csv" in err


def test_output_file_holds_what_stdout_would(tree: Tree, tmp_path: Path) -> None:
    code, out, _ = scan(tree.root, "--sort", "-a", "md5")
    assert code == 0
    target = tmp_path / "MD5SUMS"
    code, nothing, _ = scan(tree.root, "--sort", "-a", "md5", "-o", target)
    assert (code, nothing) == (0, b"")
    assert target.read_bytes() == out
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MD5SUMS", "tree"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_output_into_a_missing_directory_fails_and_creates_nothing(
    tree: Tree, tmp_path: Path
) -> None:
    code, out, err = scan(tree.root, "-o", tmp_path / "no" / "such" / "SUMS")
    assert code == 1
    assert out == b""
    assert err == f"parhash: cannot write to '{tmp_path}/no/such/SUMS': No such file or directory\n"
    assert not (tmp_path / "no").exists()


def test_output_onto_a_directory_fails_and_leaves_it_alone(tmp_path: Path, tree: Tree) -> None:
    target = tmp_path / "manifests"
    target.mkdir()
    proc = run(["scan", tree.root, "-o", target])
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stderr == f"parhash: cannot write to '{target}': Is a directory\n".encode()
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifests", "tree"]


def test_interrupted_run_leaves_the_existing_manifest_untouched(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "SUMS"
    target.write_bytes(b"the old manifest\n")
    write_tasks = report.write_tasks

    def interrupted(results, out, records, **options):  # type: ignore[no-untyped-def]
        write_tasks(iter([next(iter(results))]), out, records, **options)
        out.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_tasks", interrupted)
    code, out, _ = scan(tree.root, "-o", target)
    assert code == 130
    assert target.read_bytes() == b"the old manifest\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SUMS", "tree"]


def test_output_file_inside_the_scanned_tree_is_not_listed(tree: Tree, chdir) -> None:
    chdir(tree.root)
    for _ in range(2):  # the second run finds the first run's manifest
        code, _, _ = scan(".", "-a", "md5", "-o", "MD5SUMS")
        assert code == 0
        listed = Path("MD5SUMS").read_bytes()
        assert set(records(listed)) == tree.expected_gnu("md5", b"./")


def test_stdout_redirected_into_the_scanned_tree_is_not_listed(tree: Tree) -> None:
    with open(tree.root / "MD5SUMS", "wb") as out:
        proc = subprocess.run(
            [*PARHASH, "scan", ".", "-a", "md5"],
            cwd=tree.root, stdout=out, stderr=subprocess.PIPE, env=ENV, check=False,
        )
    assert proc.returncode == 0, proc.stderr
    listed = (tree.root / "MD5SUMS").read_bytes()
    assert set(records(listed)) == tree.expected_gnu("md5", b"./")


def test_output_through_a_symlink_replaces_the_file_it_names(tree: Tree, tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"old\n")
    (tmp_path / "link").symlink_to("real")
    code, _, _ = scan(tree.root / "plain.txt", "-a", "md5", "-o", tmp_path / "link")
    assert code == 0
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real").read_bytes() == gnu_line(
        digest("md5", tree.files[b"plain.txt"]), name_of(tree, b"plain.txt")
    )


def test_output_to_a_fifo_writes_into_it_and_keeps_it(tree: Tree, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        proc = run(["scan", tree.root / "plain.txt", "-a", "md5", "-o", fifo], timeout=20)
    finally:
        reader.join(timeout=5)
        if reader.is_alive():  # nobody wrote into the FIFO: release the reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(timeout=5)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received == [
        gnu_line(digest("md5", tree.files[b"plain.txt"]), name_of(tree, b"plain.txt"))
    ]


def test_progress_bar_writes_nothing_to_stdout(many: Tree) -> None:
    quiet = run(["scan", many.root, "--sort", "--no-progress"])
    shown = run(["scan", many.root, "--sort", "--progress"])
    assert quiet.returncode == shown.returncode == 0
    assert shown.stdout == quiet.stdout
    assert quiet.stderr == b""
    assert b"hashing" in shown.stderr


def test_no_progress_bar_means_tqdm_is_never_imported(tree: Tree) -> None:
    # parhash leaves through os._exit once everything is written: the probe
    # runs there.
    code = (
        "import os, runpy, sys; leave = os._exit;"
        "os._exit = lambda rc: (print('tqdm' in sys.modules, file=sys.stderr), leave(rc));"
        f"sys.argv = ['parhash', 'scan', '--no-progress', {str(tree.root)!r}];"
        "runpy.run_module('parhash', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=ENV, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b"False\n"


def test_output_replacing_a_manifest_keeps_its_mode(tree: Tree, tmp_path: Path) -> None:
    manifest = tmp_path / "SUMS"
    manifest.write_bytes(b"old\n")
    manifest.chmod(0o640)
    code, _, _ = scan(tree.root / "plain.txt", "-a", "md5", "-o", manifest)
    assert code == 0
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o640
    assert manifest.read_bytes() != b"old\n"


def test_csv_rows_end_in_lf_so_cut_and_awk_see_a_row_a_line(tmp_path: Path) -> None:
    for name in ("a", "b b", "c"):
        (tmp_path / name).write_bytes(name.encode())
    code, out, _ = scan(tmp_path, "-a", "md5", "--sort", "--csv")
    assert code == 0 and b"\r" not in out
    cut = subprocess.run(["cut", "-d,", "-f1,3"], input=out, capture_output=True, check=True)
    assert cut.stdout.decode().splitlines() == ["path,md5"] + [
        f"{tmp_path}/{name},{digest('md5', name.encode())}" for name in ("a", "b b", "c")
    ]
    # Read back by check, and by check as RFC 4180 with CRLF.
    for manifest in (out, out.replace(b"\n", b"\r\n")):
        (tmp_path / "M.csv").write_bytes(manifest)
        result = CliRunner().invoke(cli, ["check", str(tmp_path / "M.csv")])
        assert result.exit_code == 0, result.output
        assert result.stdout.count(": OK\n") == 3
