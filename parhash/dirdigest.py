"""One digest for a whole directory, from the same parallel pass that ``scan`` makes.

Two protocols, each written from its reference implementation:

- ``dirhash``, the Dirhash Standard 0.1.0 (andhus/dirhash), as the ``dirhash``
  Python package 0.5.0 computes it: each directory's digest is the digest
  of its entries' descriptors (``data:DIGEST``, ``name:NAME``, and
  ``dirhash:DIGEST`` for a subdirectory), sorted and joined by two NULs.
- ``go-h1``, Go's ``h1:`` (``golang.org/x/mod/sumdb/dirhash``, ``HashDir``
  over ``DirFiles`` with ``Hash1``): SHA-256 over the sorted lines
  ``sha256-hex  NAME\\n`` of every file, base64-encoded.

The walk runs here, in the main process, as a glob's walk does: it lists
directories only, and hands each file it finds to :func:`parhash.scan`'s
pool as a walked path (opened below what the walk saw, never through a
link swapped in since). The workers read and hash the files; this module
then only sorts and combines their digests, which costs memory for one
name and one digest per file and no read of any file. That is where
parhash parts from the ``dirhash`` package's ``jobs``: both hash files
in a pool, and here the walk and the hashing overlap, the files are read
the way ``scan`` reads them (``-j``, ``--chunksize``, ``--block-size``),
and a file that can't be read is reported by name, as a value.

A digest of part of a tree is a wrong digest: any file that can't be read,
any directory that can't be listed, a loop of links, is a :class:`DirhashError`
listing every such path, and no digest.

(The module is not called ``dirhash``: once imported, a submodule
``parhash.dirhash`` would take the place of the function
:func:`parhash.dirhash` as the package's attribute.)
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from parhash.algorithms import ALGORITHMS, DEFAULT_ALGO, parse_algos
from parhash.results import WalkError
from parhash.select import Predicates, Selector
from parhash.walk import (
    CHANGED_DURING_WALK,
    LOOP,
    Descent,
    Directory,
    Walked,
    _Ancestor,
    _as_prefix,
    _loop_ancestor,
    read_dir,
)

if TYPE_CHECKING:
    from parhash.executor import Executor
    from parhash.pool import PipelineStats

DIRHASH = "dirhash"
GO_H1 = "go-h1"
PROTOCOLS = (DIRHASH, GO_H1)
DEFAULT_PROTOCOL = DIRHASH

# The Dirhash Standard names md5, sha1 and the SHA-2 family; the dirhash
# package takes any of hashlib's algorithms (sha3_256, blake2b...), and so
# does parhash, under its own names. The xxHash family is left out: no
# other implementation could check such a digest, and a directory's digest
# is worth having only if it resists collisions.
DIRHASH_ALGOS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512",
                 "sha3-256", "sha3-512", "blake2b", "blake2s")
ENTRY_PROPERTIES = ("name", "data", "is_link")
DEFAULT_PROPERTIES = ("name", "data")

NOTHING_TO_HASH = "nothing to hash"
# Go's words: "dirhash: filenames with newlines are not supported".
NEWLINE_IN_NAME = "file names with newlines are not supported"
IS_A_DIRECTORY = os.strerror(errno.EISDIR)


class DirhashError(Exception):
    """No digest, because part of the tree could not be read or described.

    ``errors`` lists ``(path, reason)`` pairs in byte order of the paths:
    files that could not be read (in the C library's words, ``Permission
    denied``), directories that could not be listed, link loops, names the
    protocol can't hold; or, for ``dirhash`` without ``empty_dirs``, the
    directory itself with ``nothing to hash``.
    """

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors = sorted(errors, key=lambda e: os.fsencode(e[0]))
        first = self.errors[0] if self.errors else ("?", "?")
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{first[0]}: {first[1]}{more}")


class DirOptions(NamedTuple):
    """What decides a directory's digest, checked by :func:`dir_options`."""

    protocol: str = DEFAULT_PROTOCOL
    algo: str = DEFAULT_ALGO
    prefix: str = ""
    empty_dirs: bool = False
    properties: frozenset[str] = frozenset(DEFAULT_PROPERTIES)


def dir_options(
    protocol: str = DEFAULT_PROTOCOL,
    algo: str | None = None,
    prefix: str | None = None,
    empty_dirs: bool = False,
    properties: str | Iterable[str] | None = None,
) -> DirOptions:
    """Check a protocol's options; raise ``ValueError`` (or
    :class:`~parhash.algorithms.UnknownAlgorithm`) saying what is wrong.

    ``algo`` defaults to sha256 for both protocols; ``go-h1`` takes no other.
    ``prefix`` is ``go-h1``'s, ``empty_dirs`` and ``properties`` (names of
    :data:`ENTRY_PROPERTIES`, or one comma-separated string) ``dirhash``'s.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    names = parse_algos([algo]) if algo else (DEFAULT_ALGO,)
    if len(names) != 1:
        raise ValueError("a directory's digest takes one algorithm")
    name = names[0]
    if isinstance(properties, str):
        properties = properties.split(",")
    props = frozenset(p.strip() for p in properties) if properties is not None else None
    if protocol == GO_H1:
        if name != "sha256":
            raise ValueError("go-h1 is SHA-256 only")
        if empty_dirs:
            raise ValueError("empty directories are for the dirhash protocol (go-h1 has none)")
        if props is not None:
            raise ValueError("entry properties are for the dirhash protocol")
        return DirOptions(GO_H1, name, prefix or "")
    if prefix:
        raise ValueError("a prefix is for the go-h1 protocol")
    if name not in DIRHASH_ALGOS:
        raise ValueError(f"the dirhash protocol takes {', '.join(DIRHASH_ALGOS)}, not {name}")
    props = props if props is not None else frozenset(DEFAULT_PROPERTIES)
    unknown = sorted(props - set(ENTRY_PROPERTIES))
    if unknown:
        raise ValueError(f"unknown entry property {unknown[0]!r} "
                         f"(choose from {', '.join(ENTRY_PROPERTIES)})")
    if not props & {"name", "data"}:
        raise ValueError("the entry properties need name or data, or both")
    return DirOptions(DIRHASH, name, "", empty_dirs, props)


def root_stat(path: str) -> os.stat_result:
    """``stat`` of the directory ``path`` (followed if a link, as every command does;
    Go's ``DirFiles`` refuses a link there); raises ``OSError``,
    ``NotADirectoryError`` for anything but a directory."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    return st


class _Dir:
    """A directory of the tree: its entries, then its digest once combined."""

    __slots__ = ("entries", "digest")

    def __init__(self) -> None:
        # (name, through a link, a file's path as walked or a _Dir)
        self.entries: list[tuple[str, bool, str | _Dir]] = []
        self.digest: str | None = None


class _Tree:
    """What the walk found: directories in the order found, files by path, errors."""

    def __init__(self) -> None:
        self.dirs: list[_Dir] = [_Dir()]
        self.files: list[tuple[str, str]] = []  # (name relative to the root, path)
        self.errors: list[tuple[str, str]] = []


def _walk(top: str, st: os.stat_result, tree: _Tree, *, go: bool,
          select: Predicates | None) -> Iterator[str]:
    """Walk the directory ``top`` into ``tree``; yield each file to hash as it is found.

    Files come as :class:`~parhash.walk.Walked` paths (links to files as
    plain paths), for :func:`parhash.scan` to read. Links are followed as
    each protocol says. ``dirhash`` (the package's scantree): a link to a
    file is a file, a link to a directory a directory, walked again however
    often it is reached, except back into one of its own ancestors (a
    loop, an error); broken links, FIFOs, sockets and devices are left
    out. ``go-h1`` (Go's ``DirFiles``, over ``filepath.Walk``, which lists
    every entry that is not a directory and never follows a link to one):
    a link to a file is read as the file, and a link to a directory, a
    broken link, a FIFO, socket or device is an error (Go reads them: a
    FIFO would hang, which parhash won't; Go's own module trees never hold
    one). Errors go to ``tree.errors``.
    """
    ident = (st.st_dev, st.st_ino)
    root = Directory(_as_prefix(top), "", 0, _Ancestor(st.st_dev, st.st_ino, top or ".", None),
                     identity=ident)
    stack: list[tuple[Directory, _Dir]] = [(root, tree.dirs[0])]
    descent = Descent()
    try:
        while stack:
            current, node = stack.pop()
            above = current.rel + "/" if current.rel else ""
            start = len(current.path)
            for item in read_dir(current, follow=True, select=select, descent=descent, odd=go):
                if isinstance(item, WalkError):
                    tree.errors.append((item.path, item.error))
                elif isinstance(item, Directory):
                    name = item.rel[len(above):]
                    linked = item.named < 0
                    if go and linked:
                        tree.errors.append((item.shown, IS_A_DIRECTORY))
                        continue
                    ancestor = item.ancestor
                    assert ancestor is not None
                    loop = _loop_ancestor(ancestor.parent, ancestor.dev, ancestor.ino)
                    if loop is not None:
                        tree.errors.append((item.shown, LOOP))
                        continue
                    child = _Dir()
                    tree.dirs.append(child)
                    node.entries.append((name, linked, child))
                    stack.append((item, child))
                else:
                    # read_dir gives a link to a file, followed, as a plain path.
                    linked = type(item) is not Walked
                    path: str = item
                    name = path[start:]
                    rel = above + name
                    if go and "\n" in rel:  # in its own name or a directory's above
                        tree.errors.append((path, NEWLINE_IN_NAME))
                        continue
                    node.entries.append((name, linked, str(path)))
                    tree.files.append((rel, str(path)))
                    yield path
    finally:
        descent.close()


def digest_dir(
    path: str,
    options: DirOptions | None = None,
    *,
    select: Predicates | None = None,
    jobs: int | None = None,
    chunksize: int | None = None,
    block_size: int | None = None,
    stats: PipelineStats | None = None,
    executor: Executor | None = None,
    top_stat: os.stat_result | None = None,
) -> str:
    """The digest of directory ``path`` under ``options``: ``dirhash``'s hex digest,
    or ``h1:`` and base64 for ``go-h1``.

    ``select`` chooses the files and directories, by paths relative to
    ``path`` (a :class:`~parhash.select.Selector`); ``jobs``,
    ``chunksize``, ``block_size``, ``stats`` and ``executor`` are
    :func:`parhash.scan`'s, which reads and hashes the files.
    ``top_stat`` is :func:`root_stat`'s answer, if the caller has it.

    Raises ``OSError`` when ``path`` is missing or not a directory, and
    :class:`DirhashError` when anything below it could not be read (all
    of it is read first, so the error lists every such path). Costs one
    read of each file, in the pool, and memory for each file's name and
    digest until the end.
    """
    from parhash import scan

    options = options if options is not None else DirOptions()
    st = top_stat if top_stat is not None else root_stat(path)
    tree = _Tree()
    go = options.protocol == GO_H1
    walk = _walk(path, st, tree, go=go, select=select)
    digests: dict[str, str] = {}
    hashed = go or "data" in options.properties
    if hashed:
        results = scan((), algos=(options.algo,), listed=walk, jobs=jobs, chunksize=chunksize,
                       block_size=block_size, stats=stats, executor=executor)
        try:
            for r in results:
                if r.error is not None:
                    tree.errors.append((r.path, r.error))
                else:
                    digests[r.path] = r.digests[options.algo]
        finally:
            results.close()  # stops the pool now, on Ctrl-C too
    else:
        for _ in walk:  # names only: no file is read, as the standard allows
            pass
    if hashed:
        # Named but never answered for: a link that became a directory since
        # the walk, say (its files came back instead).
        reported = {p for p, _ in tree.errors}
        tree.errors.extend((p, CHANGED_DURING_WALK) for _, p in tree.files
                           if p not in digests and p not in reported)
    if tree.errors:
        raise DirhashError(tree.errors)
    if go:
        return go_h1(tree.files, digests, options.prefix, path)
    return _combine_dirhash(tree, digests, options, path)


def _go_clean(name: str) -> str:
    """Go's ``path.Clean``: one slash at a time, no ``.``, ``..`` eaten where it can be."""
    rooted = name.startswith("/")
    out: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
                continue
            if rooted:
                continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


def go_name(prefix: str, rel: str) -> str:
    """The name ``HashDir`` gives file ``rel``: Go's ``filepath.Join(prefix, rel)``.

    (Go's ``HashDir`` then opens each name with the prefix trimmed off again;
    for a prefix that ``Join`` changes, such as ``./m``, Go would look for a
    file that isn't there. parhash reads the file it walked, so it gives the
    digest Go's ``DirFiles`` and ``Hash1`` define.)
    """
    return _go_clean(prefix + "/" + rel) if prefix else rel


def go_h1(files: Iterable[tuple[str, str]], digests: dict[str, str], prefix: str,
          shown: str = ".") -> str:
    """Go's ``Hash1`` over ``files`` (name relative to the root, path) and their
    SHA-256 ``digests`` by path: ``h1:`` and base64 (standard, padded).

    Names are sorted by their bytes, as Go's ``slices.Sort`` sorts strings.
    Raises :class:`DirhashError` for a name with a newline (``shown`` is the
    directory named in it), as Go returns an error.
    """
    lines = []
    for rel, path in files:
        name = os.fsencode(go_name(prefix, rel))
        if b"\n" in name:
            raise DirhashError([(shown, NEWLINE_IN_NAME)])
        lines.append((name, digests[path]))
    lines.sort()
    summary = b"".join(b"%s  %s\n" % (digest.encode(), name) for name, digest in lines)
    return "h1:" + base64.b64encode(hashlib.sha256(summary).digest()).decode()


def _combine_dirhash(tree: _Tree, digests: dict[str, str], options: DirOptions,
                     shown: str) -> str:
    """The Dirhash Standard's recursion, bottom up over the directories found.

    A directory found after its parent is combined before it: every
    directory's entries are ready when its turn comes, with no recursion
    (a deep tree can't reach Python's limit). Descriptors are sorted as
    Python sorts strings, as the dirhash package does, and encoded as
    UTF-8; a name that is not valid UTF-8 goes in as its own bytes (the
    package can't encode it, and stops).
    """
    new: Callable[..., Any] = ALGORITHMS[options.algo].new
    props = options.properties
    name_prop, data_prop, link_prop = "name" in props, "data" in props, "is_link" in props
    for node in reversed(tree.dirs):
        descriptors = []
        for name, linked, child in node.entries:
            fields = []
            if isinstance(child, _Dir):
                if child.digest is None:
                    continue  # empty, and empty directories are left out
                fields.append("dirhash:" + child.digest)
            elif data_prop:
                fields.append("data:" + digests[child])
            if name_prop:
                fields.append("name:" + name)
            if link_prop:
                # The standard's "true" or "false". (dirhash 0.5.0 writes its
                # path object's method here, whose text holds the absolute
                # path: its is_link digests can't be reproduced elsewhere.)
                fields.append("is_link:" + ("true" if linked else "false"))
            fields.sort()
            descriptors.append("\0".join(fields))
        if not descriptors and not options.empty_dirs:
            continue
        descriptors.sort()
        text = "\0\0".join(descriptors).encode("utf-8", "surrogateescape")
        h = new()
        h.update(text)
        node.digest = h.hexdigest()
    digest = tree.dirs[0].digest
    if digest is None:
        raise DirhashError([(shown, NOTHING_TO_HASH)])
    return digest


def selector(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Selector | None:
    """The :class:`~parhash.select.Selector` of ``include``/``exclude``, None for neither."""
    return Selector.from_patterns(include, exclude)
