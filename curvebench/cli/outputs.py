"""What the command line knows about a command's files: ``--overwrite`` and the inputs it reads.

:func:`curvebench.cli.main` runs every command inside :func:`suites.atomic.staging`, so
the files a command writes (through :func:`suites.atomic.output_file`) appear only when
the whole command succeeded. This module supplies the staging's two settings:

* :func:`add_overwrite` adds ``--overwrite`` to a command that writes files (without it an
  existing file is refused);
* :func:`inputs_of` lists the files a command reads: every argument value that names an
  existing file, except the output options in :data:`OUTPUT_OPTIONS`. An output equal to
  one of them is always refused, ``--overwrite`` or not. New commands get both for free
  as long as their output options are named like the existing ones (or listed here).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["OUTPUT_OPTIONS", "add_overwrite", "inputs_of"]

#: argparse ``dest`` names whose values are outputs, not inputs.
OUTPUT_OPTIONS: frozenset[str] = frozenset({"out", "npy", "json", "out_dir", "output", "html", "report", "figure"})


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` (replace existing output files; inputs are never replaced)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (default: refuse them); an input is never replaced")


def inputs_of(args: argparse.Namespace) -> list[Path]:
    """Existing files named by the non-output arguments of ``args``."""
    found: list[Path] = []
    for key, value in vars(args).items():
        if key in OUTPUT_OPTIONS or key == "func":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, (str, os.PathLike)) and str(v):
                try:
                    p = Path(v)
                    if p.is_file():
                        found.append(p)
                except (OSError, ValueError):  # names too long, NUL bytes: not files
                    continue
    return found
