"""parhash against the real md5sum, sha*sum, b2sum and xxhsum, byte for byte.

The tools run on the same files, named in the order ``--sort`` writes them,
from the same directory, so that their whole output can be compared.
"""

from __future__ import annotations

import os

import pytest
from conftest import Tree, records, run, run_tool, tool

# parhash algorithm -> coreutils program printing the same GNU and BSD lines.
COREUTILS = {
    "md5": "md5sum",
    "sha1": "sha1sum",
    "sha224": "sha224sum",
    "sha256": "sha256sum",
    "sha384": "sha384sum",
    "sha512": "sha512sum",
    "blake2b": "b2sum",
}
# parhash algorithm -> xxhsum option whose default output is parhash's GNU line.
XXHSUM_GNU = {"xxh32": "-H0", "xxh64": "-H1", "xxh128": "-H2"}


def sorted_names(tree: Tree, plain_only: bool = False) -> list[bytes]:
    names = sorted(b"tree/" + rel for rel in tree.files)
    if plain_only:
        # xxhsum 0.8 does not escape names: compare it on names it prints as is.
        names = [n for n in names if not any(c in n for c in b"\\\n\r")]
    return names


@pytest.mark.parametrize("algo", list(COREUTILS))
def test_gnu_lines_equal_coreutils_output(algo: str, tree: Tree) -> None:
    program = tool(COREUTILS[algo])
    ours = run(["scan", "tree", "-a", algo, "--sort"], cwd=tree.root.parent)
    theirs = run_tool([program, "--", *sorted_names(tree)], cwd=tree.root.parent)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


@pytest.mark.parametrize("algo", ["md5", "sha256", "blake2b"])
@pytest.mark.parametrize("options", [["--tag"], ["-z"], ["--tag", "-z"]])
def test_tag_and_zero_lines_equal_coreutils_output(
    algo: str, options: list[str], tree: Tree
) -> None:
    program = tool(COREUTILS[algo])
    ours = run(["scan", "tree", "-a", algo, "--sort", *options], cwd=tree.root.parent)
    theirs = run_tool([program, *options, "--", *sorted_names(tree)], cwd=tree.root.parent)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


@pytest.mark.parametrize("algo", ["md5", "sha256", "sha512", "blake2b"])
@pytest.mark.parametrize("tag", [False, True])
def test_coreutils_check_verifies_the_manifest_parhash_writes(
    algo: str, tag: bool, tree: Tree
) -> None:
    program = tool(COREUTILS[algo])
    manifest = tree.root.parent / "SUMS"
    ours = run(
        ["scan", "tree", "-a", algo, "-o", manifest, *(["--tag"] if tag else [])],
        cwd=tree.root.parent,
    )
    assert ours.returncode == 0, ours.stderr
    check = run_tool([program, "--check", "--strict", manifest], cwd=tree.root.parent)
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(records(check.stdout)) == len(tree.files)
    assert check.stdout.count(b": OK\n") == len(tree.files)


def test_coreutils_check_catches_a_changed_file_in_parhash_manifest(tree: Tree) -> None:
    program = tool("md5sum")
    manifest = tree.root.parent / "MD5SUMS"
    ours = run(["scan", "tree", "-a", "md5", "-o", manifest], cwd=tree.root.parent)
    assert ours.returncode == 0, ours.stderr
    with open(tree.path(b"new\nline"), "ab") as f:
        f.write(b"changed")
    check = run_tool([program, "-c", manifest], cwd=tree.root.parent)
    assert check.returncode == 1
    assert b"\\tree/new\\nline: FAILED\n" in check.stdout


@pytest.mark.parametrize("algo", list(XXHSUM_GNU))
def test_xxh_gnu_lines_equal_xxhsum(algo: str, tree: Tree) -> None:
    program = tool("xxhsum")
    names = sorted_names(tree, plain_only=True)
    ours = run(["scan", *names, "-a", algo, "--sort"], cwd=tree.root.parent)
    theirs = run_tool([program, XXHSUM_GNU[algo], "--", *names], cwd=tree.root.parent)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


def test_xxh3_tag_lines_equal_xxhsum_h3(tree: Tree) -> None:
    program = tool("xxhsum")
    names = sorted_names(tree, plain_only=True)
    ours = run(["scan", *names, "-a", "xxh3", "--tag", "--sort"], cwd=tree.root.parent)
    theirs = run_tool([program, "-H3", "--", *names], cwd=tree.root.parent)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


@pytest.mark.parametrize("algo", ["xxh64", "xxh128"])
def test_xxhsum_check_verifies_the_manifest_parhash_writes(algo: str, tree: Tree) -> None:
    program = tool("xxhsum")
    names = sorted_names(tree, plain_only=True)
    manifest = tree.root.parent / "XXHSUMS"
    ours = run(["scan", *names, "-a", algo, "-o", manifest], cwd=tree.root.parent)
    assert ours.returncode == 0, ours.stderr
    check = run_tool([program, "-c", manifest], cwd=tree.root.parent)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(b": OK\n") == len(names)


def test_non_utf8_name_is_printed_as_md5sum_prints_it(tree: Tree) -> None:
    program = tool("md5sum")
    name = os.path.join(b"tree", b"latin1-\xe9\xff")
    ours = run(["scan", name, "-a", "md5"], cwd=tree.root.parent)
    theirs = run_tool([program, name], cwd=tree.root.parent)
    assert ours.stdout == theirs.stdout
    assert name in ours.stdout
