"""The output formats in one registry: how ``scan`` writes a record, how ``check`` reads it.

:data:`FORMATS`, keyed by the format's name (``--tag`` is ``"bsd"``), is the
only dispatch on a format. Each format's module holds its writer and its
parser side by side, so that ``check`` reads exactly what ``scan`` writes:

- :mod:`~parhash.formats.gnu`: ``md5sum`` lines, ``DIGEST  NAME``
- :mod:`~parhash.formats.bsd`: ``md5sum --tag`` lines, ``TAG (NAME) = DIGEST``
- :mod:`~parhash.formats.jsonl`: JSON Lines, one object per file
- :mod:`~parhash.formats.csv`: a header, then one RFC 4180 row per file

Names are escaped and quoted in :mod:`~parhash.formats.names`; what a parser
returns is in :mod:`~parhash.formats.entries`. Telling the formats apart in a
manifest, line by line, is :mod:`parhash.manifest`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from parhash.formats import bsd, csv, gnu, jsonl
from parhash.formats.entries import Parsed
from parhash.formats.names import FS_ENCODING, FS_ERRORS

if TYPE_CHECKING:
    from parhash.report import Output, ReportOptions
    from parhash.results import Result


class RecordWriter(Protocol):
    """A format's writer of file records as text, made for one run's algorithms.

    ``text(path, digests, size)`` is a hashed file's record, ``error_text(path,
    reason)`` that of a file that could not be hashed (empty when the format
    holds no errors); ``header`` comes before the first record.
    """

    header: bytes

    def text(self, path: str, digests: list[str], size: int) -> str: ...

    def error_text(self, path: str, error: str) -> str: ...


class Format(NamedTuple):
    """One output format: its writer and its parser.

    ``writer(algos, zero)`` makes a :class:`RecordWriter`. ``parse(record,
    algos)`` reads back one record (one line for ``bsd``) the writer wrote for
    ``algos``, without its end. ``multi_algo``: a record holds several digests.
    ``holds_errors``: a file that could not be hashed has a record too (it is
    reported on stderr in every format).
    """

    name: str
    writer: Callable[[tuple[str, ...], bool], RecordWriter]
    parse: Callable[[bytes, tuple[str, ...]], Parsed]
    multi_algo: bool
    holds_errors: bool

    def write(self, results: Iterable[Result], out: Output, options: ReportOptions) -> None:
        """Write each result's record as soon as it arrives, after the header if any."""
        records = RecordFormat(self.name, options.algos, options.zero)
        if records.header:
            out.write(records.header)
        for r in results:
            data = records.result(r)
            if data:
                out.write(data)


FORMATS: dict[str, Format] = {
    "gnu": Format("gnu", gnu.GnuWriter, gnu.read_gnu, multi_algo=False, holds_errors=False),
    "bsd": Format("bsd", bsd.BsdWriter, bsd.read_bsd, multi_algo=True, holds_errors=False),
    "json": Format("json", jsonl.JsonWriter, jsonl.read_json, multi_algo=True, holds_errors=True),
    "csv": Format("csv", csv.CsvWriter, csv.parse_csv_row, multi_algo=True, holds_errors=True),
}

# Formats that put every algorithm of a file on record; the GNU line has room
# for one digest only, and md5sum -c would misread a line of another length.
MULTI_ALGO_FORMATS = frozenset(name for name, f in FORMATS.items() if f.multi_algo)


class RecordFormat:
    """How one output format writes a file's record: the one place for each format.

    Workers format their tasks' records with it, and :meth:`Format.write` with
    the same code, so a format changes in one place. ``fmt`` is a name of
    :data:`FORMATS`; ``algos`` the algorithms, in the order the digests come.
    Records are made as text (:attr:`text`, :attr:`error_text`, the format's
    writer's own methods): a worker joins a task's records and encodes them
    once, with ``FS_ENCODING`` and ``FS_ERRORS``, which gives every name back
    its bytes. Raises ``ValueError`` for an unknown format, or several
    algorithms for a format that holds one.
    """

    def __init__(self, fmt: str, algos: tuple[str, ...], zero: bool = False,
                 cache: bool = False) -> None:
        spec = FORMATS.get(fmt)
        if spec is None:
            raise ValueError(f"unknown format {fmt!r}")
        if len(algos) != 1 and not spec.multi_algo:
            raise ValueError(f"{fmt} records hold one digest, not {len(algos)}")
        writer = spec.writer(algos, zero)
        self.fmt = fmt
        self.algos = algos
        self.zero = zero
        self.header = writer.header
        # Errors go to stderr in every format; json and csv also hold them.
        self.holds_errors = spec.holds_errors
        # Bound once: workers call text for every file they hash.
        self.text: Callable[[str, list[str], int], str] = writer.text
        self.error_text: Callable[[str, str], str] = writer.error_text
        # The record of a file the cache answered for; with the cache on,
        # --json says which records came from it.
        self.hit_text: Callable[[str, list[str], int], str] = self.text
        if cache and isinstance(writer, jsonl.JsonWriter):
            self.text = writer.marked(False)
            self.hit_text = writer.marked(True)

    def result(self, r: Result) -> bytes:
        """The record of one :class:`~parhash.results.Result`, as bytes."""
        if r.error is not None:
            text = self.error_text(r.path, r.error)
        else:
            write = self.hit_text if r.cached else self.text
            text = write(r.path, [r.digests[a] for a in self.algos], r.size)
        return text.encode(FS_ENCODING, FS_ERRORS)
