"""The ``parhash`` command: click options over the library, and exit statuses.

Exit statuses: 0 all files hashed (and, by check, verified); 1 some file
could not be read (the rest still are); 2 usage error; 130 interrupted
(SIGINT); 143 terminated (SIGTERM); 141 the reader of standard output went
away.

``dupes`` exits 0, or 1 with ``--exit-code`` when it found duplicates, and 2
for a usage error or an error that could hide a duplicate (see its help).

``dirhash`` exits 1, printing no digest, when anything below its directory
can't be read, and 2 when the directory is missing or is not one.
"""

from __future__ import annotations

import functools
import gc
import sys
from typing import Any

import click

from parhash import __version__
from parhash.algorithms import ALGORITHMS, DEFAULT_ALGO, UnknownAlgorithm, parse_algos
from parhash.console import (
    EXIT_FILE_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_USAGE,
    CommandFailed,
)
from parhash.executor import DEFAULT_CHUNKSIZE, MAX_BLOCK_SIZE, ClusterError
from parhash.formats import MULTI_ALGO_FORMATS
from parhash.hashing import DEFAULT_BLOCK_SIZE, STDIN_NAMES


class ByteSize(click.ParamType):  # type: ignore[type-arg]
    """A size such as ``65536``, ``64K``, ``1M`` or ``1MiB``."""

    name = "size"
    _UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

    def __init__(self, maximum: int | None = None) -> None:
        self.maximum = maximum

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip().lower().removesuffix("ib").removesuffix("b")
            unit = text[-1:] if text[-1:] in self._UNITS and text[-1:] else ""
            digits = text[: len(text) - len(unit)]
            if not digits.isdigit():
                self.fail(f"{value!r} is not a size (try 65536, 64K or 1M)", param, ctx)
            number = int(digits) * self._UNITS[unit]
        if number < 1:
            self.fail(f"{value!r} is not a positive size", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{value!r} is above the largest allowed, {self.maximum >> 20}M", param, ctx)
        return number


def _guarded(giving_up: int = EXIT_FILE_ERROR) -> Any:
    """Turn Ctrl-C (outside the ``parhash`` command), a closed stdout, dying workers and
    a command that failed with its message into exit statuses, quietly; ``giving_up`` is
    the status when workers keep dying.

    Raised inside the command, they unwind the pipeline's generators first,
    which stops the workers and removes a half-written ``-o`` file. Signals
    are :mod:`parhash.console`'s.
    """

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from parhash.pool import WorkersKeepDying

            try:
                rc = fn(*args, **kwargs)
            except KeyboardInterrupt:
                raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
            except BrokenPipeError:
                raise click.exceptions.Exit(EXIT_PIPE) from None
            except WorkersKeepDying as e:
                click.echo(f"parhash: {e}; giving up", err=True)
                raise click.exceptions.Exit(giving_up) from None
            except CommandFailed as e:
                raise click.exceptions.Exit(e.status) from None
            except ClusterError as e:
                click.echo(f"parhash: {e}", err=True)
                raise click.exceptions.Exit(EXIT_USAGE) from None
            # Raised rather than returned: click's standalone mode (and so
            # CliRunner and any caller of cli.main()) ignores a command's return
            # value and would exit 0 after a file error.
            if rc:
                raise click.exceptions.Exit(rc)
            return rc

        return wrapper

    return decorate


def _list_algos(ctx: click.Context, param: Any, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for a in ALGORITHMS.values():
        click.echo(f"{a.name:<9} {a.hex_length * 4:>4}-bit  tag {a.tag:<8}  {a.doc}")
    ctx.exit(0)


def _algos_option(fn: Any) -> Any:
    @click.option(
        "-a", "--algo", "algo_specs", multiple=True, metavar="NAME",
        help=f"Algorithm, repeatable or comma-separated (default {DEFAULT_ALGO}). "
        "Several are computed from one read of each file.",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, algo_specs: tuple[str, ...], **kwargs: Any) -> Any:
        try:
            algos = parse_algos(algo_specs) or (DEFAULT_ALGO,)
        except UnknownAlgorithm as e:
            raise click.BadParameter(str(e), param_hint="'-a' / '--algo'") from None
        return fn(*args, algos=algos, **kwargs)

    return wrapper


def _pipeline_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "-j", "--jobs", type=click.IntRange(min=1), default=None,
                help="Worker processes (default: the CPUs this process may use; "
                "at most 4 per CPU).",
            ),
            click.option(
                "--chunksize", type=click.IntRange(min=1), default=None,
                help="Work in one task sent to a worker: files for scan and dirhash "
                "(default 1024), manifest lines for check (1024), paths for dupes "
                f"({DEFAULT_CHUNKSIZE}). "
                "Files of 4 MiB or more go alone.",
            ),
            click.option(
                "--block-size", type=ByteSize(MAX_BLOCK_SIZE), default=DEFAULT_BLOCK_SIZE,
                show_default=True, help="Read buffer, e.g. 64K or 1M; at most 64M.",
            ),
            click.option(
                "--stall-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                metavar="SECONDS",
                help="Give up on a file that makes no progress for this long (a dead "
                "network mount): it is reported, the rest finished, the status an error. "
                "Without it parhash waits, and warns after 60 s.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


CLUSTER_WARNING = (
    "tcp:// is unauthenticated and carries pickles: anyone who can reach the "
    "scheduler's port can run code on the cluster; use tls:// with --tls-* "
    "where others share the network."
)


def _cluster_options(roots: Any) -> Any:
    """``--executor`` and the options of a Dask scheduler: the command gets ``executor``,
    None for the local pool or a connected :class:`~parhash.cluster.DaskExecutor`,
    which is closed when the command ends. ``roots(kwargs)`` names the paths
    every worker must see (checked before the first task)."""

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, executor_name: str, scheduler: str | None,
                    scheduler_file: str | None, connect_timeout: float,
                    tls_ca_file: str | None, tls_cert: str | None, tls_key: str | None,
                    **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            given = [
                name for name, value in (
                    ("--scheduler", scheduler), ("--scheduler-file", scheduler_file),
                    ("--tls-ca-file", tls_ca_file), ("--tls-cert", tls_cert),
                    ("--tls-key", tls_key))
                if value is not None and ctx.get_parameter_source(name[2:].replace("-", "_"))
                is click.core.ParameterSource.COMMANDLINE
            ]
            if executor_name == "local":
                if given:
                    raise click.UsageError(f"{given[0]} needs --executor dask")
                return fn(*args, executor=None, **kwargs)
            for option, name in (("-j", "jobs"), ("--stall-timeout", "stall_timeout")):
                if kwargs.get(name) is not None:
                    raise click.UsageError(f"{option} and --executor dask exclude each other")
            if scheduler_file is not None:
                scheduler = None  # over PARHASH_SCHEDULER
            elif scheduler is None:
                raise click.UsageError(
                    "--executor dask needs --scheduler ADDRESS, --scheduler-file FILE "
                    "or PARHASH_SCHEDULER")
            if "--scheduler" in given and "--scheduler-file" in given:
                raise click.UsageError("--scheduler and --scheduler-file exclude each other")
            # Imported only now: distributed costs 0.2-0.4 s to import.
            import logging

            from parhash.cluster import DaskExecutor

            # Dask's warnings ("Couldn't gather 1 keys, rescheduling" when a
            # worker dies) say what parhash handles and reports in its own words.
            for name in ("distributed", "distributed.client", "distributed.worker",
                         "distributed.comm", "tornado.application"):
                # (Dask's logging config gives some of these levels of their own.)
                logging.getLogger(name).setLevel(logging.CRITICAL)

            security = None
            if (scheduler or "").startswith("tls://") and not (tls_cert and tls_key):
                raise click.UsageError("a tls:// scheduler needs --tls-cert and --tls-key "
                                       "(and --tls-ca-file)")
            if (tls_ca_file or tls_cert or tls_key) and not (scheduler or "").startswith(
                    "tls://") and scheduler_file is None:
                raise click.UsageError("--tls-ca-file, --tls-cert and --tls-key are for a "
                                       "tls:// scheduler")
            if tls_ca_file or tls_cert or tls_key:
                from distributed import Security

                security = Security(tls_ca_file=tls_ca_file, tls_client_cert=tls_cert,
                                    tls_client_key=tls_key, require_encryption=True)
            with DaskExecutor(address=scheduler, scheduler_file=scheduler_file,
                              connect_timeout=connect_timeout, security=security) as executor:
                executor.check_paths(roots(kwargs))
                return fn(*args, executor=executor, **kwargs)

        for option in reversed([
            click.option("--executor", "executor_name", type=click.Choice(["local", "dask"]),
                         default="local", show_default=True,
                         help="Where the work runs: a pool of local processes, or a Dask "
                         "cluster (pip install 'parhash[dask]', on the client, the scheduler "
                         "and every worker; the files at the same paths everywhere)."),
            click.option("--scheduler", metavar="ADDRESS", envvar="PARHASH_SCHEDULER",
                         help="The Dask scheduler, tcp://HOST:8786 or tls://HOST:8786 "
                         "(default: $PARHASH_SCHEDULER). " + CLUSTER_WARNING),
            click.option("--scheduler-file", metavar="FILE",
                         help="Read the scheduler's address from FILE, as written by "
                         "'dask scheduler --scheduler-file' or dask-mpi."),
            click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True),
                         default=10.0, show_default=True, metavar="SECONDS",
                         help="Give up on a scheduler not reached in this time (exit 2)."),
            click.option("--tls-ca-file", metavar="FILE",
                         help="CA certificate that the scheduler's and workers' "
                         "certificates must be signed by (tls:// addresses)."),
            click.option("--tls-cert", metavar="FILE",
                         help="This client's certificate, for tls:// addresses."),
            click.option("--tls-key", metavar="FILE",
                         help="The private key of --tls-cert."),
        ]):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def _path_roots(kwargs: dict[str, Any]) -> list[str]:
    """What scan and dupes walk: their arguments, or '.' when nothing names a path."""
    paths = list(kwargs.get("paths") or ())
    if not paths and not (kwargs.get("files_from") or kwargs.get("files0_from")):
        paths = ["."]
    from parhash.hashing import is_own_stream

    # Standard input, /dev/fd/N: the client reads those itself.
    return [p for p in paths if not is_own_stream(p)]


def _check_roots(kwargs: dict[str, Any]) -> list[str]:
    """Where check looks files up: --root, or each manifest's directory."""
    import os

    if kwargs.get("root") is not None:
        return [kwargs["root"]]
    if kwargs.get("relative_to_manifest"):
        return [os.path.dirname(m) or "." for m in kwargs.get("manifests") or () if m != "-"]
    return []


def _walk_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("-L", "--follow", is_flag=True,
                         help="Follow symlinks met during the walk (loops are detected)."),
            click.option("--include", multiple=True, metavar="GLOB",
                         help="Hash only files matching GLOB (gitignore-style, repeatable)."),
            click.option("--exclude", multiple=True, metavar="GLOB",
                         help="Skip files and directories matching GLOB (repeatable)."),
        ]
    ):
        fn = option(fn)
    return fn


def _report_options(quiet: bool = True) -> Any:
    """``--progress``, ``--summary`` and (with ``quiet``) ``-q/--quiet``: what a command
    says on stderr besides its results and errors."""

    def decorate(fn: Any) -> Any:
        options = [
            click.option("--progress/--no-progress", default=None,
                         help="Progress bar on stderr (default: when stderr is a terminal "
                         "and not --quiet)."),
            click.option("--summary/--no-summary", default=None,
                         help="One line on stderr at the end: files, bytes, time, errors "
                         "(default: when stderr is a terminal and not --quiet)."),
        ]
        if quiet:
            options.append(click.option(
                "-q", "--quiet", is_flag=True,
                help="Only what went wrong on stderr: no progress bar, no summary."))
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _cache_options(fn: Any) -> Any:
    """``--cache/--no-cache`` and ``--cache-file``: the hash cache's file, as ``cache``
    (None for none; ``PARHASH_CACHE`` switches it on too)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, use_cache: bool | None, cache_file: str | None, **kwargs: Any
                ) -> Any:
        from parhash.cache import chosen_path

        if kwargs.get("trust_cache") and use_cache is None:
            use_cache = True  # --trust-cache implies --cache
        return fn(*args, cache=chosen_path(use_cache, cache_file), **kwargs)

    wrapper = click.option(
        "--cache-file", metavar="FILE",
        help="The hash cache to use (implies --cache).")(wrapper)
    return click.option(
        "--cache/--no-cache", "use_cache", default=None,
        help="Answer unchanged files from the hash cache and add the others to it (default: "
        "off, unless PARHASH_CACHE names a cache file). The cache is "
        "$XDG_CACHE_HOME/parhash/hashes.sqlite unless PARHASH_CACHE or --cache-file says "
        "otherwise.")(wrapper)


def _one_format(*choices: tuple[str, str, str]) -> Any:
    """Flags ``(flag, format, help)`` of which one at most may be given: ``fmt``.

    Two of them are a usage error, not the last one winning, which would
    write a manifest in a format the user did not expect.
    """

    def dest(flag: str) -> str:
        return "fmt_" + flag.lstrip("-")

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = [(flag, fmt) for flag, fmt, _ in choices if kwargs.pop(dest(flag))]
            if len(given) > 1:
                raise click.UsageError(f"{given[0][0]} and {given[1][0]} exclude each other")
            return fn(*args, fmt=given[0][1] if given else None, **kwargs)

        for flag, _, text in reversed(choices):
            wrapper = click.option(flag, dest(flag), is_flag=True, help=text)(wrapper)
        return wrapper

    return decorate


# scan's format flags, as (flag, name in formats.FORMATS, help); none: GNU
# lines, but for xxh3 alone, whose GNU line xxhsum -c takes for XXH64.
SCAN_FORMATS = (
    ("--untagged", "gnu", "GNU lines, 'DIGEST  NAME': the default, but for xxh3 alone, "
     "whose default is --tag, as xxhsum -H3 prints it."),
    ("--tag", "bsd", "BSD lines: 'SHA256 (NAME) = DIGEST', one per algorithm."),
    ("--json", "json", "JSON Lines: one object per file, errors included."),
    ("--csv", "csv", "CSV: a header, then one row per file."),
)


def _format_options(fn: Any) -> Any:
    fn = click.option("-z", "--zero", is_flag=True,
                      help="End each record with NUL, not newline; no escaping.")(fn)
    return _one_format(*SCAN_FORMATS)(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="parhash")
def cli() -> None:
    """Hash many files in parallel; speak md5sum's and xxhsum's formats."""


@cli.command()
@click.argument("paths", nargs=-1)
@_algos_option
@click.option("--list-algos", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_algos, help="List the algorithms and exit.")
@_format_options
@_walk_options
@_pipeline_options
@click.option("--files-from", metavar="FILE",
              help="Also read paths, one per line, from FILE ('-' for standard input).")
@click.option("--files0-from", metavar="FILE",
              help="Also read NUL-separated paths from FILE ('-' for standard input).")
@click.option("--sort", "sort_output", is_flag=True,
              help="Write in path order (deterministic manifests) instead of arrival order.")
@click.option("-o", "--output", metavar="FILE",
              help="Write to FILE atomically (a temporary file, then rename); its mtime "
              "is set to the time the scan began.")
@click.option("--update", metavar="MANIFEST",
              help="Bring MANIFEST up to date with PATH in place, atomically: add new files, "
              "drop vanished ones, read again those changed since it was written (or, with "
              "--cache, whose cache entry no longer matches). Keeps its format, algorithm, "
              "escaping and order; prints each change on stderr. A MANIFEST that doesn't "
              "exist yet is written as with --sort -o.")
@click.option("--relative-to-manifest", is_flag=True,
              help="With --update: the manifest's names are relative to its own directory, "
              "which is walked when no PATH is given.")
@_cache_options
@_report_options()
@_guarded()
@_cluster_options(_path_roots)
def scan(paths, algos, fmt, zero, follow, include, exclude, jobs, chunksize, block_size,
         stall_timeout, files_from, files0_from, sort_output, output, update,
         relative_to_manifest, cache, progress, summary, quiet, executor):
    """Hash files, directories and globs, printing md5sum-style lines as they finish.

    PATH is a file, a directory (walked recursively) or a quoted glob such as
    'src/**/*.py'; '-' is standard input, and a FIFO or a device named is
    read to its end; no PATH means '.'. Exits 1 if any file could not be read.

    \b
    Examples:
      parhash scan ./src --algo md5 > MD5SUMS && md5sum -c MD5SUMS
      find . -name '*.iso' -print0 | parhash scan --files0-from - -a xxh3
      parhash scan data --json -a sha256,md5 | jq -r .sha256
      parhash scan --update SHA256SUMS data
    """
    from parhash.report import run_scan

    if update is not None:
        return _update(update, paths, algos, fmt, zero, follow, include, exclude, jobs,
                       chunksize, block_size, stall_timeout, files_from, files0_from,
                       sort_output, output, relative_to_manifest, cache, progress, summary,
                       quiet, executor)
    if relative_to_manifest:
        raise click.UsageError("--relative-to-manifest goes with --update")

    if fmt is None:
        # xxhsum -c reads a GNU line by its digest's length: 16 digits are
        # XXH64, so xxh3's lines would all fail. Its tag says what it is.
        fmt = "bsd" if algos == ("xxh3",) else "gnu"
    if "-" in (files_from, files0_from) and any(p in STDIN_NAMES for p in paths):
        raise click.UsageError("standard input can't be both the list of paths and a file "
                               "to hash")
    if len(algos) > 1 and fmt not in MULTI_ALGO_FORMATS:
        raise click.UsageError(
            "a GNU line holds one digest; with several algorithms use --tag, --json or --csv"
        )
    return run_scan(
        paths, algos=algos, fmt=fmt, zero=zero, follow=follow, include=include, exclude=exclude,
        jobs=jobs, chunksize=chunksize, block_size=block_size, stall_timeout=stall_timeout,
        files_from=files_from, files0_from=files0_from, sort=sort_output, output=output,
        progress=False if quiet and progress is None else progress,
        summary=False if quiet and summary is None else summary, executor=executor,
        cache=cache,
    )


def _update(manifest, paths, algos, fmt, zero, follow, include, exclude, jobs, chunksize,
            block_size, stall_timeout, files_from, files0_from, sort_output, output,
            relative_to_manifest, cache, progress, summary, quiet, executor):
    """``scan --update MANIFEST``: the options it takes, then the update."""
    import os

    from parhash.update import run_update

    for given, flag in ((output, "-o/--output"), (files_from, "--files-from"),
                        (files0_from, "--files0-from"), (executor, "--executor")):
        if given:
            raise click.UsageError(f"--update and {flag} exclude each other")
    if manifest == "-" or any(p in STDIN_NAMES for p in paths):
        raise click.UsageError("--update needs a manifest file and paths, not standard input")
    source = click.get_current_context().get_parameter_source("algo_specs")
    algos_given = algos if source is not click.core.ParameterSource.DEFAULT else None
    from parhash.update import refuse_manifest

    why = refuse_manifest(manifest)
    if why is not None:
        from parhash.report import error_line

        sys.stderr.write(error_line("parhash", manifest, why))
        return EXIT_USAGE
    if not os.path.exists(manifest) or os.path.getsize(manifest) == 0:
        from parhash.report import run_scan

        if relative_to_manifest:
            raise click.UsageError("--relative-to-manifest needs a manifest to update; write "
                                   "the first one from its directory")

        # A first update writes the manifest whole, sorted: later ones keep it so.
        fmt = fmt or ("bsd" if algos == ("xxh3",) else "gnu")
        if len(algos) > 1 and fmt not in MULTI_ALGO_FORMATS:
            raise click.UsageError(
                "a GNU line holds one digest; with several algorithms use --tag, --json or --csv")
        return run_scan(paths, algos=algos, fmt=fmt, zero=zero, follow=follow, include=include,
                        exclude=exclude, jobs=jobs, chunksize=chunksize, block_size=block_size,
                        stall_timeout=stall_timeout, sort=True, output=manifest,
                        progress=False if quiet and progress is None else progress,
                        summary=False if quiet and summary is None else summary, cache=cache)
    if fmt is not None or sort_output:
        raise click.UsageError("--update keeps the manifest's format and order: give no "
                               "format flag or --sort")
    return run_update(manifest, paths, algos=algos_given, zero=zero, follow=follow,
                      include=include, exclude=exclude,
                      relative_to_manifest=relative_to_manifest, jobs=jobs, chunksize=chunksize,
                      block_size=block_size, stall_timeout=stall_timeout, cache=cache,
                      progress=False if quiet and progress is None else progress,
                      summary=False if quiet else summary, quiet=quiet)


@cli.command("check")
@click.argument("manifests", nargs=-1, metavar="[MANIFEST]...")
@click.option("-a", "--algo", metavar="NAME",
              help="Algorithm of untagged lines, whose length can be ambiguous (b2sum's, "
              "xxhsum -H2's); lines and records that name another one are malformed.")
@click.option("--root", metavar="DIR",
              help="Look files up under DIR instead of the current directory.")
@click.option("--relative-to-manifest", is_flag=True,
              help="Look files up in each manifest's own directory.")
@click.option("--allow-outside-root", is_flag=True,
              help="With --root or --relative-to-manifest, also read listed names that are "
              "absolute, climb out of the root with '..', or lead out of it through a "
              "symbolic link (refused by default).")
@click.option("-q", "--quiet", "verbosity", flag_value="quiet",
              help="Don't print OK for each file that verifies, nor a progress bar or summary.")
@click.option("--status", "verbosity", flag_value="status",
              help="Print nothing on stdout; the exit status tells.")
@click.option("-w", "--warn", "verbosity", flag_value="warn",
              help="Warn about each improperly formatted line.")
@click.option("--strict", is_flag=True, help="Fail on improperly formatted lines.")
@click.option("--ignore-missing", is_flag=True,
              help="Don't fail or report status for missing files.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines on stdout, one object per checked file.")
@click.option("-z", "--zero", is_flag=True, help="Manifest records end with NUL, not newline.")
@_pipeline_options
@click.option("--trust-cache", is_flag=True,
              help="Answer files the hash cache holds unchanged from it, unread (implies "
              "--cache); without it, check reads every file and only adds to the cache.")
@_cache_options
@_report_options(quiet=False)
@_guarded()
@_cluster_options(_check_roots)
def check_command(manifests, algo, root, relative_to_manifest, allow_outside_root, verbosity,
                  strict, ignore_missing, as_json, zero, jobs, chunksize, block_size,
                  stall_timeout, trust_cache, cache, progress, summary, executor):
    """Verify the files a manifest lists, answering as md5sum -c does.

    Reads md5sum/sha*sum/b2sum lines, BSD tag lines (md5sum --tag, xxhsum)
    and parhash's --json and --csv manifests; no MANIFEST or '-' reads
    standard input. Exits 1 if a file fails, can't be read, or a manifest has
    no checksum line (or, with --strict, a malformed one).

    \b
    Examples:
      parhash scan data -a md5 > MD5SUMS && parhash check MD5SUMS
      parhash check --quiet --relative-to-manifest /backup/SHA256SUMS
      b2sum * | parhash check --algo blake2b
    """
    from parhash.report import run_check

    if root is not None and relative_to_manifest:
        raise click.UsageError("--root and --relative-to-manifest exclude each other")
    return run_check(
        manifests, algo=_untagged_algo(algo), root=root,
        relative_to_manifest=relative_to_manifest, allow_outside_root=allow_outside_root,
        verbosity=verbosity or "normal", strict=strict, ignore_missing=ignore_missing,
        json=as_json, zero=zero, jobs=jobs, chunksize=chunksize, block_size=block_size,
        stall_timeout=stall_timeout, progress=progress, summary=summary, executor=executor,
        cache=cache, trust_cache=trust_cache and cache is not None,
    )


def _untagged_algo(algo: str | None) -> str | None:
    """The one algorithm ``-a`` gives untagged manifest lines, or None."""
    try:
        algos = parse_algos([algo]) if algo else ()
    except UnknownAlgorithm as e:
        raise click.BadParameter(str(e), param_hint="'-a' / '--algo'") from None
    if len(algos) > 1:
        raise click.BadParameter("give one algorithm", param_hint="'-a' / '--algo'")
    return algos[0] if algos else None


# --- parhash dupes ------------------------------------------------------------


def _check_algo(ctx: click.Context, param: Any, value: str) -> str:
    try:
        names = parse_algos([value])
    except UnknownAlgorithm as e:
        raise click.BadParameter(str(e)) from None
    if len(names) != 1:
        raise click.BadParameter("dupes compares with exactly one algorithm")
    return names[0]


# parhash.dupes.ORDERS, spelled out: importing the dupes package here would
# slow the start of every command.
DUPE_ORDERS = ("path", "name", "mtime", "-mtime")


def _check_prefer(ctx: click.Context, param: Any, value: tuple[str, ...]) -> tuple[str, ...]:
    if "" in value:
        raise click.BadParameter("a path must not be empty")
    return value


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("-a", "--algo", default="xxh128", show_default=True, metavar="NAME",
              callback=_check_algo,
              help="Digest that decides equality: any of 'parhash scan --list-algos'.")
@_one_format(
    ("--json", "json", "JSON Lines: one object per group (size, algo, digest, paths, hardlinks)."),
    ("--csv", "csv", "CSV: a header, then one row per name, groups numbered from 1."),
)
@click.option("-z", "--zero", is_flag=True,
              help="End each path with NUL, and each group with one more NUL.")
@click.option("--order", type=click.Choice(DUPE_ORDERS), default="path", show_default=True,
              help="Which file of a group comes first (the one to keep), and the order of "
              "the rest: path (the bytes of the whole path), name (the base name, then the "
              "path), mtime (oldest first) or -mtime (newest first); ties go by path. "
              "Hard links of one file are ordered the same way.")
@click.option("--prefer", multiple=True, metavar="PATH", callback=_check_prefer,
              help="Put files under PATH first, whatever --order says (repeatable: files "
              "under the first PATH, then the second..., then under none), as jdupes -O does "
              "with its arguments. PATH is compared with the paths as printed, by whole "
              "names: './a/' holds 'a/x' but not 'ab/x'.")
@_walk_options
@click.option("--min-size", type=ByteSize(), default=None,
              help="Ignore files smaller than this, e.g. 4K.")
@click.option("--max-size", type=ByteSize(), default=None,
              help="Ignore files larger than this, e.g. 1G.")
@click.option("--include-empty", is_flag=True,
              help="Report empty files as duplicates of each other.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 if any duplicates were found, 0 if none (as git diff --exit-code).")
@_pipeline_options
@click.option("--head-size", type=ByteSize(MAX_BLOCK_SIZE), default=None,
              help="Bytes hashed first to split files of one size (default 64K; at most 64M).")
@click.option("--files-from", metavar="FILE",
              help="Also read paths, one per line, from FILE ('-' for standard input).")
@click.option("--files0-from", metavar="FILE",
              help="Also read NUL-separated paths from FILE ('-' for standard input).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log how many candidates each stage leaves, on stderr.")
@click.option("--progress/--no-progress", default=None,
              help="Progress per stage on stderr (default: when stderr is a terminal "
              "and not --quiet).")
@click.option("--summary/--no-summary", default=None,
              help="The summary line on stderr (default: unless --quiet; with the files "
              "compared and the time taken when stderr is a terminal or --summary).")
@click.option("-q", "--quiet", is_flag=True,
              help="Only what went wrong on stderr: no progress bar, no summary.")
@_cache_options
@_guarded(giving_up=EXIT_USAGE)
@_cluster_options(_path_roots)
def dupes(paths, algo, fmt, zero, order, prefer, follow, include, exclude, min_size, max_size,
          include_empty, exit_code, jobs, chunksize, block_size, stall_timeout, head_size,
          files_from, files0_from, verbose, progress, summary, quiet, cache, executor):
    """Find files with identical contents, reading as little as possible.

    Files are grouped by size, then by the digest of their first 64 KiB, then
    by the digest of their whole contents; a file whose size no other file
    has is never opened. Names of one file (hard links) count as one file.
    Empty files are ignored unless --include-empty. Groups are printed most
    wasted bytes first, a summary goes to stderr. In each group, files under
    the first --prefer PATH come first, and --order (default: path) decides
    the rest: the first file is the one to keep.

    Exit status: 0, or with --exit-code 1 if any duplicates were found; 2 for
    a usage error, or when an error could hide a duplicate: an argument or a
    directory that can't be read or was swapped for a link during the walk,
    a file whose size matches another's that can't be read, changes during
    the search or stalls past --stall-timeout. Errors that can't hide one (a
    link loop under -L, a file that vanished) are reported and change
    nothing, as do the notes on pseudo file systems (/proc, /sys), which are
    skipped.

    \b
    Example:
      parhash dupes --exit-code assets/ --exclude 'vendor/' --exclude '*.keep'
      parhash dupes --json --order mtime ~/Pictures | jq -r '.paths[1:][]'
      parhash dupes --prefer originals --prefer backup originals backup incoming
    """
    from parhash.report import run_dupes

    if min_size is not None and max_size is not None and max_size < min_size:
        raise click.UsageError("--max-size is below --min-size")
    if verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="parhash: %(message)s")
    return run_dupes(
        paths, algo=algo, fmt=fmt or "text", zero=zero, follow=follow, include=include,
        exclude=exclude, min_size=min_size, max_size=max_size, include_empty=include_empty,
        exit_code=exit_code, jobs=jobs, chunksize=chunksize, block_size=block_size,
        stall_timeout=stall_timeout, head_size=head_size, files_from=files_from,
        files0_from=files0_from, quiet=quiet, progress=progress, summary=summary, order=order,
        prefer=prefer, executor=executor, cache=cache,
    )


# --- parhash audit, parhash diff --------------------------------------------------


def _untagged_option(fn: Any) -> Any:
    fn = click.option("-z", "--zero", is_flag=True,
                      help="Manifest records end with NUL, not newline.")(fn)
    return click.option(
        "-a", "--algo", metavar="NAME",
        help="Algorithm of untagged lines, whose length can be ambiguous (b2sum's, "
        "xxhsum -H2's).")(fn)


def _changes_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--json", "as_json", is_flag=True,
                     help="JSON Lines on stdout: one object per path, unchanged ones included."),
        click.option("-v", "--verbose", is_flag=True, help="List unchanged files too."),
        click.option("--summary/--no-summary", default=True,
                     help="Count the paths of each status on stderr at the end (default: on)."),
        click.option("-q", "--quiet", is_flag=True,
                     help="Only what went wrong on stderr: no progress bar, no summary."),
    ]):
        fn = option(fn)
    return fn


@cli.command()
@click.argument("manifest")
@click.argument("paths", nargs=-1)
@_untagged_option
@click.option("--root", metavar="DIR", help="Names are relative to DIR (default: the current "
              "directory), which is also what is audited when no PATH is given.")
@click.option("--relative-to-manifest", is_flag=True,
              help="Names are relative to the manifest's own directory.")
@_walk_options
@_pipeline_options
@click.option("--trust-cache", is_flag=True,
              help="Answer files the hash cache holds unchanged from it, unread (implies "
              "--cache); without it every file is read.")
@_cache_options
@_changes_options
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@_guarded()
def audit(manifest, paths, algo, zero, root, relative_to_manifest, follow, include, exclude,
          jobs, chunksize, block_size, stall_timeout, trust_cache, cache, as_json, verbose,
          summary, quiet, progress):
    """Check a tree against a manifest: what changed, went missing, moved or is new.

    Hashes the files under PATH (default: where the names are looked up)
    with the manifest's algorithm, and gives each path one status:
    unchanged (shown with -v), changed, missing, new, moved (a listed file
    gone, its digest at a new path; the nearest by name if at several), or
    unreadable. Listed files that PATH and --include/--exclude leave out
    are not audited. Exits 0 if the tree matches, 1 if a file changed, is
    missing or can't be read, 3 if files were only added or moved, 2 for a
    usage error or a manifest that can't be read.

    \b
    Examples:
      parhash audit /backup/SHA256SUMS --relative-to-manifest
      parhash audit MD5SUMS data --json | jq -r 'select(.status=="changed").path'
    """
    import os

    from parhash.audit import run_audit

    if root is not None and relative_to_manifest:
        raise click.UsageError("--root and --relative-to-manifest exclude each other")
    if root is not None and not os.path.isdir(root):
        raise click.BadParameter(f"{root!r} is not a directory", param_hint="'--root'")
    return run_audit(
        manifest, paths, algo=_untagged_algo(algo), zero=zero, root=root,
        relative_to_manifest=relative_to_manifest, follow=follow, include=include,
        exclude=exclude, jobs=jobs, chunksize=chunksize, block_size=block_size,
        stall_timeout=stall_timeout, cache=cache, trust_cache=trust_cache and cache is not None,
        as_json=as_json, verbose=verbose, summary=summary and not quiet,
        progress=False if quiet and progress is None else progress,
    )


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@_untagged_option
@_changes_options
@_guarded()
def diff_command(old, new, algo, zero, as_json, verbose, summary, quiet):
    """Compare two manifests, reading no file: what changed from OLD to NEW.

    Each path gets one status, as in audit: unchanged (shown with -v),
    changed, missing, new or moved. OLD and NEW may be in different formats
    (md5sum's and --json, say); names are compared as paths, so './a' and
    'a' are one. Exits 0 if they agree, 1 if a file changed or is missing, 3
    if files were only added or moved, 2 for a usage error, a manifest that
    can't be read, or manifests with no algorithm in common.

    \b
    Example:
      parhash diff release-1.0.sha256 release-1.1.sha256
    """
    from parhash.audit import run_diff

    if old == "-" and new == "-":
        raise click.UsageError("standard input can be only one of the two manifests")
    return run_diff(old, new, algo=_untagged_algo(algo), zero=zero, as_json=as_json,
                    verbose=verbose, summary=summary and not quiet)


# parhash.dirdigest.PROTOCOLS, spelled out: importing the walk here would
# slow the start of every command.
DIRHASH_PROTOCOLS = ("dirhash", "go-h1")


@cli.command("dirhash")
@click.argument("path")
@click.option("--protocol", type=click.Choice(DIRHASH_PROTOCOLS), default="dirhash",
              show_default=True,
              help="dirhash: the Dirhash Standard, as the dirhash package prints it. "
              "go-h1: Go's h1: hash of a module tree, as go.sum holds it.")
@click.option("-a", "--algo", metavar="NAME",
              help="Algorithm (default sha256, the only one go-h1 takes); dirhash takes md5, "
              "sha1, sha224, sha256, sha384, sha512, sha3-256, sha3-512, blake2b, blake2s.")
@click.option("--prefix", metavar="TEXT",
              help="go-h1: put TEXT/ before each name, as Go's HashDir does with a module's "
              "path@version.")
@click.option("--empty-dirs", is_flag=True,
              help="dirhash: keep empty directories in the digest (the standard's empty_dirs).")
@click.option("--properties", metavar="LIST",
              help="dirhash: the entry properties, comma-separated from name, data and "
              "is_link (default name,data; without data no file is read).")
@click.option("--include", multiple=True, metavar="GLOB",
              help="Take only files matching GLOB (gitignore-style, relative to PATH; "
              "repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Leave out files and directories matching GLOB (repeatable).")
@_pipeline_options
@_guarded()
def dirhash_command(path, protocol, algo, prefix, empty_dirs, properties, include, exclude,
                    jobs, chunksize, block_size, stall_timeout):
    """Print one digest for a directory, its files hashed in parallel.

    The Dirhash Standard's hex digest (--protocol dirhash, the default), or
    Go's h1: (--protocol go-h1), from one read of each file in scan's
    worker pool. Symbolic links are followed as each protocol says.

    Exit status: 0 and the digest; 1 and no digest if anything below PATH
    can't be read (each path is named on stderr), a link loops, or the
    dirhash protocol finds nothing to hash (no file, and no --empty-dirs);
    2 for a usage error, or a PATH that is missing or not a directory.

    \b
    Examples:
      parhash dirhash models/llama -a sha256 > models/llama.dirhash
      parhash dirhash vendor/ --exclude '*.pyc' --exclude __pycache__/
      parhash dirhash --protocol go-h1 --prefix golang.org/x/mod@v0.20.0 mod/
    """
    from parhash.dirdigest import dir_options
    from parhash.report import run_dirhash

    try:
        options = dir_options(protocol, algo, prefix, empty_dirs, properties)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    return run_dirhash(path, options, include=include, exclude=exclude, jobs=jobs,
                       chunksize=chunksize, block_size=block_size, stall_timeout=stall_timeout)


@cli.group("cache")
def cache_group() -> None:
    """Look after the hash cache: its statistics, pruning, clearing.

    The cache is --cache-file, else PARHASH_CACHE, else
    $XDG_CACHE_HOME/parhash/hashes.sqlite (~/.cache/parhash/hashes.sqlite).

    Exit status: 0; 2 for a usage error or a cache that can't be used.

    \b
    Examples:
      parhash cache stats --json | jq .entries
      parhash cache prune --older-than 90d
    """


def _managed(fn: Any) -> Any:
    """``--cache-file``, and the cache it names opened as ``cache`` (None: there is
    none), or exit 2 with the reason."""

    @functools.wraps(fn)
    def wrapper(*args: Any, cache_file: str | None, **kwargs: Any) -> Any:
        from parhash.cache import CacheUnusable, manage, management_path

        path = management_path(cache_file)
        try:
            cache = manage(path)
        except CacheUnusable as e:
            click.echo(f"parhash: {e}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from None
        import sqlite3

        try:
            return fn(*args, cache=cache, path=path, **kwargs)
        except (sqlite3.DatabaseError, ValueError) as e:
            from parhash.cache import damage

            assert cache is not None
            if isinstance(e, ValueError) or damage(e):
                cache.damaged(str(e))
                click.echo(f"parhash: the cache {path} is damaged: {e}", err=True)
            else:  # busy, say: the file is fine
                click.echo(f"parhash: cannot use the cache {path}: {e}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from None
        finally:
            if cache is not None:
                cache.close()

    return click.option("--cache-file", metavar="FILE", help="The cache to look after.")(wrapper)


@cache_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_managed
def cache_stats(cache, path, as_json):
    """Say how many entries the cache holds, of which algorithms, and its size.

    \b
    Example:
      parhash cache stats
    """
    import json

    from parhash.cache import describe

    stats = (cache.stats() if cache is not None else
             {"file": path, "entries": 0, "unconfirmed": 0, "directories": 0, "digests": {},
              "bytes": 0})
    click.echo(json.dumps(stats) if as_json else describe(stats), nl=as_json)


def _duration(ctx: click.Context, param: Any, value: str | None) -> int | None:
    from parhash.cache import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx, param) from None


@cache_group.command("prune")
@click.option("--older-than", metavar="AGE", callback=_duration,
              help="Also remove the entries of directories no run has used for AGE "
              "(30d, 12h, 90m, 45s, 2w).")
@_managed
def cache_prune(cache, path, older_than):
    """Remove the entries of files that are gone or have changed since.

    \b
    Example:
      parhash cache prune --older-than 90d
    """
    if cache is None:
        click.echo(f"parhash: no cache at {path}", err=True)
        return
    removed, left = cache.prune(older_than)
    click.echo(f"parhash: pruned {removed} entries; {left} left", err=True)


@cache_group.command("clear")
@_managed
def cache_clear(cache, path):
    """Remove every entry.

    \b
    Example:
      parhash cache clear
    """
    if cache is None:
        click.echo(f"parhash: no cache at {path}", err=True)
        return
    removed = cache.clear()
    click.echo(f"parhash: cleared {removed} entries", err=True)


def _command_path(args: list[str] | None) -> str:
    """``parhash COMMAND`` as ``args`` name it, for an error click gave no context."""
    for arg in sys.argv[1:] if args is None else args:
        if arg in cli.commands:
            return f"parhash {arg}"
        if not arg.startswith("-"):
            break
    return "parhash"


def _usage_message(e: click.UsageError) -> str:
    """Click's message for a usage error, in coreutils' words where it has them.

    ``unrecognized option '--bogus'``, ``invalid option -- 'x'``, ``option
    '--algo' requires an argument``, ``option requires an argument -- 'a'``
    are getopt's, which md5sum prints; other messages keep click's words,
    without the capital and the full stop that coreutils' never have.
    """
    if isinstance(e, click.NoSuchOption):
        name = e.option_name
        if name.startswith("--"):
            return f"unrecognized option '{name}'"
        return f"invalid option -- '{name[1:]}'"
    message = e.format_message()
    if isinstance(e, click.BadOptionUsage) and message.endswith("requires an argument."):
        name = e.option_name
        if name.startswith("--"):
            return f"option '{name}' requires an argument"
        return f"option requires an argument -- '{name[1:]}'"
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    return message.removesuffix(".")


def run(args: list[str] | None = None) -> int:
    """Run the command line ``args`` (default ``sys.argv[1:]``); return the exit status.

    Signals and the process's exit are :func:`parhash.console.main`'s.
    """
    # The cyclic collector ran every 700 allocations and traversed the
    # objects that wait in flight each time: 43 ms of check's run on 30,000
    # lines, 22 ms of dupes'. Start-up's objects are frozen out of it, and the
    # young generation is collected every 20,000 allocations instead.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        rc = cli.main(args=args, prog_name="parhash", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:
            # Click 8.2 made `parhash` alone an error; it is a request for help.
            click.echo(e.ctx.get_help(), color=e.ctx.color)
            return EXIT_OK
        # As coreutils says it: the message, then where to look.
        command = e.ctx.command_path if e.ctx is not None else _command_path(args)
        click.echo(f"parhash: {_usage_message(e)}\nTry '{command} --help' for more "
                   "information.", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        return EXIT_INTERRUPTED
    return rc if isinstance(rc, int) else EXIT_OK
