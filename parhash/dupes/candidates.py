"""What the search holds: candidates, their groups, and the stages' names."""

from __future__ import annotations

import enum
import errno
import functools
import itertools
import operator
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, overload

from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.results import DupeError


def _info(message: str, *args: object) -> None:
    """Log at INFO level, if anyone listens.

    Importing logging costs some 10 ms of a run; a program that set up no
    logging has not imported it, and so has nobody to tell.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(__name__).info(message, *args)


DEFAULT_DUPES_ALGO = "xxh128"

# Reading 64 KiB of a file in the page cache costs little more than reading
# 4 KiB (the system call and the open dominate), and every file up to that
# size is settled by the head stage alone, with no second read.
HEAD_SIZE = 64 << 10

CHANGED = "changed during the search"


class Stage(enum.Enum):
    """The stages of the search, in order; the values are progress labels."""

    SIZE = "grouping by size"
    INODE = "grouping by inode"
    HEAD = "hashing heads"
    CONTENTS = "hashing contents"


# Called as (stage, files done, files in the stage or 0 when not yet known).
ProgressFn = Callable[[Stage, int, int], None]


# A candidate: one file, with what stage 1's ``stat`` saw of it:
# (path, size, mtime_ns, dev, ino, links, head), where ``links`` holds its
# other names once group_by_inode has run, and ``head`` the digest of a small
# file read whole by the walk (:data:`PEEK_BYTES`), or None. A plain tuple, not a named one: it
# pickles in C, where a named tuple's __reduce__ is a Python call per file
# (that made a worker's listing of a walk three times dearer to send, and a
# batch of heads six times), and the stages never copy it into another type
# (a pass over the candidates in group order costs a cache miss per file).
FileInfo = tuple[str, int, int, int, int, tuple[str, ...], str | None]


_size = operator.itemgetter(1)
_mtime = operator.itemgetter(2)
_dev = operator.itemgetter(3)
_links = operator.itemgetter(5)


class PackedFiles:
    """Candidates in columns: some 50 bytes a file where a FileInfo costs 250.

    A :data:`FileInfo` is a tuple, a ``str`` and four ``int`` objects: a
    million empty files kept so held 300 MB in ``dupes --include-empty``.
    Here a file is its name's bytes after the last ``/`` in one buffer, its
    directory an index into ``dirs``, and its numbers items of 64-bit
    arrays. A file that has ``links``, or a number that does not fit, is
    also kept whole in ``whole``, by position. Only an mtime can be such a
    number (past the year 2262, in nanoseconds): sizes, devices and inodes
    are 64-bit numbers to the system, so the columns read directly
    (``sizes``, ``devs``, ``inos``) hold every file's own.

    It reads back as a sequence of FileInfo tuples, each built when asked
    for (``files[i]``, iteration), so what reads a list of them reads this
    too, one file at a time. ``files[a:b]`` and :meth:`take` make new
    PackedFiles; :meth:`extend` and :meth:`extend_tuples` append. Pickled,
    it is its buffers.
    """

    __slots__ = ("dirs", "_numbers", "dir_at", "names", "ends", "sizes", "mtimes", "devs",
                 "inos", "whole")

    def __init__(self) -> None:
        self.dirs: list[str] = []
        self._numbers: dict[str, int] | None = {}  # dirs' positions, made again when needed
        self.dir_at = array("I")
        self.names = bytearray()
        self.ends = array("q")  # where each name ends in ``names``
        self.sizes = array("q")
        self.mtimes = array("q")
        self.devs = array("q")
        self.inos = array("Q")
        self.whole: dict[int, FileInfo] = {}

    def _columns(self) -> tuple[array[int], array[int], array[int], array[int]]:
        return self.sizes, self.mtimes, self.devs, self.inos

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpickle_packed, (self.dirs, self.dir_at, self.names, self.ends,
                                  *self._columns(), self.whole)

    def __repr__(self) -> str:
        return f"<PackedFiles of {len(self)} files>"

    def __len__(self) -> int:
        return len(self.ends)

    def _dir(self, directory: str) -> int:
        numbers = self._numbers
        if numbers is None:
            numbers = self._numbers = {d: i for i, d in enumerate(self.dirs)}
        number = numbers.get(directory)
        if number is None:
            number = numbers[directory] = len(self.dirs)
            self.dirs.append(directory)
        return number

    def path(self, i: int) -> str:
        """File ``i``'s path."""
        ends = self.ends
        name = self.names[ends[i - 1] if i else 0:ends[i]]
        return self.dirs[self.dir_at[i]] + name.decode(FS_ENCODING, FS_ERRORS)

    def sort_key(self) -> Callable[[int], bytes]:
        """A file's path as bytes, by position: the order of the report."""
        tops = list(map(_sort_key, self.dirs))
        names, ends, dir_at = self.names, self.ends, self.dir_at

        def key(i: int) -> bytes:
            return tops[dir_at[i]] + names[ends[i - 1] if i else 0:ends[i]]

        return key

    @overload
    def __getitem__(self, i: int) -> FileInfo: ...

    @overload
    def __getitem__(self, i: slice) -> PackedFiles: ...

    def __getitem__(self, i: int | slice) -> FileInfo | PackedFiles:
        if isinstance(i, slice):
            return self.take(range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        f = self.whole.get(i) if self.whole else None
        if f is not None:
            return f
        return (self.path(i), self.sizes[i], self.mtimes[i], self.devs[i], self.inos[i], (),
                None)

    def __iter__(self) -> Iterator[FileInfo]:
        dirs, names, whole = self.dirs, self.names, self.whole
        start = 0
        for i, (end, d, size, mtime, dev, ino) in enumerate(zip(
            self.ends, self.dir_at, *self._columns(), strict=True
        )):
            f = whole.get(i) if whole else None
            if f is None:
                path = dirs[d] + names[start:end].decode(FS_ENCODING, FS_ERRORS)
                f = path, size, mtime, dev, ino, (), None
            yield f
            start = end

    def extend_tuples(self, files: Sequence[FileInfo]) -> None:
        """Append ``files``."""
        if not files:
            return
        base = len(self)
        paths = list(map(_path, files))
        top = paths[0][:paths[0].rfind("/") + 1]
        cut = len(top)
        joined = "\0".join(map(operator.itemgetter(slice(cut, None)), paths))  # no path holds a NUL
        if "/" not in joined and all(map(top.__eq__, map(operator.itemgetter(slice(cut)), paths))):
            # All in ``top``, as a walk's run of one directory: cut apart in a
            # few calls, not a Python step a file (packing takes 440 ns a
            # file so, 630 ns through the loop below).
            names = joined.encode(FS_ENCODING, FS_ERRORS).split(b"\0")
            self.dir_at.extend(array("I", [self._dir(top)]) * len(paths))
        else:
            dir_at = self.dir_at
            names = []
            last, cut_at, number = "", -1, 0
            for path in paths:
                at = path.rfind("/") + 1
                # Files come a directory at a time: look the directory up once.
                if at != cut_at or not path.startswith(last):
                    last, cut_at = path[:at], at
                    number = self._dir(last)
                dir_at.append(number)
                names.append(path[at:].encode(FS_ENCODING, FS_ERRORS))
        del paths, joined
        self.ends.extend(itertools.islice(
            itertools.accumulate(map(len, names), initial=len(self.names)), 1, None))
        self.names += b"".join(names)
        del names
        columns = self._columns()
        try:
            for column, get in zip(columns, (_size, _mtime, _dev, _ino), strict=True):
                column.extend(map(get, files))
        except OverflowError:
            # A number 64 bits can't hold: the file is kept whole, and its
            # columns hold 0 for that number.
            for column in columns:
                del column[base:]
            for i, f in enumerate(files, base):
                for column, number in zip(columns, f[1:5], strict=True):
                    try:
                        column.append(number)
                    except OverflowError:
                        column.append(0)
                        self.whole[i] = f
        if any(map(_links, files)):
            self.whole.update((i, f) for i, f in enumerate(files, base) if f[5])

    def extend(self, other: PackedFiles, positions: Sequence[int] | None = None) -> None:
        """Append the files of ``other`` at ``positions``, or all of them."""
        base = len(self)
        end = len(self.names)
        if positions is None:
            table = [self._dir(d) for d in other.dirs]
            self.dir_at.extend(map(table.__getitem__, other.dir_at))
            self.names += other.names
            self.ends.extend(map(end.__add__, other.ends))
            for mine, theirs in zip(self._columns(), other._columns(), strict=True):
                mine.extend(theirs)
            self.whole.update((base + i, f) for i, f in other.whole.items())
            return
        names, ends, dir_at, dirs = other.names, other.ends, other.dir_at, other.dirs
        my_dir_at = self.dir_at
        numbers: dict[int, int] = {}  # other's directory numbers -> ours
        pieces = []
        for i in positions:
            pieces.append(names[ends[i - 1] if i else 0:ends[i]])
            d = dir_at[i]
            number = numbers.get(d)
            if number is None:
                number = numbers[d] = self._dir(dirs[d])
            my_dir_at.append(number)
        self.ends.extend(itertools.islice(itertools.accumulate(map(len, pieces), initial=end),
                                          1, None))
        self.names += b"".join(pieces)
        for mine, theirs in zip(self._columns(), other._columns(), strict=True):
            mine.extend(map(theirs.__getitem__, positions))
        if other.whole:
            whole = other.whole
            self.whole.update((base + k, whole[i]) for k, i in enumerate(positions) if i in whole)

    def take(self, positions: Sequence[int]) -> PackedFiles:
        """The files at ``positions``, in that order, packed."""
        taken = PackedFiles()
        taken.extend(self, positions)
        return taken


def _unpickle_packed(dirs: list[str], dir_at: array[int], names: bytearray, ends: array[int],
                     sizes: array[int], mtimes: array[int], devs: array[int], inos: array[int],
                     whole: dict[int, FileInfo]) -> PackedFiles:
    out = PackedFiles.__new__(PackedFiles)
    out.dirs, out._numbers, out.dir_at, out.names, out.ends = dirs, None, dir_at, names, ends
    out.sizes, out.mtimes, out.devs, out.inos, out.whole = sizes, mtimes, devs, inos, whole
    return out


def pack(files: Sequence[FileInfo]) -> PackedFiles:
    """``files`` as a PackedFiles."""
    out = PackedFiles()
    out.extend_tuples(files)
    return out


# The candidates of a group: a list of FileInfo, or packed when many.
Files = list[FileInfo] | PackedFiles


class Group(NamedTuple):
    """Files that agree on everything the stages so far have looked at.

    ``digest`` is unset after stages 1 and 2, the head digest after stage 3
    and the contents digest after stage 4. When ``size`` is at most the head
    size, the head digest already is the contents digest.
    """

    size: int
    files: Files
    digest: str | None = None


# Group(...) without the named tuple's Python __new__: one per group.
_group: Callable[[tuple[int, Files, str | None]], Group] = functools.partial(
    tuple.__new__, Group
)
# What Hashing.split leaves in place of a group it is done with.
_RELEASED = Group(0, [])


def _sort_key(path: str) -> bytes:
    """A path as its bytes (``os.fsencode`` without its checks): the order of the report."""
    return path.encode(FS_ENCODING, FS_ERRORS)


def _file_key(f: FileInfo) -> bytes:
    return f[0].encode(FS_ENCODING, FS_ERRORS)


_ino = operator.itemgetter(4)  # a FileInfo's inode, without a call per file
_path = operator.itemgetter(0)  # a FileInfo's path; for ASCII names, the order of their bytes


def _in_path_order(errors: Iterable[DupeError]) -> list[DupeError]:
    """Errors in byte order of their paths: the same lines whichever process met them."""
    return sorted(errors, key=lambda e: _sort_key(e.path))


def _vanished(err: int | None) -> bool:
    # A file that no longer exists is no one's duplicate.
    return err == errno.ENOENT
