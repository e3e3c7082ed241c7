"""Hash many files in parallel.

>>> import parhash
>>> for r in parhash.scan(["src"], algos=("md5",)):   # doctest: +SKIP
...     print(r.digests["md5"] if r.ok else r.error, r.path)

``scan`` is the whole pipeline: walk, batch, hash in a process pool, and yield
one :class:`Result` per file as it completes. The ``parhash`` command is a thin
layer over it.
"""

__version__ = "0.1.0"

# typing.TYPE_CHECKING without importing typing: `import parhash` runs before
# the parhash command can install its signal handlers (parhash.console), so
# it imports nothing at all. Not even __future__ (which Python 3.10 has not
# loaded at start-up): the annotations below are strings instead, or a
# Ctrl-C while that module loaded would end in a traceback.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
    from typing import Any

    from parhash.algorithms import ALGORITHMS, DEFAULT_ALGO, UnknownAlgorithm
    from parhash.audit import Change, ManifestError, audit_tree, diff_manifests
    from parhash.cluster import DaskExecutor
    from parhash.dirdigest import DirhashError
    from parhash.dupes import find_dupes
    from parhash.executor import DEFAULT_CHUNKSIZE, Executor, InlineExecutor
    from parhash.hashing import DEFAULT_BLOCK_SIZE, hash_file
    from parhash.pool import PipelineStats, PoolExecutor
    from parhash.results import DupeError, DupeGroup, Pause, Result, Verdict, WalkError

# Names are loaded on first use, so that `import parhash` (and so the start of
# every `parhash` command) costs almost nothing.
_LAZY = {
    "ALGORITHMS": "parhash.algorithms",
    "DEFAULT_ALGO": "parhash.algorithms",
    "UnknownAlgorithm": "parhash.algorithms",
    "DaskExecutor": "parhash.cluster",
    "DirhashError": "parhash.dirdigest",
    "DEFAULT_CHUNKSIZE": "parhash.executor",
    "Executor": "parhash.executor",
    "InlineExecutor": "parhash.executor",
    "PipelineStats": "parhash.pool",
    "PoolExecutor": "parhash.pool",
    "Result": "parhash.results",
    "WalkError": "parhash.results",
    "Verdict": "parhash.results",
    "DupeError": "parhash.results",
    "DupeGroup": "parhash.results",
    "find_dupes": "parhash.dupes",
    "audit_tree": "parhash.audit",
    "diff_manifests": "parhash.audit",
    "Change": "parhash.audit",
    "ManifestError": "parhash.audit",
    "DEFAULT_BLOCK_SIZE": "parhash.hashing",
    "hash_file": "parhash.hashing",
}

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGO",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_CHUNKSIZE",
    "Change",
    "DaskExecutor",
    "DirhashError",
    "Executor",
    "InlineExecutor",
    "ManifestError",
    "PipelineStats",
    "PoolExecutor",
    "DupeError",
    "DupeGroup",
    "Result",
    "UnknownAlgorithm",
    "Verdict",
    "WalkError",
    "__version__",
    "audit_tree",
    "check",
    "diff_manifests",
    "dirhash",
    "find_dupes",
    "hash_file",
    "scan",
]


def __dir__() -> "list[str]":
    # The public names, loaded or not; not the module's own workings.
    return sorted(__all__)


def __getattr__(name: str) -> "Any":
    if name not in _LAZY:
        raise AttributeError(f"module 'parhash' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def scan(
    paths: "Iterable[str]" = (".",),
    *,
    algos: "str | Sequence[str]" = ("sha256",),
    jobs: "int | None" = None,
    chunksize: "int | None" = None,
    block_size: "int | None" = None,
    follow: "bool" = False,
    include: "Iterable[str]" = (),
    exclude: "Iterable[str]" = (),
    listed: "Iterable[str | Pause]" = (),
    stats: "PipelineStats | None" = None,
    idle: "Callable[[], None] | None" = None,
    executor: "Executor | None" = None,
    cache: "str | bool | None" = None,
) -> "Generator[Result, None, None]":
    """Hash every regular file reachable from ``paths``; yield results as they complete.

    ``paths`` are files, directories (walked recursively) and globs (``**``
    included); it may be any iterable, read lazily. ``algos`` names algorithms
    from :data:`ALGORITHMS` (or comma-separated lists of them; a single
    string is one name or list, not a sequence of letters), all computed
    from one read of each file. ``jobs`` is the number of worker processes
    (default: the CPUs this process may use); small jobs and ``jobs=1`` run in
    this process. ``include``/``exclude`` are gitignore-style patterns matched
    against paths relative to each argument. ``listed`` names more paths, as
    read from a file list: each is taken literally, never as a glob (a
    :data:`~parhash.results.PAUSE` in it, from :func:`~parhash.walk.read_path_list`,
    sends the paths before it to be hashed without waiting for more). A worker
    process that dies (killed, out of memory) costs no result: its files are
    hashed again in a fresh worker, and ``stats.worker_deaths`` counts it.
    ``idle`` is called whenever the pool has had no result for a moment
    (to flush buffered output, say). ``executor`` runs the tasks instead of
    the pool ``jobs`` would start: any object with ``jobs`` and
    ``map_unordered`` as :class:`~parhash.executor.Executor` describes
    (:class:`InlineExecutor`, :class:`PoolExecutor`, a cluster's);
    it is left open for the caller to close. ``cache`` names the hash cache
    to use (``True``: ``PARHASH_CACHE`` or the default file; see
    :mod:`parhash.cache`): unchanged files are answered from it, with
    ``Result.cached`` True, and the digests of the others are added to it.
    A cache that can't be used is a warning on stderr, and the run goes on
    without it.

    Each file gives one :class:`Result`, in completion order; files that can't
    be read and walk errors come back as results with ``error`` set. Raises
    :class:`UnknownAlgorithm` for an unknown name and ``ValueError`` for a
    ``jobs``, ``chunksize`` or ``block_size`` below 1, before any work starts.
    """
    from parhash.algorithms import parse_algos
    from parhash.hashing import DEFAULT_BLOCK_SIZE
    from parhash.select import Selector
    from parhash.tasks import RESULTS, ScanJob, scan_tasks

    block_size = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    names = parse_algos((algos,) if isinstance(algos, str) else algos)
    if not names:
        raise ValueError("no algorithm given")
    if chunksize is not None and chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    if jobs is not None and jobs < 1:
        raise ValueError("jobs must be at least 1")
    from parhash.executor import MAX_BLOCK_SIZE

    if block_size > MAX_BLOCK_SIZE:
        raise ValueError(f"block_size must be between 1 and {MAX_BLOCK_SIZE}")
    select = Selector.from_patterns(include, exclude)
    job = ScanJob(tuple(names), block_size, RESULTS, follow=follow, select=select)
    if chunksize is not None:
        job = job._replace(files=chunksize)
    opened = None
    if cache:
        from parhash.cache import Cache, chosen_path

        path = chosen_path(True, None) if cache is True else str(cache)
        assert path is not None
        opened = Cache.open(path)
    return _results(scan_tasks(paths, job, listed=listed, jobs=jobs, stats=stats, idle=idle,
                               executor=executor, cache=opened), opened)


def _results(tasks: "Iterator[Any]", opened: "Any" = None) -> "Generator[Result, None, None]":
    # A generator of its own, so that closing it stops the pool at once.
    try:
        for task in tasks:
            yield from task.records
    finally:
        close = getattr(tasks, "close", None)
        if close is not None:
            close()
        if opened is not None:
            opened.close()


def check(
    manifests: "Sequence[str]" = ("-",),
    *,
    algo: "str | None" = None,
    root: "str | None" = None,
    relative_to_manifest: "bool" = False,
    allow_outside_root: "bool" = False,
    zero: "bool" = False,
    jobs: "int | None" = None,
    chunksize: "int | None" = None,
    block_size: "int | None" = None,
    progress: "bool" = False,
    stop: "threading.Event | None" = None,
    stats: "PipelineStats | None" = None,
    idle: "Callable[[], None] | None" = None,
    executor: "Executor | None" = None,
) -> "Generator[Verdict, None, None]":
    """Verify the files that ``manifests`` list; yield one :class:`Verdict` per line, in order.

    ``manifests`` are file names, ``"-"`` for standard input; they may hold
    GNU lines (``md5sum``, ``sha256sum``, ``b2sum``), BSD tag lines
    (``md5sum --tag``, ``xxhsum``) and ``scan --json`` / ``scan --csv``
    records, mixed algorithms included. ``algo`` is the algorithm of untagged
    lines (default: guessed from the digest's length, 32 hex digits md5 ... 128
    sha512); lines that name another one are then malformed. Names are looked
    up relative to the current directory, to ``root``, or with
    ``relative_to_manifest`` to each manifest's directory; under those two, a
    name that is absolute, climbs out with ``..`` or leads out through a
    symbolic link is not read (its verdict is ``"unreadable"``, error
    ``"outside the root"``) unless ``allow_outside_root``. ``zero``: records
    end in NUL. ``jobs``, ``chunksize`` and ``block_size`` (default
    ``DEFAULT_BLOCK_SIZE``) are as for :func:`scan`; ``progress`` shows a bar
    on stderr. Setting ``stop`` (from a signal handler, say) ends the reading
    of a manifest that comes from a pipe, so that stopping never waits for a
    producer that is still alive. ``stats``, ``idle`` and ``executor`` are as
    for :func:`scan`.

    Verdicts come in manifest order, each as soon as the lines before it are
    done, while files are hashed in parallel. A file that fails, is missing or
    can't be read, a malformed line (``status == "malformed"``) and a manifest
    that can't be read (``line == 0``) are verdicts, not exceptions. Raises
    :class:`UnknownAlgorithm` and ``ValueError`` for bad options, before any
    work starts. Costs one read of each listed file, and memory for the lines
    whose results wait for an earlier, slower file.
    """
    from parhash.algorithms import parse_algos
    from parhash.hashing import DEFAULT_BLOCK_SIZE
    from parhash.verify import check_manifests

    block_size = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    if algo is not None:
        names = parse_algos([algo])
        if len(names) != 1:
            raise ValueError("check takes one algorithm, for untagged lines")
        algo = names[0]
    if root is not None and relative_to_manifest:
        raise ValueError("root and relative_to_manifest exclude each other")
    for option, value in (("jobs", jobs), ("chunksize", chunksize), ("block_size", block_size)):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1")
    return check_manifests(
        list(manifests), algo=algo, root=root, relative_to_manifest=relative_to_manifest,
        allow_outside_root=allow_outside_root, zero=zero, jobs=jobs, chunksize=chunksize,
        block_size=block_size, progress=progress, stop=stop, stats=stats, idle=idle,
        executor=executor,
    )


def dirhash(
    path: "str" = ".",
    *,
    protocol: "str" = "dirhash",
    algo: "str" = "sha256",
    prefix: "str | None" = None,
    empty_dirs: "bool" = False,
    properties: "str | Sequence[str] | None" = None,
    include: "Iterable[str]" = (),
    exclude: "Iterable[str]" = (),
    jobs: "int | None" = None,
    chunksize: "int | None" = None,
    block_size: "int | None" = None,
    stats: "PipelineStats | None" = None,
    executor: "Executor | None" = None,
) -> "str":
    """One digest for the directory ``path``, its files read in parallel as by :func:`scan`.

    ``protocol="dirhash"`` (the default) is the Dirhash Standard, as the
    ``dirhash`` package computes it: the hex digest of ``algo`` (md5,
    sha1, sha224, sha256, sha384, sha512, sha3-256, sha3-512, blake2b or
    blake2s). ``empty_dirs`` keeps empty directories in it (the standard's
    ``empty_dirs``); ``properties`` are the standard's entry properties
    (``("name", "data")`` by default; ``"is_link"`` may be added, and
    without ``"data"`` no file is read at all). Links to files and
    directories are followed, as the standard's defaults say.

    ``protocol="go-h1"`` is Go's ``h1:`` directory hash (``go.sum``,
    ``dirhash.HashDir``): SHA-256 only, ``h1:`` then base64; ``prefix``
    is ``HashDir``'s, put before each name (``golang.org/x/mod@v0.20.0``).

    ``include``/``exclude`` are :func:`scan`'s gitignore-style patterns,
    relative to ``path``. ``jobs``, ``chunksize``, ``block_size``,
    ``stats`` and ``executor`` are as for :func:`scan`.

    Raises ``ValueError`` (:class:`UnknownAlgorithm` among them) for
    options the protocol does not take, ``OSError`` when ``path`` is
    missing or not a directory (``NotADirectoryError``), and
    :class:`DirhashError`, whose ``errors`` lists every ``(path, reason)``,
    when anything below could not be read: a digest of part of a tree
    would be wrong. Costs one read of each file, in the pool, and memory
    for each file's name and digest.
    """
    from parhash.dirdigest import digest_dir, dir_options, selector

    options = dir_options(protocol, algo, prefix, empty_dirs, properties)
    for option, value in (("jobs", jobs), ("chunksize", chunksize), ("block_size", block_size)):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1")
    import os

    return digest_dir(os.fspath(path), options, select=selector(include, exclude), jobs=jobs,
                      chunksize=chunksize, block_size=block_size, stats=stats,
                      executor=executor)
