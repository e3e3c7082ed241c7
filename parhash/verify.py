"""Verify manifests: manifest lines in, the scan pipeline, :class:`Verdict` values out.

This is ``parhash check``. The module is not called ``check``: importing a
submodule sets it as an attribute of its package, and ``parhash.check`` must
stay the public function whatever was imported first.

A manifest is read as it streams in (:func:`parhash.manifest.read_manifest`);
each checksum line becomes a :class:`~parhash.worker.Task` for the same
pipeline ``scan`` uses (:func:`parhash.pipeline.hash_paths`), which hashes in
parallel and returns results in completion order. Verdicts are put back in
manifest order as results arrive: each is yielded as soon as every line before
it has been, so the output matches ``md5sum -c`` line for line.

The policy of ``md5sum -c`` (what ``--strict`` and ``--ignore-missing`` make
of these verdicts, the warnings at the end of each manifest) is
:class:`~parhash.results.Summary`; docs/check.md tells the edge cases in prose.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import BinaryIO, NamedTuple

from parhash.manifest import Entry, Malformed, Source, read_manifest
from parhash.pipeline import PipelineStats, hash_paths
from parhash.report import progress as progress_bar
from parhash.results import (
    FAILED,
    MALFORMED,
    MISSING,
    OK,
    UNREADABLE,
    Pause,
    Result,
    Summary,
    Verdict,
    reason,
)
from parhash.walk import readable_now
from parhash.worker import DEFAULT_BLOCK_SIZE, OUTSIDE_ROOT, Task

STDIN = "-"
# The error of a listed name that --root or --relative-to-manifest refuses.


class _Line(NamedTuple):
    """A checksum line waiting for its file's result."""

    order: int  # position among all lines of all manifests
    manifest: str
    manifest_index: int
    number: int
    entry: Entry


class _Group:
    """Consecutive lines naming the same path: the file is read once for all of them."""

    __slots__ = ("algos", "lines", "path")

    def __init__(self, path: str, line: _Line) -> None:
        self.path = path
        self.lines = [line]
        self.algos: tuple[str, ...] = ()  # set once the last line is in


class _Pipe:
    """A pipe or terminal, read so that a stop request ends a read within 0.1 s.

    Manifests are read in the pool's task-feeding thread, which the pool
    joins when it stops. A read blocked on a producer that is still alive
    (``producer | timeout 60 parhash check``) would make SIGTERM or Ctrl-C
    hang until the producer wrote again.
    """

    def __init__(self, fd: int, stop: threading.Event) -> None:
        self.fd = fd
        self.stop = stop

    def read(self, size: int = -1, /) -> bytes:
        while not self.stop.is_set():
            if select.select([self.fd], [], [], 0.1)[0]:
                return os.read(self.fd, size if size > 0 else 1 << 16)
        return b""  # stopped: the rest of the manifest is not wanted

    def ready(self) -> bool:
        """Whether a read would return at once (data, or the end)."""
        return readable_now(self.fd)


def _pipe(stream: BinaryIO, stop: threading.Event) -> _Pipe | None:
    """``stream`` as a :class:`_Pipe` if it is one (or a terminal), else ``None``."""
    try:
        fd = stream.fileno()
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except (OSError, ValueError):
        return None  # not a file descriptor at all (io.BytesIO)
    return None if regular else _Pipe(fd, stop)


def _climbs_out(name: str) -> bool:
    """Whether ``name`` is absolute, or its ``..`` go above where it starts.

    Decided on the name alone: ``a/../b`` stays, ``a/../../b`` climbs out.
    """
    if name.startswith("/"):
        return True
    if ".." not in name:
        return False
    depth = 0
    for part in name.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part and part != ".":
            depth += 1
    return False


class _Fence:
    """Which listed names a manifest may reach under its root (``--root``, or its directory).

    A name is refused when :func:`_climbs_out` says so, without a look at the
    file system; otherwise when the path, with its symbolic links resolved as
    the kernel resolves them (:func:`os.path.realpath`), is not under the
    root's own resolved path. Links that stay under the root are followed as
    md5sum follows them. The decision is taken as the line is read, before
    a worker opens the path: docs/check.md says what that leaves open.
    """

    # Directories resolved, at most: a manifest names many files of one
    # directory, and resolving a path costs an lstat per component (12 us a
    # line for a path five deep, against 1 us for the lstat of the file).
    MAX_DIRS = 4096

    def __init__(self, root: str) -> None:
        self.error: str | None = None
        try:
            self.real = os.path.realpath(root or os.curdir)
        except OSError as e:  # the current directory was removed, say
            self.real = ""
            self.error = reason(e)
        self.under = os.path.join(self.real, "")
        self.dirs: dict[str, str] = {}

    def refuses(self, name: str, path: str) -> str | None:
        """Why ``name`` (``path`` once joined to the root) is not read, or ``None``."""
        if _climbs_out(name):
            return OUTSIDE_ROOT
        if self.error is not None:
            return self.error
        try:
            real = self._resolve(path)
        except OSError as e:  # a link that changed while it was resolved
            return reason(e)
        return None if real == self.real or real.startswith(self.under) else OUTSIDE_ROOT

    def _resolve(self, path: str) -> str:
        head, tail = os.path.split(path)
        if tail in ("", os.curdir, os.pardir):
            return os.path.realpath(path)
        real_head = self.dirs.get(head)
        if real_head is None:
            if len(self.dirs) >= self.MAX_DIRS:
                self.dirs.clear()
            real_head = self.dirs[head] = os.path.realpath(head or os.curdir)
        try:
            link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            link = False  # nothing there, or out of reach: the worker says which
        return os.path.realpath(path) if link else os.path.join(real_head, tail)


class _Checker:
    def __init__(
        self,
        manifests: Sequence[str],
        algo: str | None,
        root: str | None,
        relative_to_manifest: bool,
        zero: bool,
        stop: threading.Event | None = None,
        allow_outside_root: bool = False,
    ) -> None:
        self.manifests = manifests
        self.algo = algo
        self.root = root
        self.relative_to_manifest = relative_to_manifest
        self.allow_outside_root = allow_outside_root
        self.zero = zero
        # The task generator may run in the pool's feeding thread while this
        # thread takes results: `waiting` is shared, under the lock. `ready`
        # only gets distinct keys from either side and is drained here.
        self.lock = threading.Lock()
        self.stop = stop or threading.Event()
        # A path waits as its group, or as a deque of them when it is
        # listed again before its result came back.
        self.waiting: dict[str, _Group | deque[_Group]] = {}
        # The algorithms of the first checksum line: the pipeline's job, so
        # that lines with these (nearly all, as a rule) travel as plain paths.
        self.common: tuple[str, ...] | None = None
        self.ready: dict[int, Verdict] = {}
        self.count = 0  # indices handed out
        self.next = 0  # the next index to yield

    def _index(self) -> int:
        self.count += 1
        return self.count - 1

    def _resolve(self, manifest: str, name: str) -> str:
        if not name:
            return name  # no such file, as md5sum finds; never the root directory
        if self.root is not None:
            return os.path.join(self.root, name)
        if self.relative_to_manifest and manifest != STDIN:
            return os.path.join(os.path.dirname(manifest), name)
        return name

    def _fence(self, manifest: str) -> _Fence | None:
        """What keeps the names of ``manifest`` under its root; ``None`` if nothing does."""
        if self.allow_outside_root:
            return None
        if self.root is not None:
            return _Fence(self.root)
        if self.relative_to_manifest:
            # Standard input's names are looked up in the current directory.
            return _Fence("" if manifest == STDIN else os.path.dirname(manifest))
        return None  # as md5sum: any name is read

    def _submit(self, group: _Group, fence: str | None = None) -> str:
        lines = group.lines
        if len(lines) == 1:
            digests = lines[0].entry.digests
            group.algos = (digests[0][0],) if len(digests) == 1 else tuple(a for a, _ in digests)
        else:
            group.algos = tuple(dict.fromkeys(a for x in lines for a, _ in x.entry.digests))
        path = group.path
        with self.lock:
            waiting = self.waiting.get(path)
            if waiting is None:
                self.waiting[path] = group
            elif isinstance(waiting, _Group):
                self.waiting[path] = deque((waiting, group))
            else:
                waiting.append(group)
        if self.common is None:
            self.common = group.algos
        if fence is not None:  # the worker checks the file it opened too
            return Task(path, group.algos, fence)
        return path if group.algos == self.common else Task(path, group.algos)

    def tasks(self) -> Iterator[str | Pause]:
        """Read the manifests in turn, yielding a path per run of lines naming one path.

        The path is a :class:`Task` when its algorithms are not :attr:`common`.
        :data:`PAUSE` comes before a manifest from a pipe keeps the reader
        waiting, after the paths read so far.
        """
        for manifest_index, manifest in enumerate(self.manifests):
            yield from self._read(manifest, manifest_index)

    def _read(self, manifest: str, manifest_index: int) -> Iterator[str | Pause]:
        def fail(e: OSError) -> None:
            self.ready[self._index()] = Verdict(
                manifest, 0, manifest, manifest, UNREADABLE, error=reason(e), errno=e.errno,
                manifest_index=manifest_index,
            )

        stream: BinaryIO
        try:
            stream = sys.stdin.buffer if manifest == STDIN else open(manifest, "rb")  # noqa: SIM115
        except OSError as e:
            fail(e)
            return
        group: _Group | None = None
        algos = (self.algo,) if self.algo else ()
        from_stdin = manifest == STDIN
        plain_names = self.root is None and not (self.relative_to_manifest and not from_stdin)
        fence = self._fence(manifest)
        under = fence.under if fence is not None else None
        ready = self.ready
        try:
            pipe = _pipe(stream, self.stop)
            source: Source = pipe or stream
            readable = pipe.ready if pipe is not None else None
            for number, parsed in read_manifest(
                source, algo=self.algo, zero=self.zero, ready=readable
            ):
                if isinstance(parsed, Pause):
                    # The next line may name this path again (it is then read
                    # twice): better than holding the lines read so far.
                    if group is not None:
                        yield self._submit(group, under)
                        group = None
                    yield parsed
                    continue
                if from_stdin and isinstance(parsed, Entry) and parsed.name == STDIN:
                    parsed = Malformed("'-' names standard input, which holds the manifest")
                order = self.count
                self.count = order + 1
                if isinstance(parsed, Malformed):
                    ready[order] = Verdict(
                        manifest, number, "", "", MALFORMED, algos, error=parsed.reason,
                        manifest_index=manifest_index,
                    )
                    continue
                name = parsed.name
                path = name if plain_names else self._resolve(manifest, name)
                refused = None if fence is None or not name else fence.refuses(name, path)
                if refused is not None:
                    ready[order] = _refused(manifest, manifest_index, number, parsed, path, refused)
                    continue
                line = _Line(order, manifest, manifest_index, number, parsed)
                if group is not None:
                    if group.path == path:
                        group.lines.append(line)
                        continue
                    yield self._submit(group, under)
                group = _Group(path, line)
        except OSError as e:
            fail(e)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        if group is not None:
            yield self._submit(group, under)

    def _claim(self, r: Result) -> _Group:
        with self.lock:
            groups = self.waiting[r.path]
            if isinstance(groups, _Group):
                del self.waiting[r.path]
                return groups
            # The same path is waiting more than once, maybe for different
            # algorithms: the oldest group this result answers, nearly always
            # the first. A deque drops it in one step, where a list moved all
            # the others: 800,000 lines naming two files in turn took 90 s
            # with a --chunksize that sent them all at once.
            chosen = 0
            for i, g in enumerate(groups):
                if r.error or set(g.algos) <= r.digests.keys():
                    chosen = i
                    break
            group = groups[chosen]
            del groups[chosen]
            if not groups:
                del self.waiting[r.path]
        return group

    def verdicts(self, results: Iterable[Result]) -> Iterator[Verdict]:
        ready = self.ready
        for r in results:
            for line in self._claim(r).lines:
                ready[line.order] = _judge(line, r)
            # Drained here, not in a helper generator: this runs once per file.
            following = self.next
            while following in ready:
                verdict = ready.pop(following)
                following += 1
                self.next = following
                yield verdict
        following = self.next
        while following in ready:  # malformed lines after the last file
            verdict = ready.pop(following)
            following += 1
            self.next = following
            yield verdict
        # Every task has come back and the manifests are read to the end.
        assert not ready and not self.waiting, "check lost track of a line"


def _refused(
    manifest: str, manifest_index: int, number: int, entry: Entry, path: str, error: str
) -> Verdict:
    """The verdict of a line whose file is not read: ``FAILED open or read``, as md5sum's."""
    return Verdict(
        manifest, number, entry.name, path, UNREADABLE, tuple(a for a, _ in entry.digests),
        tuple(d for _, d in entry.digests), (), error, None, manifest_index,
    )


def _judge(line: _Line, r: Result) -> Verdict:
    entry = line.entry
    digests = entry.digests
    if len(digests) == 1:
        ((algo, digest),) = digests
        algos: tuple[str, ...] = (algo,)
        expected: tuple[str, ...] = (digest,)
    else:
        algos = tuple(a for a, _ in digests)
        expected = tuple(d for _, d in digests)
    if r.error is not None:
        status = MISSING if r.errno == errno.ENOENT else UNREADABLE
        return Verdict(
            line.manifest, line.number, entry.name, r.path, status, algos, expected,
            (), r.error, r.errno, line.manifest_index,
        )
    found = r.digests
    actual = (found[algos[0]],) if len(algos) == 1 else tuple(found[a] for a in algos)
    return Verdict(
        line.manifest, line.number, entry.name, r.path, OK if actual == expected else FAILED,
        algos, expected, actual, None, None, line.manifest_index,
    )


def check_manifests(
    manifests: Sequence[str],
    *,
    algo: str | None = None,
    root: str | None = None,
    relative_to_manifest: bool = False,
    allow_outside_root: bool = False,
    zero: bool = False,
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
    stop: threading.Event | None = None,
    stats: PipelineStats | None = None,
    idle: Callable[[], None] | None = None,
) -> Generator[Verdict, None, None]:
    """Verify every line of ``manifests``; yield one :class:`Verdict` per line, in order.

    See :func:`parhash.check` for the options. Each file is hashed once for a
    run of consecutive lines that name it. Files that can't be read, malformed
    lines and manifests that can't be read are verdicts, never exceptions.
    Setting ``stop`` ends the reading of a manifest that comes from a pipe
    (it is set anyway when the iterator is closed, but a signal handler can
    set it first: see ``_Pipe``).
    """
    checker = _Checker(manifests, algo, root, relative_to_manifest, zero, stop, allow_outside_root)
    tasks = checker.tasks()
    first = next(tasks, None)  # sets checker.common, the job's algorithms
    while isinstance(first, Pause):  # nothing read yet: nothing to send
        first = next(tasks, None)
    items = tasks if first is None else itertools.chain([first], tasks)
    results = hash_paths(
        items, algos=checker.common or ("md5",), jobs=jobs, chunksize=chunksize,
        block_size=block_size, stats=stats, idle=idle,
    )
    try:
        yield from checker.verdicts(progress_bar(results, enabled=progress))
    finally:
        checker.stop.set()
        results.close()


def summarize(verdicts: Iterable[Verdict], manifests: Sequence[str]) -> Iterator[Verdict | Summary]:
    """Pass verdicts through, with each manifest's :class:`Summary` after its last line.

    A manifest with no line at all still gets its summary, in its place.
    """
    if not manifests:
        yield from verdicts
        return
    current = 0
    summary = Summary(manifests[0])
    for v in verdicts:
        while v.manifest_index > current:
            yield summary
            current += 1
            summary = Summary(manifests[current])
        if v.status == OK:
            summary.ok += 1
        else:
            summary.add(v)
        yield v
    yield summary
    for manifest in manifests[current + 1 :]:
        yield Summary(manifest)
