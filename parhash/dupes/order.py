"""The order of the files in a group: which one comes first, the one a user keeps.

``parhash dupes --json | jq '.paths[1:]'`` means "every copy but the one to
keep" only if the first file is chosen on purpose. It is chosen here, once
per group, when the group is settled (:func:`~parhash.dupes.search.to_dupe_group`),
and among the names of one file by :func:`~parhash.dupes.stages.group_by_inode`,
with the same key, so that a file's name in ``paths`` is the first of its
``hardlinks``.

Two things decide, as in jdupes (``-O`` over ``-o``) and fclones
(``--priority``): the rank of the first ``prefer`` path that holds the file
(files under none rank last), then ``by``:

- ``path``: the bytes of the whole path (``os.fsencode``), the default: the
  same order whatever the file system or the workers did;
- ``name``: the bytes of the base name, then of the path;
- ``mtime``: oldest modification first, then by path;
- ``-mtime``: newest first, then by path.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args

from parhash.dupes.candidates import FileInfo, _file_key

Order = Literal["path", "name", "mtime", "-mtime"]
ORDERS: tuple[str, ...] = get_args(Order)
DEFAULT_ORDER: Order = "path"

_path = operator.itemgetter(0)


def _base_name(path: str | bytes) -> str | bytes:
    if isinstance(path, str):
        return path[path.rfind("/") + 1:]
    return path[path.rfind(b"/") + 1:]


def _normal(path: str) -> str:
    """``path`` without ``.`` or empty components: ``./a//b/`` is ``a/b``, ``/`` stays.

    Text only: no ``..`` is resolved and no link followed, so that a
    preference means the same whatever the file system holds.
    """
    if "//" not in path and "/." not in path and path[-1:] != "/":
        # As the walk spells most paths: as given, or under "./". Checked
        # first, this halves the cost of ranking a path.
        if path[:2] == "./":
            return path[2:]
        if path != ".":
            return path
    parts = [part for part in path.split("/") if part and part != "."]
    return ("/" if path.startswith("/") else "") + "/".join(parts)


class FileOrder:
    """How the files of a group are ordered: ``by`` one of :data:`ORDERS`,
    after the rank of the ``prefer`` paths that hold them.

    A ``prefer`` path holds the paths under it as the report spells them,
    compared as text after :func:`_normal`: ``a``, ``./a`` and ``a/`` hold
    ``a/x`` and ``./a/x``, but not ``ab/x``; ``.`` holds every relative
    path that does not climb out with ``..``, ``/`` every absolute one.
    Raises ``ValueError`` for an unknown ``by`` or an empty ``prefer`` path.
    """

    __slots__ = ("by", "prefer", "_under", "_keys")

    def __init__(self, by: Order = DEFAULT_ORDER,
                 prefer: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = ()) -> None:
        if by not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {by!r}")
        self.by = by
        # A single string is one path, not a sequence of one-letter paths.
        given = (prefer,) if isinstance(prefer, (str, os.PathLike)) else prefer
        self.prefer: tuple[str, ...] = tuple(os.fspath(p) for p in given)
        if "" in self.prefer:
            raise ValueError("a preferred path must not be empty")
        # (path, path + "/") for each, but None for ".", which holds every
        # relative path that does not climb out; "/" holds every absolute one.
        self._under = tuple(
            (top, None if not top else top if top == "/" else top + "/")
            for top in map(_normal, self.prefer)
        )
        # Made once: a group of two files would spend as long making its key.
        self._keys = (self._key(False), self._key(True))

    def __repr__(self) -> str:
        return f"FileOrder({self.by!r}, prefer={self.prefer!r})"

    @property
    def plain(self) -> bool:
        """Whether this is the byte order of the paths and nothing else."""
        return self.by == "path" and not self.prefer

    def rank(self, path: str) -> int:
        """The position of the first ``prefer`` path holding ``path``; after them all if none."""
        path = _normal(path)
        for i, (top, below) in enumerate(self._under):
            if below is None:
                if path[:1] != "/" and path != ".." and path[:3] != "../":
                    return i
            elif path == top or path.startswith(below):
                return i
        return len(self._under)

    def key(self, ascii: bool = False) -> Callable[[FileInfo], Any]:
        """A sort key for candidates: the first in this order sorts first.

        With ``ascii`` (every path in the group ASCII) paths are compared as
        they are, which is their bytes' order, without encoding each one.
        """
        return self._keys[ascii]

    def _key(self, ascii: bool) -> Callable[[FileInfo], Any]:
        spelled: Callable[[FileInfo], str | bytes] = _path if ascii else _file_key
        inner: Callable[[FileInfo], Any]
        if self.by == "path":
            inner = spelled
        elif self.by == "name":
            def inner(f: FileInfo) -> tuple[str | bytes, str | bytes]:
                path = spelled(f)
                return _base_name(path), path
        elif self.by == "mtime":
            def inner(f: FileInfo) -> tuple[int, str | bytes]:
                return f[2], spelled(f)
        else:
            def inner(f: FileInfo) -> tuple[int, str | bytes]:
                return -f[2], spelled(f)
        if not self._under:
            return inner
        rank = self.rank
        return lambda f: (rank(f[0]), inner(f))


PATH_ORDER = FileOrder()
