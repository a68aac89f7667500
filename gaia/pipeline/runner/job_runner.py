"""The one runner under every curation job: lock, clean up, plan, skip what is done, work
in-process or on a Ray Data actor pool, merge.

docs/practices.md ("one runner under every job"). A job (``measure``, ``extract``,
``encode-latents``) describes its stages in a ``Job``; ``run_job`` runs them in this order:

1. take the output folder's lock (``out_lock``): a second run on the same folder is refused
   here, before it removes or writes anything;
2. ``prepare``: check the folder's record against this run's settings, remove what a killed
   run left (``.*.partial`` files);
3. ``plan`` every work item, and keep what ``pending`` says is still to do (resume);
4. build ``worker`` once per actor (or once here, ``use_ray=False``) and call it per item;
5. ``merge`` the result rows as they arrive into the job's outputs and summary.

Every setting and path is checked by the job before it builds its ``Job`` (``checks``), so
Ray starts only for a run that can go through. Work items and result rows are small
JSON-able rows: frames and latents stay in the workers, which write their outputs themselves
(or return small members the driver writes, as extract's single shard writer does).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from gaia.common.run_errors import RunStoppedError, causes, run_errno, stopped_message
from gaia.pipeline.runner.checks import check_workers
from gaia.pipeline.runner.out_lock import hold_output
from gaia.pipeline.runner.ray_setup import actor_pool, init_ray, log_to_stderr

Row = dict[str, Any]
Summary = TypeVar("Summary")


@dataclass(frozen=True)
class Placement:
    """Where a job's actors run on Ray: resources per actor, how many the cluster holds (the
    default pool size), and worker arguments that depend on it (the device)."""

    resources: Mapping[str, float]
    slots: int
    worker_args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def one_cpu(self) -> bool:
        return not self.resources.get("num_gpus")


def one_cpu_each(cluster: Mapping[str, float]) -> Placement:
    """The default: one CPU per actor, one actor per CPU of the cluster."""
    return Placement({"num_cpus": 1}, int(cluster.get("CPU", 1)))


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Job(Generic[Summary]):
    """A job's stages (see the module docstring for the order ``run_job`` runs them in).

    name: the prefix of its log lines. out: the folder it writes, locked for the run.
    plan: every work item. pending: what of an item is still to do (None: it is done).
    worker: a class, built as ``worker(**worker_args)`` once per actor and called once per
    item; it returns one result row, or an iterable of rows when ``many``; a ``close()``
    method, if it has one, is called when an in-process run ends.
    merge: ``merge(items, todo, rows)`` consumes the result rows as they come and returns
    the summary; it is called before the first item runs (so it can log the plan).
    prepare: after the lock, before planning. place: the actors' resources on Ray.
    """

    name: str
    out: Path
    plan: Callable[[], list[Row]]
    pending: Callable[[Row], Row | None]
    worker: type
    worker_args: Mapping[str, Any]
    merge: Callable[[list[Row], list[Row], Iterator[Row]], Summary]
    prepare: Callable[[], None] = _nothing
    many: bool = False
    place: Callable[[Mapping[str, float]], Placement] = one_cpu_each


def run_job(job: Job[Summary], *, use_ray: bool = True, address: str | None = None,
            workers: int | None = None, log: Callable[[str], None] = log_to_stderr
            ) -> Summary:
    """Run ``job``'s stages; on Ray (``address``, else RAY_ADDRESS, else an embedded local
    Ray) with ``workers`` actors (default: as many as its placement has slots), or in this
    process, one item after another (``use_ray=False``: tests, debugging)."""
    check_workers(workers)
    with hold_output(job.out, log=lambda line: log(f"[{job.name}] {line}")):
        job.prepare()
        items = job.plan()
        todo = [left for left in map(job.pending, items) if left is not None]
        if not todo:
            rows: Iterator[Row] = iter(())
        elif use_ray:
            rows = _on_ray(job, todo, address, workers)
        else:
            rows = _here(job, todo)
        try:
            return job.merge(items, todo, rows)
        finally:
            # When merge stops early (its writer met a full disk), close the rows now: Ray
            # Data's executor then shuts down while Ray is up, instead of at interpreter exit
            # after Ray is gone (tracebacks, then a process that never ends).
            close = getattr(rows, "close", None)
            if close is not None:
                close()


def _here(job: Job, todo: list[Row]) -> Iterator[Row]:
    worker = job.worker(**job.worker_args)
    try:
        for item in todo:
            result = worker(item)
            if job.many:
                yield from result
            else:
                yield result
    finally:
        if hasattr(worker, "close"):
            worker.close()


# How often an actor is started again after its process died. Ray Data's default is forever,
# with its items retried forever: a node lost mid-item costs one restart (the item runs again,
# tests/test_cluster.py), but an input that kills the process (a decoder's crash in extract or
# encode-latents, which decode in the actor) would loop without end. Past this many deaths the
# job ends with one line (``ray_failure``); finished items are kept for the rerun.
ACTOR_RESTARTS = 3


class _OnRay:
    """A Ray Data actor around a job's worker: built once per actor, called per item."""

    def __init__(self, worker: type, worker_args: dict, one_cpu: bool) -> None:
        self._work = worker(**worker_args)
        torch = sys.modules.get("torch")
        if one_cpu and torch is not None:
            torch.set_num_threads(1)  # one CPU per actor: more threads only fight each other

    def __call__(self, row: Row) -> Row | Iterable[Row]:
        return self._work(row)


def _on_ray(job: Job, todo: list[Row], address: str | None,
            workers: int | None) -> Iterator[Row]:
    import ray
    import ray.data

    init_ray(address)
    placement = job.place(ray.cluster_resources())
    dataset = ray.data.from_items(todo, override_num_blocks=min(len(todo), 20_000))
    apply = dataset.flat_map if job.many else dataset.map
    with warnings.catch_warnings():
        # max_restarts has no named parameter yet; Ray 2.64 drops the keyword form (pinned
        # below it in pyproject.toml).
        warnings.simplefilter("ignore", DeprecationWarning)
        results = apply(
            _OnRay,
            fn_constructor_kwargs={"worker": job.worker,
                                   "worker_args": {**job.worker_args, **placement.worker_args},
                                   "one_cpu": placement.one_cpu},
            compute=actor_pool(workers, placement.slots, len(todo)),
            max_restarts=ACTOR_RESTARTS,
            **placement.resources,
        )
    try:
        yield from results.iter_rows()
    except Exception as err:  # a worker's exception arrives wrapped by Ray: one line for it
        raise ray_failure(job.name, err) from err


def ray_failure(name: str, err: BaseException) -> RunStoppedError:
    """The one-line error for a job that Ray ended: a worker's run-stopping error (a full
    disk) keeps its own message; anything else (a worker's bug, an actor that kept dying, Ray
    itself) names the innermost error's first line and says that a rerun resumes, since every
    finished item is recorded."""
    chain = list(causes(err))
    for inner in chain:
        if isinstance(inner, RunStoppedError):
            return RunStoppedError(inner.message, inner.errno)
    if (code := run_errno(err)) is not None:
        return RunStoppedError(
            stopped_message(f"a worker of the {name} job could not write", err), code)
    inner = chain[-1] if chain else err
    text = next((line.strip() for line in str(inner).splitlines() if line.strip()), "")
    what = f"{type(inner).__name__}: {text}" if text else type(inner).__name__
    if _actor_died(chain):
        what = (f"a worker process died {ACTOR_RESTARTS + 1} times (an input that crashes a "
                "decoder or a model, or workers out of memory; their logs are in Ray's "
                f"session folder, /tmp/ray/session_latest/logs) [{what}]")
    return RunStoppedError(f"the {name} job failed on Ray: {what}. Finished items are kept: "
                           "run the same command again to resume")


def _actor_died(chain: list[BaseException]) -> bool:
    import ray.exceptions

    died = (ray.exceptions.ActorDiedError, ray.exceptions.ObjectRefStreamEndOfStreamError,
            ray.exceptions.WorkerCrashedError, ray.exceptions.ActorUnavailableError)
    return any(isinstance(inner, died) for inner in chain)
