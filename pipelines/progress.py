"""Progress bars of the commands, silenced inside ``operando batch``.

The commands show :class:`dask.diagnostics.ProgressBar` while they compute. Its drawing thread
writes to the process's ``sys.stdout``, which inside a batch is the batch console (the thread is
not the one whose output the runners route to ``log.txt``). The runners set the dask config key
``operando.quiet`` to ``True``; :func:`progress_bar` then draws nothing.

Example
-------
>>> import dask
>>> with dask.config.set({"operando.quiet": True}), progress_bar():
...     pass  # computations here show no bar
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["QUIET_KEY", "progress_bar", "quiet"]

#: dask config key that silences :func:`progress_bar` when true.
QUIET_KEY = "operando.quiet"


def progress_bar(minimum: float = 0.0) -> contextlib.AbstractContextManager[Any]:
    """Return a dask progress bar, or a null context when ``operando.quiet`` is set.

    Parameters
    ----------
    minimum
        Seconds a computation must run before the bar is drawn.

    Returns
    -------
    contextlib.AbstractContextManager
        ``dask.diagnostics.ProgressBar(minimum=minimum)`` or :func:`contextlib.nullcontext`.
    """
    import dask

    if dask.config.get(QUIET_KEY, False):
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=minimum)


def quiet() -> contextlib.AbstractContextManager[Any]:
    """Silence :func:`progress_bar` in this block (what ``operando batch`` runners use)."""
    import dask

    return dask.config.set({QUIET_KEY: True})
