"""The values that flow through the pipeline.

Results are named tuples rather than dataclasses: a scan of many small files
creates and pickles one per file, and a tuple is the cheapest immutable record
Python has for both.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Result(NamedTuple):
    """What the pipeline learnt about one path.

    ``digests`` maps an algorithm name (``"sha256"``) to its lower-case hex
    digest; it is empty when ``error`` is set. ``size``, ``mtime_ns``, ``dev``
    and ``ino`` (and ``ctime_ns``) are what the worker saw of the file it read
    (``-1``/``0`` when it could not be opened). ``error`` is the reason in the wording of the C
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
    ctime_ns: int = 0
    # With the cache on: whether the digests came from it (True) or were read.
    cached: bool | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Rebuilt by tuple.__new__ in C, where a named tuple's default goes
        # through its Python __new__ and __getnewargs__: half the cost of
        # sending a batch of results back from a worker.
        return tuple.__new__, (Result, tuple(self))


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


class Summary:
    """What ``md5sum -c`` counts for one manifest, and what it concludes.

    ``error`` is set when the manifest itself could not be read.
    """

    def __init__(self, manifest: str) -> None:
        self.manifest = manifest
        self.ok = 0
        self.failed = 0
        self.missing = 0
        self.unreadable = 0
        self.malformed = 0
        self.error: str | None = None
        # Untagged lines whose algorithm was guessed from the digest's length,
        # those of them that FAILED, and the algorithms guessed.
        self.guessed = 0
        self.guessed_failed = 0
        self.guesses: set[str] = set()

    def add(self, v: Verdict) -> None:
        if v.line == 0:
            self.error = v.error
        elif v.status == OK:
            self.ok += 1
        elif v.status == FAILED:
            self.failed += 1
        elif v.status == MISSING:
            self.missing += 1
        elif v.status == UNREADABLE:
            self.unreadable += 1
        else:
            self.malformed += 1

    @property
    def checked(self) -> int:
        """Properly formatted lines: coreutils counts a missing file as one."""
        return self.ok + self.failed + self.missing + self.unreadable

    def passed(self, *, strict: bool = False, ignore_missing: bool = False) -> bool:
        """Whether this manifest verifies: ``md5sum -c``'s exit status 0."""
        return (
            self.error is None
            and self.checked > 0
            and self.failed == 0
            and self.unreadable == 0
            and (ignore_missing or self.missing == 0)
            and (not strict or self.malformed == 0)
            and (not ignore_missing or self.ok > 0)
        )

    def warnings(self, *, ignore_missing: bool = False) -> list[str]:
        """The warnings ``md5sum -c`` prints after the manifest's lines, in its words.

        Each still needs the program's name and the manifest's quoted name
        where it has ``{manifest}``.
        """
        if self.error is not None:
            return ["{manifest}: " + self.error]
        if self.checked == 0:
            return ["{manifest}: no properly formatted checksum lines found"]
        out = []
        if self.malformed:
            out.append(_plural(self.malformed, "line is", "lines are") + " improperly formatted")
        unread = self.unreadable + (0 if ignore_missing else self.missing)
        if unread:
            out.append(_plural(unread, "listed file", "listed files") + " could not be read")
        if self.failed:
            out.append(
                _plural(self.failed, "computed checksum", "computed checksums") + " did NOT match"
            )
        out = ["WARNING: " + w for w in out]
        if ignore_missing and self.ok == 0:
            out.append("{manifest}: no file was verified")
        # Two lines at least: one file that changed is not a pattern.
        if self.guessed > 1 and self.guessed_failed == self.guessed and guess_hint(self.guesses):
            # b3sum's and xxhsum -H2's lines have the length of sha256's and
            # md5's: a manifest of them fails whole, file after file.
            out.append("{manifest}: hint: " + guess_hint(self.guesses))
        return out


def guess_hint(guesses: set[str]) -> str:
    """Why every untagged line may have failed: the algorithm guessed was not the one
    (empty when no other algorithm has digests of that length)."""
    from parhash.algorithms import ALGORITHMS

    lengths = {ALGORITHMS[g].hex_length for g in guesses}
    others = [a.name for a in ALGORITHMS.values()
              if a.hex_length in lengths and a.name not in guesses]
    if not others:
        return ""
    return (f"every digest failed as {' or '.join(sorted(guesses))}, the algorithm its length "
            f"suggests; if they are {' or '.join(others)} digests, say so with --algo")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


class DupeGroup(NamedTuple):
    """Files with identical contents, as ``parhash dupes`` finds them.

    ``paths`` names each distinct file once, in the order the search was
    asked for (byte order by default; see :func:`parhash.find_dupes`): the
    first is the one to keep. A file with several names (hard links, or a
    symlink followed with ``-L``) is named by the first of them in that
    order. ``hardlinks`` lists, for each such file in the order of
    ``paths``, all of its names in that order, the first being the one in
    ``paths``. ``digest`` is
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
    file that vanished during the search. ``skipped`` marks a path left out
    on purpose, not for a failure (a file or directory on a pseudo file
    system such as ``/proc``, whose sizes are not its contents): a notice.
    """

    path: str
    error: str
    errno: int | None = None
    could_hide_duplicate: bool = True
    skipped: bool = False


class Pause:
    """Not a path: the list being read has nothing more for now.

    :func:`~parhash.walk.read_path_list` and the manifest reader of
    ``check`` yield :data:`PAUSE` before they wait on a slow producer, so
    that whoever batches paths sends what it holds instead of waiting with
    it. :func:`~parhash.walk.walk_paths` passes it through.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "PAUSE"


PAUSE = Pause()
