"""``python -m parhash``, and the ``parhash`` command's entry point.

Until :func:`parhash.console.main` installs its handlers, there is nothing
to clean up: a stopping signal ends the process at once, quietly, with status
128+N. Installed when this module loads, before anything else is imported, so
that a Ctrl-C while Python loads parhash never prints a traceback.
"""

import os  # loaded by the interpreter already: importing it is a lookup

try:
    try:
        # The signal module builds its enums as it loads, long enough for a
        # signal to land in; CPython's C module is loaded already.
        import _signal as signal  # type: ignore[import-not-found]
    except ImportError:  # another Python
        import signal

    def _exit_at_once(signum: int, frame: object) -> None:
        os._exit(128 + signum)

    # SIGINT first: a Ctrl-C that lands while another handler is being set is
    # still run by Python's own, which raises KeyboardInterrupt.
    for _signum in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(_signum, _exit_at_once)
except KeyboardInterrupt:
    # A Ctrl-C before its handler was in place: end as the handler would have.
    os._exit(128 + 2)


def main() -> None:
    from parhash.console import main as run

    run()


if __name__ == "__main__":
    main()
