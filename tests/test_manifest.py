"""Lines and names as coreutils writes them, and manifests read as they stream in."""

from __future__ import annotations

import io
import os

import pytest
from conftest import bsd_line, gnu_line
from hypothesis import example, given, settings
from hypothesis import strategies as st

from parhash.formats.bsd import format_bsd
from parhash.formats.gnu import format_gnu
from parhash.formats.names import escape_name

MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"


def unescape(name: bytes) -> bytes:
    """What `md5sum -c` reads back from an escaped name."""
    out = bytearray()
    i = 0
    while i < len(name):
        if name[i : i + 1] == b"\\":
            out += {b"\\": b"\\", b"n": b"\n", b"r": b"\r"}[name[i + 1 : i + 2]]
            i += 2
        else:
            out += name[i : i + 1]
            i += 1
    return bytes(out)


@pytest.mark.parametrize(
    "name, line",
    [
        (b"a", b"d41d8cd98f00b204e9800998ecf8427e  a\n"),
        (b"a b", b"d41d8cd98f00b204e9800998ecf8427e  a b\n"),
        (b"a\\b", b"\\d41d8cd98f00b204e9800998ecf8427e  a\\\\b\n"),
        (b"a\nb", b"\\d41d8cd98f00b204e9800998ecf8427e  a\\nb\n"),
        (b"a\rb", b"\\d41d8cd98f00b204e9800998ecf8427e  a\\rb\n"),
        (b"a\tb", b"d41d8cd98f00b204e9800998ecf8427e  a\tb\n"),
        (b"\xff", b"d41d8cd98f00b204e9800998ecf8427e  \xff\n"),
    ],
)
def test_format_gnu_escapes_as_coreutils(name: bytes, line: bytes) -> None:
    assert format_gnu(MD5_EMPTY, os.fsdecode(name)) == line


def test_format_bsd_escapes_as_md5sum_tag() -> None:
    assert format_bsd("MD5", MD5_EMPTY, "a\nb") == bsd_line("md5", MD5_EMPTY, b"a\nb")
    assert format_bsd("MD5", MD5_EMPTY, "a\nb") == b"\\MD5 (a\\nb) = " + MD5_EMPTY.encode() + b"\n"


def test_zero_terminated_lines_are_never_escaped() -> None:
    assert format_gnu(MD5_EMPTY, "a\\\nb", zero=True) == MD5_EMPTY.encode() + b"  a\\\nb\0"
    assert format_bsd("MD5", MD5_EMPTY, "a\nb", zero=True) == (
        b"MD5 (a\nb) = " + MD5_EMPTY.encode() + b"\0"
    )


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b))
def test_escaped_names_read_back_to_the_same_bytes(name: bytes) -> None:
    line = format_gnu(MD5_EMPTY, os.fsdecode(name))
    assert line == gnu_line(MD5_EMPTY, name)
    assert line.count(b"\n") == 1  # one record, one line
    escaped, needed = escape_name(name)
    assert needed == line.startswith(b"\\")
    assert unescape(escaped) == name


# Lines built from the pieces that decide how a checksum line is read: digests
# of the lengths the algorithms have (and wrong ones), both separators, blanks,
# stars, backslashes, NUL, CR and LF in names, and what md5 -r writes.
_DIGESTS = st.sampled_from([MD5_EMPTY, MD5_EMPTY.upper(), MD5_EMPTY[:31], "ab" * 20,
                            "ab" * 32, "ab" * 16 + "g", "", "x" * 32])
_SEPARATORS = st.sampled_from([b"  ", b" *", b" ", b"\t", b"*", b"   ", b" **"])
_NAME_BYTES = st.lists(st.sampled_from([b"a", b" ", b"*", b"\\", b"\r", b"\n", b"\0", b"\xff",
                                        b"(", b")", b"=", b"#", b"{"]), max_size=6)


@given(_DIGESTS, _SEPARATORS, _NAME_BYTES, st.sampled_from([b"", b"\n", b"\r\n", b"\r"]),
       st.sampled_from([None, "md5", "sha1", "sha256"]), st.sampled_from([None, False, True]))
@example(MD5_EMPTY, b"  ", [b"a"], b"\n", None, True)  # after md5 -r lines the blank is the name's
@settings(max_examples=1000)
def test_plain_lines_read_as_the_step_by_step_reading_does(
    digest: str, separator: bytes, name: list[bytes], end: bytes, algo: str | None,
    reversed: bool | None,
) -> None:
    from parhash.manifest import _parse_trimmed, parse_line

    line = digest.encode() + separator + b"".join(name) + end
    trimmed = line[:-1] if line.endswith(b"\n") else line
    trimmed = trimmed[:-1] if trimmed.endswith(b"\r") else trimmed
    assert parse_line(line, algo=algo, reversed=reversed) == _parse_trimmed(trimmed, algo, reversed)


# Reading a manifest as it streams in: a pipe hands over whatever has been
# written, as little as a byte at a time.


class Trickle:
    """A manifest source whose reads return the sizes given in turn (then 1)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data = data
        self.sizes = sizes
        self.reads = 0
        self.offset = 0

    def read(self, size: int = -1, /) -> bytes:
        n = self.sizes[self.reads] if self.reads < len(self.sizes) else 1
        self.reads += 1
        self.offset += n
        return self.data[self.offset - n : self.offset]


_PIECES = st.lists(st.sampled_from([
    b"\n", b"\r\n", b"\0", b'"', b'""', b",", b"a", b" ", b"\t", b"\\", b"#",
    MD5_EMPTY.encode() + b"  ", b"MD5 (", b") = " + MD5_EMPTY.encode(), b'{"path": "p", "md5": "',
    b'",1,' + MD5_EMPTY.encode() + b",\n",
]), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_PIECES, st.lists(st.integers(1, 9), max_size=60), st.booleans(), st.booleans())
def test_read_manifest_reads_the_same_however_the_reads_cut_it(
    pieces: list[bytes], sizes: list[int], csv: bool, zero: bool
) -> None:
    from parhash.manifest import read_manifest

    data = (b"path,size,md5,error\n" if csv else b"") + b"".join(pieces)
    whole = list(read_manifest(io.BytesIO(data), zero=zero))
    assert list(read_manifest(Trickle(data, sizes), zero=zero)) == whole


def test_long_line_read_a_byte_at_a_time_is_one_entry() -> None:
    from parhash.formats.entries import Entry
    from parhash.manifest import read_manifest

    name = b"n" * (1 << 18)
    line = MD5_EMPTY.encode() + b"  " + name + b"\n"
    source = Trickle(line + line, [])
    assert list(read_manifest(source, max_line=len(line))) == [
        (1, Entry(os.fsdecode(name), (("md5", MD5_EMPTY),), False)),
        (2, Entry(os.fsdecode(name), (("md5", MD5_EMPTY),), False)),
    ]
    assert source.reads == 2 * len(line) + 1


@pytest.mark.parametrize("blanks", [b" ", b"\t", b" \t"])
def test_line_of_only_blanks_is_malformed_however_long(blanks: bytes) -> None:
    from parhash.formats.entries import Malformed
    from parhash.manifest import parse_line

    assert isinstance(parse_line(blanks * (1 << 19) + b"\n"), Malformed)
    line = blanks * (1 << 19) + MD5_EMPTY.encode() + b"  f\n"
    parsed = parse_line(line)
    assert parsed is not None and not isinstance(parsed, Malformed)
    assert (parsed.name, parsed.digests) == ("f", (("md5", MD5_EMPTY),))


@pytest.mark.parametrize(
    "record, fields",
    [
        (b"", [b""]),
        (b"a,,b,", [b"a", b"", b"b", b""]),
        (b'"a,b",c', [b"a,b", b"c"]),
        (b'"a""b",""', [b'a"b', b""]),
        (b'a"b,c', None),
        (b'"a"b', None),
        (b'"a', None),
        (b"," * 100_000, [b""] * 100_001),
    ],
)
def test_split_csv_reads_rfc_4180_records(record: bytes, fields: list[bytes] | None) -> None:
    from parhash.formats.csv import split_csv

    assert split_csv(record) == fields
