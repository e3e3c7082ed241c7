"""The format writers and report.py's task writer on hand-made results, and the error tally."""

from __future__ import annotations

import io
import json

import pytest

from parhash.formats import FORMATS, MULTI_ALGO_FORMATS, RecordFormat
from parhash.report import Output, ReportOptions, error_line, write_tasks
from parhash.results import Result

OK = Result("dir/a b", {"md5": "0" * 32, "sha1": "1" * 40}, 3, 1, 2, 3)
ESCAPED = Result("dir/x\ny", {"md5": "2" * 32, "sha1": "3" * 40}, 0, 1, 2, 4)
FAILED = Result("gone", {}, error="No such file or directory", errno=2)


def write(fmt: str, results: list[Result], algos: tuple[str, ...], zero: bool = False) -> bytes:
    buffer = io.BytesIO()
    out = Output(buffer)  # type: ignore[arg-type]
    FORMATS[fmt].write(results, out, ReportOptions(algos, zero))
    out.flush()
    return buffer.getvalue()


def test_every_format_has_one_writer() -> None:
    assert set(FORMATS) == {"gnu", "bsd", "json", "csv"}
    assert frozenset({"bsd", "json", "csv"}) == MULTI_ALGO_FORMATS


def test_gnu_writer_leaves_errors_to_stderr() -> None:
    assert write("gnu", [OK, FAILED, ESCAPED], ("md5",)) == (
        b"00000000000000000000000000000000  dir/a b\n"
        b"\\22222222222222222222222222222222  dir/x\\ny\n"
    )


def test_gnu_writer_refuses_several_algorithms() -> None:
    with pytest.raises(ValueError):
        write("gnu", [OK], ("md5", "sha1"))


def test_bsd_writer_gives_one_line_per_algorithm() -> None:
    assert write("bsd", [OK, FAILED], ("md5", "sha1")) == (
        b"MD5 (dir/a b) = 00000000000000000000000000000000\n"
        b"SHA1 (dir/a b) = 1111111111111111111111111111111111111111\n"
    )


def test_json_writer_holds_errors_and_every_algorithm() -> None:
    lines = write("json", [OK, FAILED], ("md5", "sha1")).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"path": "dir/a b", "size": 3, "md5": "0" * 32, "sha1": "1" * 40},
        {"path": "gone", "error": "No such file or directory"},
    ]


def test_csv_writer_quotes_fields_that_need_it() -> None:
    assert write("csv", [OK, ESCAPED, FAILED], ("md5",)) == (
        b"path,size,md5,error\n"
        b"dir/a b,3," + b"0" * 32 + b",\n"
        b'"dir/x\ny",0,' + b"2" * 32 + b",\n"
        b"gone,,,No such file or directory\n"
    )


def test_csv_doubles_quotes_in_names() -> None:
    r = Result('say "hi", then', {"md5": "0" * 32}, 1)
    assert write("csv", [r], ("md5",)).splitlines()[1] == b'"say ""hi"", then",1,' + (
        b"0" * 32 + b","
    )


def test_task_results_are_written_counted_and_their_errors_reported() -> None:
    from parhash.tasks import TaskResult

    records = RecordFormat("gnu", ("md5",))
    buffer, err = io.BytesIO(), io.StringIO()
    counts = write_tasks(
        [TaskResult(b"A  a\n", b"", 1, 2), TaskResult(b"B  b\n", ERROR_LINE, 1, 1, 1)],
        Output(buffer), records, err=err,
    )
    assert buffer.getvalue() == b"A  a\nB  b\n"
    assert (counts.files, counts.bytes, counts.errors) == (2, 3, 1)
    assert err.getvalue() == ERROR_LINE.decode()


def test_sorted_task_records_are_written_in_byte_order_of_the_name_at_the_end() -> None:
    from parhash.tasks import TaskResult

    buffer = io.BytesIO()
    write_tasks(
        [TaskResult(records=[(b"b", "2  b\n"), (b"a\xff", "3  a\udcff\n")]),
         TaskResult(records=[(b"a", "1  a\n")])],
        Output(buffer), RecordFormat("gnu", ("md5",)), sort=True, err=io.StringIO(),
    )
    assert buffer.getvalue() == b"1  a\n3  a\xff\n2  b\n"


ERROR_LINE = b"parhash: gone: No such file or directory\n"


def test_error_line_quotes_the_name() -> None:
    assert error_line("parhash", "a\nb", "Permission denied") == (
        "parhash: 'a'$'\\n''b': Permission denied\n"
    )


def test_writers_print_each_record_as_it_arrives() -> None:
    # A writer must not collect the stream first: the second result is not
    # computed until the first record is out.
    buffer = io.BytesIO()
    seen: list[int] = []

    def results():  # type: ignore[no-untyped-def]
        yield OK
        seen.append(len(buffer.getvalue()))
        yield ESCAPED

    out = Output(buffer, interval=0)  # type: ignore[arg-type]
    for fmt in ("gnu", "bsd", "json", "csv"):
        buffer.seek(0)
        buffer.truncate()
        seen.clear()
        FORMATS[fmt].write(results(), out, ReportOptions(("md5",)))
        assert seen and seen[0] > 0, fmt


class _Recorder(io.RawIOBase):
    """A raw stream that keeps each write(2)-level call, to see when a buffer flushes."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        self.calls.append(bytes(data))
        return len(data)


def test_output_flushes_what_waits_when_its_producer_will_wait() -> None:
    raw = _Recorder()
    out = Output(io.BufferedWriter(raw, buffer_size=1 << 16), interval=60)
    out.write(b"a  x\n")
    assert raw.calls == []  # the buffer holds lines between flushes
    out.flush_pending()
    assert raw.calls == [b"a  x\n"]
    out.flush_pending()
    assert raw.calls == [b"a  x\n"]  # nothing new, no empty write
