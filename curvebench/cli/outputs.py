"""What the command line knows about a command's files: ``--overwrite`` and the inputs it reads.

:func:`curvebench.cli.main` runs every command inside :func:`suites.atomic.staging`, so
the files a command writes (through :func:`suites.atomic.output_file`) appear only when
the whole command succeeded. This module supplies the staging's two settings:

* :func:`add_overwrite` adds ``--overwrite`` to a command that writes files (without it an
  existing file is refused);
* :func:`inputs_of` lists the files and folders a command reads: every argument value that
  names an existing file or folder, except the output options in :data:`OUTPUT_OPTIONS`. An
  output equal to one of those files, or an existing file inside one of those folders, is
  always refused, ``--overwrite`` or not (files read from inside folders and caches are
  also recorded as they are read, :func:`suites.data_files.check_data_file`). New commands
  get both for free as long as their output options are named like the existing ones (or
  listed here);
* :func:`check_path_args` refuses, before any work, an argument naming a FIFO, a device or a
  socket (never opened, so nothing hangs) and an empty output path (``--json ''``).
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

__all__ = ["OUTPUT_OPTIONS", "add_overwrite", "inputs_of", "check_path_args"]

#: argparse ``dest`` names whose values are outputs, not inputs.
OUTPUT_OPTIONS: frozenset[str] = frozenset({"out", "npy", "json", "out_dir", "output", "html", "report", "figure"})


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` (replace existing output files; inputs are never replaced)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (default: refuse them); an input is never replaced")


def _values(args: argparse.Namespace, outputs: bool) -> list[tuple[str, str]]:
    """``(option, value)`` of the path-like string arguments (``outputs``: only the output options, else the rest)."""
    found = []
    for key, value in vars(args).items():
        if key == "func" or (key in OUTPUT_OPTIONS) != outputs:
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)):
                found.append((key, str(v)))
    return found


_POSITIONALS = {"files": "FILE", "file": "FILE", "suite": "SUITE", "folder": "DIR"}


def _option(key: str) -> str:
    return _POSITIONALS.get(key, f"--{key.replace('_', '-')}")


def inputs_of(args: argparse.Namespace) -> list[Path]:
    """Existing files and folders named by the non-output arguments of ``args``."""
    found: list[Path] = []
    for _, v in _values(args, outputs=False):
        if not v:
            continue
        try:
            p = Path(v)
            if p.is_file() or p.is_dir():
                found.append(p)
        except (OSError, ValueError):  # names too long, NUL bytes: not files
            continue
    return found


def check_path_args(args: argparse.Namespace) -> None:
    """Refuse special files (FIFO, device, socket) named by any argument, and empty output paths.

    Raises:
        DataFileError: an input argument names a special file (never opened).
        OutputError: an output argument is empty or names a special file.
    """
    from suites.atomic import OutputError
    from suites.data_files import DataFileError, is_regular_or_absent, kind_of

    for key, v in _values(args, outputs=True):
        if not v.strip():
            raise OutputError(f"{_option(key)} = {v!r} is empty; give a path (or leave the option out)")
    for outputs in (False, True):
        for key, v in _values(args, outputs=outputs):
            try:
                st = os.stat(v) if v else None
            except (OSError, ValueError):
                continue
            if st is None or stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                continue
            if outputs:
                ok, kind = is_regular_or_absent(v)
                raise OutputError(f"{_option(key)} = {v!r} is {kind or kind_of(st.st_mode)}; "
                                  "only regular files and folders are written")
            raise DataFileError(f"{_option(key)} = {v!r} is {kind_of(st.st_mode)}, not a regular file or folder; "
                                "FIFOs and devices are never read")
