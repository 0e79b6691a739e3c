"""The ``curvebench`` command line: one parser, one error boundary, on top of the libraries.

Each module of this package (``render``, ``models``, ``run``, ``analysis``, ...) exposes
``register(commands, bench_commands)``, which adds argparse sub-parsers and sets ``func``
(a callable taking the parsed ``argparse.Namespace`` and returning an exit code). Heavy
imports (torch, xarray) happen inside those callables so that ``curvebench --help`` stays
fast. The shared argparse types live in :mod:`curvebench.cli.argtypes`.

The error boundary is :func:`main`: every user error a library documents
(:class:`stimuli.errors.StimulusError`, :class:`probes.errors.ProbesError`,
:class:`suites.errors.SuitesError`, and ``ValueError``/``OSError`` from bad paths) is
printed as one line, ``curvebench: error: ...``, with exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

# Modules that contribute subcommands, in the order they appear in --help.
_COMMAND_MODULES: tuple[str, ...] = (
    "curvebench.cli.render",
    "curvebench.cli.models",
    "curvebench.cli.run",
    "curvebench.cli.analysis",
    "curvebench.cli.discover",
    "curvebench.cli.atlas",
    "curvebench.cli.report",
    "curvebench.cli.optimize",
)


class CommandError(Exception):
    """An error of the command line itself (bad combination of options) meant for the user."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: raised in the main thread so the command cleans up exactly as after Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the block (main thread only; the old handler is restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that end in one line (imported here: light modules, no torch)."""
    from probes.errors import ProbesError
    from stimuli.errors import StimulusError
    from suites.errors import SuitesError

    return (CommandError, StimulusError, ProbesError, SuitesError, ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    """Build the full ``curvebench`` parser with every layer's subcommands."""
    parser = _Parser(
        prog="curvebench",
        description=(
            "Synthetic-stimulus experiments on the curve detectors of InceptionV1 "
            "(Distill, 'Curve Detectors'): render stimuli, probe models, run sweeps "
            "into xarray/HDF5 results, and plot them in the article's units."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = commands.add_parser(
        "bench",
        help="measure throughput (renderer, probes, whole pipeline) and write JSON",
        description="Throughput benchmarks. Each writes a JSON report with --json FILE.",
    )
    bench_commands = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a layer not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.register(commands, bench_commands)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``curvebench render: error: ...``), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _describe(exc: BaseException) -> str:
    """One line for a user error: OS errors name the path and the reason."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the library put in the message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``curvebench`` console script; returns the exit status.

    Every command runs inside :func:`suites.atomic.staging`: the files it writes appear
    only if it succeeds (exit 0 or 1), an existing file is replaced only with
    ``--overwrite``, and an input is never replaced (:mod:`curvebench.cli.outputs`).
    User errors end in one line and exit 2; anything else (a bug) in one line naming it
    and exit 3. ``--debug`` shows the traceback instead.
    """
    # Figures are written to files: the application (not the libraries, which a notebook
    # imports) picks the non-interactive backend, unless the user chose one.
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    from curvebench.cli.outputs import check_path_args, inputs_of
    from suites.atomic import staging
    from suites.limits import check_option_limits

    try:
        with _sigterm_as_interrupt():
            check_path_args(args)
            check_option_limits(vars(args))  # every size-like option, before any work
            with staging(overwrite=bool(getattr(args, "overwrite", False)), inputs=inputs_of(args)):
                status = args.func(args)
    except Terminated:
        print("curvebench: terminated (SIGTERM); nothing was written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("curvebench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `curvebench tuning FILE | head`: the reader left, not an error
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except _user_errors() as exc:
        if args.debug:
            raise
        print(f"curvebench: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        if args.debug:
            raise
        print("curvebench: error: out of memory; ask for less (smaller --batch-size, --size or sweep)",
              file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, the traceback with --debug
        if args.debug:
            raise
        print(f"curvebench: internal error: {type(exc).__name__}: {_describe(exc)} "
              "(rerun with --debug for the traceback and report it)", file=sys.stderr)
        return 3
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
