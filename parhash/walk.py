"""Arguments, directories, globs and path lists in; files to hash out.

The walk yields one value per entry and goes on after errors: a path string
for each regular file to hash, a :class:`WalkError` for each argument or
directory it could not read. It streams: directories are read one at a time
from an explicit stack (no recursion limit, no whole-tree list), so hashing
starts while the walk is still going.

Policy, shared by directories and globs:

- regular files only; hidden files included;
- a symlink named as an argument is followed (like ``md5sum``); symlinks met
  during the walk are skipped unless ``follow`` is set; then each directory is
  entered once, by device and inode, and a link back to an ancestor is
  reported as a loop; a broken link is skipped;
- FIFOs, sockets and devices met during the walk are skipped without being
  opened (opening a FIFO blocks); named as an argument they are an error.

What the walk saw is what gets read, even if the tree changes meanwhile
(as ``find`` and ripgrep's walker do it): below an argument, each directory
is opened relative to its parent's descriptor without following links and
must have the device and inode the listing saw, and each file it yields is a
:class:`Walked` path, which the reader opens through :class:`Descent` in the
same way. An entry swapped for a link after the walk listed it is reported
as :data:`CHANGED_DURING_WALK`, never read through the link.
"""

from __future__ import annotations

import copyreg
import errno
import functools
import heapq
import operator
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, NamedTuple

from parhash.results import PAUSE, Pause, WalkError, reason
from parhash.select import GlobPredicates, Predicates, has_magic

NOT_REGULAR = "not a regular file"
LOOP = "File system loop detected"
CHANGED_DURING_WALK = "changed during the walk"
PSEUDO_FS = (
    "skipped: files on proc, sysfs and other pseudo file systems have sizes that are "
    "not their contents"
)

try:
    PATH_MAX = os.pathconf("/", "PC_PATH_MAX")
except (OSError, ValueError, AttributeError):
    PATH_MAX = 4096
# Longer names than this exist on no Linux file system: below it, a name
# checked against PATH_MAX needs no encoding.
_NAME_MAX = 255


class Walked(str):
    """A file the walk found below an argument: its path, and which part of it was named.

    The first ``top`` characters are followed as named (the argument, or
    with ``follow`` a link the walk chose to follow); each directory after
    them was a directory when the walk listed it, and the file a regular
    file. ``root`` is the device and inode the walk saw at the named part:
    a reader that finds something else there (the argument swapped for a
    link to elsewhere) reads nothing. :meth:`Descent.open` opens it without
    following links. Being a ``str``, it goes wherever a path goes;
    ``str(walked)`` is the plain path.
    """

    __slots__ = ("top", "root")
    top: int
    root: tuple[int, int] | None


def walked(path: str, top: int, root: tuple[int, int] | None = None) -> Walked:
    """The :class:`Walked` path ``path`` whose first ``top`` characters were named."""
    item = Walked(path)
    item.top = top
    item.root = root
    return item


def _reduce_walked(
    path: Walked,
) -> tuple[Callable[..., Walked], tuple[str, int, tuple[int, int] | None]]:
    return walked, (str(path), path.top, path.root)


# Every walked file crosses to a worker. Found in the pickler's dispatch
# table, a Walked pickles in 0.4 us, where its own __reduce__ took 0.7 us
# (a plain str takes 0.04 us); without it, the default protocol is right too.
copyreg.pickle(Walked, _reduce_walked)


class WalkedRun(list):  # type: ignore[type-arg]
    """A batch of walked files as they cross to a worker: plain paths, ``tops`` and ``roots``.

    Pickled as columns (:func:`pack_walked`), a batch of paths costs a
    tenth of what a :class:`Walked` each cost; the worker opens each path as
    its :class:`Walked` with ``tops[i]`` and ``roots[i]`` would be.
    """

    tops: Sequence[int]
    roots: Sequence[tuple[int, int] | None]


def pack_walked(batch: list[Any]) -> Any:
    """``batch`` in the form it crosses to a worker in: see :func:`unpack_walked`.

    A batch of nothing but :class:`Walked` paths becomes its paths joined by
    NUL (no name holds one), their tops and their roots (one object for the
    files of one argument: the pickle holds it once); any other batch is
    left as it is.
    """
    if batch and all(type(item) is Walked for item in batch):
        import array

        tops = array.array("i", [item.top for item in batch])
        return ("\0".join(batch), tops, [item.root for item in batch])
    return batch


def unpack_walked(packed: Any) -> Any:
    """The batch :func:`pack_walked` packed: a :class:`WalkedRun`, or the batch as it was."""
    if type(packed) is not tuple:
        return packed
    joined, tops, roots = packed
    run = WalkedRun(joined.split("\0"))
    run.tops = tops
    run.roots = roots
    return run


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_BELOW_FLAGS = _DIR_FLAGS | _NOFOLLOW


class Descent:
    """Descriptors of the directories on the way to the last directory opened.

    :meth:`directory` opens a directory of the walk as the walk entered it:
    its named part as named, then each component below it relative to the
    one before, with ``O_NOFOLLOW | O_DIRECTORY``, so that a directory
    swapped for a link is never entered through it (``ENOTDIR``). The chain
    to the last directory stays open: the next file in the same directory
    costs no system call, one in a sibling directory one ``openat``, which
    is also cheaper than resolving a whole path. At most ``MAX_HELD``
    descriptors stay open however deep the tree; past that the shallowest
    are let go, and opened again from the nearest one held if needed.

    Each process has its own (descriptors can't be shared with a worker);
    :meth:`close` lets go of them all.
    """

    MAX_HELD = 32

    def __init__(self) -> None:
        self._fds: list[int] = []  # the named part's first, then deeper directories
        self._ends: list[int] = []  # where each one's path ends in _path
        self._path = ""  # the directory _fds[-1] is
        self._top = -1  # the length of its named part
        # _fds[-1], and _path without its last "/" as rpartition leaves it:
        # for the next file in the same directory.
        self._last = -1
        self._head: str | None = None

    def directory(self, path: str, top: int, root: tuple[int, int] | None = None) -> int:
        """A descriptor of directory ``path`` ("" or ending in "/"), ``path[:top]`` named.

        Valid until the next call or :meth:`close`; not to be closed by the
        caller. Raises ``OSError``: ``ENOTDIR`` when a component below the
        named part is no longer a directory, a link to one included, or when
        the named part is not ``root`` (device, inode) any more.
        """
        fds, ends = self._fds, self._ends
        if path == self._path and top == self._top and fds:
            return fds[-1]
        keep = 0
        if fds and top == self._top and path.startswith(self._path[:top]):
            keep = len(fds)
            while keep > 1 and not path.startswith(self._path[: ends[keep - 1]]):
                keep -= 1
        for fd in fds[keep:]:
            os.close(fd)
        del fds[keep:], ends[keep:]
        try:
            if not fds:
                fd = os.open(path[:top] or ".", _DIR_FLAGS)
                if root is not None:
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != root:
                        os.close(fd)
                        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                fds.append(fd)
                ends.append(top)
                self._top = top
            start = ends[-1]
            while start < len(path):
                end = path.find("/", start)
                if end < 0:
                    end = len(path)
                if end > start:  # "a//b" is "a/b", as the kernel reads it
                    fds.append(os.open(path[start:end], _BELOW_FLAGS, dir_fd=fds[-1]))
                    ends.append(end + 1)
                    if len(fds) > self.MAX_HELD:
                        os.close(fds.pop(1))
                        del ends[1]
                start = end + 1
        finally:
            self._path = path[: ends[-1]] if fds else ""
            self._last = fds[-1] if fds else -1
            self._head = self._path[:-1] if fds else None
        return fds[-1]

    def parent(self, path: Walked) -> tuple[int, str]:
        """The descriptor of ``path``'s directory (see :meth:`directory`), and its name there."""
        head, slash, name = path.rpartition("/")
        if head != self._head or path.top != self._top:
            self.directory(path[: len(head) + len(slash)], path.top, path.root)
        return self._last, name

    def open(self, path: Walked, flags: int) -> int:
        """Open file ``path`` with ``flags`` and ``O_NOFOLLOW``, relative to its directory.

        Raises ``OSError``: ``ELOOP`` for a file swapped for a link, and see
        :meth:`directory`.
        """
        return self.open_walked(path, path.top, flags, path.root)

    def open_walked(
        self, path: str, top: int, flags: int, root: tuple[int, int] | None = None
    ) -> int:
        """:meth:`open` for a walked ``path`` given as a plain string, its ``top`` and ``root``.

        What :meth:`parent` then ``os.open`` do, without a Python call for a
        file in the last directory: most of a worker's small files.
        (rpartition takes its argument unparsed, where rfind and startswith
        parse theirs: 1,400 instructions a file fewer.)
        """
        head, slash, name = path.rpartition("/")
        # "" is the directory of "x" (named part "") and of "/x" (named "/").
        if head == self._head and top == self._top:
            return os.open(name, flags | _NOFOLLOW, dir_fd=self._last)
        directory = self.directory(path[: len(head) + len(slash)], top, root)
        return os.open(name, flags | _NOFOLLOW, dir_fd=directory)

    def close(self) -> None:
        fds = self._fds
        while fds:
            os.close(fds.pop())
        self._ends.clear()
        self._path = ""
        self._top = -1
        self._last = -1
        self._head = None


def walked_reason(e: OSError) -> str:
    """Why a :class:`Walked` path or a directory of the walk could not be opened.

    Without following links, a file swapped for a link fails with ``ELOOP``
    and a directory swapped for one (or for a file) with ``ENOTDIR``: the
    tree changed since the walk listed it.
    """
    return CHANGED_DURING_WALK if e.errno in (errno.ELOOP, errno.ENOTDIR) else reason(e)


# File systems whose files report a size that is not their contents (often
# 0 or 4096): their files are no one's duplicates by size.
PSEUDO_FILE_SYSTEMS = frozenset({
    "proc", "sysfs", "debugfs", "tracefs", "securityfs", "cgroup", "cgroup2", "configfs",
    "pstore", "bpf", "efivarfs", "fusectl", "binfmt_misc", "mqueue", "selinuxfs", "smackfs",
    "nsfs", "rpc_pipefs", "nfsd", "resctrl",
})
_FS_TYPES: dict[int, str] = {}


def file_system_type(dev: int) -> str:
    """The type of the file system mounted on device ``dev`` (``"ext4"``), "" if unknown.

    Read from ``/proc/self/mountinfo`` the first time a device is asked
    about, and remembered.
    """
    fstype = _FS_TYPES.get(dev)
    if fstype is None:
        _FS_TYPES.update(_mounted_types())
        fstype = _FS_TYPES.setdefault(dev, "")
    return fstype


def _mounted_types() -> dict[int, str]:
    found: dict[int, str] = {}
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return found
    for line in lines:
        # "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the
        # device is the third field, the type the first after " - ".
        fields = line.split(" ")
        try:
            major, minor = fields[2].split(":")
            found[os.makedev(int(major), int(minor))] = fields[fields.index("-") + 1]
        except (ValueError, IndexError):
            continue
    return found


def is_pseudo_fs(dev: int) -> bool:
    """Whether device ``dev`` holds a pseudo file system (:data:`PSEUDO_FILE_SYSTEMS`)."""
    return file_system_type(dev) in PSEUDO_FILE_SYSTEMS


class Directory(NamedTuple):
    """A directory for :func:`read_dir` to read."""

    path: str  # as displayed, ending in "/" unless it is "" (the current directory)
    rel: str  # relative to the walk's top, "" for the top
    depth: int
    # With follow: this directory's device and inode, and its ancestors'.
    ancestor: _Ancestor | None = None
    # The length of the part of ``path`` followed as named (an argument, or
    # with follow a link), -1 for all of it; what lies below is entered
    # without following links.
    named: int = -1
    # The device and inode the listing saw: reading checks that it reads them.
    identity: tuple[int, int] | None = None
    # Those of the named part, path[:top], when it is not this directory.
    root: tuple[int, int] | None = None
    # With the hash cache: the absolute path, links resolved, that its
    # entries are kept under (its parent's and its name, entered without
    # following a link).
    real: bytes | None = None

    @property
    def shown(self) -> str:
        """The directory as errors name it: ``a/b``, ``/``, or ``.`` for the current one."""
        return self.path.rstrip("/") or ("/" if self.path else ".")

    @property
    def top(self) -> int:
        """How many characters of ``path`` are followed as named."""
        return len(self.path) if self.named < 0 else self.named

    @property
    def named_root(self) -> tuple[int, int] | None:
        """The device and inode of the named part, ``path[:top]``, as the walk saw it."""
        return self.identity if self.named < 0 else self.root


class _Ancestor(NamedTuple):
    dev: int
    ino: int
    path: str
    parent: _Ancestor | None


def _loop_ancestor(node: _Ancestor | None, dev: int, ino: int) -> str | None:
    while node is not None:
        if node.dev == dev and node.ino == ino:
            return node.path
        node = node.parent
    return None


def _as_prefix(path: str) -> str:
    return path if path == "" or path.endswith("/") else path + "/"


def walk_tree(
    top: str,
    *,
    follow: bool = False,
    select: Predicates | None = None,
    top_stat: os.stat_result | None = None,
    skip_pseudo: bool = False,
) -> Iterator[str | WalkError]:
    """Yield the regular files under directory ``top``, then errors as values.

    Paths are ``top`` joined with the names below it, as ``find`` prints them
    (``./src`` gives ``./src/a.py``); each is a :class:`Walked`, except a
    link to a file followed with ``follow``, a plain ``str``. Names within a
    directory come in byte order, files before subdirectories. ``top_stat``
    is what the caller saw of ``top``: a different directory there is
    :data:`CHANGED_DURING_WALK`. With ``skip_pseudo``, a directory on a
    pseudo file system is reported (:data:`PSEUDO_FS`) and not read.

    Costs, per directory, an ``openat``, an ``fstat``, the listing, and an
    ``lstat`` of each subdirectory; nothing per file. With ``follow``, a
    ``stat`` per link. Holds at most :attr:`Descent.MAX_HELD` descriptors.
    """
    visited: set[tuple[int, int]] = set()
    root: _Ancestor | None = None
    st = top_stat
    if follow:
        st = st or os.stat(top or ".")
        root = _Ancestor(st.st_dev, st.st_ino, top or ".", None)
        visited.add((st.st_dev, st.st_ino))
    identity = None if st is None else (st.st_dev, st.st_ino)
    stack = [Directory(_as_prefix(top), "", 0, root, identity=identity)]
    descent = Descent()
    try:
        while stack:
            current = stack.pop()
            subdirs: list[Directory] = []
            for item in read_dir(
                current, follow=follow, select=select, descent=descent, skip_pseudo=skip_pseudo
            ):
                if not isinstance(item, Directory):
                    yield item
                    continue
                node = item.ancestor
                if node is not None:  # following links: each directory once, by device and inode
                    key = (node.dev, node.ino)
                    if key in visited:
                        ancestor = _loop_ancestor(current.ancestor, *key)
                        if ancestor is not None:
                            yield WalkError(node.path, LOOP, errno.ELOOP, item.depth, ancestor)
                        continue  # entered already by another path
                    visited.add(key)
                subdirs.append(item)
            stack.extend(reversed(subdirs))
    finally:
        descent.close()


# A regular file with the lstat() taken as its directory was read.

# A listing this long is sorted in runs of this many names; each run is kept
# packed as bytes, and the runs merged: a directory of a million files costs
# some ten bytes a name, not a Python object per entry (250 MB in a scan).
RUN = 1 << 16
# Names per packed block of a run: what a merge unpacks at a time.
_BLOCK = 4096
_DIR = 1
_LINK = 2
_ODD = 3  # a FIFO, socket or device, kept for read_dir's odd
_ENCODING = sys.getfilesystemencoding()
_ERRORS = sys.getfilesystemencodeerrors()
_encode: Callable[[str], bytes] = operator.methodcaller("encode", _ENCODING, _ERRORS)
_decode: Callable[[bytes], str] = operator.methodcaller("decode", _ENCODING, _ERRORS)


def _sort_names(names: list[str]) -> None:
    # ASCII names sort as their bytes do; only others need encoding.
    if all(map(str.isascii, names)):
        names.sort()
    else:
        names.sort(key=_encode)


def _pack(names: list[str]) -> list[bytes]:
    _sort_names(names)
    return [b"\0".join(map(_encode, names[i:i + _BLOCK])) for i in range(0, len(names), _BLOCK)]


def _unpack(blocks: list[bytes]) -> Iterator[bytes]:
    for block in blocks:
        yield from block.split(b"\0")


def _list_dir(
    fd: int, follow: bool, odd: bool = False
) -> tuple[Iterator[str], dict[str, int | OSError]]:
    """The names of the entries of directory ``fd`` worth a look, in byte order.

    Files, directories and (with ``follow``) links; with them, what each
    name that is not a file is: ``_DIR``, ``_LINK``, or the error met
    telling. Other entries (FIFOs, sockets, devices) are left out unopened,
    or with ``odd`` kept as ``_ODD``.
    """
    kinds: dict[str, int | OSError] = {}
    packed: list[list[bytes]] = []
    names: list[str] = []
    with os.scandir(fd) as it:
        for entry in it:
            name = entry.name
            try:
                if not entry.is_file(follow_symlinks=False):
                    if entry.is_dir(follow_symlinks=False):
                        kinds[name] = _DIR
                    elif follow and entry.is_symlink():
                        kinds[name] = _LINK
                    elif odd:
                        kinds[name] = _ODD
                    else:
                        continue  # a FIFO, socket, device, or a link we don't follow
            except OSError as e:
                kinds[name] = e
            names.append(name)
            if len(names) == RUN:
                packed.append(_pack(names))
                names = []
    if not packed:
        _sort_names(names)
        return iter(names), kinds
    packed.append(_pack(names))
    return map(_decode, heapq.merge(*map(_unpack, packed))), kinds


def _too_long(path: str) -> int:
    """``len(os.fsencode(path))``, without encoding an ASCII path."""
    return len(path) if path.isascii() else len(_encode(path))


def read_dir(
    current: Directory,
    *,
    follow: bool = False,
    select: Predicates | None = None,
    descent: Descent | None = None,
    skip_pseudo: bool = False,
    odd: bool = False,
) -> Iterator[str | WalkError | Directory]:
    """Read one directory: its regular files' paths, its errors, and its subdirectories.

    Values come in byte order of the names. A file comes as a
    :class:`Walked` path (with ``follow``, a link to one as a plain
    ``str``). A subdirectory (or with ``follow`` a link to one) comes as a
    :class:`Directory` to read next, with the device and inode an ``lstat``
    saw now; with ``follow`` its ``ancestor`` also holds them, for the
    caller to enter each directory once. :func:`walk_tree` reads a tree with
    it in one process.

    The directory is opened through ``descent`` (a :class:`Descent` of the
    caller's, to reuse its descriptors, or one of its own): one that is not
    the one the listing of its parent saw comes back as a :class:`WalkError`
    saying :data:`CHANGED_DURING_WALK`, as does a subdirectory swapped for
    a link since the listing. A path too
    long for the system's calls comes back as ``ENAMETOOLONG``, as it would
    by name: no manifest line could name it. With ``skip_pseudo``, a
    directory on a pseudo file system comes back as a :class:`WalkError`
    saying :data:`PSEUDO_FS`, unread. With ``odd``, what the walk leaves out
    silently comes back as a :class:`WalkError` instead, unopened: a FIFO, a
    socket or a device (:data:`NOT_REGULAR`; without ``follow``, a link
    too), and with ``follow`` a broken link (``ENOENT``) or a link to a
    FIFO, socket or device; for a caller that must account for every name
    (``parhash dirhash --protocol go-h1``).

    Memory: a few bytes per name, however large the directory (names are
    sorted in packed runs of :data:`RUN`).
    """
    own = descent is None
    if descent is None:
        descent = Descent()
    try:
        opened = _open_dir(current, descent, follow, skip_pseudo, odd)
        if isinstance(opened, WalkError):
            yield opened
            return
        fd, names, kinds, room = opened
        top = current.path
        named = current.top
        root = current.named_root
        for entry in _entries(current, fd, names, kinds, room, follow, select, odd=odd):
            if type(entry) is str:
                item = Walked(top + entry)
                item.top = named
                item.root = root
                yield item
            elif isinstance(entry, Linked):
                yield entry.path
            else:
                yield entry
    finally:
        if own:
            descent.close()


class Linked(NamedTuple):
    """A link to a regular file, met in a listing and followed on purpose.

    It is read by its ``path``, as named; ``st`` is what ``stat`` saw.
    """

    path: str
    st: os.stat_result


def open_listing(
    current: Directory,
    descent: Descent,
    *,
    follow: bool = False,
    select: Predicates | None = None,
    skip: frozenset[str] = frozenset(),
    note: Callable[[str], None] | None = None,
    skip_pseudo: bool = False,
) -> tuple[int, Iterator[str | Linked | Directory | WalkError]] | WalkError:
    """Open directory ``current`` as :func:`read_dir` does; its descriptor and entries.

    The entries come in byte order of the names: a regular file as its bare
    name (a ``str``, to open relative to the descriptor with ``O_NOFOLLOW``),
    a link followed with ``follow`` as :class:`Linked`, a subdirectory as a
    :class:`Directory`, and errors as :class:`WalkError` values. The
    descriptor is ``descent``'s, valid until its next use. A directory that
    can't be opened, or is not the one its parent's listing saw, comes back
    as a :class:`WalkError` instead. Costs what :func:`read_dir` costs; no
    object per file but its name. Entries named in ``skip`` are left out
    unlooked at (given up on); ``note(path)`` is called before an entry that
    is not a file is looked at (an ``lstat`` can wait on a dead mount).
    ``skip_pseudo`` is as for :func:`read_dir`.
    """
    opened = _open_dir(current, descent, follow, skip_pseudo)
    if isinstance(opened, WalkError):
        return opened
    fd, names, kinds, room = opened
    return fd, _entries(current, fd, names, kinds, room, follow, select, skip, note)


def _entries(
    current: Directory,
    fd: int,
    names: Iterator[str],
    kinds: dict[str, int | OSError],
    room: int,
    follow: bool,
    select: Predicates | None,
    skip: frozenset[str] = frozenset(),
    note: Callable[[str], None] | None = None,
    odd: bool = False,
) -> Iterator[str | Linked | Directory | WalkError]:
    """The entries of :func:`open_listing`, from what :func:`_open_dir` found
    (``odd`` as for :func:`read_dir`)."""
    long_names = room <= _NAME_MAX
    if not kinds and select is None and not long_names and not skip:
        # Only files, and nothing to choose from: most directories.
        yield from names
        return
    depth = current.depth + 1
    top = current.path
    named = current.top
    root = current.named_root
    above = current.rel + "/" if current.rel else ""
    lstat = functools.partial(os.stat, dir_fd=fd, follow_symlinks=False)
    get_kind = kinds.get
    for name in names:
        if skip and name in skip:
            continue
        kind = get_kind(name)
        if kind is not None and note is not None:
            note(top + name)
        try:
            if long_names and len(_encode(name)) >= room:
                raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
            if kind is None:  # a regular file
                if select is None or select.keep_file(above + name):
                    yield name
                continue
            if isinstance(kind, OSError):
                raise kind
            rel = above + name
            if kind == _ODD:
                if select is None or select.keep_file(rel):
                    yield WalkError(top + name, NOT_REGULAR, None, depth)
                continue
            if kind == _DIR:
                if select is not None and not select.enter_dir(rel):
                    continue
                st = lstat(name)
                if not stat.S_ISDIR(st.st_mode):
                    yield WalkError(top + name, CHANGED_DURING_WALK, None, depth)
                    continue
                node = None
                if follow:
                    node = _Ancestor(st.st_dev, st.st_ino, top + name, current.ancestor)
                real = None
                if current.real is not None:
                    real = current.real.rstrip(b"/") + b"/" + _encode(name)
                yield Directory(top + name + "/", rel, depth, node, named,
                                (st.st_dev, st.st_ino), root, real)
                continue
            # A link, followed on purpose: what it names is read as named.
            try:
                st = os.stat(name, dir_fd=fd)
            except FileNotFoundError:
                if odd and (select is None or select.keep_file(rel)):
                    raise
                continue  # a broken link
            path = top + name
            if stat.S_ISREG(st.st_mode):
                if select is None or select.keep_file(rel):
                    yield Linked(path, st)
            elif stat.S_ISDIR(st.st_mode):
                if select is None or select.enter_dir(rel):
                    node = _Ancestor(st.st_dev, st.st_ino, path, current.ancestor)
                    yield Directory(path + "/", rel, depth, node, -1, (st.st_dev, st.st_ino))
            elif odd and (select is None or select.keep_file(rel)):
                yield WalkError(path, NOT_REGULAR, None, depth)
        except OSError as e:
            yield WalkError(top + name, reason(e), e.errno, depth)


def _open_dir(
    current: Directory, descent: Descent, follow: bool, skip_pseudo: bool, odd: bool = False
) -> tuple[int, Iterator[str], dict[str, int | OSError], int] | WalkError:
    """Open and list ``current`` for :func:`read_dir`, or say why not.

    Returns its descriptor (``descent``'s), its names in byte order and
    their kinds (:func:`_list_dir`), and how many bytes a name may have
    before its path is too long.
    """
    opened = open_directory(current, descent, skip_pseudo=skip_pseudo)
    if isinstance(opened, WalkError):
        return opened
    fd, room = opened
    try:
        names, kinds = _list_dir(fd, follow, odd)
    except OSError as e:
        return WalkError(current.shown, reason(e), e.errno, current.depth)
    return fd, names, kinds, room


def open_directory(
    current: Directory, descent: Descent, *, skip_pseudo: bool = False
) -> tuple[int, int] | WalkError:
    """Open directory ``current`` through ``descent``, checking it is the one the walk saw.

    Returns its descriptor (``descent``'s, valid until its next use) and how
    many bytes a name in it may have before its path is too long; or why not,
    as a :class:`WalkError` (:data:`CHANGED_DURING_WALK` for a directory that
    is not the one its parent's listing saw).
    """
    room = PATH_MAX - _too_long(current.path)
    if room <= 0:
        too_long = errno.ENAMETOOLONG
        return WalkError(current.shown, os.strerror(too_long), too_long, current.depth)
    try:
        fd = descent.directory(current.path, current.top)
        st = os.fstat(fd)
        if current.identity is not None and (st.st_dev, st.st_ino) != current.identity:
            return WalkError(current.shown, CHANGED_DURING_WALK, None, current.depth)
        if skip_pseudo and is_pseudo_fs(st.st_dev):
            return WalkError(current.shown, PSEUDO_FS, None, current.depth)
    except OSError as e:
        why = walked_reason(e)
        code = None if why == CHANGED_DURING_WALK else e.errno
        return WalkError(current.shown, why, code, current.depth)
    return fd, room


def walk_glob(
    pattern: str,
    *,
    follow: bool = False,
    select: Predicates | None = None,
    skip_pseudo: bool = False,
) -> Iterator[str | WalkError]:
    """Expand ``pattern`` (``**`` included) with the walk's link policy.

    Yields a :class:`WalkError` (``No such file or directory``) when nothing
    matches, as ``md5sum`` says of an unexpanded shell pattern. The part
    before the first wildcard is followed as named.
    """
    parts = pattern.split("/")
    literal = 0
    while literal < len(parts) - 1 and not has_magic(parts[literal]):
        literal += 1
    base = "/".join(parts[:literal])
    if pattern.startswith("/") and not base:
        base = "/"
    rest = "/".join(parts[literal:])
    matched = False
    try:
        top_stat = os.stat(base or ".")
    except OSError as e:
        yield WalkError(pattern, reason(e), e.errno)
        return
    for item in walk_tree(
        base, follow=follow, select=GlobPredicates(rest, select), top_stat=top_stat,
        skip_pseudo=skip_pseudo,
    ):
        matched = matched or isinstance(item, str)
        yield item
    if not matched:
        yield WalkError(pattern, os.strerror(errno.ENOENT), errno.ENOENT)


def walk_paths(
    paths: Iterable[str | Pause],
    *,
    follow: bool = False,
    select: Predicates | None = None,
    expand_globs: bool = True,
    skip_pseudo: bool = False,
) -> Iterator[str | WalkError | Pause]:
    """Walk each argument in turn: a file, a directory, or a glob.

    An argument that exists is taken literally even if it holds ``*``; one that
    doesn't and holds a wildcard is expanded by :func:`walk_glob`. ``select``
    filters what is found below directories and globs, never a file named
    directly. Errors come back as :class:`WalkError` values; nothing raises.
    A single string is one path, not a sequence of one-letter paths.
    :data:`PAUSE` passes through as it is. Arguments are followed as named (a link to a directory
    is walked), what lies below them as :func:`walk_tree` says. With
    ``skip_pseudo``, a file or directory on a pseudo file system (``/proc``,
    ``/sys``...) comes back as a :class:`WalkError` saying :data:`PSEUDO_FS`,
    unread: its files' sizes are not their contents.
    """
    for arg in _arguments(paths):
        if isinstance(arg, Pause):
            yield arg
            continue
        try:
            st = os.stat(arg)
        except ValueError:  # a NUL byte, from a newline-separated list
            yield WalkError(arg, os.strerror(errno.EINVAL), errno.EINVAL)
            continue
        except OSError as e:
            if expand_globs and has_magic(arg) and e.errno == errno.ENOENT:
                yield from walk_glob(arg, follow=follow, select=select, skip_pseudo=skip_pseudo)
            else:
                yield WalkError(arg, reason(e), e.errno)
            continue
        if stat.S_ISREG(st.st_mode):
            yield WalkError(arg, PSEUDO_FS) if skip_pseudo and is_pseudo_fs(st.st_dev) else arg
        elif stat.S_ISDIR(st.st_mode):
            yield from walk_tree(
                arg, follow=follow, select=select, top_stat=st, skip_pseudo=skip_pseudo
            )
        else:
            yield WalkError(arg, NOT_REGULAR)


def _arguments(paths: Iterable[str | Pause]) -> Iterator[str | Pause]:
    """``paths`` as strings; a single string is one path, not a sequence of letters."""
    if isinstance(paths, str):
        paths = (paths,)
    for arg in paths:
        if isinstance(arg, (str, Pause)):
            yield arg
        else:
            yield os.fsdecode(arg)  # a pathlib.Path, bytes: the rest of the pipeline sees str


def named_paths(
    paths: Iterable[str | Pause],
    listed: Iterable[str | Pause] = (),
    *,
    follow: bool = False,
    select: Predicates | None = None,
    skip_pseudo: bool = False,
) -> Iterator[str | WalkError | Pause]:
    """The paths a user named, for workers to look at: ``paths``, then ``listed``.

    Each is passed on as it is, unread (a worker stats it), except an
    argument of ``paths`` that does not exist and holds a wildcard: it is
    expanded here (:func:`walk_glob`), into :class:`Walked` paths and
    :class:`WalkError` values (``skip_pseudo`` as for :func:`walk_glob`).
    ``listed`` names are never globs. :data:`PAUSE` passes through.
    """
    for arg in _arguments(paths):
        if isinstance(arg, Pause):
            yield arg
            continue
        if has_magic(arg):
            try:
                os.stat(arg)
            except FileNotFoundError:
                yield from walk_glob(arg, follow=follow, select=select,
                                     skip_pseudo=skip_pseudo)
                continue
            except (OSError, ValueError):
                pass  # the worker says what is wrong with it
        yield arg
    yield from _arguments(listed)


def read_path_list(
    stream: BinaryIO, separator: bytes = b"\n", *, pauses: bool = False
) -> Iterator[str | Pause]:
    """Yield the names in a newline- or NUL-separated list, as they are read.

    Names are bytes on disk; they are decoded with the file system encoding
    and ``surrogateescape``, so any name survives. Empty names are skipped.
    Each name is yielded as soon as its separator arrives: ``read1`` returns
    what a pipe holds instead of waiting for a full 64 KiB, so a slow
    producer (``find / -print0 | parhash scan --files0-from -``) is hashed
    while it runs. With ``pauses``, :data:`PAUSE` comes before each read of
    a pipe, a terminal or a socket that would wait.
    """
    read = getattr(stream, "read1", stream.read)
    ready = _readiness(stream) if pauses else None
    # The tail of a name not yet ended, in pieces: joined only when its
    # separator comes, so a name of many megabytes costs linear time.
    pending: list[bytes] = []
    while True:
        if ready is not None and not ready():
            yield PAUSE
        chunk = read(1 << 16)
        if not chunk:
            break
        if separator not in chunk:
            pending.append(chunk)
            continue
        first, *names, rest = chunk.split(separator)
        pending.append(first)
        names.insert(0, b"".join(pending))
        pending = [rest] if rest else []
        for name in names:
            if name:
                yield os.fsdecode(name)
    tail = b"".join(pending)
    if tail:
        yield os.fsdecode(tail)


def _readiness(stream: BinaryIO) -> Callable[[], bool] | None:
    """For a stream whose reads may wait (not a regular file): whether one would not."""
    try:
        fd = stream.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return None
    except (OSError, ValueError, AttributeError):
        return None  # no file descriptor (io.BytesIO): reads never wait
    # read1 hands back what the buffer holds before it reads again, and a
    # read of 64 KiB bypasses a smaller buffer: the buffer is empty when a
    # read is asked for, so the descriptor alone tells whether it would wait.
    return functools.partial(readable_now, fd)


def readable_now(fd: int) -> bool:
    """Whether a read of ``fd`` would return at once (data, or the end)."""
    import select

    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True  # let the read itself report the problem
