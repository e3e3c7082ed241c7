"""Man pages in roff, written from the ``parhash`` command's own help.

``python -m parhash.manpage OUTDIR`` (``make man``) writes ``parhash.1`` for
the group and ``parhash-COMMAND.1`` for each command, and removes the pages
of commands that are gone. Everything a page says comes from
:mod:`parhash.cli`: the docstrings are the descriptions, click's help records
the options, and the exit statuses come from the module docstring and the
command's own sentences about them ("Exits 1 if ...", "Exit status: ...").

The page's date is the UTC day of ``SOURCE_DATE_EPOCH`` when it is set, else
the date of this version's heading in ``CHANGELOG.md`` (``## [0.1.0] -
2027-01-31``), else "unreleased": never today, so that writing the pages
again changes nothing.
"""

from __future__ import annotations

import datetime
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import click

from parhash import __version__
from parhash import cli as cli_module

PROG = "parhash"
SECTION = "1"
SEE_ALSO = (("md5sum", "1"), ("sha256sum", "1"), ("xxhsum", "1"), ("b3sum", "1"))

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"

# Characters that roff would print as something else than what a shell needs
# (groff's utf8 device curls quotes and raises ^ and ~), and its escape
# character.
_ROFF_CHARS = {"\\": r"\e", "'": r"\(aq", "`": r"\(ga", "^": r"\(ha", "~": r"\(ti"}
# An option (-a, --include-empty) or a lone '-' for standard input: its hyphens
# are minus signs, which can be pasted, not hyphens, which may not be.
_DASHES = re.compile(r"(?<![\w-])-{1,2}(?:[A-Za-z0-9][\w-]*)?(?![\w-])")
_CODE = re.compile(r"``(.+?)``")
_STATUS = re.compile(r"(\d+) (.+)")
_METAVAR = re.compile(r"([A-Z][A-Z0-9_]*)")
_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z])")


def _roff_chars(text: str, *, minus: bool) -> str:
    out = "".join(_ROFF_CHARS.get(c, c) if c.isascii() else f"\\[u{ord(c):04X}]" for c in text)
    return out.replace("-", r"\-") if minus else out


def escape(text: str, *, code: bool = False) -> str:
    """``text`` as roff prints it; in ``code`` every hyphen is a minus sign, elsewhere
    those of options only.

    A line of the result never starts with a control character.
    """
    if code:
        out = _roff_chars(text, minus=True)
    else:
        words = _DASHES.split(text)
        options = [*_DASHES.findall(text), ""]
        out = "".join(
            _roff_chars(word, minus=False) + _roff_chars(option, minus=True)
            for word, option in zip(words, options, strict=True)
        )
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in out.split("\n")
    )


def escape_rest(text: str) -> str:
    """:func:`escape`, with reST's ``literal`` in bold (the module docstring's)."""
    parts = _CODE.split(text)
    return "".join(
        rf"\fB{escape(part, code=True)}\fR" if i % 2 else escape(part)
        for i, part in enumerate(parts)
    )


def page_date() -> str:
    """The date a page shows: see the module docstring."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        day = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
        return day.strftime("%Y-%m-%d")
    try:
        changelog = CHANGELOG.read_text(encoding="utf-8")
    except OSError:  # installed without the source tree
        return "unreleased"
    heading = re.search(
        rf"^## \[?{re.escape(__version__)}\]?\s+-\s+(\d{{4}}-\d\d-\d\d)", changelog, re.M
    )
    return heading.group(1) if heading else "unreleased"


def paragraphs(text: str) -> list[str]:
    """A docstring's paragraphs as click's help shows them, without the blank lines."""
    text = inspect.cleandoc(text).partition("\f")[0]
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


def is_exit_status(paragraph: str) -> bool:
    return paragraph.startswith("Exit status:")


def render_paragraph(paragraph: str, *, rest: bool = False) -> list[str]:
    """One docstring paragraph in roff: filled text, or click's ``\\b`` block kept as is.

    A ``\\b`` block that opens with a line of its own ("Examples:") keeps
    that line as text and indents the rest as typed.
    """
    lines = paragraph.split("\n")
    if lines[0].strip() != "\b":
        text = "\n".join(line.strip() for line in lines)
        return [".PP", escape_rest(text) if rest else escape(text)]
    block = textwrap.dedent("\n".join(lines[1:])).split("\n")
    out = [".PP"]
    if len(block) > 1 and all(line.startswith(" ") for line in block[1:]):
        out.append(escape(block[0]))
        block = textwrap.dedent("\n".join(block[1:])).split("\n")
    out += [".RS 4", ".nf", *(escape(line, code=True) for line in block), ".fi", ".RE"]
    return out


def shared_statuses() -> tuple[list[tuple[int, str]], list[str]]:
    """The module docstring's "Exit statuses:" paragraph as (number, meaning) by number,
    and the paragraphs after it.

    Raises :class:`ValueError` if that paragraph is gone or reads otherwise,
    rather than writing a page without them.
    """
    found = paragraphs(cli_module.__doc__ or "")
    for i, paragraph in enumerate(found):
        if paragraph.startswith("Exit statuses:"):
            text = " ".join(paragraph.removeprefix("Exit statuses:").split()).rstrip(".")
            items = [_STATUS.fullmatch(item.strip()) for item in text.split(";")]
            if all(items):
                statuses = sorted((int(m.group(1)), m.group(2)) for m in items if m)
                return statuses, found[i + 1 :]
    raise ValueError("parhash/cli.py's docstring has no 'Exit statuses: 0 ...; 1 ...' paragraph")


def own_statuses(help_paragraphs: Sequence[str]) -> list[str]:
    """What a command's help says of its statuses: an "Exit status:" paragraph (without
    those words) or a sentence starting "Exits"."""
    said = []
    for paragraph in help_paragraphs:
        text = " ".join(paragraph.split())
        if is_exit_status(paragraph):
            said.append(text.removeprefix("Exit status:").strip())
        elif not paragraph.startswith("\b"):
            said += [s for s in _SENTENCE_END.split(text) if s.startswith("Exits ")]
    return said


def render_statuses(statuses: Sequence[tuple[int, str]]) -> list[str]:
    out: list[str] = []
    for number, meaning in statuses:
        out += [".TP", f".B {number}", escape_rest(meaning)]
    return out


def render_options(command: click.Command, ctx: click.Context) -> list[str]:
    """Each option as click's help shows it: names, metavar or choices, help and default."""
    out: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is None:
            continue
        names, help_text = record
        tags = []
        # click writes "-a, --algo NAME", and "--progress / --no-progress".
        for form in names.split(" / "):
            *flags, last = form.split(", ")
            last, _, metavar = last.partition(" ")
            tag = ", ".join(rf"\fB{escape(f, code=True)}\fR" for f in (*flags, last))
            tags.append(tag + (rf" \fI{escape(metavar)}\fR" if metavar else ""))
        out += [".TP", " / ".join(tags), escape(help_text)]
    return out


def render_synopsis(command: click.Command, ctx: click.Context) -> list[str]:
    """The command's path in bold, then click's usage with its metavars in italics."""
    words = []
    for piece in command.collect_usage_pieces(ctx):
        parts = _METAVAR.split(piece)
        italic = (rf"\fI{escape(p)}\fR" if i % 2 else escape(p) for i, p in enumerate(parts))
        words.append("".join(italic))
    return [".SH SYNOPSIS", f".B {escape(ctx.command_path, code=True)}", " ".join(words)]


def render_see_also(pages: Sequence[tuple[str, str]]) -> list[str]:
    out = [".SH SEE ALSO"]
    for i, (name, section) in enumerate(pages):
        comma = "," if i < len(pages) - 1 else ""
        out.append(f".BR {escape(name, code=True)} ({section}){comma}")
    return out


def render_head(name: str, summary: str, date: str) -> list[str]:
    """The comment, title, NAME section and no hyphenation that every page opens with."""
    if summary[1:2].islower():
        summary = summary[0].lower() + summary[1:]
    return [
        '.\\" Written by `make man` (python -m parhash.manpage) from parhash/cli.py;',
        '.\\" edit the help there, not this file.',
        f'.TH {escape(name.upper(), code=True)} {SECTION} "{date}" "{PROG} {__version__}"',
        ".nh",
        ".ad l",
        ".SH NAME",
        rf"{escape(name, code=True)} \- {escape(summary.rstrip('.'))}",
    ]


def render_command(
    name: str, command: click.Command, parent: click.Context, date: str, others: Sequence[str]
) -> str:
    """The page of one command, ``parhash-NAME``; ``others`` are the other commands."""
    ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
    help_paragraphs = paragraphs(command.help or "")
    lines = render_head(f"{PROG}-{name}", help_paragraphs[0], date)
    lines += render_synopsis(command, ctx)
    lines.append(".SH DESCRIPTION")
    for paragraph in help_paragraphs:
        if not is_exit_status(paragraph):
            lines += render_paragraph(paragraph)
    lines += [".SH OPTIONS", *render_options(command, ctx)]
    if isinstance(command, click.Group):
        lines += render_subcommands(command, ctx)

    # The command's own words on its statuses come first; the shared statuses
    # follow for the numbers those words leave out (a signal's, say).
    own = own_statuses(help_paragraphs)
    lines.append(".SH EXIT STATUS")
    for text in own:
        lines += [".PP", escape(text)]
    statuses, _ = shared_statuses()
    said = " ".join(own)
    lines += render_statuses([(n, m) for n, m in statuses if not re.search(rf"\b{n}\b", said)])
    pages = [(PROG, SECTION), *((f"{PROG}-{other}", SECTION) for other in others)]
    lines += render_see_also([*pages, *SEE_ALSO])
    return "\n".join(lines) + "\n"


def render_subcommands(group: click.Group, ctx: click.Context) -> list[str]:
    """A COMMANDS section: each subcommand's synopsis, help and options."""
    lines = [".SH COMMANDS"]
    for name in visible_commands(group, ctx):
        sub = group.commands[name]
        sub_ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
        usage = " ".join(sub.collect_usage_pieces(sub_ctx))
        lines.append(f".SS {escape(sub_ctx.command_path + ' ' + usage, code=True)}")
        for paragraph in paragraphs(sub.help or ""):
            lines += render_paragraph(paragraph)
        lines += render_options(sub, sub_ctx)
    return lines


def render_group(group: click.Group, ctx: click.Context, date: str) -> str:
    """The page of ``parhash`` itself: what it is, its commands, every status."""
    help_paragraphs = paragraphs(group.help or "")
    lines = render_head(PROG, help_paragraphs[0], date)
    lines += render_synopsis(group, ctx)
    lines.append(".SH DESCRIPTION")
    for paragraph in help_paragraphs:
        lines += render_paragraph(paragraph)
    lines.append(".SH COMMANDS")
    for name in visible_commands(group, ctx):
        command = group.commands[name]
        lines += [
            ".TP",
            rf"\fB{PROG} {escape(name, code=True)}\fR",
            escape(paragraphs(command.help or "")[0]),
            rf"See \fB{PROG}\-{escape(name, code=True)}\fR({SECTION}).",
        ]
    lines += [".SH OPTIONS", *render_options(group, ctx)]
    statuses, notes = shared_statuses()
    lines += [".SH EXIT STATUS", *render_statuses(statuses)]
    for paragraph in notes:
        lines += render_paragraph(paragraph, rest=True)
    commands = [(f"{PROG}-{name}", SECTION) for name in visible_commands(group, ctx)]
    lines += render_see_also([*commands, *SEE_ALSO])
    return "\n".join(lines) + "\n"


def visible_commands(group: click.Group, ctx: click.Context) -> list[str]:
    return [n for n in group.list_commands(ctx) if not group.commands[n].hidden]


def render_pages(date: str | None = None) -> dict[str, str]:
    """Every page, file name -> roff text, dated ``date`` or :func:`page_date`.

    Costs the import of click and :mod:`parhash.cli`; raises
    :class:`ValueError` if the statuses can't be read from its docstring.
    """
    date = page_date() if date is None else date
    group = cli_module.cli
    ctx = click.Context(group, info_name=PROG, **group.context_settings)
    pages = {f"{PROG}.{SECTION}": render_group(group, ctx, date)}
    names = visible_commands(group, ctx)
    for name in names:
        others = [other for other in names if other != name]
        page = render_command(name, group.commands[name], ctx, date, others)
        pages[f"{PROG}-{name}.{SECTION}"] = page
    return pages


def write_pages(outdir: Path, date: str | None = None) -> list[Path]:
    """Write every page into ``outdir`` (made if missing) and remove pages of commands gone.

    Returns the pages written; an :class:`OSError` raises.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    pages = render_pages(date)
    for stale in outdir.glob(f"{PROG}-*.{SECTION}"):
        if stale.name not in pages:
            stale.unlink()
    written = []
    for name, text in pages.items():
        path = outdir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m parhash.manpage OUTDIR", file=sys.stderr)
        return 2
    for path in write_pages(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
