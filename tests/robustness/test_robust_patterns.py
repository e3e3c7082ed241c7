"""Patterns that once made the regular expression engine backtrack without bound.

A glob argument, an ``--include`` or an ``--exclude`` is matched against a
path in time linear in the path's length times the pattern's. Before, each
case here ran for minutes or hours, well past the harness's timeout: eight
stars on an 80-character name tried every way to place them, and six ``**``
every way to split 40 directories among them, for each file. Now each must
end with the right answer. Every file holds the same (empty) contents, so
that ``dupes`` reports exactly the files selected as one group.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import (
    COMMANDS,
    Command,
    Outcome,
    assert_no_traceback,
    run_parhash,
)

STARS = "*a*a*a*a*a*a*a*a*b"
STARRED = ["a" * 40 + "b", "a" * 80 + "b"]  # names STARS matches
UNSTARRED = ["a" * 80, "a" * 100]  # names it doesn't
SIX_DOUBLE_STARS = "**/**/**/**/**/**/x"
DEPTH = 40
# Non-matching files at the bottom of the deep tree: each cost the old
# matcher a fraction of a second to seconds.
BOTTOM_FILES = 1000


@pytest.fixture(params=[c for c in COMMANDS if c.name in ("scan", "dupes")], ids=str)
def command(request: pytest.FixtureRequest) -> Command:
    return request.param  # type: ignore[no-any-return]


def touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.fixture(scope="module")
def long_names(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("long-names")
    for name in STARRED + UNSTARRED:
        touch(root / name)
    return root


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[Path]]:
    """``t/d/d/.../d``, 40 levels: an ``x`` at every level, and many ``y`` files at the bottom.

    Returns the top, the ``x`` files and the others.
    """
    top = tmp_path_factory.mktemp("deep") / "t"
    xs, others = [], []
    level = top
    for depth in range(DEPTH + 1):
        level.mkdir()
        xs.append(touch(level / "x"))
        if depth < DEPTH:
            others.append(touch(level / "y"))
            level = level / "d"
    others += [touch(level / f"y{i:04d}") for i in range(BOTTOM_FILES)]
    return top, xs, others


def assert_selected(command: Command, out: Outcome, files: list[Path]) -> None:
    """A complete run, with no error, that reported exactly ``files``."""
    assert out.status == 0, out
    assert_no_traceback(out)
    command.verify(out.stdout, files)


@pytest.mark.parametrize("option", ["--include", "--exclude"])
def test_many_stars_on_a_long_name_select_the_right_files(
    command: Command, option: str, long_names: Path
) -> None:
    out = run_parhash(command.args(long_names, option, STARS))
    kept = STARRED if option == "--include" else UNSTARRED
    assert_selected(command, out, [long_names / name for name in kept])


def test_six_double_stars_in_a_glob_argument_on_a_deep_tree(
    command: Command, deep: tuple[Path, list[Path], list[Path]]
) -> None:
    top, xs, _ = deep
    glob = os.path.join(top, SIX_DOUBLE_STARS)
    # The command's own arguments, with the glob in place of the directory.
    args = [glob if arg == str(top) else arg for arg in command.args(top)]
    out = run_parhash(args)
    assert_selected(command, out, xs)


@pytest.mark.parametrize("option", ["--include", "--exclude"])
def test_six_double_stars_in_include_and_exclude_on_a_deep_tree(
    command: Command, option: str, deep: tuple[Path, list[Path], list[Path]]
) -> None:
    top, xs, others = deep
    out = run_parhash(command.args(top, option, SIX_DOUBLE_STARS))
    assert_selected(command, out, xs if option == "--include" else others)
