"""How the commands compute and report: progress bar, scheduler, where messages go.

The commands show :class:`dask.diagnostics.ProgressBar` while they compute; ``operando batch``
calls the same code with ``progress=False`` (its experiments log to files, not to a console).
The dask config key ``operando.quiet`` silences the bars too (``dask.config.set({"operando.quiet":
True})``, e.g. in a user's script).

Example
-------
>>> with computing(progress=False):
...     pass  # computations here show no bar and run on local threads
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["QUIET_KEY", "Echo", "computing", "progress_bar"]

#: Where a command's messages go, called like :func:`click.echo` (``err=True``: diagnostics):
#: the console on the command line, the experiment's ``log.txt`` in a batch.
Echo = Callable[..., None]

#: dask config key that silences :func:`progress_bar` when true.
QUIET_KEY = "operando.quiet"


def progress_bar(minimum: float = 0.0, *, enabled: bool = True) -> Any:
    """Return a dask progress bar, or a null context when progress output is off.

    Parameters
    ----------
    minimum
        Seconds a computation must run before the bar is drawn.
    enabled
        ``False``: no bar (the batch).

    Returns
    -------
    contextlib.AbstractContextManager
        ``dask.diagnostics.ProgressBar(minimum=minimum)``, or :func:`contextlib.nullcontext`
        when disabled or ``operando.quiet`` is set.
    """
    import dask

    if not enabled or dask.config.get(QUIET_KEY, False):
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=minimum)


@contextlib.contextmanager
def computing(
    *, progress: bool = True, minimum: float = 0.0, num_workers: int | None = None
) -> Iterator[None]:
    """Compute under a progress bar, on local threads unless a scheduler is already chosen.

    ``operando batch`` chooses the scheduler (in-task on a worker, or the cluster for a large
    experiment); on the command line nothing is chosen and the computation runs on
    ``num_workers`` local threads (default: all cores).
    """
    import dask

    chosen = dask.config.get("scheduler", None) is not None
    local = {} if chosen else {"scheduler": "threads", "num_workers": num_workers}
    with dask.config.set(local), progress_bar(minimum, enabled=progress):
        yield
