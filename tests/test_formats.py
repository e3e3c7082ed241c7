"""The registry of formats: each format's parser reads back what its writer writes."""

from __future__ import annotations

import hashlib
import os

import pytest

from parhash.cli import SCAN_FORMATS, scan
from parhash.formats import FORMATS, RecordFormat
from parhash.formats.entries import Entry, Malformed
from parhash.formats.names import FS_ENCODING, FS_ERRORS

# Names that need escaping, quoting or base64 in one format or another.
AWKWARD = [
    b"plain.txt",
    b"new\nline",
    b"back\\slash",
    b"carriage\rreturn",
    b"com,ma",
    b'quo"te',
    b"x) = y",
    b"\xff\xfenot-utf8",
    b'all\\of\n\r,"them\xff',
]


def end_of(fmt: str, zero: bool) -> bytes:
    return b"\0" if zero else b"\n"


def test_every_format_the_cli_offers_has_a_writer_and_a_parser() -> None:
    # No format flag gives GNU lines.
    offered = {fmt for _, fmt, _ in SCAN_FORMATS} | {"gnu"}
    assert offered == set(FORMATS)
    flags = {opt for p in scan.params for opt in p.opts}
    assert all(flag in flags for flag, _, _ in SCAN_FORMATS)
    for name, spec in FORMATS.items():
        assert spec.name == name
        assert callable(spec.writer) and callable(spec.parse)


@pytest.mark.parametrize("name", AWKWARD, ids=repr)
@pytest.mark.parametrize("zero", [False, True], ids=["lines", "zero"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_reads_back_the_name_and_digests_it_wrote(
    fmt: str, zero: bool, name: bytes
) -> None:
    spec = FORMATS[fmt]
    algos = ("sha256", "md5") if spec.multi_algo else ("sha256",)
    digests = [hashlib.new(a, name).hexdigest() for a in algos]
    path = os.fsdecode(name)
    data = RecordFormat(fmt, algos, zero).text(path, digests, len(name))
    written = data.encode(FS_ENCODING, FS_ERRORS)
    end = end_of(fmt, zero)
    assert written.endswith(end)
    # A BSD record is a line per algorithm; the others hold every digest.
    records = written.split(end)[:-1] if fmt == "bsd" else [written[: -len(end)]]
    parsed = [spec.parse(record, algos) for record in records]
    assert all(isinstance(p, Entry) and p.name == path for p in parsed), parsed
    assert [d for p in parsed if isinstance(p, Entry) for d in p.digests] == list(
        zip(algos, digests, strict=True)
    )


@pytest.mark.parametrize("fmt", sorted(f for f, spec in FORMATS.items() if spec.holds_errors))
def test_record_of_a_file_that_could_not_be_read_is_no_entry(fmt: str) -> None:
    records = RecordFormat(fmt, ("md5",))
    data = records.error_text("gone", os.strerror(2)).encode(FS_ENCODING, FS_ERRORS)
    assert isinstance(FORMATS[fmt].parse(data[: -len(end_of(fmt, False))], ("md5",)), Malformed)
