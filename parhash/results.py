"""The values that flow through the pipeline.

Results are named tuples rather than dataclasses: a scan of many small files
creates and pickles one per file, and a tuple is the cheapest immutable record
Python has for both.
"""

from __future__ import annotations

from typing import NamedTuple


class Result(NamedTuple):
    """What the pipeline learnt about one path.

    ``digests`` maps an algorithm name (``"sha256"``) to its lower-case hex
    digest; it is empty when ``error`` is set. ``size``, ``mtime_ns``, ``dev``
    and ``ino`` are what the worker saw of the file it read (``-1``/``0`` when
    it could not be opened). ``error`` is the reason in the wording of the C
    library (``"No such file or directory"``), ``errno`` its number when the
    operating system gave one.
    """

    path: str
    digests: dict[str, str]
    size: int = -1
    mtime_ns: int = 0
    dev: int = 0
    ino: int = 0
    error: str | None = None
    errno: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def reason(e: OSError) -> str:
    """The C library's words for an ``OSError`` (``No such file or directory``)."""
    return e.strerror or str(e)


class WalkError(NamedTuple):
    """A path the walk could not read or would not hash.

    ``depth`` is 0 for a path named by the caller. ``loop_ancestor`` is set
    when the path is a directory that leads back to one being walked.
    """

    path: str
    error: str
    errno: int | None = None
    depth: int = 0
    loop_ancestor: str | None = None

    def as_result(self) -> Result:
        return Result(self.path, {}, error=self.error, errno=self.errno)


# What check concludes about a manifest line (Verdict.status).
OK = "ok"
FAILED = "failed"
MISSING = "missing"  # the file does not exist (ENOENT)
UNREADABLE = "unreadable"  # it exists but could not be read; or the manifest itself
MALFORMED = "malformed"  # the line is not a checksum line


class Verdict(NamedTuple):
    """What ``check`` found for one line of a manifest.

    ``manifest`` is the manifest as named (``"-"`` for standard input) and
    ``manifest_index`` its position among those checked. ``line`` counts from
    1; a verdict with ``line == 0`` is about the manifest itself, which could
    not be read (``status`` is ``"unreadable"``). ``name`` is the file name as
    the line gives it, unescaped; ``path`` is where it was read, after
    ``--root`` or the manifest's directory. ``algos``, ``expected`` and
    ``actual`` are parallel tuples (``actual`` is empty when the file could
    not be read). ``error`` says why a file or the manifest could not be read,
    or why a line is malformed.
    """

    manifest: str
    line: int
    name: str
    path: str
    status: str
    algos: tuple[str, ...] = ()
    expected: tuple[str, ...] = ()
    actual: tuple[str, ...] = ()
    error: str | None = None
    errno: int | None = None
    manifest_index: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK
