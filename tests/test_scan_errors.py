"""Errors and usage: md5sum's wording and quoting, exit statuses, -V, --list-algos."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import (
    AWKWARD_NAMES,
    NO_DAC,
    REFERENCE,
    Tree,
    digest,
    gnu_line,
    no_traceback,
    records,
    run,
    run_tool,
    tool,
)

import parhash
from parhash.cli import cli


def invoke(*args: str | os.PathLike[str]):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, [*map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_unreadable_file_is_reported_and_the_rest_is_hashed(tree: Tree) -> None:
    secret = tree.path(b"plain.txt")
    os.chmod(secret, 0)
    try:
        proc = run(["scan", "tree", "-a", "md5"], cwd=tree.root.parent, prefix=NO_DAC)
    finally:
        os.chmod(secret, 0o644)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stderr == b"parhash: tree/plain.txt: Permission denied\n"
    rest = {rel: data for rel, data in tree.files.items() if rel != b"plain.txt"}
    assert set(records(proc.stdout)) == {
        gnu_line(digest("md5", data), b"tree/" + rel) for rel, data in rest.items()
    }


def test_unreadable_file_through_the_pool(many: Tree) -> None:
    secret = many.path(b"d0/f000")
    os.chmod(secret, 0)
    try:
        proc = run(
            ["scan", many.root, "-a", "md5", "-j", "2", "--chunksize", "4"], prefix=NO_DAC
        )
    finally:
        os.chmod(secret, 0o644)
    no_traceback(proc.stderr)
    assert proc.returncode == 1
    assert proc.stderr == b"parhash: %s: Permission denied\n" % secret
    assert len(records(proc.stdout)) == len(many.files) - 1


def test_missing_files_are_quoted_as_md5sum_quotes_them(tmp_path: Path) -> None:
    tool("md5sum")
    names = [n for n in AWKWARD_NAMES if b"/" not in n] + [
        b"#lead", b"~tilde", b"{", b"a:b", b"-dash", b"it's", b"a\x01b", b"\xc3",
    ]
    ours = run(["scan", "-a", "md5", "--", *names], cwd=tmp_path)
    theirs = run_tool(["md5sum", "--", *names], cwd=tmp_path)  # its argv[0] starts each line
    no_traceback(ours.stderr)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stdout == theirs.stdout == b""
    assert ours.stderr.replace(b"parhash: ", b"md5sum: ") == theirs.stderr


def test_missing_file_exits_1_and_the_rest_is_hashed(tree: Tree) -> None:
    result = invoke("scan", tree.root / "nope", tree.root / "empty", "-a", "md5")
    assert result.exit_code == 1
    assert result.stderr == f"parhash: {tree.root}/nope: No such file or directory\n"
    assert result.stdout_bytes == gnu_line(digest("md5", b""), tree.path(b"empty"))


def test_directory_error_wording_matches_md5sum_for_a_file_that_is_a_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "f").write_bytes(b"f")
    result = invoke("scan", tmp_path / "f" / "x")
    assert result.exit_code == 1
    assert result.stderr == f"parhash: {tmp_path}/f/x: Not a directory\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["-j", "0"], "Invalid value for '-j' / '--jobs'"),
        (["--jobs", "-3"], "Invalid value for '-j' / '--jobs'"),
        (["--chunksize", "0"], "Invalid value for '--chunksize'"),
        (["--block-size", "0"], "Invalid value for '--block-size'"),
        (["--block-size", "lots"], "Invalid value for '--block-size'"),
        (["-a", "crc99"], "unknown algorithm 'crc99'"),
        (["-a", "md5,nope"], "unknown algorithm 'nope'"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_usage_errors_exit_2_with_a_one_line_message(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = invoke("scan", tmp_path, *args)
    assert result.exit_code == 2
    assert result.stdout_bytes == b""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]


def test_usage_error_through_python_dash_m_has_no_traceback(tmp_path: Path) -> None:
    for args in (["-j", "0"], ["--chunksize", "0"], ["--block-size", "0"], ["-a", "nope"]):
        proc = run(["scan", tmp_path, *args])
        no_traceback(proc.stderr)
        assert proc.returncode == 2
        assert proc.stdout == b""
        # As coreutils words a usage error: the message, then where to look.
        message, hint = proc.stderr.decode().splitlines()
        assert message.startswith("parhash: ") and not message.endswith(".")
        assert hint == "Try 'parhash scan --help' for more information."


def test_version_flag_prints_the_version() -> None:
    for flag in ("-V", "--version"):
        result = invoke(flag)
        assert result.exit_code == 0
        assert result.output == f"parhash, version {parhash.__version__}\n"


def test_list_algos_lists_every_algorithm_and_exits(tmp_path: Path) -> None:
    result = invoke("scan", "--list-algos", tmp_path / "not-scanned")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines()]
    assert listed == list(REFERENCE)


def test_algorithm_names_are_case_insensitive_with_aliases(tree: Tree) -> None:
    path = tree.root / "plain.txt"
    for spelling in ("SHA3_256", "sha3-256"):
        result = invoke("scan", path, "-a", spelling)
        assert result.exit_code == 0
        assert result.stdout_bytes == gnu_line(
            digest("sha3-256", tree.files[b"plain.txt"]), tree.path(b"plain.txt")
        )


def test_python_api_rejects_bad_arguments_before_any_work(tmp_path: Path) -> None:
    for kwargs in ({"jobs": 0}, {"chunksize": 0}, {"block_size": 0}, {"algos": ()}):
        with pytest.raises(ValueError):
            parhash.scan([str(tmp_path)], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(parhash.UnknownAlgorithm):
        parhash.scan([str(tmp_path)], algos=("nope",))


@pytest.mark.parametrize(
    ("args", "ours", "md5sum_args"),
    [
        (["scan", "--bogus"], "unrecognized option '--bogus'", ["--bogus"]),
        (["scan", "-x"], "invalid option -- 'x'", ["-x"]),
    ],
)
def test_usage_errors_read_as_md5sum_s(args: list[str], ours: str, md5sum_args: list[str]) -> None:
    proc = run(args)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        f"parhash: {ours}", f"Try 'parhash {args[0]} --help' for more information."
    ]
    if shutil.which("md5sum") is None:
        pytest.fail("md5sum (coreutils) is needed to compare with")
    theirs = subprocess.run(["md5sum", *md5sum_args], capture_output=True, stdin=subprocess.DEVNULL)
    assert theirs.returncode == 1  # coreutils' status for a usage error of md5sum
    assert theirs.stderr.decode().splitlines() == [
        f"md5sum: {ours}", "Try 'md5sum --help' for more information."
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["scan", "-a"], "option requires an argument -- 'a'"),
        (["check", "--algo"], "option '--algo' requires an argument"),
        (["scan", "--json", "--csv"], "--json and --csv exclude each other"),
        (["scan", "--tag", "--json"], "--tag and --json exclude each other"),
        (["dupes", "--csv", "--json"], "--json and --csv exclude each other"),
    ],
)
def test_usage_errors_say_what_is_wrong_and_where_to_look(args: list[str], line: str) -> None:
    proc = run(args)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        f"parhash: {line}", f"Try 'parhash {args[0]} --help' for more information."
    ]
