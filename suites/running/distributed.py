"""Run a suite on N processes launched by ``torchrun``: one shard of the grid per rank, one results file.

``torchrun --standalone --nproc-per-node=N $(command -v curvebench) run SUITE --out FILE``
(or ``torchrun ... -m curvebench run ...``) starts N copies of ``curvebench run``; each
finds itself in the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
the rendezvous) and calls :func:`run_sharded`:

1. **process group**: ``torch.distributed`` with gloo on CPU, or ``cpu:gloo,cuda:nccl``
   when CUDA is present; every collective has a timeout (``CURVEBENCH_DIST_TIMEOUT``
   seconds, default 600), so no rank waits for ever on a peer that is gone;
2. **device**: ``cuda:LOCAL_RANK`` for ``--device auto``/``cuda`` on a GPU machine, else CPU;
3. **rows**: :func:`suites.results.shards.shard_bounds` splits the grid's rows into contiguous
   runs of whole batches, one per rank, from the grid alone (no work queue);
4. **files**: each rank streams its rows into its own shard, an ordinary crash-safe
   results file (:func:`suites.running.runner.stream_rows`, the single-process loop); rank 0
   writes ``FILE``, virtual datasets over the shards (:mod:`suites.results.shards`), and at the
   end the running summaries merged over the shards;
5. **failure**: a rank that fails stores ``rank R of N: reason`` in the rendezvous store;
   the others see it after their current batch and stop; all meet, rank 0 raises
   :class:`~suites.errors.RankFailedError` with that one line (the other ranks exit 2
   quietly). A rank that dies outright (killed, out of memory) is torchrun's to notice:
   it stops the others. Committed rows stay in the shards either way;
6. **resume**: the same command with ``--resume FILE`` (world size as stored in
   ``FILE``; another size is refused in one line naming the right one) continues every
   shard from its own ``rows_completed``; a group that ``torchrun --max-restarts``
   restarts continues the file its first attempt made (same ``TORCHELASTIC_RUN_ID``).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from suites.errors import RankFailedError, ResultsExistsError
from suites.specs.options import RunOptions
from probes.device import resolve_device
from suites.running.runner import (RunResult, RunSetup, check_resumed_writer, finish_file, prepare_suite,
                                   read_results_attrs, results_attrs, results_layout, resume_checks, setup_run,
                                   stream_rows)
from suites.results.shards import create_combined, finish_combined, shard_bounds, shard_names
from suites.specs.suite import Suite
from suites.results.summary import RunningSummary
from suites.results.writer import ResultsWriter

__all__ = ["launched", "run_sharded", "rank_device", "DEFAULT_TIMEOUT_S"]

T = TypeVar("T")

#: Seconds any collective (and the process-group start) may wait for the other ranks.
DEFAULT_TIMEOUT_S = 600.0
_ERROR_KEY = "error"


def launched() -> bool:
    """True when this process is one of several started by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def _timeout() -> timedelta:
    text = os.environ.get("CURVEBENCH_DIST_TIMEOUT", "")
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"CURVEBENCH_DIST_TIMEOUT must be a number of seconds, got {text!r}") from None
    return timedelta(seconds=seconds)


def rank_device(name: str, local_rank: int) -> torch.device:
    """The device of one rank: ``cuda:LOCAL_RANK`` for ``auto`` (with CUDA) or ``cuda``; ``cpu`` stays CPU.

    Raises ValueError for ``cuda:N`` (each rank takes its own GPU) and for a local rank
    with no GPU of its own.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if name != "cuda":
            raise ValueError(f"device: {name!r}: under torchrun every rank uses cuda:LOCAL_RANK; pass --device cuda "
                             f"(or auto) and choose GPUs with CUDA_VISIBLE_DEVICES")
        resolve_device("cuda")  # CUDA present at all?
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"device: cuda:{local_rank} (LOCAL_RANK {local_rank}) does not exist: this node has "
                             f"{torch.cuda.device_count()} CUDA device(s); use at most that many processes per node")
        return torch.device("cuda", local_rank)
    return resolve_device(name)


# ----------------------------------------------------------------------------- the ranks

@dataclass
class _Ranks:
    """This process's place in the job and the few collective steps the runner needs."""

    rank: int
    world: int
    local_rank: int
    store: Any  # c10d store shared by the job (error flag, done flags)
    timeout: timedelta

    @property
    def who(self) -> str:
        return f"rank {self.rank} of {self.world}"

    def step(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on every rank; if any rank raised, every rank raises :class:`RankFailedError`."""
        try:
            value, err = fn(), None
        except Exception as exc:  # noqa: BLE001 - reported by agree()
            value, err = None, exc
        self.agree(err)
        return value  # type: ignore[return-value]

    def agree(self, err: BaseException | str | None) -> None:
        """Exchange each rank's error (or None); raise the first failing rank's reason on every rank."""
        mine = None if err is None else (err if isinstance(err, str) else f"{self.who}: {_reason(err)}")
        errors = [None] * self.world
        dist.all_gather_object(errors, mine)
        failed = [e for e in errors if e]
        if failed:
            raise RankFailedError(failed[0], report=self.rank == 0)

    def gather(self, obj: Any) -> list[Any]:
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def signal_failure(self, message: str) -> None:
        """Publish this rank's failure unless another rank's came first (the first one is reported)."""
        self.store.compare_set(_ERROR_KEY, "", message)

    def failed_elsewhere(self) -> bool:
        return bool(self.store.check([_ERROR_KEY]))

    def wait_all_done(self) -> None:
        """Mark this rank done and wait for the others (however long their rows take; torchrun
        stops everyone if a rank dies), then meet in a barrier."""
        self.store.set(f"done/{self.rank}", "1")
        keys = [f"done/{r}" for r in range(self.world)]
        while True:
            try:
                self.store.wait(keys, timedelta(seconds=5))
                break
            except RuntimeError as exc:  # DistStoreError (a RuntimeError): not yet; poll again
                if "timeout" not in str(exc).lower() and "timed out" not in str(exc).lower():
                    raise
        dist.barrier()


def _reason(exc: BaseException) -> str:
    """One line: the exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _init_ranks() -> _Ranks:
    timeout = _timeout()
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timeout)
    from torch.distributed.distributed_c10d import _get_default_store

    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"curvebench/{restart}/", _get_default_store())
    return _Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), store, timeout)


# ----------------------------------------------------------------------------- the run

def run_sharded(
    suite: Suite | str | Path | None = None,
    options: RunOptions | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool | None = None,
    queue_depth: int = 3,
    log: Callable[[str], None] | None = print,
    stop_after_batches: int | None = None,
) -> RunResult | None:
    """Run (or resume) a suite as one rank of a ``torchrun`` job; see the module docstring.

    Same arguments as :func:`suites.running.runner.run_suite` (``out`` is required: the combined
    file every rank agrees on). Returns the :class:`RunResult` of the combined file on
    rank 0 and None on the other ranks.

    Raises:
        RankFailedError: some rank failed (message: ``rank R of N: reason``), on every rank.
    """
    ranks = _init_ranks()
    try:
        return _run(ranks, suite, options or RunOptions(), out, resume, progress, queue_depth, log,
                    stop_after_batches)
    finally:
        dist.destroy_process_group()


def _run(ranks: _Ranks, suite: Any, options: RunOptions, out: Any, resume: Any, progress: bool | None,
         queue_depth: int, log: Callable[[str], None] | None, stop_after_batches: int | None) -> RunResult | None:
    say = log if (log is not None and ranks.rank == 0) else None
    path = Path(resume if resume is not None else (out or ""))

    def what_to_run() -> tuple[Suite, RunOptions, dict[str, Any] | None]:
        if resume is None and out is None:
            raise ValueError("run under torchrun needs --out FILE (the combined results file every rank agrees on)")
        if resume is None:
            if ranks.rank == 0 and path.exists():
                raise ResultsExistsError(f"{path} already exists; continue it with --resume {path} or choose another --out")
            # every rank checks before any rank creates its shard: a refusal leaves no new shard behind
            shard = path.parent / shard_names(path, ranks.world)[ranks.rank]
            if shard.exists() or shard.is_symlink():
                raise ResultsExistsError(f"shard {shard} already exists (left by an earlier run of {path}?); "
                                         f"remove it, or choose another --out")
            return prepare_suite(suite, options), options, None
        return (*resume_checks(path, suite, options, attrs=attrs, world_size=ranks.world), attrs)

    attrs = ranks.broadcast(_stored_attrs(path, resume is not None) if ranks.rank == 0 else None)
    if isinstance(attrs, str):  # rank 0 could not read the file: its one-line reason
        ranks.agree(attrs if ranks.rank == 0 else None)
    if resume is None and attrs is not None:  # torchrun restarted this job: continue its own file
        resume = path
    s, options, attrs = ranks.step(what_to_run)
    setup = ranks.step(lambda: setup_run(s, options, device=rank_device(s.device, ranks.local_rank)))
    bounds = shard_bounds(setup.stop, s.batch_size, ranks.world)
    names = str(attrs["shards"]).split() if attrs is not None else shard_names(path, ranks.world)
    start, stop = bounds[ranks.rank]
    writer = ranks.step(lambda: _open_shard(ranks, setup, path, names, bounds, resume is not None))
    before = writer.rows_completed
    rss_at_10pct: list[float] = []

    def on_progress(done: int, _total: int) -> None:  # memory check: peak RSS once 10% of the shard is in
        if not rss_at_10pct and done - before >= 0.1 * (stop - start - before):
            rss_at_10pct.append(_peak_rss_mb())

    outcome = stream_rows(setup, writer, start + writer.rows_completed, stop,
                          progress=progress if ranks.rank == 0 else False, queue_depth=queue_depth,
                          on_progress=on_progress, stop_after_batches=stop_after_batches,
                          should_stop=ranks.failed_elsewhere)
    if outcome.error is not None:
        ranks.signal_failure(f"{ranks.who}: {_reason(outcome.error)}")
        writer.close()
        complete = False
    else:
        complete, _ = finish_file(writer, stop - start, outcome)
    ranks.wait_all_done()
    failure = None
    if ranks.rank == 0 and ranks.failed_elsewhere():
        failure = ranks.store.get(_ERROR_KEY).decode() + "; every rank stopped"
        if "--resume" not in failure:
            failure += f" (committed rows are kept: continue with {_resume_hint(path)})"
    ranks.agree(failure)
    report = ranks.gather({"complete": complete, "seconds": outcome.seconds,
                           "rows": writer.rows_completed - before, "summaries": outcome.summaries,
                           "peak_rss_mb": _peak_rss_mb(), "peak_rss_mb_at_10pct": (rss_at_10pct or [np.nan])[0]})
    if outcome.interrupted and stop_after_batches is None:
        raise KeyboardInterrupt
    if ranks.rank != 0:
        return None
    return _finish(path, setup, report, say)


def _resume_hint(path: Path) -> str:
    return f"the same torchrun command and --resume {path}"


def _run_id() -> str:
    return os.environ.get("TORCHELASTIC_RUN_ID", "")


def _stored_attrs(path: Path, resuming: bool) -> dict[str, Any] | str | None:
    """Rank 0: the attributes of the file to continue (or a one-line reason it cannot be read).

    Without ``--resume`` this is the file a previous attempt of the *same* torchrun job
    made (``torchrun --max-restarts``: same ``TORCHELASTIC_RUN_ID``, restart count > 0),
    or None: a fresh run.
    """
    if not resuming:
        restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
        if not (restarted and _run_id() and path.is_file()):
            return None
        try:
            attrs = read_results_attrs(path)
        except (ValueError, OSError):
            return None  # not ours: the fresh run refuses to overwrite it
        return attrs if str(attrs.get("torchelastic_run_id", "")) == _run_id() else None
    try:
        return read_results_attrs(path)
    except (ValueError, OSError) as exc:
        return f"rank 0: {exc}"


def _open_shard(ranks: _Ranks, setup: RunSetup, path: Path, names: list[str], bounds: list[tuple[int, int]],
                resuming: bool) -> ResultsWriter:
    """This rank's shard (created, or reopened to resume); rank 0 also creates the combined file."""
    shard = path.parent / names[ranks.rank]
    start, stop = bounds[ranks.rank]
    if resuming and shard.exists():
        from suites.results.verify import check_results_file

        check_results_file(shard)  # verified, not trusted: counters against the data, the grid, the state
        writer = ResultsWriter.open_resume(shard)
        writer.resume_hint = _resume_hint(path)
        try:
            check_resumed_writer(writer, setup.suite, setup.weights_sha)
        except BaseException:
            writer.close()
            raise
        return writer
    shard.parent.mkdir(parents=True, exist_ok=True)
    attrs = {**results_attrs(setup), "rows_total": stop - start, "world_size": ranks.world, "shard_rank": ranks.rank,
             "shard_rows": np.asarray([start, stop], dtype=np.int64), "combined_file": path.name,
             "torchelastic_run_id": _run_id()}
    layout = results_layout(setup)
    writer = ResultsWriter.create(shard, layout, attrs)
    writer.resume_hint = _resume_hint(path)
    if ranks.rank == 0 and not resuming:
        try:
            combined = results_attrs(setup)
            combined["title"] += f" ({ranks.world} processes)"
            combined["torchelastic_run_id"] = _run_id()
            create_combined(path, layout, combined, names, bounds)
        except BaseException:
            writer.close()
            shard.unlink(missing_ok=True)
            raise
    return writer


def _finish(path: Path, setup: RunSetup, report: list[dict[str, Any]], say: Callable[[str], None] | None) -> RunResult:
    """Rank 0: merge the summaries into the combined file when every shard is complete."""
    import h5py

    seconds = max(r["seconds"] for r in report)
    complete = all(r["complete"] for r in report)
    with h5py.File(path, "r", locking=False) as h5:
        before = float(h5.attrs.get("seconds", 0.0))
    if complete:
        statics: dict[str, np.ndarray] = {}
        if setup.suite.summary.enabled:
            for name in report[0]["summaries"]:
                merged = RunningSummary(len(report[0]["summaries"][name].mean), setup.suite.summary.top_k)
                for r in report:
                    merged.merge(r["summaries"][name])
                statics.update(merged.arrays(name))
        finish_combined(path, statics, seconds=before + seconds,
                        peak_rss_mb_per_rank=np.asarray([r["peak_rss_mb"] for r in report], dtype=np.float64),
                        peak_rss_mb_at_10pct_per_rank=np.asarray([r["peak_rss_mb_at_10pct"] for r in report],
                                                                 dtype=np.float64))
    else:
        with h5py.File(path, "r+", locking=False) as h5:
            h5.attrs["seconds"] = before + seconds
    with h5py.File(path, "r", locking=False) as h5:
        attrs = dict(h5.attrs)
    rows = sum(r["rows"] for r in report)
    result = RunResult(path, rows, int(attrs["rows_completed"]), seconds, complete, attrs)
    if say is not None:
        say(result.summary_line().replace(" stimuli in", f" stimuli on {len(report)} processes in", 1))
        if not complete:
            say(f"continue with {_resume_hint(path)}")
    return result


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
