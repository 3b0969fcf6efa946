"""Progress bars of the commands, silenced inside ``operando batch``.

The commands show :class:`dask.diagnostics.ProgressBar` while they compute. Its drawing thread
writes to the process's ``sys.stdout``, which inside a batch is the batch console (the thread is
not the one whose output the runners route to ``log.txt``). :func:`progress_bar` draws nothing

- when the dask config key ``operando.quiet`` is true (``dask.config.set({"operando.quiet":
  True})``, e.g. in a user's script), or
- while any thread of the process is inside :func:`quiet` (what the batch runners use).

:func:`quiet` counts its users under a lock instead of setting the dask key, because
``dask.config.set`` changes process-wide state and restores it on exit: with several
experiments running at once in one worker, the first to finish would switch the bars back on
for the others.

Example
-------
>>> with quiet(), progress_bar():
...     pass  # computations here show no bar
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["QUIET_KEY", "progress_bar", "quiet"]

#: dask config key that silences :func:`progress_bar` when true.
QUIET_KEY = "operando.quiet"

_LOCK = threading.Lock()
_quiet_users = 0


def _is_quiet() -> bool:
    import dask

    return bool(dask.config.get(QUIET_KEY, False)) or _quiet_users > 0


def progress_bar(minimum: float = 0.0) -> contextlib.AbstractContextManager[Any]:
    """Return a dask progress bar, or a null context when progress output is silenced.

    Parameters
    ----------
    minimum
        Seconds a computation must run before the bar is drawn.

    Returns
    -------
    contextlib.AbstractContextManager
        ``dask.diagnostics.ProgressBar(minimum=minimum)``, or :func:`contextlib.nullcontext`
        when ``operando.quiet`` is set or a :func:`quiet` block is active.
    """
    if _is_quiet():
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=minimum)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence :func:`progress_bar` in the whole process while this block runs."""
    global _quiet_users
    with _LOCK:
        _quiet_users += 1
    try:
        yield
    finally:
        with _LOCK:
            _quiet_users -= 1
