"""gitignore-style patterns: what --include/--exclude match, on relative paths."""

from __future__ import annotations

import fnmatch
import functools
import re
from pathlib import Path

import pytest
from conftest import run
from hypothesis import given, settings
from hypothesis import strategies as st

from parhash.select import GlobPredicates, Selector, has_magic, translate


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


# -- against a reference matcher -------------------------------------------------
#
# The rules of the module docstring, read a character at a time and matched by
# trying every way with memoization: slow, plainly right, and a different
# method from the regular expressions it checks.


def tokenize(pattern: str, hidden: bool) -> list[tuple[str, str, bool]]:
    """(kind, argument, guarded) triples; guarded: no leading dot here."""
    tokens = []
    i, n = 0, len(pattern)
    start = True  # at the start of a component
    while i < n:
        c = pattern[i]
        guard = start and not hidden
        if start and pattern.startswith("**", i) and (i + 2 == n or pattern[i + 2] == "/"):
            tokens.append(("**" if i + 2 == n else "**/", "", not hidden))
            i += 3
            continue
        if c == "*":
            while i < n and pattern[i] == "*":
                i += 1
            tokens.append(("*", "", guard))
        elif c == "?":
            tokens.append(("?", "", guard))
            i += 1
        elif c == "[" and "]" in pattern[i + 2 :]:  # the classes generated hold no "]"
            end = pattern.index("]", i + 2)
            tokens.append(("[", pattern[i + 1 : end], guard))
            i = end + 1
        elif c == "\\" and i + 1 < n:
            # An escaped "/" separates components but starts none.
            tokens.append(("literal", pattern[i + 1], False))
            i += 2
        else:
            tokens.append(("literal", c, False))
            start = c == "/"
            i += 1
            continue
        start = False
    return tokens


def reference(pattern: str, path: str, *, hidden: bool = True) -> bool:
    tokens = tokenize(pattern, hidden)

    @functools.cache
    def match(t: int, i: int) -> bool:
        if t == len(tokens):
            return i == len(path)
        kind, arg, guard = tokens[t]
        dotted = path.startswith(".", i)
        if kind == "**":  # only last
            return not guard or not any(c.startswith(".") for c in path[i:].split("/"))
        if kind == "**/":
            while not match(t + 1, i):
                slash = path.find("/", i)
                if slash < 0 or (guard and path.startswith(".", i)):
                    return False
                i = slash + 1
            return True
        if kind == "*":
            if guard and dotted:
                return False
            end = path.find("/", i)
            end = len(path) if end < 0 else end
            return any(match(t + 1, j) for j in range(i, end + 1))
        if i == len(path):
            return False
        c = path[i]
        if kind == "literal":
            ok = c == arg
        elif kind == "?":
            ok = c != "/" and not (guard and dotted)
        else:
            negate = arg[:1] in ("!", "^")
            members = set(arg[1:] if negate else arg) - {"/"}
            ok = c != "/" and not (guard and dotted) and (c in members) != negate
        return ok and match(t + 1, i + 1)

    return match(0, 0)


# Character soup, and whole components, which meet "**" and dotted names more often.
PATTERNS = st.one_of(
    st.lists(
        st.sampled_from(["a", "b", ".", "/", "*", "?", "**", "[ab]", "[!a]", "[.]", "\\"]),
        max_size=10,
    ).map("".join),
    st.lists(
        st.sampled_from(["**", "*", "a", ".a", "*a*", "*a*b", "?", ".*", "a\\"]), max_size=6
    ).map("/".join),
)
PATHS = st.one_of(
    st.text(alphabet="ab./*", max_size=12),
    st.lists(st.sampled_from(["a", ".a", "b", "ab", ""]), max_size=6).map("/".join),
)


@settings(max_examples=2000)
@given(PATTERNS, PATHS, st.booleans())
def test_translate_agrees_with_the_reference_matcher(pattern: str, path: str, hidden: bool) -> None:
    assert matches(pattern, path, hidden=hidden) == reference(pattern, path, hidden=hidden)


def suffixes(path: str) -> list[str]:
    """The path, and what follows each "/" in it."""
    return [path] + [path[i + 1 :] for i, c in enumerate(path) if c == "/"]


def prefixes(path: str) -> list[str]:
    """The path, and what precedes each "/" in it."""
    return [path] + [path[:i] for i, c in enumerate(path) if c == "/"]


def selected(pattern: str, path: str, is_dir: bool) -> bool:
    if pattern.endswith("/") and not is_dir:
        return False
    pattern = pattern.rstrip("/")
    if "/" in pattern:
        return reference(pattern.lstrip("/"), path)
    return any(reference(pattern, tail) for tail in suffixes(path))


@settings(max_examples=1000)
@given(PATTERNS, PATHS)
def test_include_and_exclude_agree_with_the_reference_matcher(pattern: str, path: str) -> None:
    assert Selector(include=(pattern,)).keep_file(path) == selected(pattern, path, False)
    assert Selector(exclude=(pattern,)).enter_dir(path) != selected(pattern, path, True)


@settings(max_examples=1000)
@given(PATTERNS, PATHS)
def test_glob_keeps_what_it_matches_and_what_is_below(pattern: str, path: str) -> None:
    whole = "/".join(part for part in pattern.split("/") if part)
    expected = any(reference(whole, p, hidden=False) for p in prefixes(path))
    assert GlobPredicates(pattern, None).keep_file(path) == expected


@settings(max_examples=1000)
@given(PATTERNS.filter(lambda p: "\\" not in p), PATHS)
def test_glob_enters_every_directory_above_a_file_it_keeps(pattern: str, path: str) -> None:
    glob = GlobPredicates(pattern, None)
    if glob.keep_file(path):
        assert all(glob.enter_dir(p) for p in prefixes(path)[1:])


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        # "**/" between two runs: the first place where the run fits is
        # enough, as the next "**/" takes the directories it skips...
        ("**/a/**/b", "a/a/a/b", True),
        ("**/.a/**/b", "x/.a/.a/b", False),  # ...except dotted ones, in a glob
        ("**/x/**/.a/**/b", "x/.a/b", True),
        # An escaped slash starts no component: "*" after it matches a
        # dotted name, and the run keeps every choice.
        ("**/x\\/*/**/y", "x/x/.z/y", True),
        ("**/x\\/*/**/y", "x/.z/.z/y", False),
        ("x\\/**/y", "x/ab/y", True),  # "**" after it is a "*"
        ("x\\/**/y", "x/a/b/y", False),
        ("**/**/**/x", "x", True),
        ("a/**/**", "a/b/.c", False),
        ("a/**/**", "a/b/c/", True),
        ("***/x", "ab/x", True),  # three stars are one, within a component
        ("***/x", "a/b/x", False),
    ],
)
def test_double_stars_in_a_glob(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path, hidden=False) is expected
    assert reference(pattern, path, hidden=False) is expected


# --- patterns that match nothing, runs that hash nothing ----------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_pattern_that_matched_nothing_and_an_empty_run_are_warned_of(
    tmp_path: Path, jobs: str
) -> None:
    # Enough files for the pool's workers to walk most of the tree, and the
    # only match of each pattern deep in it: what a worker saw counts too.
    for d in range(20):
        for i in range(20):
            (tmp_path / f"d{d}" / "sub").mkdir(parents=True, exist_ok=True)
            (tmp_path / f"d{d}" / "sub" / f"f{i}.txt").write_bytes(b"%d %d" % (d, i))
    (tmp_path / "d19" / "sub" / "vendor").mkdir()
    (tmp_path / "d19" / "sub" / "vendor" / "x.txt").write_bytes(b"vendored")
    (tmp_path / "d19" / "sub" / "last.py").write_bytes(b"py")
    args = ["scan", "-j", jobs, "-a", "md5", str(tmp_path)]
    quiet = run([*args, "--exclude", "vendor/", "--include", "*.py"])
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr
    assert quiet.stdout.count(b"\n") == 1
    loud = run([*args, "--exclude", "vendor/", "--exclude", "build/", "--include", "*.rs",
                "--include", "*.txt"])
    assert loud.returncode == 0
    assert loud.stderr.decode().splitlines() == [
        "parhash: warning: --include '*.rs' matched nothing",
        "parhash: warning: --exclude build/ matched nothing",
    ]
    assert loud.stdout.count(b"\n") == 400
    empty = run([*args, "--include", "*.rs"])
    assert empty.returncode == 0 and empty.stdout == b""
    assert empty.stderr.decode().splitlines() == [
        "parhash: warning: --include '*.rs' matched nothing",
        "parhash: warning: no file was hashed",
    ]


def test_a_selector_reports_what_matched_and_starts_afresh_when_sent(tmp_path: Path) -> None:
    import pickle

    s = Selector(include=["*.py", "*.rs"], exclude=["build/"])
    assert s.keep_file("a/b.py") and not s.enter_dir("build")
    assert s.unmatched(s.matched) == [("include", "*.rs")]
    copy = pickle.loads(pickle.dumps(s))
    assert copy.matched == set() and copy.keep_file("x.rs")
    assert copy.unmatched(copy.matched) == [("include", "*.py"), ("exclude", "build/")]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_dupes_warns_of_a_pattern_that_matched_nothing_and_of_an_empty_search(
    tmp_path: Path, jobs: str
) -> None:
    for d in range(10):
        (tmp_path / f"d{d}").mkdir()
        for i in range(30):
            (tmp_path / f"d{d}" / f"f{i}.dat").write_bytes(b"%d" % i)
    (tmp_path / "d9" / "cache").mkdir()
    (tmp_path / "d9" / "cache" / "f.dat").write_bytes(b"cached")
    args = ["dupes", "-q", "-j", jobs, str(tmp_path)]
    quiet = run([*args, "--exclude", "cache/"])
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr
    loud = run([*args, "--exclude", "cache/", "--exclude", "*.tmp"])
    assert loud.stderr.decode().splitlines() == [
        "parhash: warning: --exclude '*.tmp' matched nothing"
    ]
    empty = run([*args, "--include", "*.iso"])
    assert empty.returncode == 0 and empty.stdout == b""
    assert empty.stderr.decode().splitlines() == [
        "parhash: warning: --include '*.iso' matched nothing",
        "parhash: warning: no file was compared",
    ]
