"""What a format's parser makes of a record: an :class:`Entry`, or :class:`Malformed`.

The checks here are the ones every format's parser shares: a digest of the
right length in hex, and a name the C library can open.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from parhash.algorithms import ALGORITHMS

# The blanks coreutils allows around a line's fields.
BLANKS = b" \t"
_HEX = frozenset(b"0123456789abcdefABCDEF")


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


def entry_of(name: bytes, digests: list[tuple[str, str]], reversed: bool | None = None) -> Parsed:
    """The :class:`Entry` of a name as bytes, unless the name holds a NUL."""
    if b"\0" in name:
        # The C library can't open such a name; md5sum would cut it short at
        # the NUL and check another file.
        return Malformed("NUL in name")
    return Entry(os.fsdecode(name), tuple(digests), reversed)


def read_digest(text: bytes, algo: str) -> str | None:
    """``text`` in lower case if it is a digest of ``algo`` in hex, else ``None``."""
    if len(text) != ALGORITHMS[algo].hex_length or not _HEX.issuperset(text):
        return None
    return text.decode("ascii").lower()


def record_entry(name: bytes, fields: list[tuple[str, Any]], algo: str | None) -> Parsed:
    """The entry of a JSON or CSV record that has ``fields`` (algorithm, digest)."""
    if algo is not None:
        fields = [(a, d) for a, d in fields if a == algo]
    digests = []
    for a, text in fields:
        digest = read_digest(text.encode("ascii", "replace"), a) if isinstance(text, str) else None
        if digest is None:
            return Malformed(f"not a {a} digest")
        digests.append((a, digest))
    if not digests:
        return Malformed(f"no {algo} digest" if algo else "no digest")
    return entry_of(name, digests)
