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
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TextIO

__all__ = [
    "QUIET_KEY",
    "CountingBar",
    "Echo",
    "Relocate",
    "computing",
    "progress_bar",
    "unchanged",
]

#: Where a command's messages go, called like :func:`click.echo` (``err=True``: diagnostics):
#: the console on the command line, the experiment's ``log.txt`` in a batch.
Echo = Callable[..., None]
#: Maps the paths recorded in a summary (or attributes) to where the outputs are published:
#: the identity for a command, the work folder -> the experiment's folder in a batch
#: (:class:`pipelines.runners.Publication`).
Relocate = Callable[[Any], Any]


def unchanged(value: Any) -> Any:
    """Return ``value`` as it is (the :data:`Relocate` of a command writing in place)."""
    return value


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


def _quiet_by_config() -> bool:
    """Whether the dask config key :data:`QUIET_KEY` is set, without importing dask."""
    dask = sys.modules.get("dask")
    if dask is None:
        # dask is not loaded (the one-pass GRD reconstruction does not need it, and its
        # import costs more than binning a small file): only its environment can hold the key
        return os.environ.get("DASK_OPERANDO__QUIET", "").lower() in ("1", "true", "yes")
    return bool(dask.config.get(QUIET_KEY, False))


class CountingBar:
    """A progress bar over a known amount of work, drawn like :func:`progress_bar`'s.

    For work done outside dask (the one-pass GRD reconstruction): call the instance with each
    amount of work done, from any thread. Off when ``enabled`` is false or :data:`QUIET_KEY`
    is set, like :func:`progress_bar`.

    Parameters
    ----------
    total
        Amount of work (e.g. records to bin).
    enabled
        ``False``: no bar (the batch).
    minimum
        Seconds the work must run before the bar is drawn.
    width, interval
        Bar width (characters) and redraw interval (s), as dask's.
    file
        Where to draw (default: ``sys.stdout`` at the time of drawing).
    """

    def __init__(
        self,
        total: int,
        *,
        enabled: bool = True,
        minimum: float = 0.0,
        width: int = 40,
        interval: float = 0.1,
        file: TextIO | None = None,
    ):
        self.total, self.minimum, self.width, self.interval = total, minimum, width, interval
        self._enabled = enabled
        self._file = file
        self._done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw_loop, daemon=True)
        self._start = 0.0

    def __call__(self, amount: int) -> None:
        """Record ``amount`` more work done."""
        with self._lock:
            self._done += amount

    def __enter__(self) -> CountingBar:
        self._enabled = self._enabled and not _quiet_by_config()
        self._start = time.perf_counter()
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._enabled:
            return
        self._stop.set()
        self._thread.join()
        elapsed = time.perf_counter() - self._start
        if elapsed < self.minimum:
            return
        self._draw(1.0 if kind is None else self._fraction(), elapsed)
        self._stream().write("\n")
        self._stream().flush()

    def _stream(self) -> TextIO:
        return self._file if self._file is not None else sys.stdout

    def _fraction(self) -> float:
        with self._lock:
            return min(self._done / self.total, 1.0) if self.total else 0.0

    def _draw_loop(self) -> None:
        while not self._stop.is_set():
            elapsed = time.perf_counter() - self._start
            if elapsed > self.minimum:
                self._draw(self._fraction(), elapsed)
            self._stop.wait(self.interval)

    def _draw(self, fraction: float, elapsed: float) -> None:
        bar = "#" * int(self.width * fraction)
        message = f"\r[{bar:<{self.width}}] | {int(100 * fraction)}% Completed | "
        with contextlib.suppress(ValueError):  # stream closed
            self._stream().write(message + _format_time(elapsed))
            self._stream().flush()


def _format_time(seconds: float) -> str:
    """Elapsed time as dask's bar shows it (``dask.utils.format_time``, not imported here)."""
    if seconds > 600:
        minutes = int(seconds / 60)
        return f"{minutes}m {int(seconds - 60 * minutes)}s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"
