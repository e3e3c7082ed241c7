"""Find files with identical contents, reading as little as possible.

The search is a short list of grouping stages, named in :class:`Stage`. Each
takes the groups of candidates left by the one before, splits them by
something dearer to learn, and drops every group left with a single file
(the shape of fclones' ``group.rs``):

1. :func:`group_by_size`: the walk's files, each ``stat``-ed once, grouped
   by size. The walk is scan's (:mod:`parhash.tasks`): the workers share
   it, a few directories or part of a huge one a task, and each
   :class:`StatTask` ``stat``-s what it finds. A file of
   :data:`PEEK_BYTES` or less is also read and hashed then, where the
   ``stat`` would cost about as much as the ``open``; a larger file whose
   size no other file has is done: it is never read.
2. :func:`group_by_inode`: names of one file (same device and inode: hard
   links, or a symlink followed with ``-L``) become one candidate, so a file
   is never its own duplicate.
3. :func:`group_by_head`: the first ``head_size`` bytes of each candidate are
   hashed in the pool (or were by the walk). A file no larger than that has
   now been read whole, and its head digest is its contents digest.
4. :func:`group_by_contents`: whole files are hashed, only in groups that
   still have two files or more and only for files larger than the head.

Each group that comes out of the last stage it needs is put in the order the
caller asked for (:mod:`~parhash.dupes.order`: preferred paths, then path,
name or mtime), once; stage 2 names each file by the same order.

Both hashing stages send whole groups (or runs of a large group) to one
executor of :mod:`parhash.executor` (a pool, or this process for small
jobs); the pool is started by the walk of a tree too big for one process,
or else by the first hashing stage that needs it, and the walk's tasks
run on it too. A worker reads each file
with the one reader (:mod:`parhash.hashing`) and sends back only the buckets of files
that agree, so the parent never handles a digest per file.

A candidate is a :data:`FileInfo` tuple, some 250 bytes, while its size
group is small. A group of :data:`PACK_AT` files or more is kept in columns
instead
(:class:`PackedFiles`, some 50 bytes a file), and made into tuples a run at
a time as it goes to the workers: a directory of a million files of one
size is searched in about 100 MB, not 300. The names a report holds come
on top, some 100 bytes each.

Files are never claimed equal on a stale look: each digest comes with the
size, mtime and inode the worker saw, and a file that no longer matches its
stage-1 ``stat`` leaves the search with an error, as does a file that fails
to read. Two files are reported as duplicates only when their whole contents
have the same digest.

The modules, in the order of the search: :mod:`~parhash.dupes.candidates`
(what a candidate and a group are), :mod:`~parhash.dupes.walk` (stage 1's
task), :mod:`~parhash.dupes.stages` (the grouping stages and the hashing
they share), :mod:`~parhash.dupes.order` (which file of a group comes
first) and :mod:`~parhash.dupes.search` (:func:`find_dupes`).
"""

from parhash.dupes.candidates import DEFAULT_DUPES_ALGO, HEAD_SIZE, ProgressFn, Stage
from parhash.dupes.order import DEFAULT_ORDER, ORDERS, Order
from parhash.dupes.search import find_dupes

__all__ = ["DEFAULT_DUPES_ALGO", "DEFAULT_ORDER", "HEAD_SIZE", "ORDERS", "Order", "ProgressFn",
           "Stage", "find_dupes"]
