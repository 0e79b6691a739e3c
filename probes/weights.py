"""Weights files: registry entries, the cache, strict state-dict checks and downloads.

A :class:`WeightsEntry` describes one published file (URL, file name, size where
known, the input transform the weights expect, tap names). Files live in the cache
``$CURVEBENCH_HOME/weights/`` (default ``$XDG_CACHE_HOME/curvebench`` or
``~/.cache/curvebench``). Downloads stream to a temporary file in the same folder,
are checked (complete, a state dict with exactly the expected keys and shapes), and
only then renamed into place, so the cache never holds a partial or wrong file.

Files are read with ``torch.load(..., weights_only=True)`` only.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from probes.base import InputTransform
from probes.errors import WeightsError
from probes.weights_spec import sha256sum


@dataclass(frozen=True)
class WeightsEntry:
    """One published weights file.

    Attributes:
        name: registry id (``"inception5h"``).
        model: id of the model it fits (``"inceptionv1"``).
        url: download source.
        filename: name in the cache.
        size: bytes, or None where unknown (then only the server's Content-Length is checked).
        sha256: published checksum, or None where there is none.
        transform: input transform the weights were trained with.
        taps: tap names of the model.
        expected: ``() -> {key: shape}`` of the state dict, for strict checks.
        note: provenance in words.
        packaged: ``() -> Path`` of a copy installed with a Python package (the default
            file instead of the cache; nothing to download), or None.
        package: the PyPI distribution of the packaged copy (for messages), or None.
    """

    name: str
    model: str
    url: str
    filename: str
    transform: InputTransform
    taps: tuple[str, ...]
    expected: Callable[[], dict[str, tuple[int, ...]]] = field(repr=False, compare=False)
    size: int | None = None
    sha256: str | None = None
    note: str = ""
    packaged: Callable[[], Path] | None = field(default=None, repr=False, compare=False)
    package: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "model": self.model, "url": self.url, "filename": self.filename,
            "size": self.size, "sha256": self.sha256, "input_transform": self.transform.as_dict(),
            "taps": list(self.taps), "note": self.note, "path": str(default_path(self)),
            "packaged": self.packaged is not None,
        }


def _inception_shapes() -> dict[str, tuple[int, ...]]:
    from probes.inception import InceptionV1Net

    with torch.device("meta"):
        net = InceptionV1Net()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def inception5h_entry() -> WeightsEntry:
    """The weights of ``inceptionv1`` (Lucid's inception5h converted by ProGamerGov; downloaded to the cache)."""
    from probes.inception import LAYERS

    return WeightsEntry(
        name="inception5h",
        model="inceptionv1",
        url="https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
        filename="inception5h.pth",
        transform=InputTransform(255.0, -117.0, "RGB * 255 - 117 (network input range [-117, 138])"),
        taps=tuple(LAYERS),
        expected=_inception_shapes,
        size=None,
        sha256=None,
        note="Lucid's InceptionV1 (inception5h, 1008 classes) converted to PyTorch by ProGamerGov "
             "(Lucent format, 116 keys, about 28 MB); no published checksum",
    )


def get_weights_entry(name: str) -> WeightsEntry:
    """Registry entry by weights id or by model id (``"inception5h"`` or ``"inceptionv1"``)."""
    known = all_weights()
    for entry in known:
        if name in (entry.name, entry.model):
            return entry
    raise ValueError(f"weights: unknown weights {name!r}; known: "
                     + ", ".join(f"{e.name} (model {e.model})" for e in known))


def all_weights() -> list[WeightsEntry]:
    """The weights files of every registered model (declared with the model, :mod:`probes.registry`)."""
    from probes.registry import registered

    return [m.weights for m in registered() if m.weights is not None]


def cache_dir() -> Path:
    """``$CURVEBENCH_HOME`` or the user's cache directory ``.../curvebench`` (not created here)."""
    home = os.environ.get("CURVEBENCH_HOME")
    if home:
        return Path(home).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "curvebench"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "curvebench"


def cache_path(entry: WeightsEntry) -> Path:
    """Where ``entry``'s file lives in the cache."""
    return cache_dir() / "weights" / entry.filename


def default_path(entry: WeightsEntry) -> Path:
    """The file used when no path is given: the packaged copy where there is one, else the cache."""
    if entry.packaged is not None:
        try:
            return entry.packaged()
        except WeightsError:
            return cache_path(entry)
    return cache_path(entry)


def _first(items: list[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def check_state_dict(state: object, entry: WeightsEntry, source: str) -> dict[str, torch.Tensor]:
    """Return ``state`` if it has exactly ``entry``'s keys and shapes, else raise :class:`WeightsError`.

    The message names ``source`` (the file), the first missing / unexpected /
    mis-shaped keys and what was expected.
    """
    expected = entry.expected()
    what = f"{entry.name} ({entry.model}: {len(expected)} tensors, e.g. {next(iter(expected))!r})"
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise WeightsError(f"{source} is not a state dict (got {type(state).__name__}); expected {what}")
    bad_values = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad_values:
        raise WeightsError(f"{source}: entries that are not tensors: {_first(bad_values)}; expected {what}")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [f"{k} {list(state[k].shape)} (expected {list(expected[k])})"
              for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    if shaped:
        problems.append(f"mis-shaped keys: {_first(shaped)}")
    if problems:
        raise WeightsError(f"{source} does not match {what}: " + "; ".join(problems))
    return dict(state)  # type: ignore[arg-type]


def read_state_dict(path: str | Path, entry: WeightsEntry, source: str | None = None) -> dict[str, torch.Tensor]:
    """Load ``path`` with ``torch.load(weights_only=True)`` and check it strictly against ``entry``.

    ``source`` names the file in messages (default: the path; downloads pass the URL).
    """
    path = Path(path)
    source = source or str(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise WeightsError(f"{source} is not a readable torch state dict (torch.load with weights_only=True "
                           f"failed: {type(exc).__name__}); expected {entry.name} for {entry.model}") from None
    return check_state_dict(state, entry, source)


def resolve(entry: WeightsEntry, weights: str | Path | None) -> Path:
    """The file to use: ``weights`` if given, else the cached file; a clear error when absent."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist")
        return path
    if entry.packaged is not None:
        path = entry.packaged()
        if not path.is_file():
            raise WeightsError(f"the packaged weights file {path} is missing: reinstall "
                               f"{entry.package} or pass --weights PATH")
        return path
    path = cache_path(entry)
    if not path.is_file():
        raise FileNotFoundError(
            f"no {entry.filename} for {entry.model} in the cache: it would be at {path}. Run "
            f"`curvebench weights download` (needs internet; source {entry.url}), or copy the file "
            f"there, or pass --weights PATH (Python: weights=PATH; weights='random' for random weights)"
        )
    return path


def check_sha256(entry: WeightsEntry, path: str | Path, *, packaged_only: bool = False) -> str:
    """``path``'s sha256 (hex); :class:`WeightsError` when it differs from ``entry``'s pinned one.

    With ``packaged_only`` a user's own file (not the packaged copy) is not held to the pin:
    a fine-tuned file with the same shapes loads, and its digest is recorded.
    """
    p = Path(path)
    digest = sha256sum(p)
    pinned = entry.sha256 is not None and (not packaged_only or _is_packaged_copy(entry, p))
    if pinned and digest != entry.sha256:
        raise WeightsError(f"{p}: sha256 {digest} differs from the pinned {entry.sha256} of {entry.name}"
                           + (f" (reinstall {entry.package})" if entry.package else ""))
    return digest


def _is_packaged_copy(entry: WeightsEntry, path: Path) -> bool:
    if entry.packaged is None:
        return False
    try:
        return entry.packaged().resolve() == path.resolve()
    except WeightsError:
        return False


def verify(entry: WeightsEntry, path: str | Path | None = None) -> dict[str, Any]:
    """Check a weights file strictly; return ``{"path", "sha256", "bytes", "tensors", "parameters"}``."""
    p = resolve(entry, path)
    state = read_state_dict(p, entry)
    digest = check_sha256(entry, p)
    return {"path": str(p), "sha256": digest, "bytes": p.stat().st_size, "tensors": len(state),
            "parameters": sum(v.numel() for v in state.values())}


def download(
    entry: WeightsEntry,
    url: str | None = None,
    dest: str | Path | None = None,
    *,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``entry`` (from ``url``, a mirror, if given) into the cache (or ``dest``).

    Streams to a temporary file next to the destination, checks the byte count against
    the server's Content-Length and ``entry.size``, checks the state dict strictly, then
    renames atomically. On any failure the temporary file is removed and
    :class:`WeightsError` says what happened and where the file would go.

    Args:
        timeout: seconds a connect or a single read may block (a stalled server fails).
        progress: tqdm progress bar on stderr.
    """
    src = url or entry.url
    target = Path(dest).expanduser() if dest is not None else cache_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _fetch(src, out, timeout, progress, entry)
        if entry.size is not None and tmp.stat().st_size != entry.size:
            raise WeightsError(f"download from {src} has {tmp.stat().st_size} bytes, expected {entry.size}")
        read_state_dict(tmp, entry, source=f"download from {src}")
        if entry.sha256 is not None and sha256sum(tmp) != entry.sha256:
            raise WeightsError(f"download from {src} does not have the published sha256 {entry.sha256}")
        os.replace(tmp, target)
    except WeightsError as exc:
        raise WeightsError(f"{exc} (nothing was written to {target})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _fetch(src: str, out: Any, timeout: float, progress: bool, entry: WeightsEntry) -> None:
    from tqdm.auto import tqdm

    request = urllib.request.Request(src, headers={"User-Agent": "curvebench"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - user-chosen URL
    except urllib.error.HTTPError as exc:
        raise WeightsError(f"could not download {entry.filename} from {src}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise WeightsError(f"could not download {entry.filename} from {src}: timed out after {timeout:g} s") from None
        if isinstance(reason, ConnectionRefusedError):
            why = "the server refused the connection (nothing listens at that address and port?)"
        elif isinstance(reason, socket.gaierror):
            why = "the host name does not resolve (a typo in the URL, or this machine looks offline)"
        else:
            why = "the server cannot be reached (this machine may be offline)"
        raise WeightsError(
            f"could not download {entry.filename} from {src}: {reason}; {why}. Fetch the file elsewhere and "
            f"put it at {cache_path(entry)}, or pass --weights PATH") from None
    except (socket.timeout, TimeoutError):
        raise WeightsError(f"could not download {entry.filename} from {src}: timed out after {timeout:g} s") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        got = 0
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=entry.filename, disable=not progress, leave=False)
        try:
            while True:
                try:
                    chunk = response.read1(1 << 16)
                except (socket.timeout, TimeoutError):
                    raise WeightsError(f"download of {entry.filename} from {src} stalled: no data for "
                                       f"{timeout:g} s after {got} bytes") from None
                except (OSError, http.client.HTTPException) as exc:  # e.g. IncompleteRead
                    raise WeightsError(f"download of {entry.filename} from {src} broke off after {got} bytes "
                                       f"({type(exc).__name__})") from None
                if not chunk:
                    break
                out.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
    if total is not None and got != total:
        raise WeightsError(f"download of {entry.filename} from {src} is truncated: {got} of {total} bytes")
