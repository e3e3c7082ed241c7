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


class DupeGroup(NamedTuple):
    """Files with identical contents, as ``parhash dupes`` finds them.

    ``paths`` names each distinct file once, in byte order; a file with
    several names (hard links, or a symlink followed with ``-L``) is named
    by the first of them. ``hardlinks`` lists, for each such file, all of its
    names in byte order, the first being the one in ``paths``. ``digest`` is
    the ``algo`` digest of the whole contents, ``size`` the size of each file.
    """

    size: int
    algo: str
    digest: str
    paths: tuple[str, ...]
    hardlinks: tuple[tuple[str, ...], ...] = ()

    @property
    def redundant(self) -> int:
        """Files that could go, keeping one."""
        return len(self.paths) - 1

    @property
    def wasted(self) -> int:
        """Bytes that removing the redundant files would free."""
        return self.size * (len(self.paths) - 1)


class DupeError(NamedTuple):
    """A path ``parhash dupes`` could not compare, and whether that matters.

    ``could_hide_duplicate`` is false only when the failure cannot have kept a
    duplicate out of the report: a directory loop met with ``-L`` (the
    directory is walked once anyway), a special file named by the caller, a
    file that vanished during the search.
    """

    path: str
    error: str
    errno: int | None = None
    could_hide_duplicate: bool = True
