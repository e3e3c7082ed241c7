"""Hostile manifests for `check`: input that costs more than its size; names out of the root."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import assert_no_traceback, md5_of, run_parhash, write_files

# Reading a manifest costs time linear in its size. These shapes took time
# quadratic in the length of a record: minutes for a few megabytes, which the
# harness's timeout turns into a failure. Fixed, they take about a second.


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_csv_quote_left_open_before_two_megabytes_of_line_ends_is_one_malformed_line(
    tmp_path: Path, line_end: bytes
) -> None:
    # A quoted name may hold line ends, so the record runs on until its quote
    # closes or it passes 1 MiB. Counting the quotes of the whole record again
    # at each of its lines took 68 s for 500 KB.
    files = write_files(tmp_path / "t", [10, 20])
    first, second = sorted(files)

    def row(path: Path) -> bytes:
        return b"%s,%d,%s,\n" % (os.fsencode(path), len(files[path]), md5_of(path).encode())

    manifest = tmp_path / "MANIFEST.csv"
    hostile = b'"' + line_end * ((2 << 20) // len(line_end))
    manifest.write_bytes(b"path,size,md5,error\n" + row(first) + hostile + row(second))
    out = run_parhash(["check", "-w", manifest])
    assert_no_traceback(out)
    # What is left of the line ends after the first MiB are empty lines.
    assert out.stdout == b"%s: OK\n%s: OK\n" % (os.fsencode(first), os.fsencode(second)), out
    assert out.stderr.splitlines() == [
        f"parhash: {manifest}: 3: improperly formatted checksum line",
        "parhash: WARNING: 1 line is improperly formatted",
    ], out
    assert out.status == 0, out


# With --root DIR or --relative-to-manifest, a listed name that is absolute,
# climbs out with '..', or leads out through a symbolic link is not read:
# `FAILED open or read`, as md5sum says of a file it can't read, and
# `parhash: PATH: outside the root` on stderr.


@dataclass
class Fenced:
    root: Path
    manifest: Path  # in the root
    secret: Path  # outside it
    inside: list[str]  # listed names that stay in the root
    outside: list[str]  # listed names that leave it


@pytest.fixture
def fenced(tmp_path: Path) -> Fenced:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_bytes(b"inside")
    secret = tmp_path / "secret" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(b"outside")
    (root / "inlink").symlink_to("sub")  # stays in the root: md5sum users rely on these
    (root / "outlink").symlink_to(os.path.join("..", "secret"))
    (root / "abslink").symlink_to(secret.parent)
    (root / "filelink").symlink_to(secret)
    inside = ["sub/f", "sub/../sub/f", "inlink/f", "./sub//f"]
    outside = [
        "../secret/shadow",
        "sub/../../secret/shadow",
        str(secret),
        "outlink/shadow",
        "abslink/shadow",
        "filelink",
        "inlink/../../secret/shadow",
    ]
    digests = {name: md5_of(root / "sub" / "f") for name in inside}
    digests.update({name: md5_of(secret) for name in outside})
    manifest = root / "MD5SUMS"
    manifest.write_bytes(b"".join(
        f"{digest}  {name}\n".encode() for name, digest in digests.items()
    ))
    return Fenced(root, manifest, secret, inside, outside)


WAYS = ["root", "relative-to-manifest", "relative-to-manifest, stdin"]


def way_of_asking(fenced: Fenced, way: str) -> tuple[list[str], str, bytes | None]:
    """The arguments, the directory the names are joined to, and standard input."""
    if way == "root":
        return ["--root", str(fenced.root), str(fenced.manifest)], str(fenced.root), None
    if way == "relative-to-manifest":
        return ["--relative-to-manifest", str(fenced.manifest)], str(fenced.root), None
    # A manifest on standard input: its names are relative to the current directory.
    return ["--relative-to-manifest", "-"], "", fenced.manifest.read_bytes()


@pytest.mark.parametrize("way", WAYS)
def test_names_outside_the_root_are_refused_unread(fenced: Fenced, way: str) -> None:
    args, base, stdin = way_of_asking(fenced, way)
    out = run_parhash(["check", *args], cwd=fenced.root, input=stdin)
    assert_no_traceback(out)
    assert out.stdout.decode() == "".join(
        [f"{name}: OK\n" for name in fenced.inside]
        + [f"{name}: FAILED open or read\n" for name in fenced.outside]
    ), out
    assert out.stderr.splitlines() == [
        f"parhash: {os.path.join(base, name)}: outside the root" for name in fenced.outside
    ] + [f"parhash: WARNING: {len(fenced.outside)} listed files could not be read"], out
    assert out.status == 1, out


@pytest.mark.parametrize("option", ["--root", "--relative-to-manifest"])
def test_json_says_outside_the_root_and_gives_no_digest_of_what_is_outside(
    fenced: Fenced, option: str
) -> None:
    args = [option, str(fenced.root)] if option == "--root" else [option]
    out = run_parhash(["check", "--json", *args, fenced.manifest])
    assert_no_traceback(out)
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["status"] for r in records] == (
        ["ok"] * len(fenced.inside) + ["unreadable"] * len(fenced.outside)
    ), out
    for record, name in zip(records[len(fenced.inside) :], fenced.outside, strict=True):
        assert record["path"] == os.path.join(fenced.root, name)
        assert (record["error"], record["actual"]) == ("outside the root", None)
    assert md5_of(fenced.secret) not in [r["actual"] for r in records], out
    assert out.status == 1, out


@pytest.mark.parametrize("way", WAYS)
def test_allow_outside_root_reads_every_name_as_md5sum_would(fenced: Fenced, way: str) -> None:
    args, _, stdin = way_of_asking(fenced, way)
    out = run_parhash(["check", "--allow-outside-root", *args], cwd=fenced.root, input=stdin)
    assert_no_traceback(out)
    assert out.stdout.decode() == "".join(
        f"{name}: OK\n" for name in fenced.inside + fenced.outside
    ), out
    assert (out.stderr, out.status) == ("", 0), out
