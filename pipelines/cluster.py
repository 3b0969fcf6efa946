"""dask.distributed clients for the command line: a LocalCluster or an existing scheduler.

Several workstations: start ``dask scheduler`` on one host and ``dask worker
tcp://HOST:8786`` on the others (see the README), then pass ``--scheduler
tcp://HOST:8786`` or ``--scheduler-file FILE``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str = "auto",
    dashboard: bool = True,
) -> Iterator[Client]:
    """Connect to a scheduler, or start a process-based LocalCluster on this machine.

    Parameters
    ----------
    scheduler
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    scheduler_file
        JSON file written by ``dask scheduler --scheduler-file`` (shared filesystem).
    workers
        Worker processes of the LocalCluster (default: the number of CPU cores).
    threads_per_worker
        Threads per worker process.
    memory_limit
        Per-worker memory limit of the LocalCluster (``"auto"`` splits the RAM).
    dashboard
        Serve the dashboard (on a free port, loopback only).
    """
    from distributed import Client, LocalCluster

    if scheduler and scheduler_file:
        raise ValueError("give either a scheduler address or a scheduler file, not both")
    if scheduler or scheduler_file:
        client = Client(scheduler, scheduler_file=scheduler_file, timeout="30s")
        try:
            yield client
        finally:
            client.close()
        return
    # the batch reports every failure itself (one line; the traceback in .operando/): worker
    # logs of failed tasks would print it again on the console
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=threads_per_worker,
        processes=True,
        memory_limit=memory_limit,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0" if dashboard else None,
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
