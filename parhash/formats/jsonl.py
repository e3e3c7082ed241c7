"""JSON Lines, as ``scan --json`` writes them: one object per file, errors included.

Names that are not UTF-8 are also given as base64 (see :func:`json_record`),
which the parser prefers. ``json`` and ``base64`` are imported on first use:
most runs write and read other formats.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from parhash.algorithms import ALGORITHMS
from parhash.formats.entries import Malformed, Parsed, record_entry

if TYPE_CHECKING:
    from parhash.results import Result


def json_path(path: str) -> dict[str, Any]:
    """A record's start: ``path``, and ``path_b64`` when the name is not UTF-8."""
    record: dict[str, Any] = {"path": path}
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            import base64

            record["path_b64"] = base64.b64encode(os.fsencode(path)).decode("ascii")
    return record


class JsonWriter:
    """JSON Lines, one object per file, errors included.

    ``{"path": "./empty", "size": 0, "md5": "d41d8cd98f00b204e9800998ecf8427e"}``
    ``{"path": "./gone", "error": "No such file or directory"}``
    """

    header = b""

    def __init__(self, algos: tuple[str, ...], zero: bool = False) -> None:
        import json

        self.algos = algos
        self.end = "\0" if zero else "\n"
        self.encode = json.JSONEncoder(ensure_ascii=True).encode

    def text(self, path: str, digests: list[str], size: int) -> str:
        record = json_path(path)
        record["size"] = size
        record.update(zip(self.algos, digests, strict=True))
        return self.encode(record) + self.end

    def marked(self, cached: bool) -> Callable[[str, list[str], int], str]:
        """:meth:`text` with ``"cached": cached`` at the end, for runs with the cache on."""

        def text(path: str, digests: list[str], size: int) -> str:
            record = json_path(path)
            record["size"] = size
            record.update(zip(self.algos, digests, strict=True))
            record["cached"] = cached
            return self.encode(record) + self.end

        return text

    def error_text(self, path: str, error: str) -> str:
        record = json_path(path)
        record["error"] = error
        return self.encode(record) + self.end


def json_record(r: Result) -> dict[str, Any]:
    """The ``--json`` object for one result.

    A name that is not valid UTF-8 is written with Python's surrogate escapes
    (each undecodable byte ``0xNN`` as ``\\udcNN``), which ``parhash`` and any
    Python reader turn back into the same bytes, and also, losslessly for any
    reader, as base64 in ``path_b64``.

    ``{"path": "./empty", "size": 0, "md5": "d41d8cd98f00b204e9800998ecf8427e"}``
    ``{"path": "./gone", "error": "No such file or directory"}``
    """
    record = json_path(r.path)
    if r.error is not None:
        record["error"] = r.error
        return record
    record["size"] = r.size
    record.update(r.digests)
    if r.cached is not None:
        record["cached"] = r.cached
    return record


def parse_json(line: bytes, algo: str | None) -> Parsed:
    """Read one ``--json`` record; with ``algo``, only that algorithm's digest."""
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
    return record_entry(name, [(k, v) for k, v in record.items() if k in ALGORITHMS], algo)


def read_json(record: bytes, algos: tuple[str, ...]) -> Parsed:
    """Read back one record :class:`JsonWriter` wrote, with every digest it holds."""
    return parse_json(record, None)
