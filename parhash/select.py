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
"""

from __future__ import annotations

import re
from collections.abc import Iterable


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


def translate(pattern: str, *, hidden: bool = True) -> str:
    """Translate a gitignore-style glob into a regular expression body.

    With ``hidden=False`` a wildcard at the start of a component does not match
    a leading dot, as in a shell glob.
    """
    out: list[str] = []
    i = 0
    n = len(pattern)
    start_of_component = True
    no_dot = "" if hidden else r"(?!\.)"
    while i < n:
        c = pattern[i]
        if c == "*" and pattern.startswith("**", i) and start_of_component:
            end = i + 2
            if end == n:
                out.append(no_dot + ".*" if hidden else r"(?:(?!\.)[^/]*(?:/|$))*")
                i = end
                continue
            if pattern[end] == "/":
                out.append(r"(?:[^/]*/)*" if hidden else r"(?:(?!\.)[^/]*/)*")
                i = end + 1
                continue
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append((no_dot if start_of_component else "") + "[^/]*")
            start_of_component = False
            continue
        if c == "?":
            out.append((no_dot if start_of_component else "") + "[^/]")
        elif c == "[":
            regex, i = _translate_class(pattern, i)
            out.append((no_dot if start_of_component else "") + regex)
            start_of_component = False
            continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        start_of_component = c == "/"
        i += 1
    return "".join(out)


def has_magic(path: str) -> bool:
    """True when ``path`` holds a glob wildcard (``*``, ``?`` or ``[``)."""
    return any(c in path for c in "*?[")


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
            body = r"(?:.*/)?" + translate(pattern)
        return cls(re.compile(body + r"\Z", re.DOTALL), dirs_only)

    def matches(self, relpath: str, is_dir: bool) -> bool:
        if self.dirs_only and not is_dir:
            return False
        return self.regex.match(relpath) is not None


class Selector:
    """Include/exclude predicates over paths relative to a walk's argument."""

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._include = tuple(map(_Pattern.compile, self.include))
        self._exclude = tuple(map(_Pattern.compile, self.exclude))

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
        return not any(p.matches(relpath, True) for p in self._exclude)

    def keep_file(self, relpath: str) -> bool:
        """Whether to hash the file at ``relpath``."""
        if any(p.matches(relpath, False) for p in self._exclude):
            return False
        return not self._include or any(p.matches(relpath, False) for p in self._include)
