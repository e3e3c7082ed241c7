"""Hostile manifests for `check`: input that costs more than its size."""

from __future__ import annotations

import os
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
