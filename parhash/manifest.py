"""Coreutils' text formats: the only place that turns a path into a line.

GNU lines are ``DIGEST  NAME``; BSD (tagged) lines are ``TAG (NAME) = DIGEST``.
A name holding a backslash, newline or carriage return is escaped as coreutils
9 does it: the line starts with a backslash and the name has ``\\\\``, ``\\n``
and ``\\r`` in place of those bytes. With ``zero`` (``-z``) records end in NUL
and nothing is escaped. Names are written as the bytes they have on disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

from parhash.algorithms import ALGORITHMS
from parhash.formats.names import (
    FS_ENCODING,
    FS_ERRORS,
    FS_UTF8,
    escape_name,
    escape_text,
    unescape_name,
)
from parhash.results import PAUSE, Pause


def format_gnu(digest: str, path: str, *, zero: bool = False) -> bytes:
    """``DIGEST  NAME\\n``, byte for byte as ``md5sum``/``sha256sum``/``b2sum`` print it."""
    if zero:
        return f"{digest}  {path}\0".encode(FS_ENCODING, FS_ERRORS)
    if FS_UTF8 and "\\" not in path and "\n" not in path and "\r" not in path:
        return f"{digest}  {path}\n".encode(FS_ENCODING, FS_ERRORS)
    name, escaped = escape_name(os.fsencode(path))
    return b"%s%s  %s\n" % (b"\\" if escaped else b"", digest.encode(), name)


def gnu_text(digest: str, path: str, zero: bool = False) -> str:
    """:func:`format_gnu` as text, to be encoded with ``FS_ENCODING`` and ``FS_ERRORS``.

    Workers join a task's lines and encode them once; a name's undecodable
    bytes, held as surrogates, come back as they were.
    """
    if zero:
        return f"{digest}  {path}\0"
    if "\\" in path or "\n" in path or "\r" in path:
        if not FS_UTF8:
            return format_gnu(digest, path).decode(FS_ENCODING, FS_ERRORS)
        return f"\\{digest}  {escape_text(path)}\n"
    return f"{digest}  {path}\n"


def bsd_text(tag: str, digest: str, path: str, zero: bool = False) -> str:
    """:func:`format_bsd` as text; see :func:`gnu_text`."""
    if zero:
        return f"{tag} ({path}) = {digest}\0"
    if "\\" in path or "\n" in path or "\r" in path:
        if not FS_UTF8:
            return format_bsd(tag, digest, path).decode(FS_ENCODING, FS_ERRORS)
        return f"\\{tag} ({escape_text(path)}) = {digest}\n"
    return f"{tag} ({path}) = {digest}\n"


def format_bsd(tag: str, digest: str, path: str, *, zero: bool = False) -> bytes:
    """``TAG (NAME) = DIGEST\\n``, as ``md5sum --tag`` and ``xxhsum --tag`` print it."""
    name = os.fsencode(path)
    if zero:
        return b"%s (%s) = %s\0" % (tag.encode(), name, digest.encode())
    name, escaped = escape_name(name)
    return b"%s%s (%s) = %s\n" % (b"\\" if escaped else b"", tag.encode(), name, digest.encode())


# Reading ---------------------------------------------------------------------
#
# ``check`` reads back everything ``scan`` writes, and what md5sum, sha*sum,
# b2sum and xxhsum write, following coreutils' ``split_3`` (src/digest.c)
# wherever the two could differ, so that a line md5sum accepts means the same
# file and digest here, and a line it rejects is rejected here too.

# Untagged lines carry no algorithm: coreutils users expect it from the length.
# b2sum's 128 digits read as sha512 and xxhsum's 32 as md5 unless --algo says.
GUESS_BY_LENGTH = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}

# A longer line is no checksum line; it is skipped without being held whole.
MAX_LINE = 1 << 20

_TAGS = {a.tag: a.name for a in ALGORITHMS.values()}
_TAG_RE = re.compile(rb"([A-Za-z0-9-]+) ?\(")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]*")
_WHITE = b" \t"
# How nearly every line of a manifest starts: "DIGEST  NAME" or "DIGEST *NAME",
# no escape, no blank before the digest. parse_line takes the name after it.
_PLAIN_GNU = re.compile(rb"([0-9A-Fa-f]+) [ *]")


class Entry(NamedTuple):
    """A checksum line: a file name and the digests its file should have.

    ``name`` is the name as written, unescaped, decoded with
    ``os.fsdecode`` (so any bytes survive). ``digests`` holds ``(algorithm,
    lower-case hex)`` pairs in the manifest's order: one for a text line,
    several for a ``--json`` or ``--csv`` record. ``reversed`` is set for GNU
    lines only: whether the line was ``DIGEST NAME`` with a single blank (the
    form of BSD ``md5 -r``), which fixes how later lines of the same manifest
    are read.
    """

    name: str
    digests: tuple[tuple[str, str], ...]
    reversed: bool | None = None


class Malformed(NamedTuple):
    """A line that is not a checksum line, and why (for people, not programs)."""

    reason: str


Parsed = Entry | Malformed | None


class Source(Protocol):
    """What a manifest is read from: a binary file, or anything with its ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


def _entry(name: bytes, digests: list[tuple[str, str]], reversed: bool | None = None) -> Parsed:
    if b"\0" in name:
        # The C library can't open such a name; md5sum would cut it short at
        # the NUL and check another file.
        return Malformed("NUL in name")
    return Entry(os.fsdecode(name), tuple(digests), reversed)


def _digest(text: bytes, algo: str) -> str | None:
    if len(text) != ALGORITHMS[algo].hex_length or not _HEX.issuperset(text):
        return None
    return text.decode("ascii").lower()


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
    :data:`GUESS_BY_LENGTH`); lines that name another algorithm are then
    malformed. ``reversed`` is the form earlier GNU lines of the manifest had
    (``None`` when there were none): coreutils refuses to mix them, so that a
    renamed file with leading blanks can't pass for another. Never raises.
    """
    if zero:
        line = line[:-1] if line.endswith(b"\0") else line
    else:
        plain = _PLAIN_GNU.match(line)
        if plain is not None and reversed is not True:
            # What the steps below make of such a line, in fewer of them.
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
    i = len(line) - len(line.lstrip(_WHITE))
    if line.startswith(b"{", i):
        return _parse_json(line, algo)
    escaped = line.startswith(b"\\", i)
    i += escaped
    tagged = _TAG_RE.match(line, i)
    if tagged is not None and tagged.group(1).decode("ascii") in _TAGS:
        return _parse_tagged(line[tagged.end() :], _TAGS[tagged.group(1).decode("ascii")],
                             escaped, algo)
    return _parse_gnu(line, i, escaped, algo, reversed)


def _parse_tagged(rest: bytes, tag_algo: str, escaped: bool, algo: str | None) -> Parsed:
    # Split from the right: the name may itself hold ") = " (a file called
    # "x) = y" gives "MD5 (x) = y) = DIGEST"), but the digest never holds ")".
    end = rest.rfind(b")")
    if end < 0:
        return Malformed("no ')' after the name")
    name: bytes | None = rest[:end]
    if escaped:
        name = unescape_name(rest[:end])
        if name is None:
            return Malformed("bad escape in name")
    assert name is not None
    tail = rest[end + 1 :].lstrip(_WHITE)
    if not tail.startswith(b"="):
        return Malformed("no '=' after the name")
    if algo is not None and algo != tag_algo:
        return Malformed(f"a {tag_algo} line, but the algorithm is {algo}")
    digest = _digest(tail[1:].lstrip(_WHITE), tag_algo)
    if digest is None:
        return Malformed(f"not a {tag_algo} digest")
    return _entry(name, [(tag_algo, digest)])


def _parse_gnu(
    line: bytes, i: int, escaped: bool, algo: str | None, reversed: bool | None
) -> Parsed:
    hex_end = _HEX_RE.match(line, i)
    assert hex_end is not None  # the pattern matches the empty string
    j = hex_end.end()
    length = j - i
    if length == 0 or j + 1 >= len(line) or line[j] not in _WHITE:
        return Malformed("not a checksum line")
    guess = algo or GUESS_BY_LENGTH.get(length)
    if guess is None:
        return Malformed(f"no algorithm is guessed from {length} hex digits: give --algo")
    digest = _digest(line[i:j], guess)
    if digest is None:
        return Malformed(f"not a {guess} digest")
    k = j + 1  # after the one blank that ends the digest
    if len(line) - k == 1 or line[k] not in b" *":
        # "DIGEST NAME": allowed only if no earlier line was "DIGEST  NAME".
        if reversed is False:
            return Malformed("a 'DIGEST NAME' line after 'DIGEST  NAME' lines")
        name, now_reversed = line[k:], True
    elif reversed:
        # After "DIGEST NAME" lines the blank or '*' belongs to the name.
        name, now_reversed = line[k:], True
    else:
        name, now_reversed = line[k + 1 :], False
    if escaped:
        unescaped = unescape_name(name)
        if unescaped is None:
            return Malformed("bad escape in name")
        name = unescaped
    return _entry(name, [(guess, digest)], now_reversed)


def _parse_json(line: bytes, algo: str | None) -> Parsed:
    import json

    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return Malformed("not JSON")
    if not isinstance(record, dict):
        return Malformed("not a JSON object")
    try:
        if isinstance(record.get("path_b64"), str):
            import base64

            name = base64.b64decode(record["path_b64"], validate=True)
        elif isinstance(record.get("path"), str):
            name = os.fsencode(record["path"])
        else:
            return Malformed("no path")
    except ValueError:
        return Malformed("a path that is no file name")
    if record.get("error") is not None:
        return Malformed("a record of a file that could not be read")
    return _record(name, [(k, v) for k, v in record.items() if k in ALGORITHMS], algo)


def _record(name: bytes, fields: list[tuple[str, Any]], algo: str | None) -> Parsed:
    """The entry of a JSON or CSV record that has ``fields`` (algorithm, digest)."""
    if algo is not None:
        fields = [(a, d) for a, d in fields if a == algo]
    digests = []
    for a, text in fields:
        digest = _digest(text.encode("ascii", "replace"), a) if isinstance(text, str) else None
        if digest is None:
            return Malformed(f"not a {a} digest")
        digests.append((a, digest))
    if not digests:
        return Malformed(f"no {algo} digest" if algo else "no digest")
    return _entry(name, digests)


def split_csv(record: bytes) -> list[bytes] | None:
    """The fields of one RFC 4180 record (no line end), or ``None`` if it is not one."""
    if b'"' not in record:
        # Nearly every row; and a row of a million commas is split in C.
        return record.split(b",")
    fields: list[bytes] = []
    i, n = 0, len(record)
    while True:
        if record.startswith(b'"', i):
            value = bytearray()
            j = i + 1
            while True:
                k = record.find(b'"', j)
                if k < 0:
                    return None  # no closing quote
                value += record[j:k]
                if record.startswith(b'"', k + 1):
                    value += b'"'
                    j = k + 2
                    continue
                j = k + 1
                break
            fields.append(bytes(value))
            if j == n:
                return fields
            if record[j : j + 1] != b",":
                return None
            i = j + 1
        else:
            k = record.find(b",", i)
            field = record[i:] if k < 0 else record[i:k]
            if b'"' in field:
                return None
            fields.append(field)
            if k < 0:
                return fields
            i = k + 1


def parse_csv_header(line: bytes) -> tuple[str, ...] | None:
    """The algorithms of a ``scan --csv`` header (``path,size,md5,error``), or ``None``."""
    fields = split_csv(line.rstrip(b"\r\n"))
    if fields is None or len(fields) < 4 or fields[:2] != [b"path", b"size"]:
        return None
    if fields[-1] != b"error":
        return None
    algos = tuple(f.decode("ascii", "replace") for f in fields[2:-1])
    return algos if all(a in ALGORITHMS for a in algos) else None


def parse_csv_row(line: bytes, algos: tuple[str, ...], *, algo: str | None = None) -> Parsed:
    """Read one row of a ``scan --csv`` manifest whose header named ``algos``."""
    line = line[:-1] if line.endswith(b"\n") else line
    line = line[:-1] if line.endswith(b"\r") else line
    if not line:
        return None
    fields = split_csv(line)
    if fields is None or len(fields) != len(algos) + 3:
        return Malformed("not a row of this CSV manifest")
    if fields[-1]:
        return Malformed("a record of a file that could not be read")
    return _record(fields[0], [(a, d.decode("ascii", "replace"))
                               for a, d in zip(algos, fields[2:-1], strict=True)], algo)


class Overlong(bytes):
    """The first bytes of a record longer than the limit, the rest dropped unread."""


# What an overlong record keeps: more than PATH_MAX, so that a checksum line
# whose name it cuts still names no file that can be opened.
OVERLONG_KEEP = 8192


def _records(
    stream: Source, end: bytes, max_line: int, ready: Callable[[], bool] | None = None
) -> Iterator[bytes | Pause]:
    """Split a stream at ``end``, reading as it goes.

    A record longer than ``max_line`` comes as an :class:`Overlong` holding
    its first ``OVERLONG_KEEP`` bytes; the rest is dropped as it is read, so
    binary garbage without line ends costs no more memory than ``max_line``.
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
            start = stop + 1
            stop = chunk.find(end, start)
        if overlong is None:
            # The limit is checked once per read, after the records it ends:
            # a record that ends in the read taking it past the limit still
            # comes whole. Nothing more of an overlong record is kept.
            carry += memoryview(chunk)[start:]
            if len(carry) > max_line:
                overlong = Overlong(carry[:OVERLONG_KEEP])
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

    def overlong(self, number: int, start: bytes) -> tuple[int, Entry | Malformed]:
        """A record longer than the limit, of which only ``start`` was kept."""
        self.partial.clear()
        self.open_quote = False
        # md5sum tries to open such a name and fails; a checksum line whose
        # name runs past the kept bytes names no file that can be opened
        # either (it is longer than PATH_MAX), so it is checked, and fails,
        # as a name "too long"; anything else is malformed.
        cut = parse_line(start, algo=self.algo, reversed=self.state, zero=self.zero)
        if isinstance(cut, Entry) and len(os.fsencode(cut.name)) > 4096:
            return number, cut
        return number, Malformed(f"a line longer than {self.max_line} bytes")

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
            yield parser.overlong(number, bytes(line))
            continue
        if number == 1 and not zero:
            parser.csv = parse_csv_header(line)
            if parser.csv is not None:
                continue
        yield from parser.line(number, line)
    yield from parser.finish()
