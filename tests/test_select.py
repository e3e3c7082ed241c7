"""gitignore-style patterns: what --include/--exclude match, on relative paths."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parhash.select import Selector, has_magic, translate


def matches(pattern: str, path: str, *, hidden: bool = True) -> bool:
    return re.match(translate(pattern, hidden=hidden) + r"\Z", path, re.DOTALL) is not None


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("*.py", "a.py", True),
        ("*.py", "dir/a.py", False),  # * stays within one component
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "c.txt", True),
        ("[!ab].txt", "a.txt", False),
        ("[!a]", "/", False),  # a negated class never matches a slash
        ("**/x", "x", True),
        ("**/x", "a/b/x", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**", "a/x/y", True),
        ("a/**", "b/x", False),
        ("lit\\*", "lit*", True),
        ("lit\\*", "litx", False),
        ("a.b", "axb", False),  # regex characters are literal
        ("[", "[", True),  # an unclosed class is a literal bracket
    ],
)
def test_translate_follows_gitignore(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("*", ".hidden", False),
        ("*", "visible", True),
        (".*", ".hidden", True),
        ("?x", ".x", False),
        ("**/*.py", ".git/a.py", False),
        ("**/*.py", "src/a.py", True),
        ("src/**", "src/.cache/x", False),
    ],
)
def test_shell_globs_do_not_match_a_leading_dot(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path, hidden=False) is expected


@given(st.text(alphabet="ab.*?", min_size=1, max_size=6), st.text(alphabet="ab.", max_size=6))
def test_single_component_patterns_agree_with_fnmatch(pattern: str, name: str) -> None:
    assert matches(pattern, name) == fnmatch.fnmatchcase(name, pattern)


def test_has_magic() -> None:
    assert has_magic("src/**/*.py")
    assert has_magic("a?")
    assert has_magic("[ab]")
    assert not has_magic("plain/path.txt")


def test_selector_without_patterns_is_none() -> None:
    assert Selector.from_patterns((), ()) is None


def test_pattern_without_slash_matches_the_name_at_any_depth() -> None:
    s = Selector(exclude=("*.pyc",))
    assert not s.keep_file("a.pyc")
    assert not s.keep_file("x/y/a.pyc")
    assert s.keep_file("a.py")


def test_pattern_with_slash_is_anchored() -> None:
    s = Selector(exclude=("build/out", "/top"))
    assert not s.keep_file("build/out")
    assert s.keep_file("src/build/out")
    assert not s.enter_dir("top")
    assert s.enter_dir("src/top")


def test_trailing_slash_matches_directories_only() -> None:
    s = Selector(exclude=("node_modules/",))
    assert not s.enter_dir("node_modules")
    assert not s.enter_dir("web/node_modules")
    assert s.keep_file("node_modules")


def test_include_filters_files_but_never_prunes() -> None:
    s = Selector(include=("*.py",))
    assert s.enter_dir("anything")
    assert s.keep_file("deep/a.py")
    assert not s.keep_file("deep/a.txt")


def test_exclude_wins_over_include() -> None:
    s = Selector(include=("*.py",), exclude=("tests/**",))
    assert s.keep_file("src/a.py")
    assert not s.keep_file("tests/a.py")
    assert not s.keep_file("tests/x/a.py")
