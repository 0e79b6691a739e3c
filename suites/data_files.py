"""Is this a readable regular data file? One check for every file curvebench reads as data.

Every opener of a data file (results, statistics, suites, discover outputs, caches) calls
:func:`check_data_file` before it opens anything. The check only ``stat``\\ s the path, so a
FIFO, a device node or a socket is refused in one line *without being opened* (opening a
FIFO for reading blocks until a writer appears: the command would hang). The file is also
recorded as an input of the running command (:func:`suites.atomic.note_input`), so an
output that turns out to be the same file, found inside a folder argument or a cache, is
refused at the latest when the command commits its outputs (``--overwrite`` or not).

Identity: two paths name the same file when their ``(st_dev, st_ino)`` agree (hard links,
symbolic links, ``x/../y``); for paths that do not exist yet, when their resolved paths
(:func:`os.path.realpath`) agree. :func:`file_identity` gives that key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from suites.errors import SuitesError

__all__ = ["DataFileError", "check_data_file", "file_identity", "kind_of", "is_regular_or_absent"]


class DataFileError(SuitesError, FileNotFoundError):
    """A path given as a data file that is missing, a folder, or not a regular file (FIFO, device, socket)."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a folder"``, ...: what a non-regular file is, from ``st_mode``."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def check_data_file(path: str | os.PathLike, what: str = "input") -> Path:
    """Refuse ``path`` unless it is an existing regular file (symbolic links followed); returns it.

    Never opens the file. ``what`` names it in the message (``"--stats"``, ``"results file"``).
    Records the file as an input of the running command.

    Raises:
        DataFileError: no such file, a folder, a FIFO, a device or a socket (one line, naming
            ``what`` and the path as given).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataFileError(f"{what} not found: {p}") from None
    except (OSError, ValueError) as exc:  # too long, NUL byte, permission on a parent
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DataFileError(f"{what} = {str(p)!r} cannot be read: {reason}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataFileError(f"{what} = {str(p)!r} is {kind_of(st.st_mode)}, not a regular data file; "
                            "give a file (FIFOs and devices are never read)")
    from suites.atomic import note_input

    note_input(p)
    return p


def file_identity(path: str | os.PathLike) -> tuple:
    """``("inode", st_dev, st_ino)`` of an existing file, else ``("path", resolved path)``."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return ("path", os.path.realpath(os.fspath(path)))


def is_regular_or_absent(path: str | os.PathLike) -> tuple[bool, str]:
    """``(True, "")`` when ``path`` is absent, a regular file or a link; else ``(False, its kind)`` (``lstat``)."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return True, ""
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        return True, ""
    return False, kind_of(st.st_mode)
