"""Outputs that never clobber: write beside the target, rename into place only on success.

Every file curvebench writes (figures, JSON reports, statistics, ``.npy`` arrays, probe
files) goes through :func:`output_file`: the data goes to a hidden temporary file in the
target's folder (same file system, so the final ``os.replace`` is atomic), and the
target appears only when the whole job has succeeded. A failure (bad value, full disk,
Ctrl-C) leaves every existing file byte-identical and no new file behind.

Two ways to use it:

* alone (a notebook): ``with output_file(path) as tmp: fig.savefig(tmp)`` commits when
  the block ends without an exception;
* inside :func:`staging` (what ``curvebench`` does around every command): the temporary
  files are kept until the staging block ends, and are renamed into place together
  only if the whole command succeeded. The staging knows the command's **inputs** (an
  output equal to an input is always refused) and whether existing targets may be
  replaced (``--overwrite``; refused otherwise, before any work where possible).

Results files that ``curvebench run`` appends to are the exception: they are made to
be read and resumed while incomplete, so :class:`suites.results.writer.ResultsWriter` creates
them exclusively (never over an existing file) and removes them if no row landed.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from suites.errors import OutputError

__all__ = ["OutputError", "Staging", "staging", "output_file", "check_output", "check_folder", "current",
           "same_file", "readable_path", "unstaged", "note_input", "remove_stale_temporaries",
           "declare_output_folder"]

_CURRENT: contextvars.ContextVar[Staging | None] = contextvars.ContextVar("curvebench_staging", default=None)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (same inode, or the same resolved path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse a folder path that is an existing file or lies below one; returns it (not created)."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists() and not q.is_dir():
            where = "" if q == p else f" ({q} is a file)"
            raise OutputError(f"{what} = {str(p)!r} is not a folder{where}; give a folder path")
        if q.exists():
            break
    return p


_TMP_RE = re.compile(r"^\.(?P<stem>.*)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>\.[^.]*)?$")


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _tmp_name(target: Path) -> Path:
    # hidden, unique, and ending in the target's suffix (PIL/matplotlib pick the format from it);
    # the stem is shortened so that the temporary's name fits wherever the target's does
    tag = f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
    room = _name_max(target.parent) - len(os.fsencode(f".{tag}{target.suffix}"))
    stem = os.fsencode(target.stem)[:max(room, 1)].decode("utf-8", "ignore")
    return target.with_name(f".{stem}{tag}{target.suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``target`` left by a killed command (SIGKILL: no cleanup ran); returns them.

    A temporary is ``.<stem>.tmp-<pid>-<8 hex><suffix>`` beside the target; it is stale when
    no process ``<pid>`` is alive. Temporaries of running commands are left alone.
    """
    t = Path(target)
    removed: list[Path] = []
    try:
        siblings = list(t.parent.iterdir()) if str(t.parent) else list(Path(".").iterdir())
    except OSError:
        return removed
    for q in siblings:
        m = _TMP_RE.match(q.name)
        if m is None or (m.group("suffix") or "") != t.suffix or int(m.group("pid")) == os.getpid():
            continue
        stem = m.group("stem")  # the target's stem, or its start when the name was shortened
        if not (stem == t.stem or (stem and t.stem.startswith(stem)
                                   and len(os.fsencode(q.name)) >= _name_max(t.parent) - 4)):
            continue
        if _pid_alive(int(m.group("pid"))):
            continue
        with contextlib.suppress(OSError):
            if q.is_file() and not q.is_symlink():
                q.unlink()
                removed.append(q)
    return removed


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


@dataclass
class Staging:
    """Temporary outputs of one job, renamed into place together by :meth:`commit`.

    Attributes:
        overwrite: replace existing targets (never an input).
        inputs: files and folders named by the job's arguments; an output equal to one of the
            files, or an existing file inside one of the folders, is refused.
        read: data files the job opened (:func:`suites.data_files.check_data_file`), by identity;
            refused as outputs when checked and again at :meth:`commit`.
        checked: outputs checked so far, by identity: two options naming one file are refused.
        output_dirs: folders the job declared its own (:func:`declare_output_folder`).
    """

    overwrite: bool = False
    inputs: list[Path] = field(default_factory=list)
    staged: dict[Path, Path] = field(default_factory=dict)  # target -> temporary
    made_dirs: list[Path] = field(default_factory=list)
    read: dict[tuple, Path] = field(default_factory=dict)  # identity -> a data file the job read
    checked: dict[tuple, tuple[str, Path]] = field(default_factory=dict)  # identity -> (option, path) checked
    output_dirs: list[Path] = field(default_factory=list)  # folders the job writes into (its own)

    def add_inputs(self, paths: Iterable[str | os.PathLike]) -> None:
        """Declare files and folders the job reads (outputs equal to, or inside, them are refused)."""
        self.inputs += [Path(p) for p in paths if p is not None]

    def note_read(self, path: str | os.PathLike) -> None:
        """Record a data file the job has just read (found in a folder, a cache): never an output."""
        from suites.data_files import file_identity

        self.read.setdefault(file_identity(path), Path(path))

    def _input_clash(self, t: Path) -> str | None:
        from suites.data_files import file_identity

        ident = file_identity(t)
        if ident in self.read:
            return f"is also an input of this command (it read {str(self.read[ident])!r})"
        for p in self.inputs:
            if p.is_dir():
                own = any(_inside(t, o) and _inside(o, p) and not _inside(p, o) for o in self.output_dirs)
                if (t.exists() or t.is_symlink()) and _inside(t, p) and not own:
                    return f"is inside {str(p)!r}, a folder this command reads"
            elif p.exists() and file_identity(p) == ident:
                return "is also an input of this command"
        return None

    def check(self, target: str | os.PathLike, what: str = "output") -> Path:
        """Refuse ``target`` if it is an input, a folder, a special file, or an existing file (without ``overwrite``)."""
        from suites.data_files import file_identity, is_regular_or_absent

        t = Path(target)
        if not str(target).strip() or str(target).endswith(os.sep):
            raise OutputError(f"{what} = {str(target)!r} is not a file name; give a file path")
        if len(os.fsencode(t.name)) > _name_max(t.parent):
            raise OutputError(f"{what} = {str(t)!r}: the file name is {len(os.fsencode(t.name))} bytes long; "
                              f"at most {_name_max(t.parent)} are allowed here")
        clash = self._input_clash(t)
        if clash:
            raise OutputError(f"{what} = {str(t)!r} {clash}; choose another output path (inputs are never overwritten)")
        if t.is_dir():
            raise OutputError(f"{what} = {str(t)!r} is a folder; give a file path")
        regular, kind = is_regular_or_absent(t)
        if not regular:
            raise OutputError(f"{what} = {str(t)!r} is {kind}; only regular files are written or replaced")
        if t.exists() or t.is_symlink():
            if not self.overwrite:
                raise OutputError(f"{what} = {str(t)!r} already exists; choose another path or pass --overwrite")
        check_folder(t.parent if str(t.parent) else Path("."), what=f"the folder of {what}")
        ident = file_identity(t)
        for other in self.staged:
            if other == t or file_identity(other) == ident:
                raise OutputError(f"{what} = {str(t)!r} is written twice by this command"
                                  + ("" if other == t else f" (also as {str(other)!r})"))
        seen_what, seen = self.checked.setdefault(ident, (what, t))
        if seen != t or (seen_what != what and "output" not in (what, seen_what)):
            raise OutputError(f"{what} = {str(t)!r} is the same file as {seen_what} = {str(seen)!r}; "
                              "give each output its own path")
        return t

    def file(self, target: str | os.PathLike, what: str = "output") -> Path:
        """Check ``target`` and return the temporary path to write it to (parent folders are made)."""
        t = self.check(target, what)
        missing = [q for q in (t.parent, *t.parent.parents) if not q.exists()]
        for q in reversed(missing):
            try:
                q.mkdir()
            except FileExistsError:
                continue
            self.made_dirs.append(q)
        remove_stale_temporaries(t)
        tmp = _tmp_name(t)
        self.staged[t] = tmp
        return tmp

    def commit(self) -> list[Path]:
        """Rename every written temporary into place (after checking them all again); returns the targets."""
        done = [(t, tmp) for t, tmp in self.staged.items() if tmp.exists()]
        try:
            for t, _ in done:
                clash = self._input_clash(t)
                if clash:
                    raise OutputError(f"output {str(t)!r} {clash}; nothing was written (inputs are never "
                                      "overwritten)")
                if (t.exists() or t.is_symlink()) and not self.overwrite:
                    raise OutputError(f"output {str(t)!r} appeared while the command ran; nothing was written "
                                      "(choose another path or pass --overwrite)")
            for t, tmp in done:
                os.replace(tmp, t)
        except BaseException:
            self.discard()
            raise
        self.staged.clear()
        self.made_dirs.clear()
        return [t for t, _ in done]

    def discard(self) -> None:
        """Remove every temporary and every folder this staging made (if empty)."""
        for tmp in self.staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.staged.clear()
        for d in reversed(self.made_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        self.made_dirs.clear()


def readable_path(target: str | os.PathLike) -> Path:
    """Where the bytes of ``target`` are now: its staged temporary while the command runs, else ``target``.

    For a command that reads back what it wrote (copies a figure, reports a file's size).
    """
    s = current()
    tmp = s.staged.get(Path(target)) if s is not None else None
    return tmp if tmp is not None and tmp.exists() else Path(target)


@contextlib.contextmanager
def unstaged() -> Iterator[None]:
    """Suspend the command's staging: for caches, which are not the command's outputs.

    Inside the block :func:`output_file` replaces its target atomically when the block
    ends, whether or not the command later succeeds, and ``--overwrite`` does not apply.
    """
    token = _CURRENT.set(None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def declare_output_folder(folder: str | os.PathLike) -> None:
    """Declare ``folder`` the running command's own output folder (no-op outside a command).

    An existing file inside a folder the command reads is refused as an output, unless it lies in
    a subfolder the command declared its own (``characterize DIR`` writes ``DIR/characterize/``);
    files the command actually read stay refused (:meth:`Staging.note_read`).
    """
    s = current()
    if s is not None:
        s.output_dirs.append(Path(folder))


def note_input(path: str | os.PathLike) -> None:
    """Record ``path`` as read by the running command (no-op outside one): it can never be its output."""
    s = current()
    if s is not None:
        s.note_read(path)


def current() -> Staging | None:
    """The staging of the running command, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def staging(overwrite: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Staging]:
    """Collect the outputs written inside the block; commit them together only if it succeeds."""
    s = Staging(overwrite=overwrite)
    s.add_inputs(inputs)
    token = _CURRENT.set(s)
    try:
        yield s
    except BaseException:
        s.discard()
        raise
    finally:
        _CURRENT.reset(token)
    s.commit()


def check_output(target: str | os.PathLike, what: str = "output") -> Path:
    """Refuse ``target`` now (before any work) under the current staging's rules; returns it.

    Outside a staging only a folder or a path below a file is refused (notebooks replace files).
    """
    s = current()
    if s is not None:
        return s.check(target, what)
    t = Path(target)
    if t.is_dir():
        raise OutputError(f"{what} = {str(t)!r} is a folder; give a file path")
    check_folder(t.parent if str(t.parent) else Path("."), what=f"the folder of {what}")
    return t


@contextlib.contextmanager
def output_file(target: str | os.PathLike, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path to write ``target`` to; it becomes ``target`` only on success.

    Inside :func:`staging` the rename waits for the end of the whole command; alone, it
    happens when this block ends (replacing an existing file, as a notebook expects).
    """
    s = current()
    own = s is None
    if own:
        s = Staging(overwrite=True)
    tmp = s.file(target, what)
    try:
        yield tmp
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        s.staged.pop(Path(target), None)
        if own:
            s.discard()
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, str(tmp), tmp):
            # a full disk, a quota, an I/O error while writing: name the user's path, not the temporary
            raise OutputError(f"{what} = {str(target)!r}: {exc.strerror or exc}; nothing was written") from None
        raise
    if not tmp.exists():
        s.staged.pop(Path(target), None)
        if own:
            s.discard()
        raise OutputError(f"{what} = {str(target)!r}: nothing was written")
    if own:
        s.commit()
