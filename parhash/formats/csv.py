"""CSV, as ``scan --csv`` writes it: a header, then one RFC 4180 row per file.

``path,size,md5,error`` names the algorithms, in their columns' order. Names
are written as their bytes, quoted when they hold a comma, a quote or a line
end, so a record may span lines. Rows end in LF, so that ``awk``, ``cut``
and ``grep`` see one row a line (NUL with ``-z``); RFC 4180's CRLF is read
too.
"""

from __future__ import annotations

from parhash.algorithms import ALGORITHMS
from parhash.formats.entries import Malformed, Parsed, record_entry
from parhash.formats.names import FS_ENCODING, FS_ERRORS


def csv_text(value: str) -> str:
    """``value`` as an RFC 4180 field: quoted, quotes doubled, when it needs to be."""
    if "," in value or '"' in value or "\r" in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_field(value: str) -> bytes:
    """:func:`csv_text` as the bytes of the name or text it holds."""
    return csv_text(value).encode(FS_ENCODING, FS_ERRORS)


class CsvWriter:
    """A header, then one RFC 4180 row per file; names are written as their bytes.

    Rows end in LF, or in NUL with ``zero`` (``-z``), as every other format.

    ``path,size,md5,error``
    ``./empty,0,d41d8cd98f00b204e9800998ecf8427e,``
    ``./gone,,,No such file or directory``
    """

    def __init__(self, algos: tuple[str, ...], zero: bool = False) -> None:
        self.algos = algos
        self.end = "\0" if zero else "\n"
        self.header = (",".join(["path", "size", *algos, "error"]) + self.end).encode()

    def text(self, path: str, digests: list[str], size: int) -> str:
        return f"{csv_text(path)},{size},{','.join(digests)},{self.end}"

    def error_text(self, path: str, error: str) -> str:
        return f"{csv_text(path)},{',' * len(self.algos)},{csv_text(error)}{self.end}"


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
    return record_entry(fields[0], [(a, d.decode("ascii", "replace"))
                                    for a, d in zip(algos, fields[2:-1], strict=True)], algo)
