"""Reading a manifest: which format each line is in, and what one line tells of the next.

Each format's parser is in :mod:`parhash.formats`; this module tells them
apart line by line (:func:`parse_line`), reads a stream into lines, holding
a long one whole only when it starts as a checksum line (:func:`read_manifest`),
and keeps the state coreutils keeps between lines (:class:`LineParser`).

``check`` reads back everything ``scan`` writes, and what md5sum, sha*sum,
b2sum and xxhsum write, following coreutils' ``split_3`` (src/digest.c)
wherever the two could differ, so that a line md5sum accepts means the same
file and digest here, and a line it rejects is rejected here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Protocol

from parhash.algorithms import ALGORITHMS
from parhash.formats.bsd import TAG_RE, TAGS, parse_tagged
from parhash.formats.csv import parse_csv_header, parse_csv_row
from parhash.formats.entries import BLANKS, Entry, Malformed, Parsed
from parhash.formats.gnu import GUESS_BY_LENGTH, PLAIN_GNU, parse_gnu
from parhash.formats.jsonl import parse_json
from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.results import PAUSE, Pause

# A record longer than this is held whole only if it starts as a checksum
# line does (see long_record); otherwise it is dropped as it is read.
MAX_LINE = 1 << 20


class Source(Protocol):
    """What a manifest is read from: a binary file, or anything with its ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


def parse_line(
    line: bytes, *, algo: str | None = None, reversed: bool | None = None, zero: bool = False
) -> Parsed:
    """Read one line of a manifest: an :class:`Entry`, a :class:`Malformed`, or ``None``.

    ``None`` is a line to skip: empty, or a comment (``#`` first). Accepted:
    GNU lines (``DIGEST  NAME``, ``DIGEST *NAME``, ``DIGEST NAME``), BSD tag
    lines (``TAG (NAME) = DIGEST``) with the tags of :data:`ALGORITHMS`, and
    ``scan --json`` records; a leading backslash means an escaped name, and
    upper-case hex is fine. A trailing newline and then carriage return are
    dropped (with ``zero``, a trailing NUL only). ``algo`` is the algorithm of
    untagged lines (otherwise it is guessed from the digest's length, see
    :data:`~parhash.formats.gnu.GUESS_BY_LENGTH`); lines that name another
    algorithm are then malformed. ``reversed`` is the form earlier GNU lines
    of the manifest had (``None`` when there were none): coreutils refuses to
    mix them, so that a renamed file with leading blanks can't pass for
    another. Never raises.
    """
    if zero:
        line = line[:-1] if line.endswith(b"\0") else line
    else:
        plain = PLAIN_GNU.match(line)
        if plain is not None and reversed is not True:
            # What the steps below (parse_gnu) make of such a line, in fewer of
            # them and without a call: nearly every line of a manifest is one.
            name = line[plain.end() :]
            name = name[:-1] if name.endswith(b"\n") else name
            name = name[:-1] if name.endswith(b"\r") else name
            hex_digits = plain.group(1)
            guess = algo or GUESS_BY_LENGTH.get(len(hex_digits))
            if (
                name and b"\0" not in name and guess is not None
                and len(hex_digits) == ALGORITHMS[guess].hex_length
            ):
                digest = hex_digits.decode("ascii").lower()
                return Entry(name.decode(FS_ENCODING, FS_ERRORS), ((guess, digest),), False)
        line = line[:-1] if line.endswith(b"\n") else line
        line = line[:-1] if line.endswith(b"\r") else line
    return _parse_trimmed(line, algo, reversed)


def _parse_trimmed(line: bytes, algo: str | None, reversed: bool | None) -> Parsed:
    """:func:`parse_line` for a line without its end, step by step."""
    if not line or line.startswith(b"#"):
        return None
    # Not a loop over the bytes: a megabyte of blanks took 50 ms a line that way.
    i = len(line) - len(line.lstrip(BLANKS))
    if line.startswith(b"{", i):
        return parse_json(line, algo)
    escaped = line.startswith(b"\\", i)
    i += escaped
    tagged = TAG_RE.match(line, i)
    if tagged is not None and tagged.group(1).decode("ascii") in TAGS:
        return parse_tagged(line[tagged.end() :], TAGS[tagged.group(1).decode("ascii")],
                            escaped, algo)
    return parse_gnu(line, i, escaped, algo, reversed)


class Overlong(bytes):
    """The first byte of a record longer than the limit that is no checksum line.

    The rest is dropped unread; the first byte tells a comment, which is
    skipped, from a malformed line.
    """


# What long_record decides of a record grown past the limit.
HOLD = "hold"  # it starts as a checksum line: read it whole, as md5sum does
DROP = "drop"  # it is no checksum line, whatever follows: drop the rest unread
MORE = "more"  # blanks so far (squeezed to one): read on

_DIGEST_LENGTHS = frozenset(a.hex_length for a in ALGORITHMS.values())
_DIGEST_START = re.compile(rb"([0-9A-Fa-f]{1,128})[ \t]")


def long_record(held: bytearray) -> str:
    """Whether to read on a record, without a line end, that has passed the limit.

    Its leading blanks are squeezed to one in ``held``: md5sum skips them,
    and they alone must not make a line cost memory. Then HOLD when the rest
    starts as a line md5sum could read (a tag and ``(``, or a digest and a
    blank, after a backslash if any), MORE when there is no rest yet, DROP
    otherwise. A ``scan --json`` record is dropped: no path that long was
    ever scanned. Costs a look at the first bytes.
    """
    blanks = len(held) - len(held.lstrip(BLANKS))
    if blanks > 1:
        del held[1:blanks]
    i = min(blanks, 1)
    if i == len(held):
        return MORE
    i += held.startswith(b"\\", i)
    tagged = TAG_RE.match(held, i)
    if tagged is not None and tagged.group(1).decode("ascii") in TAGS:
        return HOLD
    digest = _DIGEST_START.match(held, i)
    return HOLD if digest is not None and len(digest.group(1)) in _DIGEST_LENGTHS else DROP


def _records(
    stream: Source, end: bytes, max_line: int, ready: Callable[[], bool] | None = None
) -> Iterator[bytes | Pause]:
    """Split a stream at ``end``, reading as it goes.

    A record longer than ``max_line`` comes whole if it starts as a checksum
    line (:func:`long_record`), however long, as md5sum reads it; any other
    comes as an :class:`Overlong`, the rest dropped as it is read, so binary
    garbage without line ends costs no more memory than ``max_line``.
    With ``ready``, :data:`PAUSE` comes before each read it says would wait.
    Costs time linear in the bytes read, however the reads cut them.
    """
    read = getattr(stream, "read1", stream.read)
    # The start of a record that began in an earlier read. Only the new bytes
    # of each read are searched and appended: joining and searching all that
    # is held made a long line that a pipe delivers a few bytes at a time
    # cost its length squared.
    carry = bytearray()
    overlong: Overlong | None = None
    whole = False  # carry is a record to hold whole, however long
    while True:
        if ready is not None and not ready():
            yield PAUSE
        chunk = read(1 << 16)
        if not chunk:
            break
        start = 0
        stop = chunk.find(end)
        while stop >= 0:
            if overlong is not None:
                yield overlong
                overlong = None
            elif carry:
                carry += memoryview(chunk)[: stop + 1]
                yield bytes(carry)
                carry = bytearray()
            else:
                yield chunk[start : stop + 1]
            whole = False
            start = stop + 1
            stop = chunk.find(end, start)
        if overlong is None:
            # The limit is checked once per read, after the records it ends:
            # a record that ends in the read taking it past the limit still
            # comes whole. Nothing more of an overlong record is kept.
            carry += memoryview(chunk)[start:]
            if len(carry) > max_line and not whole:
                decided = long_record(carry)
                whole = decided == HOLD
                if decided == DROP:
                    overlong = Overlong(carry[:1])
                    carry = bytearray()
    if overlong is not None:
        yield overlong
    elif carry:
        yield bytes(carry)


class LineParser:
    """Reads a manifest's records in order, keeping what one line tells of the next.

    Coreutils keeps one piece of state between lines (:func:`parse_line`'s
    ``reversed``, here :attr:`state`); a ``scan --csv`` manifest (``csv``,
    its header's algorithms) has records whose quoted names may span lines.
    :meth:`line` takes each record with its line number and returns what it
    completes: ``(number, Entry or Malformed)`` pairs, the number being the
    record's first line. :attr:`decided` is the first form the lines decided
    (None while none did). Used on a whole stream (:func:`read_manifest`) and
    on ranges of one (``check``'s workers).
    """

    def __init__(self, *, algo: str | None = None, zero: bool = False,
                 csv: tuple[str, ...] | None = None, state: bool | None = None,
                 max_line: int = MAX_LINE) -> None:
        self.algo = algo
        self.zero = zero
        self.csv = csv
        self.state = state
        self.decided: bool | None = None
        self.max_line = max_line
        # A CSV record whose quoted name holds a line end, and whether it has
        # an odd number of quotes so far. Each line's quotes are counted once:
        # counting the whole record again at each line made a quote left open
        # before 500 KB of line ends cost a minute.
        self.partial = bytearray()
        self.open_quote = False
        self.first = 0

    def line(self, number: int, line: bytes) -> list[tuple[int, Entry | Malformed]]:
        if self.csv is not None:
            return self._csv_line(number, line)
        parsed = parse_line(line, algo=self.algo, reversed=self.state, zero=self.zero)
        if parsed is None:
            return []
        if type(parsed) is Entry and parsed.reversed is not None:
            self.state = parsed.reversed
            if self.decided is None:
                self.decided = parsed.reversed
        return [(number, parsed)]

    def _csv_line(self, number: int, line: bytes) -> list[tuple[int, Entry | Malformed]]:
        partial = self.partial
        if not partial:
            self.first = number
        partial += line
        if line.count(b'"') % 2:
            self.open_quote = not self.open_quote
        if self.open_quote:
            if len(partial) > self.max_line:
                partial.clear()
                self.open_quote = False
                return [(self.first, Malformed(f"a line longer than {self.max_line} bytes"))]
            return []
        record = bytes(partial)
        partial.clear()
        parsed = parse_csv_row(record, self.csv, algo=self.algo)  # type: ignore[arg-type]
        return [] if parsed is None else [(self.first, parsed)]

    def overlong(self, number: int, start: bytes) -> list[tuple[int, Entry | Malformed]]:
        """A record longer than the limit that is no checksum line, which starts with ``start``.

        It is malformed, or skipped if it is a comment: either way, whatever
        followed its first bytes, as md5sum would read it.
        """
        self.partial.clear()
        self.open_quote = False
        if start.startswith(b"#"):
            return []
        return [(number, Malformed(f"a line longer than {self.max_line} bytes that is no "
                                   "checksum line"))]

    def finish(self) -> list[tuple[int, Entry | Malformed]]:
        """What is left at the end: a CSV record whose quote never closed."""
        if self.partial:
            self.partial.clear()
            return [(self.first, Malformed("a CSV record with no closing quote"))]
        return []


def read_manifest(
    stream: Source,
    *,
    algo: str | None = None,
    zero: bool = False,
    max_line: int = MAX_LINE,
    ready: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, Entry | Malformed | Pause]]:
    """Yield ``(line number, Entry or Malformed)`` for each line of a manifest, as read.

    Empty lines and comments are skipped. A manifest whose first line is a
    ``scan --csv`` header is read as CSV (a quoted name may span lines);
    otherwise each line is read by :func:`parse_line`, keeping coreutils' one
    piece of state between lines (see :class:`LineParser`). With ``zero``,
    records end in NUL. Raises ``OSError`` when the stream can't be read;
    anything in it is data. With ``ready`` (whether a read of ``stream``
    would return at once), ``(number, PAUSE)`` comes before each read that
    would wait.
    """
    parser = LineParser(algo=algo, zero=zero, max_line=max_line)
    number = 0
    for line in _records(stream, b"\0" if zero else b"\n", max_line, ready):
        if isinstance(line, Pause):
            yield number, line
            continue
        number += 1
        if isinstance(line, Overlong):
            yield from parser.overlong(number, bytes(line))
            continue
        if number == 1 and not zero:
            parser.csv = parse_csv_header(line)
            if parser.csv is not None:
                continue
        yield from parser.line(number, line)
    yield from parser.finish()
