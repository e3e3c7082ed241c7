"""Hash many files in parallel.

>>> import parhash
>>> for r in parhash.scan(["src"], algos=("md5",)):   # doctest: +SKIP
...     print(r.digests["md5"] if r.ok else r.error, r.path)

``scan`` is the whole pipeline: walk, batch, hash in a process pool, and yield
one :class:`Result` per file as it completes. The ``parhash`` command is a thin
layer over it.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterable, Sequence

from parhash.algorithms import ALGORITHMS, DEFAULT_ALGO, UnknownAlgorithm, parse_algos
from parhash.dupes import find_dupes
from parhash.pipeline import DEFAULT_CHUNKSIZE, hash_paths
from parhash.results import DupeError, DupeGroup, Result, WalkError
from parhash.select import Selector
from parhash.walk import walk_paths
from parhash.worker import DEFAULT_BLOCK_SIZE, hash_file

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGO",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_CHUNKSIZE",
    "DupeError",
    "DupeGroup",
    "Result",
    "UnknownAlgorithm",
    "WalkError",
    "__version__",
    "find_dupes",
    "hash_file",
    "scan",
]


def scan(
    paths: Iterable[str] = (".",),
    *,
    algos: Sequence[str] = (DEFAULT_ALGO,),
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    follow: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    listed: Iterable[str] = (),
) -> Generator[Result, None, None]:
    """Hash every regular file reachable from ``paths``; yield results as they complete.

    ``paths`` are files, directories (walked recursively) and globs (``**``
    included); it may be any iterable, read lazily. ``algos`` names algorithms
    from :data:`ALGORITHMS` (or comma-separated lists of them), all computed
    from one read of each file. ``jobs`` is the number of worker processes
    (default: the CPUs this process may use); small jobs and ``jobs=1`` run in
    this process. ``include``/``exclude`` are gitignore-style patterns matched
    against paths relative to each argument. ``listed`` names more paths, as
    read from a file list: each is taken literally, never as a glob.

    Each file gives one :class:`Result`, in completion order; files that can't
    be read and walk errors come back as results with ``error`` set. Raises
    :class:`UnknownAlgorithm` for an unknown name and ``ValueError`` for a
    ``jobs``, ``chunksize`` or ``block_size`` below 1, before any work starts.
    """
    names = parse_algos(algos)
    if not names:
        raise ValueError("no algorithm given")
    if chunksize is not None and chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    if jobs is not None and jobs < 1:
        raise ValueError("jobs must be at least 1")
    select = Selector.from_patterns(include, exclude)
    items = itertools.chain(
        walk_paths(paths, follow=follow, select=select),
        walk_paths(listed, follow=follow, select=select, expand_globs=False),
    )
    return hash_paths(items, algos=names, jobs=jobs, chunksize=chunksize, block_size=block_size)
