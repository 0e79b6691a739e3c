"""The ``curvebench`` command line: one parser, subcommands registered by each layer.

Each layer keeps its own commands next to its code and exposes
``register(commands, bench_commands)``, which adds argparse sub-parsers and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit
code). Heavy imports (torch, xarray) happen inside those callables so that
``curvebench --help`` stays fast. :func:`positive_int` and :func:`nonnegative_int` are
the argparse types every layer's commands share.

Errors a user can fix (``ValueError``, ``FileNotFoundError``, ``PermissionError``,
:class:`CurvebenchError`) are printed as one line, ``curvebench: error: ...``, with
exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Modules that contribute subcommands, in the order they appear in --help.
_COMMAND_MODULES: tuple[str, ...] = (
    "stimuli.cli",
    "probes.cli",
    "suites.run_cli",
    "suites.analysis.cli",
)


class CurvebenchError(Exception):
    """An error with a message meant for the user (no traceback needed)."""


def _int_at_least(text: str, minimum: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
    if n < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {n}")
    return n


def positive_int(text: str) -> int:
    """argparse ``type`` for counts and sizes: an integer >= 1 (argparse names the option)."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse ``type``: an integer >= 0 (argparse names the option)."""
    return _int_at_least(text, 0)


def build_parser() -> argparse.ArgumentParser:
    """Build the full ``curvebench`` parser with every layer's subcommands."""
    parser = argparse.ArgumentParser(
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``curvebench`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        print("curvebench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `curvebench tuning FILE | head`: the reader left, not an error
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CurvebenchError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if args.debug:
            raise
        print(f"curvebench: error: {exc}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
