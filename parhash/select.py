"""Which walked paths to keep: gitignore-style include/exclude patterns.

The walk asks two questions, both on the path relative to the argument it
started from, both before any ``stat``: may I descend into this directory, and
do I keep this file. Patterns follow ``.gitignore``:

- ``*`` and ``?`` match within one path component, ``[...]`` a character class;
- ``**`` matches any number of directories (``a/**/b``, ``**/x``, ``dir/**``);
- a pattern without ``/`` matches the name at any depth (``*.pyc``);
  one with ``/`` is anchored at the argument (``build/out``, ``/top``);
- a trailing ``/`` matches directories only (``node_modules/``).

An ``--exclude`` that matches a directory prunes it: nothing below is read.
``--include`` patterns filter files only, so directories are still walked.
Each answer costs time linear in the path's length times the pattern's,
however many stars and ``**`` the pattern holds.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Protocol


def _translate_class(pattern: str, i: int) -> tuple[str, int]:
    """Translate the ``[...]`` starting at ``pattern[i]``; return (regex, next index)."""
    j = i + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return re.escape("["), i + 1
    body = pattern[i + 1 : j]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    # Each character escaped, each range kept only if it is in order: a
    # reversed range (z-a) matches nothing, as in git's wildmatch, instead of
    # making the regular expression invalid.
    parts = []
    k = 0
    body = body.replace("/", "")
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            if body[k] <= body[k + 2]:
                parts.append(re.escape(body[k]) + "-" + re.escape(body[k + 2]))
            k += 3
        else:
            parts.append(re.escape(body[k]))
            k += 1
    if not parts:
        return ("[^/]" if negate else "(?!)"), j + 1
    return ("[^/" if negate else "[") + "".join(parts) + "]", j + 1


# A pattern as _tokens reads it: (kind, regular expression, escaped).
_ATOM = "atom"  # one character, never "/": a literal, ``?`` or a class
_STAR = "*"  # characters within one component; its expression is the no-dot guard
_SLASH = "/"  # a literal "/"; escaped, written \/, it starts no component
_DIRS = "**/"  # whole components, any number of them
_REST = "**"  # everything below; only at the end of a pattern
_Token = tuple[str, str, bool]

# The names of the groups that stand for atomic groups are unique across all
# translations, so that two can still be joined into one expression (the
# reason CPython's fnmatch numbered them so before Python 3.11).
_group_numbers = itertools.count(1)


def _atomic(body: str) -> str:
    """``(?>body)`` for Python 3.10: a lookahead is never re-entered once it matched,
    and the backreference consumes what it matched."""
    name = f"g{next(_group_numbers)}"
    return f"(?=(?P<{name}>{body}))(?P={name})"


def _tokens(pattern: str, hidden: bool) -> Iterator[_Token]:
    i = 0
    n = len(pattern)
    start_of_component = True
    no_dot = "" if hidden else r"(?!\.)"
    while i < n:
        c = pattern[i]
        guard = no_dot if start_of_component else ""
        if c == "*" and pattern.startswith("**", i) and start_of_component:
            end = i + 2
            if end == n:
                yield _REST, "", False
                return
            if pattern[end] == "/":
                yield _DIRS, "", False
                i = end + 1
                continue
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            yield _STAR, guard, False
            start_of_component = False
            continue
        if c == "?":
            yield _ATOM, guard + "[^/]", False
        elif c == "[":
            regex, i = _translate_class(pattern, i)
            yield _ATOM, guard + regex, False
            start_of_component = False
            continue
        elif c == "\\" and i + 1 < n:
            i += 1
            escaped = pattern[i]
            yield (_SLASH, "/", True) if escaped == "/" else (_ATOM, re.escape(escaped), False)
        elif c == "/":
            yield _SLASH, "/", False
        else:
            yield _ATOM, re.escape(c), False
        start_of_component = c == "/"
        i += 1


def _component(tokens: list[_Token]) -> str:
    """One component's atoms and stars, as an expression that cannot backtrack.

    Each star but the last is followed by fixed atoms and then another star,
    so its shortest match is as good as any (the next star takes up what it
    leaves) and is taken atomically, as fnmatch does. Cost: the component's
    length times its pattern's.
    """
    out: list[str] = []
    star: str | None = None  # the guard of the star before ``fixed``, if any
    fixed: list[str] = []
    for kind, regex, _ in tokens:
        if kind != _STAR:
            fixed.append(regex)
            continue
        if star is None:
            out += fixed
        else:
            out.append(star + _atomic("[^/]*?" + "".join(fixed)))
        star, fixed = regex, []
    if star is not None:
        out.append(star + "[^/]*")
    return "".join(out + fixed)


def _run(tokens: list[_Token]) -> str:
    """The part of a pattern between two ``**``: its components joined by "/"."""
    components: list[list[_Token]] = [[]]
    for token in tokens:
        if token[0] == _SLASH:
            components.append([])
        else:
            components[-1].append(token)
    return "/".join(map(_component, components))


def translate(pattern: str, *, hidden: bool = True) -> str:
    """Translate a gitignore-style glob into a regular expression body.

    With ``hidden=False`` a wildcard at the start of a component does not match
    a leading dot, as in a shell glob. Matching with the expression (followed
    by ``\\Z``) costs time linear in the path's length times the pattern's:
    the engine never has two choices left to combine, so never retries one
    per way of splitting the path. (One exception, below, needs an escaped
    "/" in a glob.)
    """
    dirs = r"(?:[^/]*/)*" if hidden else r"(?:(?!\.)[^/]*/)*"
    # Split at each run of "**": runs[0] is anchored at the start, each other
    # comes after a "**" and ends at a "/", except the last. "**/**/" is
    # "**/": repeated, it would multiply the ways to split a path.
    runs: list[list[_Token]] = [[]]
    globstars: list[str] = []
    for token in _tokens(pattern, hidden):
        if token[0] not in (_DIRS, _REST):
            runs[-1].append(token)
        elif globstars and not runs[-1]:
            globstars[-1] = token[0]
        else:
            globstars.append(token[0])
            runs.append([])
    out = [_run(runs[0])]
    for k, (globstar, run) in enumerate(zip(globstars, runs[1:], strict=True)):
        if globstar == _REST:
            # Without hidden names: no component below starts with a dot.
            out.append(".*" if hidden else r"(?!\.)(?:[^/]|/(?!\.))*")
        elif k == len(globstars) - 1 or (not hidden and any(escaped for _, _, escaped in run)):
            out.append(dirs + _run(run))
        else:
            # A run between two "**/" matches whole components. Its leftmost
            # place is as good as any: the next "**/" takes the components it
            # leaves. With the no-dot rule that still holds, since a run's
            # component matches either only dotted names or none; except
            # after an escaped slash, where the run keeps every choice (only
            # such runs can cost more than linear time).
            out.append(_atomic(dirs + "?" + _run(run)))
    return "".join(out)


def has_magic(path: str) -> bool:
    """True when ``path`` holds a glob wildcard (``*``, ``?`` or ``[``)."""
    return any(c in path for c in "*?[")


class Predicates(Protocol):
    """What the walk asks of paths relative to where it started, before any ``stat``."""

    def enter_dir(self, relpath: str) -> bool: ...
    def keep_file(self, relpath: str) -> bool: ...


class _Pattern:
    __slots__ = ("regex", "dirs_only")

    def __init__(self, regex: re.Pattern[str], dirs_only: bool) -> None:
        self.regex = regex
        self.dirs_only = dirs_only

    @classmethod
    def compile(cls, pattern: str) -> _Pattern:
        dirs_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if "/" in pattern:
            body = translate(pattern.lstrip("/"))
        else:
            # Tried after each "/" in turn, from the last: the pattern can't
            # match across a "/", so each try costs one component's length.
            body = r"(?:.*/)?" + translate(pattern)
        return cls(re.compile(body + r"\Z", re.DOTALL), dirs_only)

    def matches(self, relpath: str, is_dir: bool) -> bool:
        if self.dirs_only and not is_dir:
            return False
        return self.regex.match(relpath) is not None


class Selector:
    """Include/exclude predicates over paths relative to a walk's argument.

    ``matched`` holds the patterns (as ``("include", pattern)`` or
    ``("exclude", pattern)``) that matched a path since it was made: a
    pattern that never does is most likely a mistake worth a warning.
    """

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._include = tuple(map(_Pattern.compile, self.include))
        self._exclude = tuple(map(_Pattern.compile, self.exclude))
        self.matched: set[tuple[str, str]] = set()

    def __reduce__(self) -> tuple[object, tuple[tuple[str, ...], tuple[str, ...]]]:
        # What matched in this process stays here: a worker's task reports its own.
        return Selector, (self.include, self.exclude)

    def unmatched(self, matched: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The patterns, as in ``matched``, that are not in ``matched``: in order given."""
        seen = set(matched)
        return [p for p in itertools.chain((("include", i) for i in self.include),
                                           (("exclude", e) for e in self.exclude))
                if p not in seen]

    def __repr__(self) -> str:
        return f"Selector(include={self.include!r}, exclude={self.exclude!r})"

    @classmethod
    def from_patterns(
        cls, include: Iterable[str] = (), exclude: Iterable[str] = ()
    ) -> Selector | None:
        """A Selector, or None when there is nothing to filter."""
        include, exclude = tuple(include), tuple(exclude)
        if not include and not exclude:
            return None
        return cls(include, exclude)

    def enter_dir(self, relpath: str) -> bool:
        """Whether to descend into the directory at ``relpath``."""
        for text, p in zip(self.exclude, self._exclude, strict=True):
            if p.matches(relpath, True):
                self.matched.add(("exclude", text))
                return False
        return True

    def keep_file(self, relpath: str) -> bool:
        """Whether to hash the file at ``relpath``."""
        for text, p in zip(self.exclude, self._exclude, strict=True):
            if p.matches(relpath, False):
                self.matched.add(("exclude", text))
                return False
        if not self._include:
            return True
        for text, p in zip(self.include, self._include, strict=True):
            if p.matches(relpath, False):
                self.matched.add(("include", text))
                return True
        return False


class GlobPredicates:
    """Predicates for the walk below a glob's literal base directory.

    ``pattern`` is the part of the glob below that base. A file is kept when
    the pattern matches its path, or the path of a directory above it: a
    directory that matches is taken whole, as a shell would pass it to a
    command that walks it. Wildcards don't match a leading dot, as in a
    shell. ``then``, if given, must agree too. Each answer costs one or two
    regular expression matches, each linear in the path's length times the
    pattern's, whatever the depth.
    """

    def __init__(self, pattern: str, then: Predicates | None) -> None:
        parts = [p for p in pattern.split("/") if p]
        body = translate("/".join(parts), hidden=False)
        # One match each, rather than one per directory above the path.
        self._matched_or_below = re.compile(body + r"(?:/.*)?\Z", re.DOTALL)
        self._below = re.compile(body + "/", re.DOTALL)
        # Components before the first "**" prune directories that can't match.
        self._fixed: list[re.Pattern[str]] = []
        for part in parts:
            if "**" in part:
                break
            self._fixed.append(re.compile(translate(part, hidden=False) + r"\Z", re.DOTALL))
        self._bounded = len(self._fixed) == len(parts)
        self.then = then

    def enter_dir(self, relpath: str) -> bool:
        """Whether a file below the directory at ``relpath`` can be kept."""
        if self.then is not None and not self.then.enter_dir(relpath):
            return False
        parts = relpath.split("/")
        if self._bounded and len(parts) >= len(self._fixed):
            # Deep enough that only a whole-directory match can keep it.
            return self._matched_or_below.match(relpath) is not None
        return (
            all(rx.match(part) for rx, part in zip(self._fixed, parts, strict=False))
            or self._below.match(relpath) is not None
        )

    def keep_file(self, relpath: str) -> bool:
        """Whether to hash the file at ``relpath``."""
        if self.then is not None and not self.then.keep_file(relpath):
            return False
        return self._matched_or_below.match(relpath) is not None
