"""Joining or starting Ray, the same way for every curation job.

No address and no ``RAY_ADDRESS``: an embedded local Ray (``ray.init()``). ``ray job submit``
sets ``RAY_ADDRESS`` for the job, so the same command runs on a cluster unchanged. Ray Data's
own progress bars are off: each job logs one line per finished item and a summary.
"""

from __future__ import annotations

import logging
import os

progress_logger = logging.getLogger("gaia.pipeline.progress")


def init_ray(address: str | None = None) -> int:
    """Connect (or start) Ray; returns the cluster's CPU count."""
    import ray
    import ray.data

    address = address or os.environ.get("RAY_ADDRESS")
    # Ray Data's own ERROR lines repeat a worker's traceback; the job ends with one line of
    # its own (``job_runner.ray_failure``), so they show only with --debug.
    debug = logging.getLogger("gaia").isEnabledFor(logging.DEBUG)
    logging.getLogger("ray.data").setLevel(logging.WARNING if debug else logging.CRITICAL)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # A worker's own exception, not Ray Data's UserCodeException: the wrapper loses the cause
    # on its way to the driver, and with it a full disk's errno (``job_runner.ray_failure``).
    context.raise_original_map_exception = True
    return int(ray.cluster_resources().get("CPU", 1))


def actor_pool(workers: int | None, cpus: int, items: int):
    """One actor per CPU (or ``workers``), never more than there are items; one item each
    in flight so a long video does not hold others back."""
    import ray.data

    size = max(1, min(workers or cpus, items))
    return ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1)


def log_to_stderr(message: str) -> None:
    """The jobs' progress lines, at INFO on ``gaia.pipeline.progress``: the ``gaia`` command
    sends them to standard error (``gaia.common.logs``), so standard output stays for results."""
    progress_logger.info(message)
