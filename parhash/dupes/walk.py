"""Stage 1: the walk, on scan's tasks, with each file ``stat``-ed (and a small one hashed)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from parhash.algorithms import hexdigest_function
from parhash.dupes.candidates import HEAD_SIZE, FileInfo, _vanished
from parhash.formats.names import FS_ENCODING, FS_ERRORS
from parhash.hashing import (
    DEFAULT_BLOCK_SIZE,
    OPEN_FLAGS,
    directories,
    read_buffer,
)
from parhash.pool import note_directory
from parhash.results import DupeError, WalkError, reason
from parhash.select import Selector
from parhash.tasks import NEVER_ALONE, RESULTS, ScanJob, _Task
from parhash.walk import (
    CHANGED_DURING_WALK,
    LOOP,
    NOT_REGULAR,
    PSEUDO_FS,
    Directory,
    Linked,
    Walked,
    is_pseudo_fs,
    walked_reason,
)


def _walk_error(e: WalkError) -> DupeError:
    if e.error == PSEUDO_FS:
        return DupeError(e.path, e.error, None, False, skipped=True)
    harmless = e.error != CHANGED_DURING_WALK and (
        e.loop_ancestor is not None
        or e.error in (LOOP, NOT_REGULAR)
        # A link to itself, or links to each other, under -L: the loop is
        # not a file, so it hides nothing.
        or (e.depth > 0 and (_vanished(e.errno) or e.errno == errno.ELOOP))
    )
    return DupeError(e.path, e.error, e.errno, not harmless)


class SizeLimits(NamedTuple):
    """Which files stage 1 keeps, by size."""

    min_size: int = 0
    max_size: int | None = None
    include_empty: bool = False


def _row(
    path: str, st: os.stat_result, limits: SizeLimits, head: str | None = None
) -> FileInfo | DupeError | None:
    """A candidate from a file's ``stat``; an error if it is no regular file; None
    if it is out of ``limits``."""
    if not stat.S_ISREG(st.st_mode):  # replaced since the walk saw a file
        return DupeError(path, NOT_REGULAR, None, False)
    size = st.st_size
    if size < limits.min_size or (limits.max_size is not None and size > limits.max_size):
        return None
    if size == 0 and not limits.include_empty:
        return None
    return (path, size, st.st_mtime_ns, st.st_dev, st.st_ino, (), head)


# --- Stage 1 on the tasks of scan --------------------------------------------------

# A file this small is read whole as the walk finds it, and hashed: what the
# walk's lstat would cost goes to an open, two fstats, a read and a close by
# name in the open directory, and the head stage has nothing left to read
# for it. Below this size there are few sizes to have, so a file's size is
# nearly always another's too and its head would be read anyway (on the
# benchmark's 30,000 small files, 467 have a size of their own). There the
# workers' CPU per file went from 3.5 (lstat) + 6.3 (head stage) to 8.2 µs,
# and the head stage's round trip to the workers went away.
PEEK_BYTES = 16 << 10


class DupeWalk(NamedTuple):
    """What a stage-1 task needs besides scan's job: the size limits and the peek."""

    limits: SizeLimits
    algo: str
    peek: int  # files up to this size are read and hashed; 0: none
    # With the hash cache: its directory (resolved) and its files' names
    # there, which change as the search writes them: never compared.
    own: tuple[bytes, frozenset[str]] | None = None


def _peeker(
    algo: str, limit: int, limits: SizeLimits
) -> Callable[[str, int], tuple[os.stat_result, str | None]]:
    """A file's ``stat``, and its digest if it is no larger than ``limit``.

    Called with a name and its open directory. A file that cannot be opened
    is ``lstat``-ed instead, as without a peek: whether that is an error is
    for the head stage to find, if another file has its size. One that
    changes under the read gets no digest, and the head stage reads it
    again. A name swapped for a link fails ``O_NOFOLLOW``, and its
    ``lstat`` says so. A file out of ``limits`` is not read.
    """
    hexdigest = hexdigest_function(algo)
    empty = hexdigest(b"")
    # One byte more than the limit, so that a file grown past its fstat shows.
    view, views = read_buffer(limit + 1)
    open_, readv, fstat, close, lstat = os.open, os.readv, os.fstat, os.close, os.stat
    flags = OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)
    is_regular = stat.S_ISREG
    least = limits.min_size if limits.include_empty else max(1, limits.min_size)
    limit = min(limit, limits.max_size) if limits.max_size is not None else limit

    def look(name: str, directory: int) -> tuple[os.stat_result, str | None]:
        try:
            fd = open_(name, flags, dir_fd=directory)
        except OSError:
            return lstat(name, dir_fd=directory, follow_symlinks=False), None
        try:
            st = fstat(fd)
            size = st.st_size
            if size > limit or size < least or not is_regular(st.st_mode):
                return st, None
            if size == 0:
                return st, empty
            try:
                total = readv(fd, views)
                after = fstat(fd)
            except OSError:
                return st, None
        finally:
            close(fd)
        if total != size or after.st_size != size or after.st_mtime_ns != st.st_mtime_ns:
            return st, None
        return st, hexdigest(view[:total])

    return look


def _lstat(name: str, directory: int) -> tuple[os.stat_result, None]:
    return os.stat(name, dir_fd=directory, follow_symlinks=False), None


class StatTask(_Task):
    """A task of stage 1: scan's walk, with each file ``stat``-ed, not hashed.

    Its records are :data:`FileInfo` rows and :class:`DupeError` values.
    Files no larger than the peek are read and hashed as they are found
    (:data:`PEEK_BYTES`). A worker names each file as it looks at it, as
    scan's do, so a file that stalls or kills its worker is the one lost,
    and the rest of its directory is walked again without it.
    """

    def __init__(self, job: ScanJob, size: int) -> None:
        super().__init__(job, size)
        options: DupeWalk = job.options
        self.limits = options.limits
        self.look = (_peeker(options.algo, options.peek, options.limits) if options.peek
                     else _lstat)

    def files_in(self, dirfd: int, d: Directory, entries: Iterator[Any], index: int,
                 skip: frozenset[str], among: int) -> None:
        job = self.job
        top = d.path
        depth = d.depth + 1
        own = job.options.own
        if own is not None:
            from parhash.cache import resolved_directory

            if resolved_directory(dirfd, top) == own[0]:
                skip = skip | own[1]
        look, limits, records = self.look, self.limits, self.records
        noted = note_directory(index, top)
        if noted is not None:
            name_view, cells, cell, start = noted
            room = len(name_view)
        # A directory too large for a task (twice its files) is cut here.
        limit = (1 if job.first else 2) * job.files
        files = self.files
        seen = files + self.errors
        try:
            for name in entries:
                seen += 1
                if type(name) is not str:
                    self.files = files
                    self.entry(name, index, skip)
                    files = self.files
                    continue
                if skip and name in skip:
                    continue
                path = top + name
                if noted is not None:
                    # Named to the stall watch as scan's loop does
                    # (tasks._Task.files_in): written out, with no call.
                    encoded = name.encode(FS_ENCODING, FS_ERRORS)
                    end = start + len(encoded)
                    if end <= room:
                        name_view[start:end] = encoded
                        cells[cell] = end
                    else:
                        cells[cell] = start  # too long to name: its directory
                try:
                    st, head = look(name, dirfd)
                except OSError as e:
                    self.walk_error(WalkError(path, reason(e), e.errno, depth))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    self.walk_error(WalkError(path, CHANGED_DURING_WALK, None, depth))
                    continue
                row = _row(path, st, limits, head)
                if type(row) is tuple:
                    records.append(row)
                    files += 1
                elif row is not None:
                    records.append(row)
                    self.errors += 1
                if seen >= limit:
                    return
        finally:
            self.files = files

    def failed(self, path: str, why: str, code: int | None = None,
               st: os.stat_result | None = None) -> None:
        self.errors += 1
        self.records.append(DupeError(path, why, code, why != NOT_REGULAR))

    def walk_error(self, e: WalkError) -> None:
        self.errors += 1
        self.records.append(_walk_error(e))

    def row(self, path: str, st: os.stat_result) -> None:
        got = _row(path, st, self.limits)
        if type(got) is tuple:
            self.files += 1
            self.records.append(got)
        elif got is not None:
            self.errors += 1
            self.records.append(got)

    def linked(self, entry: Linked) -> None:
        # A link followed with -L into /proc or /sys: a notice, as for a name.
        self.named_file(entry.path, entry.st)

    def named_file(self, path: str, st: os.stat_result) -> None:
        if self.job.skip_pseudo and is_pseudo_fs(st.st_dev):
            self.walk_error(WalkError(path, PSEUDO_FS))
        else:
            self.row(path, st)

    def named_special(self, path: str) -> None:
        # Not a file of a size to compare: a pipe, a device, a socket.
        self.failed(path, NOT_REGULAR)

    def walked_one(self, path: str, top: int = -1, root: tuple[int, int] | None = None) -> None:
        # A glob's match: looked at below what the walk saw, never through a link.
        if isinstance(path, Walked):
            top, root = path.top, path.root
        shown = str(path)
        try:
            fd = directories().open_walked(shown, top, OPEN_FLAGS, root)
        except OSError as e:
            why = walked_reason(e)
            self.errors += 1
            self.records.append(DupeError(shown, why, None if why == CHANGED_DURING_WALK
                                          else e.errno, not _vanished(e.errno)))
            return
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self.row(shown, st)


def walk_job(
    algo: str,
    limits: SizeLimits | None = None,
    *,
    head_size: int = HEAD_SIZE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    follow: bool = False,
    select: Selector | None = None,
    own: tuple[bytes, frozenset[str]] | None = None,
) -> ScanJob:
    """The job of stage 1's tasks (:class:`StatTask`, through ``tasks.run_task``).

    Files on ``/proc``, ``/sys`` and the like say sizes that are not their
    contents: compared by size, each would be a change under the read. They
    are left out with a notice. ``own``: the hash cache's directory and
    file names, left out unlooked at.
    """
    return ScanJob((algo,), block_size, RESULTS, follow=follow, select=select,
                   alone=NEVER_ALONE, skip_pseudo=True,
                   options=DupeWalk(limits or SizeLimits(), algo, min(head_size, PEEK_BYTES),
                                    own))
