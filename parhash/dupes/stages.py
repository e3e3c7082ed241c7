"""Stages 1 to 4, each ``list[Group] -> list[Group]``, and the hashing they share."""

from __future__ import annotations

import functools
import gc
import os
import stat
from array import array
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast

from parhash.algorithms import hexdigest_function
from parhash.dupes.candidates import (
    _RELEASED,
    CHANGED,
    FileInfo,
    Files,
    Group,
    PackedFiles,
    ProgressFn,
    Stage,
    _file_key,
    _group,
    _in_path_order,
    _ino,
    _vanished,
)
from parhash.dupes.order import PATH_ORDER, FileOrder
from parhash.executor import (
    BATCH_BYTES,
    INLINE_MAX_BYTES,
    INLINE_MAX_FILES,
    Executor,
    InlineExecutor,
)
from parhash.hashing import (
    OPEN_FLAGS,
    Job,
    path_hasher,
    read_buffer,
)
from parhash.pool import WORKER_DIED, PipelineStats, PoolExecutor, note_item
from parhash.results import DupeError, reason
from parhash.tasks import task_scale

# A group of this many files or more is kept as a PackedFiles, not a list:
# from here a list's 250 bytes a file outweigh the Python step per file that
# packing and unpacking cost (a list of tuples costs none: the pickler builds
# it). The largest group of the benchmark's tree of 40,012 files has 116
# (1,226 empty files with --include-empty): its run does not pack.
PACK_AT = 1024


class SizeGroups:
    """Stage 1's groups, built as the walk's files arrive, in batches.

    A file the walk read whole and hashed (:data:`~parhash.dupes.walk.PEEK_BYTES`)
    is grouped by that digest, not by its size: its group comes out with
    the digest set, split as stage 3 would split it, which costs nothing
    more here and saves a pass over its files there. A size that some files
    of a digest group have and other files, not hashed, have too, gets one
    group of them all again, for stage 3 to read.

    It also notes the keys where an inode number came twice: only such a
    group can hold two names of one file, for stage 2 to merge. Both happen
    in one step per file, while the file is fresh in memory.

    A size's files go to a :class:`PackedFiles` in ``packed`` once they are
    :data:`PACK_AT`; the list in ``by_size`` then holds only those come
    since. Stage 2 looks at every packed group, so the inodes of files that
    come packed are not noted. Files that come as tuples, as the walk's
    tasks send them, are: a set of a million inodes is 60 MB.
    """

    def __init__(self) -> None:
        # By size, or by digest (a str) for files hashed by the walk.
        self.by_size: dict[int | str, list[FileInfo]] = {}
        self.packed: dict[int | str, PackedFiles] = {}
        self.inodes: set[int] = set()
        self.linked: set[int | str] = set()  # keys whose group may hold one file twice
        self.files = 0

    def add(self, files: Iterable[FileInfo] | PackedFiles) -> None:
        if type(files) is PackedFiles:
            self._add_packed(files)
            return
        by_size = self.by_size
        get = by_size.get
        inodes = self.inodes
        seen = len(inodes)
        n = self.files
        for f in files:
            n += 1
            key = f[6] or f[1]
            same = get(key)
            if same is None:
                by_size[key] = [f]
            else:
                same.append(f)
                if len(same) >= PACK_AT:
                    self._pack(key, same)
            inodes.add(f[4])
            if len(inodes) == seen:
                self.linked.add(key)
            else:
                seen += 1
        self.files = n

    def _pack(self, key: int | str, files: list[FileInfo]) -> PackedFiles:
        """Move ``files`` (``by_size[key]``, left empty) to the packed group of ``key``."""
        to = self.packed.get(key)
        if to is None:
            to = self.packed[key] = PackedFiles()
        to.extend_tuples(files)
        files.clear()
        return to

    def _add_packed(self, run: PackedFiles) -> None:
        sizes = run.sizes
        if not sizes:
            return
        # Positions by size; None for all, when the run has one size (a
        # directory of empty files, or of photos from one camera).
        at_size: dict[int, list[int] | None] = {}
        if sizes.count(sizes[0]) == len(sizes):
            at_size[sizes[0]] = None
        else:
            for i, size in enumerate(sizes):
                got = at_size.get(size)
                if got is None:
                    at_size[size] = [i]
                else:
                    got.append(i)
        for size, positions in at_size.items():
            count = len(sizes) if positions is None else len(positions)
            same = self.by_size.setdefault(size, [])
            if size not in self.packed and len(same) + count < PACK_AT:
                self.add([run[i] for i in (range(count) if positions is None else positions)])
                continue
            self._pack(size, same).extend(run, positions)
            self.files += count

    def groups(self) -> list[Group]:
        """The sizes (and digests) shared by two files or more."""
        out = []
        packed = self.packed
        by_size = self.by_size
        for key, files in list(by_size.items()):
            if type(key) is not str:
                continue
            # A group packed whole has left its list empty.
            size = files[0][1] if files else packed[key].sizes[0]
            if size in by_size:
                # Files of a size that others, not hashed, have too: to be
                # read with them. A change under the walk's read, or a read
                # that failed, must not hide a duplicate.
                if key in self.linked:
                    self.linked.add(size)
                if key in packed:
                    self._pack(size, by_size[size]).extend(self._pack(key, files))
                else:
                    by_size[size].extend(files)
                    if size in packed or len(by_size[size]) >= PACK_AT:
                        self._pack(size, by_size[size])
                by_size[key] = []
                packed.pop(key, None)
        for key, files in by_size.items():
            if key in packed:
                group = self._pack(key, files)
                if len(group) > 1:
                    out.append(_group(_sized(key, group)))
            elif len(files) > 1:
                out.append(_group(_sized(key, files)))
        return out

    def clear(self) -> None:
        """Let go of the candidates: the groups hold them now."""
        self.by_size.clear()
        self.packed.clear()


def _sized(key: int | str, files: Files) -> tuple[int, Files, str | None]:
    """A group's fields from its key in :class:`SizeGroups`: a size, or a digest."""
    if type(key) is str:
        return files[0][1], files, key
    return cast(int, key), files, None


def group_by_size(files: Iterable[FileInfo]) -> list[Group]:
    """Stage 1: group files by size, keeping the sizes shared by two or more."""
    sizes = SizeGroups()
    sizes.add(files)
    return sizes.groups()


def group_by_inode(
    groups: list[Group],
    linked: Container[int | str] | None = None,
    *,
    keep_links: bool = True,
    order: FileOrder = PATH_ORDER,
) -> list[Group]:
    """Stage 2: make the names of one file one candidate; keep groups of two files or more.

    The candidate is named by the first of its names in ``order`` (byte
    order by default) and keeps the others in ``links``, in that order
    (left empty without ``keep_links``): the report orders files by the
    same key, so a file's name is the one its order puts first even when
    its other names are dropped. The same name met twice counts once. With
    ``linked`` (:attr:`SizeGroups.linked`), groups of other sizes are taken
    as they are, but for packed ones.
    """
    by_name = _file_key if order.plain else order.key()
    out = []
    for group in groups:
        files = group[1]
        if type(files) is PackedFiles:
            merged = _merge_packed(files, keep_links, order)
            if merged is not None:
                out.append(group if merged is files else _group((group[0], merged, group[2])))
            continue
        if (
            (linked is not None and (group[2] or group[0]) not in linked)
            or (files[0][4] != files[1][4] if len(files) == 2
                else len(set(map(_ino, files))) == len(files))
        ):
            # The common case: every name a file of its own (files on two
            # devices may share an inode number, never a distinct one).
            out.append(group)
            continue
        by_inode: dict[tuple[int, int], list[FileInfo]] = {}
        for f in files:
            by_inode.setdefault((f[3], f[4]), []).append(f)
        if len(by_inode) < 2:
            continue
        merged = []
        for names in by_inode.values():
            if len(names) == 1:
                merged.append(names[0])
                continue
            names.sort(key=by_name)
            first = names[0][0]
            links = tuple(dict.fromkeys(f[0] for f in names[1:] if f[0] != first))
            merged.append(names[0][:5] + (links if keep_links else (), names[0][6]))
        out.append(_group((group[0], merged, group[2])))
    return out


def _merge_packed(files: PackedFiles, keep_links: bool,
                  order: FileOrder = PATH_ORDER) -> Files | None:
    """:func:`group_by_inode` for one packed group, in a few bytes a file.

    Returns ``files`` itself when every name is a file of its own, None when
    fewer than two files are left.
    """
    repeated = _repeated(files.inos)
    if not repeated:
        return files
    kept = array("q")
    by_ino = {ino: array("q") for ino in repeated}
    get = by_ino.get
    for i, ino in enumerate(files.inos):
        at = get(ino)
        if at is None:
            kept.append(i)
        else:
            at.append(i)
    del repeated
    by_inode: list[array[int]] = []
    devs = files.devs
    one_device = devs.count(devs[0]) == len(devs)
    for at in by_ino.values():
        if one_device or len({devs[i] for i in at}) == 1:
            by_inode.append(at)
        else:  # one inode number on several devices: several files
            on: dict[int, array[int]] = {}
            for i in at:
                on.setdefault(devs[i], array("q")).append(i)
            by_inode.extend(on.values())
    del by_ino
    merged: list[FileInfo] = []  # with their links
    by_path: Callable[[int], Any]
    if order.plain:
        by_path = files.sort_key()
    else:
        # Only names of a file with several are looked at: a tuple each is cheap.
        key = order.key()

        def by_path(i: int) -> Any:
            return key(files[i])

    for names in by_inode:
        if len(names) == 1:
            kept.append(names[0])
        elif not keep_links:
            kept.append(min(names, key=by_path))
        else:
            ranked = sorted(names, key=by_path)
            first = files.path(ranked[0])
            links = tuple(dict.fromkeys(p for p in map(files.path, ranked[1:]) if p != first))
            merged.append(files[ranked[0]][:5] + (links, None))
    del by_inode
    count = len(kept) + len(merged)
    if count < 2:
        return None
    if count < PACK_AT:
        return [files[i] for i in kept] + merged
    out = files.take(kept)
    out.extend_tuples(merged)
    return out


def _repeated(numbers: Sequence[int] | memoryview, shift: int = 0) -> set[int]:
    """The numbers found more than once in ``numbers``, all below 2**64.

    A set of them all would cost some 60 bytes a number. This counts the
    numbers, up to two, by some of their bits (from bit ``shift`` on) in a
    table of 8 to 16 bytes a number, and keeps those whose bits came twice:
    where the bits are random (the heads of digests), one number in ten. It
    looks at the next bits of those the same way, until what is kept no
    longer shrinks, and counts that exactly.
    """
    count = len(numbers)
    if count > 1 << 12 and shift < 64:
        bits = (8 * count).bit_length()
        mask = (1 << bits) - 1
        seen = bytearray(mask + 1)
        for n in numbers:
            low = n >> shift & mask
            seen[low] = 2 if seen[low] else 1
        if 2 not in seen:
            return set()
        kept = array("Q", (n for n in numbers if seen[n >> shift & mask] == 2))
        del seen
        if len(kept) < count:
            return _repeated(kept, shift + bits)
        numbers = kept
    counts: dict[int, int] = {}
    for n in numbers:
        counts[n] = counts.get(n, 0) + 1
    return {n for n, times in counts.items() if times > 1}


# A run of one group's files: (group number, start in the group, whether it
# is the whole group, its files). A worker may drop lone files of a whole group.
# The files go as they are: a whole group is its own list, sent unchanged. A
# run of a packed group goes as a list too, unless it is longer than PACK_AT
# (a --chunksize that large): then it goes packed, and the worker builds
# its tuples one at a time.
Part = tuple[int, int, bool, Files]


class Split(NamedTuple):
    """What a worker learnt of a :class:`Part`: its files bucketed by digest.

    ``buckets`` holds ``(digest, positions in the part)``; for a whole part
    only the buckets of two files or more, since the others are no one's
    duplicate. ``errors`` has the files that failed or changed.
    """

    group: int
    start: int
    taken: int  # files in the part
    buckets: list[tuple[str, list[int]]]
    errors: list[DupeError]
    # With the hash cache: files it answered for, and the digests read (a cache.Rows).
    hits: int = 0
    cache: Any = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return tuple.__new__, (Split, tuple(self))


def split_parts(job: Job, parts: Sequence[Part], cache: Any = None) -> list[Split]:
    """Hash each part's files (their heads when ``job.head`` is set) and bucket them.

    Runs in a worker. A file that fails to read, or no longer matches the
    ``stat`` of stage 1, leaves its part with a :class:`DupeError`. Only the
    buckets go back, not a digest per file: the parent's share of the work
    is one step per group that survives, not one per file. With ``cache``
    (a :class:`~parhash.cache.CacheSpec`), whole contents' digests come from
    the hash cache where it holds the file unchanged, and those read go back
    to be added to it.
    """
    if job.head is not None:
        return _split_heads(job, job.head, parts)
    if cache is not None:
        return _split_cached(job, cache, parts)
    digest_of = _digester(job)
    out = []
    for k, (number, start, whole, files) in enumerate(parts):
        by_digest: dict[str, list[int]] = {}
        errors = []
        for i, sent in enumerate(files):
            note_item(k, i)
            got = digest_of(sent[0])
            if isinstance(got, DupeError):
                errors.append(got)
            elif got[1] != sent[1:5]:
                errors.append(DupeError(sent[0], CHANGED))
            else:
                by_digest.setdefault(got[0], []).append(i)
        buckets = [(d, at) for d, at in by_digest.items() if len(at) > 1 or not whole]
        out.append(Split(number, start, len(files), buckets, errors))
    return out


def _split_cached(job: Job, cache: Any, parts: Sequence[Part]) -> list[Split]:
    """:func:`split_parts` for whole contents, with the hash cache."""
    from parhash.cache import Recorder

    algos = job.algos
    algo = algos[0]
    hash_path = path_hasher(job)
    out = []
    for k, (number, start, whole, files) in enumerate(parts):
        recorder = Recorder(cache)
        by_digest: dict[str, list[int]] = {}
        errors = []
        for i, sent in enumerate(files):
            note_item(k, i)
            path = sent[0]
            digests, st = recorder.find(path, algos, follow=False)
            if digests is not None and st is not None:
                if (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino) != tuple(sent[1:5]):
                    errors.append(DupeError(path, CHANGED))
                    continue
                digest = digests[algo]
            else:
                r = hash_path(path)
                if r.error is not None:
                    errors.append(DupeError(path, r.error, r.errno, not _vanished(r.errno)))
                    continue
                if (r.size, r.mtime_ns, r.dev, r.ino) != tuple(sent[1:5]):
                    errors.append(DupeError(path, CHANGED))
                    continue
                recorder.keep_path(path, r.size, r.mtime_ns, r.ctime_ns, r.ino, r.dev, r.digests)
                digest = r.digests[algo]
            by_digest.setdefault(digest, []).append(i)
        buckets = [(d, at) for d, at in by_digest.items() if len(at) > 1 or not whole]
        out.append(Split(number, start, len(files), buckets, errors, recorder.hits,
                         recorder.rows()))
    return out


def _split_heads(job: Job, head: int, parts: Sequence[Part]) -> list[Split]:
    """:func:`split_parts` for heads, the stage that reads most candidates.

    Each file costs an open, one read, an fstat and a close, with no Python
    call in between: the loop of :func:`split_parts` through the reader
    (:func:`~parhash.hashing.hash_file`) cost a tenth more. A file that is
    not read whole in one go (a short read, a change under the read, not a
    regular file any more) is read again by the reader, which sorts it out.
    """
    careful = _digester(job)
    hexdigest = hexdigest_function(job.algos[0])
    view, views = read_buffer(head)
    open_, readv, fstat, close, is_regular = os.open, os.readv, os.fstat, os.close, stat.S_ISREG
    out = []
    for k, (number, start, whole, files) in enumerate(parts):
        by_digest: dict[str, list[int]] = {}
        errors = []
        for i, f in enumerate(files):
            note_item(k, i)
            path = f[0]
            try:
                fd = open_(path, OPEN_FLAGS)
                try:
                    total = readv(fd, views)
                    st = fstat(fd)
                finally:
                    close(fd)
            except OSError as e:
                errors.append(DupeError(path, reason(e), e.errno, not _vanished(e.errno)))
                continue
            size = st.st_size
            if total == (size if size < head else head) and is_regular(st.st_mode):
                if (size != f[1] or st.st_mtime_ns != f[2] or st.st_dev != f[3]
                        or st.st_ino != f[4]):
                    errors.append(DupeError(path, CHANGED))
                    continue
                key = hexdigest(view[:total])
            else:
                got = careful(path)
                # The reader may have grown this process's buffer.
                view, views = read_buffer(head)
                if isinstance(got, DupeError):
                    errors.append(got)
                    continue
                if got[1] != f[1:5]:
                    errors.append(DupeError(path, CHANGED))
                    continue
                key = got[0]
            same = by_digest.get(key)
            if same is None:
                by_digest[key] = [i]
            else:
                same.append(i)
        buckets = [(d, at) for d, at in by_digest.items() if len(at) > 1 or not whole]
        out.append(Split(number, start, len(files), buckets, errors))
    return out


# A digest, with the size, mtime_ns, dev and ino the reader saw.
Seen = tuple[str, tuple[int, int, int, int]]


def _digester(job: Job) -> Callable[[str], Seen | DupeError]:
    """What a worker runs per file: a path in, its digest (of the head, with ``job.head``) out."""
    algo = job.algos[0]
    hash_path = path_hasher(job)

    def digest(path: str) -> Seen | DupeError:
        r = hash_path(path)
        if r.error is not None:
            return DupeError(path, r.error, r.errno, not _vanished(r.errno))
        return r.digests[algo], (r.size, r.mtime_ns, r.dev, r.ino)

    return digest


def cut_parts(
    groups: Sequence[Group], cost: Callable[[int], int], chunksize: int, batch_bytes: int
) -> Iterator[list[Part]]:
    """Cut ``groups`` into batches of :class:`Part` for the workers.

    A batch closes at ``chunksize`` files or ``batch_bytes`` bytes to read
    (``cost`` of a size); a file costing ``batch_bytes`` or more travels alone. A group goes
    whole into a batch where it fits, else in runs over several batches.
    """
    batch: list[Part] = []
    count = nbytes = 0
    for number, group in enumerate(groups):
        files = group[1]
        each = cost(group[0])
        if each >= batch_bytes:
            whole = len(files) == 1
            for i, f in enumerate(files):
                alone: list[FileInfo] = [f]
                yield [(number, i, whole, alone)]
            continue
        start = 0
        while start < len(files):
            room = min(chunksize - count, -(-(batch_bytes - nbytes) // max(each, 1)))
            run: Files
            if start == 0 and room >= len(files):
                run = files if type(files) is list or len(files) > PACK_AT else list(files)
                batch.append((number, start, True, run))
            else:
                stop = min(start + room, len(files))
                run = (files[start:stop] if type(files) is list or stop - start > PACK_AT
                       else [files[i] for i in range(start, stop)])
                batch.append((number, start, False, run))
            start += len(run)
            count += len(run)
            nbytes += len(run) * each
            if count >= chunksize or nbytes >= batch_bytes:
                yield batch
                batch = []
                count = nbytes = 0
    if batch:
        yield batch


class Hashing:
    """What the hashing stages share: one executor, the digest, the errors met.

    The executor is made on first use: this process for a job of at most
    ``INLINE_MAX_FILES`` files and ``INLINE_MAX_BYTES`` bytes, or ``jobs=1``;
    otherwise a pool, which later stages reuse. :meth:`close` stops it. An
    executor ``given`` does every task, and is left open.
    """

    def __init__(
        self,
        *,
        algo: str,
        head_size: int,
        jobs: int,
        chunksize: int,
        block_size: int,
        progress: ProgressFn | None = None,
        stats: PipelineStats | None = None,
        given: Executor | None = None,
        cache: Any = None,
    ) -> None:
        self.given = given
        # The hash cache (a parhash.cache.Cache), for whole contents' digests.
        self.cache = cache
        self.stats = stats
        self.algo = algo
        self.head_size = head_size
        self.jobs = jobs
        self.chunksize = chunksize
        self.block_size = block_size
        self.progress = progress
        self.errors: list[DupeError] = []
        self._pool: PoolExecutor | None = None

    def executor(self, files: int | None = None, nbytes: int = 0) -> Executor:
        """The pool, started now if need be; this process for a small job
        (``files`` given, and few) or ``jobs=1``."""
        if self.given is not None:
            return self.given
        if self._pool is not None:
            return self._pool
        if self.jobs == 1 or (
            files is not None and files <= INLINE_MAX_FILES and nbytes <= INLINE_MAX_BYTES
        ):
            return InlineExecutor()
        # Forked workers share this process's memory until they write to it;
        # a collection in a worker would touch every object the walk left
        # here and copy it. Frozen objects are never collected.
        gc.freeze()
        try:
            self._pool = PoolExecutor(self.jobs, self.stats)
        finally:
            gc.unfreeze()
        return self._pool

    def split(
        self, stage: Stage, groups: list[Group], settle: Callable[[Group], None] | None = None
    ) -> list[Group]:
        """Split every group by the digest of its files (their heads in the HEAD stage).

        Keeps the groups of two files or more. A file that fails, or no
        longer matches its stage-1 ``stat``, is left out and recorded in
        :attr:`errors`.

        With ``settle``, a group whose digest covers the whole of its files
        (in the HEAD stage, one no larger than the head) goes to ``settle``
        as soon as it is known, not into the result; and each group split
        whole leaves ``groups`` then, so that the files that are no one's
        duplicate are freed while the workers are still busy.
        """
        head = self.head_size if stage is Stage.HEAD else None

        def cost(size: int) -> int:
            return size if head is None else min(size, head)

        out: list[Group] = []

        def keeper(size: int) -> Callable[[Group], None]:
            # Where a group of this size goes: settled once read whole.
            return out.append if settle is None or (head is not None and size > head) else settle

        done = 0
        if head is not None:
            # Groups of files the walk read whole (PEEK_BYTES) came split.
            if settle is None:
                groups = list(groups)  # the caller's list stays as it was
            for number, group in enumerate(groups):
                if group[2] is not None:
                    keeper(group[0])(group)
                    groups[number] = _RELEASED
                    done += len(group[1])
        total = done + sum(len(g.files) for g in groups)
        if done and self.progress is not None:
            self.progress(stage, done, total)
        executor = self.executor(total - done, sum(len(g.files) * cost(g.size) for g in groups))
        job = Job((self.algo,), self.block_size, head)

        # The digests of the groups that came back in several parts.
        runs: dict[int, _Digests] = {}
        lost: list[tuple[Part, str]] = []

        def lose(part: Part, reason: str = WORKER_DIED) -> Split:
            lost.append((part, reason))
            return Split(part[0], part[1], 0, [], [])

        def waiting() -> None:
            # Told again while the workers read: a bar may show their bytes.
            if self.progress is not None:
                self.progress(stage, done, total)

        def hash_parts(batches: Iterable[list[Part]]) -> None:
            nonlocal done
            spec = None
            if self.cache is not None and head is None:
                spec = self.cache.spec(lookup=self.given is None)
            for splits in executor.map_unordered(
                functools.partial(split_parts, job, cache=spec), batches, waiting, lose
            ):
                for s in splits:
                    if s.cache is not None:
                        self.cache.write(s.cache)
                    if s.hits:
                        self.cache.hits += s.hits
                    group = groups[s.group]
                    files = group.files
                    if s.errors:
                        self.errors.extend(s.errors)
                    if s.taken == len(files):
                        size = group[0]
                        keep = keeper(size)
                        for digest, at in s.buckets:
                            if len(at) > 1:
                                keep(_group((size, _pick(files, at), digest)))
                        if settle is not None:
                            groups[s.group] = _RELEASED
                    else:
                        digests = runs.get(s.group)
                        if digests is None:
                            digests = runs[s.group] = _Digests(len(files))
                        digests.add(s.start, s.buckets)
                    done += s.taken
                if self.progress is not None:
                    self.progress(stage, done, total)

        hash_parts(cut_parts(groups, cost, self.chunksize,
                             BATCH_BYTES * task_scale(self.given)))
        while lost:
            # A part whose worker died on it twice goes again file by file, a
            # file a task, so that only a file that kills a worker by itself
            # is lost, not the group or run it came with.
            parts, lost[:] = lost[:], []
            self.errors.extend(
                DupeError(part[3][0][0], reason) for part, reason in parts if len(part[3]) == 1
            )
            hash_parts(
                [(number, start + i, False, [f])]
                for (number, start, _, files), _ in parts
                if len(files) > 1
                for i, f in enumerate(files)
            )
        for number, digests in runs.items():
            size, files, _ = groups[number]
            keep = keeper(size)
            for d, at in digests.shared():
                keep(_group((size, _pick(files, at), d)))
        return out

    def take_errors(self) -> list[DupeError]:
        """The errors met since the last call, in byte order of their paths."""
        errors, self.errors = self.errors, []
        return _in_path_order(errors)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class _Digests:
    """The digest of each file of a group that comes back in several parts.

    Only the digests that two files share make a group, but which those are
    is known only once every part is back: until then, each file's digest
    is kept, as its bytes at its place in one buffer (a dict of a million
    hex digests took 230 MB; this, 17 MB).
    """

    def __init__(self, count: int) -> None:
        self.count = count  # files in the group
        self.width = 0  # bytes a digest, once one came
        self.digests = bytearray()
        self.known = bytearray(count)  # 1 where a digest came: not for a file that failed

    def add(self, start: int, buckets: Iterable[tuple[str, Sequence[int]]]) -> None:
        """Take the buckets of a part that starts at ``start`` in its group."""
        known = self.known
        for digest, at in buckets:
            raw = bytes.fromhex(digest)
            width = len(raw)
            if not self.width:
                self.width = width
                self.digests = bytearray(width * self.count)
            digests = self.digests
            for i in at:
                place = start + i
                digests[place * width:(place + 1) * width] = raw
                known[place] = 1

    def shared(self) -> list[tuple[str, array[int]]]:
        """Each digest that two files or more have, with their positions."""
        width = self.width
        if not width:
            return []
        # A number from each digest's first bytes (read in place) finds the
        # repeated ones in a few bytes a file; only those are looked at whole.
        digests = memoryview(self.digests)
        if width % 8 == 0:
            heads = digests.cast("Q")[::width // 8]
        elif width % 4 == 0:
            heads = digests.cast("I")[::width // 4]
        else:
            heads = digests[::width]
        known = self.known
        repeated = _repeated(heads)
        by_digest: dict[bytes, array[int]] = {}
        for k, head in enumerate(heads):
            if head in repeated and known[k]:
                digest = bytes(digests[k * width:(k + 1) * width])
                at = by_digest.get(digest)
                if at is None:
                    at = by_digest[digest] = array("q")
                at.append(k)
        return [(digest.hex(), at) for digest, at in by_digest.items() if len(at) > 1]


def _pick(files: Files, at: Sequence[int]) -> Files:
    """The files at positions ``at``: packed if they are many."""
    if isinstance(files, list):
        return list(map(files.__getitem__, at))
    return files.take(at) if len(at) >= PACK_AT else [files[i] for i in at]


def group_by_head(
    groups: list[Group], hashing: Hashing, settle: Callable[[Group], None] | None = None
) -> list[Group]:
    """Stage 3: split groups by the digest of each file's first ``head_size`` bytes.

    With ``settle``, the groups this stage reads whole go there, not into the
    result, and ``groups`` is emptied as it goes (:meth:`Hashing.split`).
    """
    return hashing.split(Stage.HEAD, groups, settle)


def group_by_contents(
    groups: list[Group], hashing: Hashing, settle: Callable[[Group], None] | None = None
) -> list[Group]:
    """Stage 4: split groups by the digest of the whole contents.

    Groups of files no larger than the head were read whole by stage 3 and
    pass through unread. With ``settle``, every group found goes there, and
    the result is empty.
    """
    done = [g for g in groups if g.size <= hashing.head_size]
    todo = [g for g in groups if g.size > hashing.head_size]
    if settle is not None:
        for g in done:
            settle(g)
        done = []
    if not todo:
        return done
    return done + hashing.split(Stage.CONTENTS, todo, settle)
