"""The man pages: fresh, warning-free, complete, and in the sdist.

The committed pages under man/ must be what `make man` writes from the
click help now; every other test reads the committed pages, as a user of
the sdist would, rendered by groff itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from parhash import __version__, manpage
from parhash.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
COMMANDS = sorted(cli.commands)
PAGES = ["parhash.1", *(f"parhash-{name}.1" for name in COMMANDS)]
STALE_HINT = "run `make man` and commit man/ (the help in parhash/cli.py changed)"


@pytest.fixture(scope="module")
def groff() -> str:
    # Not a skip: without groff nothing here would say whether the pages render.
    path = shutil.which("groff")
    assert path, "groff renders the man pages for these tests: make peers installs it"
    return path


def render(groff: str, page: Path) -> str:
    """The page as man shows it, in plain text: no bold, no underline, ASCII hyphens."""
    done = subprocess.run([groff, "-man", "-Tutf8", "-P-cbou", str(page)], capture_output=True,
                          check=True, timeout=60)
    # groff prints a hyphen and \- as U+2010 and U+2212 where no man.local maps them.
    return done.stdout.decode("utf-8").translate({0x2010: "-", 0x2212: "-"})


def section(text: str, title: str) -> str:
    """The body of a rendered section, its lines joined by single spaces."""
    found = re.search(rf"^{title}\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert found, f"no {title} section"
    return " ".join(found.group(1).split())


def test_committed_pages_are_what_make_man_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    pages = manpage.render_pages()
    assert sorted(pages) == sorted(PAGES)
    committed = sorted(p.name for p in MAN.glob("*.1"))
    assert committed == sorted(pages), f"man/ holds {committed}, not {sorted(pages)}: {STALE_HINT}"
    stale = [name for name, text in pages.items()
             if (MAN / name).read_text(encoding="utf-8") != text]
    assert not stale, f"man/{', man/'.join(stale)} out of date: {STALE_HINT}"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_warnings(groff: str, name: str) -> None:
    done = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(MAN / name)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_every_option_appears_in_its_page_with_its_help(groff: str, name: str) -> None:
    command: click.Command = cli.commands[name] if name else cli
    page = MAN / (f"parhash-{name}.1" if name else "parhash.1")
    options = section(render(groff, page), "OPTIONS")
    parent = click.Context(cli, info_name="parhash", **cli.context_settings)
    ctx = click.Context(command, info_name=name, parent=parent) if name else parent
    seen = 0
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        for opt in (*param.opts, *param.secondary_opts):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", options), opt
        record = param.get_help_record(ctx)
        assert record and " ".join(record[1].split()) in options, param.opts
        seen += 1
    if isinstance(command, click.Group) and name:  # parhash cache: its subcommands' options
        listed = section(render(groff, page), "COMMANDS")
        for sub_name, sub in command.commands.items():
            sub_ctx = click.Context(sub, info_name=sub_name, parent=ctx)
            assert f"parhash {name} {sub_name}" in listed
            for param in sub.get_params(sub_ctx):
                if isinstance(param, click.Option) and not param.hidden:
                    for opt in param.opts:
                        assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", listed), opt
                    seen += 1
    assert seen >= 2 and "-h, --help" in options


@pytest.mark.parametrize("name", COMMANDS)
def test_page_shows_the_command_s_description_and_examples_as_typed(groff: str,
                                                                     name: str) -> None:
    text = render(groff, MAN / f"parhash-{name}.1")
    help_text = cli.commands[name].help or ""
    summary = help_text.strip().splitlines()[0].rstrip(".")
    assert section(text, "NAME") == f"parhash-{name} - {summary[0].lower()}{summary[1:]}"
    assert section(text, "SYNOPSIS").startswith(f"parhash {name} [OPTIONS]")
    # A \b block's lines are printed as they are, to be copied into a shell.
    examples = help_text.split("\b", 1)[1].strip().splitlines()[1:]
    assert examples
    lines = [line.strip() for line in text.splitlines()]
    for example in examples:
        assert example.strip() in lines


@pytest.mark.parametrize("name", COMMANDS)
def test_exit_status_gives_the_command_s_own_words_then_the_shared_statuses(
    groff: str, name: str
) -> None:
    status = section(render(groff, MAN / f"parhash-{name}.1"), "EXIT STATUS")
    assert status.startswith({"scan": "Exits 1 if any file", "check": "Exits 1 if a file fails",
                              "dupes": "0, or with --exit-code 1",
                              "cache": "0; 2 for a usage error",
                              "audit": "Exits 0 if the tree matches",
                              "diff": "Exits 0 if they agree",
                              "dirhash": "0 and the digest; 1 and no digest"}[name])
    for number, meaning in (("130", "interrupted (SIGINT)"), ("143", "terminated (SIGTERM)"),
                            ("141", "the reader of standard output went away")):
        assert f"{number} {meaning}" in status
    assert "2 usage error" in status or "2 for a usage error" in status


def test_the_group_page_lists_the_commands_statuses_and_peers(groff: str) -> None:
    text = render(groff, MAN / "parhash.1")
    commands = section(text, "COMMANDS")
    for name in COMMANDS:
        assert f"parhash {name} " in commands and f"parhash-{name}(1)" in commands
    status = section(text, "EXIT STATUS")
    assert status.startswith("0 all files hashed") and "dupes exits 0" in status
    see_also = section(text, "SEE ALSO")
    for tool in ("md5sum(1)", "sha256sum(1)", "xxhsum(1)", "b3sum(1)"):
        assert tool in see_also
    assert f"parhash {__version__}" in text


def test_escape_keeps_roff_requests_backslashes_and_options_out_of_the_text() -> None:
    assert manpage.escape(".hidden\n'quoted'") == "\\&.hidden\n\\(aqquoted\\(aq"
    assert manpage.escape("a\\b") == "a\\eb"
    # Options' hyphens are minus signs, words' stay hyphens.
    assert manpage.escape("md5sum-style, --include-empty, -L, '-'") == (
        "md5sum-style, \\-\\-include\\-empty, \\-L, \\(aq\\-\\(aq"
    )
    assert manpage.escape("caf\u00e9 ~/x", code=True) == "caf\\[u00E9] \\(ti/x"


def test_page_date_is_source_date_epoch_s_else_the_changelog_s_never_today(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text("# Changelog\n\n## Unreleased\n\n## [0.0.9] - 2026-01-02\n")
    monkeypatch.setattr(manpage, "CHANGELOG", changelog)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert manpage.page_date() == "unreleased"
    changelog.write_text(f"# Changelog\n\n## [{__version__}] - 2027-01-31\n")
    assert manpage.page_date() == "2027-01-31"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert manpage.page_date() == "2023-11-14"
    assert '.TH PARHASH 1 "2023-11-14"' in manpage.render_pages()["parhash.1"]


def test_python_dash_m_writes_the_pages_and_drops_a_gone_command_s(tmp_path: Path) -> None:
    (tmp_path / "parhash-gone.1").write_text("old")
    (tmp_path / "other.1").write_text("not ours")
    done = subprocess.run([sys.executable, "-m", "parhash.manpage", str(tmp_path)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*PAGES, "other.1"])
    usage = subprocess.run([sys.executable, "-m", "parhash.manpage"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=60, cwd=ROOT)
    assert (usage.returncode, usage.stderr) == (2, "usage: python -m parhash.manpage OUTDIR\n")
