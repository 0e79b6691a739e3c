"""Exceptions the suites layer (suites, runner, results files) raises for user mistakes.

Every one derives from :class:`SuitesError`, so a caller can catch the layer's user errors
in one ``except``.
"""

from __future__ import annotations

__all__ = ["SuitesError", "SuiteError", "ResultsError", "ResultsExistsError", "ResultsLockedError",
           "ResultsWriteError", "ResultsFileError", "OutputError", "LimitError", "RankFailedError", "OptimizeError"]


class SuitesError(Exception):
    """Base class of the suites layer's user-facing errors (one line, no traceback needed)."""


class SuiteError(SuitesError, ValueError):
    """A suite (TOML text, file or built-in name) that is invalid; the message names the key."""


class ResultsError(SuitesError):
    """Base class of errors about results files."""


class ResultsLockedError(ResultsError):
    """Another process is writing the same results file."""


class ResultsExistsError(ResultsError, FileExistsError):
    """The output file exists already (results are never overwritten)."""


class ResultsWriteError(ResultsError):
    """Writing a batch failed (disk full, I/O error); rows already counted stay readable."""


class ResultsFileError(ResultsError, ValueError):
    """A file that is not a curvebench results file, or one whose attributes disagree with its data."""


class OutputError(SuitesError, ValueError):
    """An output path that would clobber an input or an existing file, or is not writable as asked."""


class LimitError(SuitesError, ValueError):
    """A request larger than curvebench allows (image size, batch, sweep, memory); the message names the bound."""
class RankFailedError(SuitesError):
    """A process of a distributed run (``torchrun``) failed; the whole job stopped.

    The message names the rank and the reason. ``report`` is True on the one rank
    (rank 0) that prints it, so the job prints one line, not one per process.
    """

    def __init__(self, message: str, report: bool = True) -> None:
        super().__init__(message)
        self.report = report


class OptimizeError(SuitesError, ValueError):
    """A bad request to :func:`suites.optimization.ascent.optimize`: unknown parameter, bound or channel."""
